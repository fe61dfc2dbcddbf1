"""hello: the example Flask app that deployer ships and deploys.

Served as ``app:app`` (gunicorn, uWSGI, mod_wsgi) or through the factory
``app:create_app()``. Everything it needs from the host comes from the
environment (``/etc/<app>/env``) and from ``instance/``, which each release
links to the app's shared directory so the counter survives deploys.

The database schema is versioned (SQLite ``PRAGMA user_version``) and brought
up to date by ``flask --app app migrate``, which deployer runs as a
``before_switch`` hook: the new release only goes live once its schema is
there. Migrations only add, so the release still serving (and a rollback)
keeps working on the newer schema.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import click
from flask import Flask, current_app, g, jsonify, render_template, request
from werkzeug.middleware.proxy_fix import ProxyFix

DEFAULT_GREETING = "Hello from deployer"

# Schema changes in order; after the n-th has run, user_version is n.
MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)",
    "ALTER TABLE counter ADD COLUMN updated_at TEXT",
)


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
        headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
        _db().execute("SELECT 1").fetchone()
        version = schema_version(_db())  # a release whose migration did not run must not pass the gate
        if version < len(MIGRATIONS):
            return f"database schema {version}, need {len(MIGRATIONS)}: run flask --app app migrate\n", 503, headers
        return "ok\n", 200, headers

    @app.route("/count", methods=["GET", "POST"])
    def count():
        db = _db()
        with db:
            db.execute("INSERT INTO counter (id, value, updated_at) VALUES (1, 1, datetime('now')) "
                       "ON CONFLICT (id) DO UPDATE SET value = value + 1, updated_at = datetime('now')")
        (value,) = db.execute("SELECT value FROM counter WHERE id = 1").fetchone()
        return jsonify(count=value)

    @app.cli.command("migrate")
    def migrate_command():
        """Bring the database schema up to date (deployer runs this before a release goes live)."""
        before, after = migrate(_connect(app.config["DATABASE"]))
        click.echo(f"{app.config['DATABASE']}: schema {before} -> {after}" if after > before
                   else f"{app.config['DATABASE']}: schema {after}, up to date")

    @app.get("/whoami")
    def whoami():
        return jsonify(scheme=request.scheme, host=request.host, remote_addr=request.remote_addr)

    return app


def schema_version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite3.Connection) -> tuple[int, int]:
    """Run the migrations not yet applied, each with its version bump in one transaction."""
    before, level = schema_version(db), db.isolation_level
    db.isolation_level = None  # explicit transactions: DDL and user_version commit together
    try:
        while True:
            db.execute("BEGIN IMMEDIATE")  # one migrator at a time; re-read the version inside
            version = schema_version(db)
            if version >= len(MIGRATIONS):
                db.execute("COMMIT")
                return before, version
            db.execute(MIGRATIONS[version])
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
    finally:
        db.isolation_level = level


def _connect(database: str) -> sqlite3.Connection:
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    return db


def _db() -> sqlite3.Connection:
    if "db" not in g:
        db = _connect(current_app.config["DATABASE"])
        if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            migrate(db)  # a new database starts at the latest schema
        g.db = db
    return g.db


def _close_db(_exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


app = create_app()
