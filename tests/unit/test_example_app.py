"""examples/hello through Flask's test client: routes, counter, proxy trust."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.factories import EXAMPLE_APP

pytest.importorskip("flask")


@pytest.fixture(scope="module")
def hello():
    spec = importlib.util.spec_from_file_location("hello_example_app", EXAMPLE_APP / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture
def client(hello, tmp_path, monkeypatch):
    monkeypatch.setenv("APP_GREETING", "Hi from the test")
    monkeypatch.setenv("APP_SECRET_KEY", "do-not-print-me")
    app = hello.create_app({"DATABASE": str(tmp_path / "instance" / "counter.sqlite3"), "TESTING": True})
    return app.test_client()


def test_index_greets_and_hides_the_secret(client):
    response = client.get("/")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Hi from the test" in body
    assert "Secret key: set." in body
    assert "do-not-print-me" not in body
    assert "/static/style.css" in body


def test_secret_not_set(hello, tmp_path, monkeypatch):
    monkeypatch.delenv("APP_SECRET_KEY", raising=False)
    app = hello.create_app({"DATABASE": str(tmp_path / "c.sqlite3")})
    assert "Secret key: not set." in app.test_client().get("/").get_data(as_text=True)


def test_healthz_opens_the_database(client, tmp_path):
    response = client.get("/healthz")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok\n")
    assert (tmp_path / "instance" / "counter.sqlite3").exists()


def test_count_increments_and_persists(hello, client, tmp_path):
    assert client.get("/count").get_json() == {"count": 1}
    assert client.post("/count").get_json() == {"count": 2}
    again = hello.create_app({"DATABASE": str(tmp_path / "instance" / "counter.sqlite3")}).test_client()
    assert again.get("/count").get_json() == {"count": 3}


def test_static_file(client):
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert "font-family" in response.get_data(as_text=True)


def test_instance_path_is_next_to_the_app(hello):
    app = hello.create_app()
    assert app.instance_path == str(EXAMPLE_APP / "instance")
    assert app.config["DATABASE"] == str(EXAMPLE_APP / "instance" / "counter.sqlite3")


def test_whoami_trusts_exactly_one_proxy_hop(client):
    direct = client.get("/whoami", base_url="http://internal:8000", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert direct.get_json() == {"scheme": "http", "host": "internal:8000", "remote_addr": "10.9.9.9"}

    proxied = client.get(
        "/whoami",
        base_url="http://internal",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={
            # a client forged the first entries; the proxy appended the real one
            "X-Forwarded-For": "6.6.6.6, 203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "web1.lab.example",
        },
    )
    assert proxied.get_json() == {"scheme": "https", "host": "web1.lab.example", "remote_addr": "203.0.113.7"}


def test_wsgi_entry_points(hello):
    from flask import Flask

    assert isinstance(hello.app, Flask)
    assert callable(hello.create_app)
