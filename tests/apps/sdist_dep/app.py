"""Depends on docopt, which PyPI has only as an sdist: built into a wheel on the controller."""

import os
import sqlite3

from docopt import docopt
from flask import Flask

USAGE = "Usage: report [--loud]"
application = Flask(__name__)


@application.get("/health")
def health():
    return "fine"


@application.get("/")
def index():
    return repr(docopt(USAGE, argv=["--loud"]))


@application.post("/hits")
def hits():
    path = os.path.join(application.instance_path, "hits.sqlite")
    os.makedirs(application.instance_path, exist_ok=True)
    db = sqlite3.connect(path)
    with db:
        db.execute("create table if not exists t (x)")
        db.execute("insert into t values (1)")
    return str(db.execute("select count(*) from t").fetchone()[0])
