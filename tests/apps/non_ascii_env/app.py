"""Settings with non-Latin text, emoji, quotes, dollars and backslashes, read from the environment."""

import json
import os
import sqlite3

from flask import Flask, Response

app = Flask(__name__)
NAMES = ("GREETING", "MOTTO", "TRICKY")


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/settings")
def settings():
    values = {name: os.environ.get(name) for name in NAMES}
    return Response(json.dumps(values, ensure_ascii=False), content_type="application/json; charset=utf-8")


@app.post("/hits")
def hits():
    os.makedirs(app.instance_path, exist_ok=True)
    con = sqlite3.connect(os.path.join(app.instance_path, "h.db"))
    with con:
        con.execute("CREATE TABLE IF NOT EXISTS h (v)")
        con.execute("INSERT INTO h VALUES (?)", (os.environ.get("GREETING"),))
    return str(con.execute("SELECT count(*) FROM h").fetchone()[0])
