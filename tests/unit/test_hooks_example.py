"""examples/hello's migration, the one its before_switch hook runs: old data survives, health waits for it."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("flask")

from tests.unit.test_example_app import hello  # noqa: E402, F401 - the example app module, as a fixture

OLD_SCHEMA = "CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)"  # before migrations existed


@pytest.fixture
def old_database(tmp_path):
    """A database as the app wrote it before it had migrations: counter at 41, user_version 0."""
    path = tmp_path / "instance" / "counter.sqlite3"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    with db:
        db.execute(OLD_SCHEMA)
        db.execute("INSERT INTO counter (id, value) VALUES (1, 41)")
    db.close()
    return path


def columns(path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[1] for row in db.execute("PRAGMA table_info(counter)")]
    finally:
        db.close()


def test_health_refuses_an_old_schema_until_migrated_then_data_survives(hello, old_database):
    app = hello.create_app({"DATABASE": str(old_database)})
    client = app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 503 and "run flask --app app migrate" in response.get_data(as_text=True)

    result = app.test_cli_runner().invoke(args=["migrate"])
    assert result.exit_code == 0 and "schema 0 -> 2" in result.output, result.output
    assert columns(old_database) == ["id", "value", "updated_at"]
    assert client.get("/healthz").status_code == 200
    assert client.get("/count").get_json() == {"count": 42}


def test_migrate_twice_is_a_no_op(hello, old_database):
    runner = hello.create_app({"DATABASE": str(old_database)}).test_cli_runner()
    runner.invoke(args=["migrate"])
    result = runner.invoke(args=["migrate"])
    assert result.exit_code == 0 and "schema 2, up to date" in result.output


def test_old_code_keeps_working_on_the_new_schema(hello, old_database):
    """The release still serving while the hook runs (and one rolled back to) writes without updated_at."""
    hello.migrate(sqlite3.connect(old_database))
    db = sqlite3.connect(old_database)
    with db:
        db.execute("INSERT INTO counter (id, value) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET value = value + 1")
    assert db.execute("SELECT value, updated_at FROM counter").fetchone() == (42, None)


def test_new_database_starts_at_the_latest_schema(hello, tmp_path):
    path = tmp_path / "fresh.sqlite3"
    client = hello.create_app({"DATABASE": str(path)}).test_client()
    assert client.get("/healthz").status_code == 200
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(hello.MIGRATIONS)
