import os
import sqlite3


def add_hit(path: str) -> int:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS hits (at TEXT DEFAULT CURRENT_TIMESTAMP)")
        db.execute("INSERT INTO hits DEFAULT VALUES")
        return db.execute("SELECT count(*) FROM hits").fetchone()[0]
