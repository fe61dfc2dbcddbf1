"""An app that ships its own gunicorn.conf.py (daemon = True, a bind of its own) and does not
list gunicorn in its requirements: deployer adds the gunicorn it was tested with."""

import os
import sqlite3

from flask import Flask

app = Flask(__name__)


def conf_seen() -> str:
    """'read' when gunicorn applied the raw_env of the app's gunicorn.conf.py."""
    return os.environ.get("FROM_APP_GUNICORN_CONF", "not read")


def count_hit() -> str:
    path = os.path.join(app.instance_path, "counter.sqlite3")
    os.makedirs(app.instance_path, exist_ok=True)
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS counter (n INTEGER)")
        db.execute("INSERT INTO counter (n) VALUES (1)")
        db.commit()
        return str(db.execute("SELECT sum(n) FROM counter").fetchone()[0])
    finally:
        db.close()


app.add_url_rule("/healthz", "healthz", lambda: "ok")
app.add_url_rule("/", "index", conf_seen)
app.add_url_rule("/hits", "hits", count_hit, methods=["POST"])
