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


@pytest.mark.parametrize("factory", [False, True], ids=["app", "factory"])
def test_mod_wsgi_entry_script_loads_env_then_app(factory, tmp_path, monkeypatch):
    """The rendered /etc/<app>/wsgi/deployer_wsgi.py: env file into os.environ, then the app (or its factory)."""
    from werkzeug.test import Client

    from deployer.config.model import WsgiTarget
    from deployer.core.render import render_host
    from tests import factories as f

    target = WsgiTarget("app", "create_app", factory=True) if factory else WsgiTarget("app", "app")
    app = f.app(wsgi=target, env={"APP_GREETING": 'Hi "there" $USER'})
    host = f.host(server="mod_wsgi", proxy="apache")
    files = {str(x.path): x.content for x in render_host(f.inventory(host, app_=app), host, reveal_secrets=True)}
    env_file = tmp_path / "env"
    env_file.write_text(files["/etc/hello/env"])
    script = files["/etc/hello/wsgi/deployer_wsgi.py"].replace('ENV_FILE = "/etc/hello/env"', f'ENV_FILE = "{env_file}"')
    assert script != files["/etc/hello/wsgi/deployer_wsgi.py"]

    monkeypatch.delenv("APP_GREETING", raising=False)
    monkeypatch.delenv("APP_SECRET_KEY", raising=False)
    monkeypatch.syspath_prepend(str(EXAMPLE_APP))  # WSGIDaemonProcess python-path=<current>
    monkeypatch.delitem(sys.modules, "app", raising=False)
    namespace: dict = {"__name__": "_mod_wsgi_test"}
    exec(compile(script, "wsgi.py", "exec"), namespace)  # noqa: S102 - our own rendered script
    monkeypatch.delitem(sys.modules, "app", raising=False)

    import os

    assert os.environ["APP_GREETING"] == 'Hi "there" $USER'
    assert os.environ["APP_SECRET_KEY"] == "s3cr3t-Key_value"
    body = Client(namespace["application"]).get("/").get_data(as_text=True)
    assert "Hi &#34;there&#34; $USER" in body and "Secret key: set." in body
