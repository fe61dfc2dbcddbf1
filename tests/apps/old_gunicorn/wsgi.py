"""An app that pins an old gunicorn (20.1): the unit must use only options it knows."""

import sqlite3
from pathlib import Path

from flask import Flask, jsonify

app = Flask(__name__)
DB = Path(app.instance_path) / "visits.db"


@app.get("/healthz")
def healthz():
    return jsonify(ok=True)


@app.get("/")
def home():
    return "pinned gunicorn"


@app.post("/hits")
def visit():
    DB.parent.mkdir(exist_ok=True)
    with sqlite3.connect(DB) as db:
        db.execute("CREATE TABLE IF NOT EXISTS v (n)")
        db.execute("INSERT INTO v VALUES (0)")
        (count,) = db.execute("SELECT count(*) FROM v").fetchone()
    return f"{count}"
