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


def bump(path: Path) -> int:
    """A single counter row in the instance folder's database, bumped in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE IF NOT EXISTS views (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        db.execute("INSERT INTO views VALUES ('all', 1) ON CONFLICT (name) DO UPDATE SET n = n + 1")
    (count,) = db.execute("SELECT n FROM views WHERE name = 'all'").fetchone()
    db.close()
    return count


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
        return str(bump(Path(app.instance_path) / "gallery.db"))

    return app
