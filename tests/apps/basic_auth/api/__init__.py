"""A REST API behind HTTP Basic auth: the Authorization header must reach the app on every stack."""

import hmac
import os
import sqlite3

from flask import Flask, abort, jsonify, request


def create_app():
    app = Flask(__name__)
    app.config["API_PASSWORD"] = os.environ.get("API_PASSWORD", "")

    def authorized() -> bool:
        auth = request.authorization
        return bool(auth and auth.username == "api" and app.config["API_PASSWORD"]
                    and hmac.compare_digest(auth.password or "", app.config["API_PASSWORD"]))

    @app.get("/api/ping")
    def ping():
        return jsonify(pong=True)

    @app.get("/api/me")
    def me():
        if not authorized():
            abort(401)
        return jsonify(user=request.authorization.username)

    @app.post("/hits")
    def hits():
        if not authorized():
            abort(401)
        os.makedirs(app.instance_path, exist_ok=True)
        with sqlite3.connect(os.path.join(app.instance_path, "api.db")) as db:
            db.execute("CREATE TABLE IF NOT EXISTS calls (id INTEGER PRIMARY KEY)")
            db.execute("INSERT INTO calls DEFAULT VALUES")
            return jsonify(calls=db.execute("SELECT count(*) FROM calls").fetchone()[0])

    return app
