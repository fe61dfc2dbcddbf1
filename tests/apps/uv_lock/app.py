"""Pinned by uv.lock; imports redis at startup (on Python < 3.11.3 that imports async_timeout)."""

import os
import sqlite3
import sys

import redis
from flask import Flask, jsonify

app = Flask(__name__)
DB_NAME = "queue-status.sqlite3"


def connect() -> sqlite3.Connection:
    os.makedirs(app.instance_path, exist_ok=True)
    db = sqlite3.connect(os.path.join(app.instance_path, DB_NAME))
    db.execute("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY)")
    return db


@app.route("/healthz")
def healthz():
    return "ok"


@app.route("/")
def status():
    return jsonify(redis=redis.__version__, python="%d.%d.%d" % sys.version_info[:3],
                   async_timeout="async_timeout" in sys.modules)


@app.route("/hits", methods=["POST"])
def hits():
    with connect() as db:
        db.execute("INSERT INTO hits DEFAULT VALUES")
        (calls,) = db.execute("SELECT count(*) FROM hits").fetchone()
    return str(calls)
