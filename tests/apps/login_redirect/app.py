"""`/` sends anonymous users to a login page (302); the health route is /health."""

import functools
import os
import sqlite3

from flask import Flask, redirect, request, session, url_for

app = Flask(__name__)
app.secret_key = os.environ["SECRET_KEY"]


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if "user" not in session:
            return redirect(url_for("login", next=request.path))
        return view(*args, **kwargs)
    return wrapped


@app.get("/")
@login_required
def dashboard():
    return f"hello {session['user']}"


@app.get("/login")
def login():
    return "<form method=post><input name=user></form>"


@app.get("/health")
def health():
    return "ok"


@app.post("/hits")
def hits():
    os.makedirs(app.instance_path, exist_ok=True)
    with sqlite3.connect(os.path.join(app.instance_path, "audit.db")) as db:
        db.execute("CREATE TABLE IF NOT EXISTS audit (what TEXT)")
        db.execute("INSERT INTO audit VALUES ('hit')")
        return str(db.execute("SELECT count(*) FROM audit").fetchone()[0])
