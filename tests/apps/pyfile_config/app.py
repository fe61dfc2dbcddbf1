"""Configured from a Python file in the instance folder, as Flask's docs suggest for production.

``instance/config.py`` is not in the repository (it holds the secret key): the inventory
renders it with ``app.files`` from a template, with a secret. Without it the app refuses
to start (``from_pyfile`` without ``silent``).
"""

import hashlib
import os
import sqlite3
from pathlib import Path

from flask import Flask

app = Flask(__name__, instance_relative_config=True)
app.config.from_pyfile("config.py")


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/config")
def config():
    key = app.config["SECRET_KEY"].encode()
    return {"greeting": app.config["GREETING"], "secret_key_sha256": hashlib.sha256(key).hexdigest()}


@app.post("/hits")
def hits():
    """One row per call in instance/counter.db; answers how many there are."""
    path = Path(app.instance_path)
    path.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path / "counter.db")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS calls (id INTEGER PRIMARY KEY)")
        db.execute("INSERT INTO calls DEFAULT VALUES")
        db.commit()
        (count,) = db.execute("SELECT count(*) FROM calls").fetchone()
    finally:
        db.close()
    return str(count)
