"""An asset pipeline that writes its cache under the package's static folder at startup.

Flask-Assets (webassets) keeps ``ASSETS_CACHE`` (default ``.webassets-cache``) inside the
static folder; this app does what it does without the dependency: at startup it "builds"
a bundle and caches it there. In a read-only release that needs the nested shared path
``gallery/static/.webassets-cache``.
"""

import hashlib
import os
import sqlite3
from pathlib import Path

from flask import Flask

ASSETS_CACHE = ".webassets-cache"


def build_bundle(static: Path) -> Path:
    source = (static / "site.css").read_bytes()
    cache = static / ASSETS_CACHE
    cache.mkdir(exist_ok=True)
    out = cache / f"bundle-{hashlib.sha256(source).hexdigest()[:12]}.css"
    out.write_bytes(source)
    return out


def create_app() -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    bundle = build_bundle(Path(app.static_folder))

    @app.get("/healthz")
    def healthz():
        return "ok"

    @app.get("/")
    def index():
        return {"bundle": bundle.name, "cache": os.path.realpath(bundle.parent), "size": bundle.stat().st_size}

    @app.post("/hits")
    def hits():
        os.makedirs(app.instance_path, exist_ok=True)
        with sqlite3.connect(os.path.join(app.instance_path, "hits.db")) as db:
            db.execute("CREATE TABLE IF NOT EXISTS hits (at TEXT DEFAULT CURRENT_TIMESTAMP)")
            db.execute("INSERT INTO hits DEFAULT VALUES")
            return str(db.execute("SELECT count(*) FROM hits").fetchone()[0])

    return app
