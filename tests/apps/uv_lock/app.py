"""Pinned by uv.lock; imports redis at startup (on Python < 3.11.3 that imports async_timeout)."""

import os
import sqlite3
import sys

import redis
from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/")
def index():
    return {"redis": redis.__version__, "python": "%d.%d.%d" % sys.version_info[:3],
            "async_timeout": "async_timeout" in sys.modules}


@app.post("/hits")
def hits():
    os.makedirs(app.instance_path, exist_ok=True)
    with sqlite3.connect(os.path.join(app.instance_path, "hits.db")) as db:
        db.execute("CREATE TABLE IF NOT EXISTS hits (at TEXT DEFAULT CURRENT_TIMESTAMP)")
        db.execute("INSERT INTO hits DEFAULT VALUES")
        return str(db.execute("SELECT count(*) FROM hits").fetchone()[0])
