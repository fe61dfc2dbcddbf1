"""An app that ships its own gunicorn.conf.py (daemon = True, a bind of its own) and does not
list gunicorn in its requirements: deployer adds the gunicorn it was tested with."""

import os
import sqlite3

from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/")
def index():
    # raw_env in gunicorn.conf.py would set this: "read" means the app's file was picked up.
    return os.environ.get("FROM_APP_GUNICORN_CONF", "not read")


@app.post("/hits")
def hits():
    os.makedirs(app.instance_path, exist_ok=True)
    with sqlite3.connect(os.path.join(app.instance_path, "hits.db")) as db:
        db.execute("CREATE TABLE IF NOT EXISTS hits (at TEXT DEFAULT CURRENT_TIMESTAMP)")
        db.execute("INSERT INTO hits DEFAULT VALUES")
        return str(db.execute("SELECT count(*) FROM hits").fetchone()[0])
