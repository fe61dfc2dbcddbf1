"""The longest app name the schema takes (31 characters): user, units, paths and mod_wsgi's display-name."""

import os
import sqlite3

from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/")
def index():
    return "long name"


@app.post("/hits")
def hits():
    os.makedirs(app.instance_path, exist_ok=True)
    with sqlite3.connect(os.path.join(app.instance_path, "hits.db")) as db:
        db.execute("CREATE TABLE IF NOT EXISTS hits (at TEXT DEFAULT CURRENT_TIMESTAMP)")
        db.execute("INSERT INTO hits DEFAULT VALUES")
        return str(db.execute("SELECT count(*) FROM hits").fetchone()[0])
