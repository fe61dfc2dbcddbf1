"""Configured from a Python file in the instance folder, as Flask's docs suggest for production.

``instance/config.py`` is not in the repository (it holds the secret key): the inventory
renders it with ``app.files`` from a template, with a secret. Without it the app refuses
to start (``from_pyfile`` without ``silent``).
"""

import hashlib
import os
import sqlite3

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
    os.makedirs(app.instance_path, exist_ok=True)
    with sqlite3.connect(os.path.join(app.instance_path, "hits.db")) as db:
        db.execute("CREATE TABLE IF NOT EXISTS hits (at TEXT DEFAULT CURRENT_TIMESTAMP)")
        db.execute("INSERT INTO hits DEFAULT VALUES")
        return str(db.execute("SELECT count(*) FROM hits").fetchone()[0])
