import sqlite3
from pathlib import Path


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _db(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path)
        db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")
        return db

    def add(self) -> int:
        with self._db() as db:
            db.execute("INSERT INTO orders DEFAULT VALUES")
        return self.count()

    def count(self) -> int:
        with self._db() as db:
            return db.execute("SELECT count(*) FROM orders").fetchone()[0]
