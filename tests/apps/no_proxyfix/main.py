"""No ProxyFix: the app reads request.remote_addr, scheme and host as WSGI gives them."""

import os
import sqlite3

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/whoami")
def whoami():
    return jsonify(remote_addr=request.remote_addr, scheme=request.scheme, host=request.host,
                   url=request.url_root)


@app.post("/hits")
def hits():
    os.makedirs(app.instance_path, exist_ok=True)
    with sqlite3.connect(os.path.join(app.instance_path, "seen.db")) as db:
        db.execute("CREATE TABLE IF NOT EXISTS seen (addr TEXT)")
        db.execute("INSERT INTO seen VALUES (?)", (request.remote_addr,))
        return str(db.execute("SELECT count(*) FROM seen").fetchone()[0])
