"""Flask's tutorial shape: ``create_app`` in a src-layout package built as a wheel (PEP 621)."""

import os

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DATABASE=os.path.join(app.instance_path, "flaskr.sqlite"))

    from flaskr import db

    @app.get("/healthz")
    def healthz():
        return "ok"

    @app.get("/")
    def index():
        return f"flaskr, installed at {os.path.dirname(__file__)}"

    @app.post("/hits")
    def hits():
        return str(db.add_hit(app.config["DATABASE"]))

    return app
