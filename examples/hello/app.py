"""hello: the example Flask app that deployer ships and deploys.

Served as ``app:app`` (gunicorn, uWSGI, mod_wsgi) or through the factory
``app:create_app()``. Everything it needs from the host comes from the
environment (``/etc/<app>/env``) and from ``instance/``, which each release
links to the app's shared directory so the counter survives deploys.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from flask import Flask, current_app, g, jsonify, render_template, request
from werkzeug.middleware.proxy_fix import ProxyFix

DEFAULT_GREETING = "Hello from deployer"


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)  # instance_path: <release dir>/instance
    app.config.from_mapping(
        GREETING=os.environ.get("APP_GREETING", DEFAULT_GREETING),
        SECRET_KEY=os.environ.get("APP_SECRET_KEY"),
        DATABASE=os.path.join(app.instance_path, "counter.sqlite3"),
    )
    if test_config:
        app.config.update(test_config)

    # Exactly one proxy (nginx or apache) sits in front of the app: trust one
    # hop of X-Forwarded-For/-Proto/-Host and nothing a client adds before it.
    # Under mod_wsgi there is no hop; the site unsets these headers instead.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    app.teardown_appcontext(_close_db)

    @app.get("/")
    def index():
        return render_template(
            "index.html",
            greeting=app.config["GREETING"],
            secret_key_set=bool(app.config["SECRET_KEY"]),
        )

    @app.get("/healthz")
    def healthz():
        _db().execute("SELECT 1").fetchone()
        return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}

    @app.route("/count", methods=["GET", "POST"])
    def count():
        db = _db()
        with db:
            db.execute("INSERT INTO counter (id, value) VALUES (1, 1) "
                       "ON CONFLICT (id) DO UPDATE SET value = value + 1")
        (value,) = db.execute("SELECT value FROM counter WHERE id = 1").fetchone()
        return jsonify(count=value)

    @app.get("/whoami")
    def whoami():
        return jsonify(scheme=request.scheme, host=request.host, remote_addr=request.remote_addr)

    return app


def _db() -> sqlite3.Connection:
    if "db" not in g:
        path = Path(current_app.config["DATABASE"])
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        g.db = db
    return g.db


def _close_db(_exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


app = create_app()
