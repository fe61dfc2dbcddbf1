"""The typed host view: built once from the inventory, sent to verify's pytest process as JSON and read back whole."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path, PurePosixPath

from deployer.cli.inventory import describe_inventory
from deployer.config.model import Host
from deployer.core.hostview import HostView, host_from_json, host_json
from tests import factories as f

SECRET = "s3cr3t-Key_value"  # the factories' app secret


def every_field_set() -> Host:
    """A host whose every setting differs from the default, so a field the JSON drops shows."""
    host = f.host("web2", tls=True, groups=("web", "eu"), ssh_user="deploy", ssh_port=2222,
                  ssh_key=Path("/controller/id_ed25519"), become=True, known_hosts=Path("/controller/known_hosts"),
                  host_key_policy="accept-new", server="mod_wsgi", proxy="apache", http_port=8080,
                  https_port=8443, workers=5, threads=1, timeout=60, deploy_root=PurePosixPath("/opt"),
                  client_max_body_size="10m", trust_proxy_headers=False)
    defaults = Host(name="x", address="y")
    same = [fl.name for fl in dataclasses.fields(Host) if getattr(host, fl.name) == getattr(defaults, fl.name)]
    assert same == [], f"give these a non-default value here: {same}"
    return host


def test_the_view_survives_json_whole() -> None:
    inv = f.inventory(every_field_set())
    view = HostView.of(inv, inv.hosts[0])
    sent = json.loads(json.dumps(view.to_json()))
    assert HostView.from_json(sent) == view
    assert host_from_json(host_json(inv.hosts[0])) == inv.hosts[0]


def test_the_view_resolves_what_the_inventory_implies() -> None:
    inv = f.inventory(every_field_set())
    s = HostView.of(inv, inv.hosts[0]).settings()
    assert s["layout"]["app_root"] == "/opt/hello" and s["units"] == []  # mod_wsgi: Apache runs the app
    assert s["proxy_service"] == "apache2.service" and s["process_marker"] == "(wsgi:hello)"
    assert s["site_link"] == "/etc/apache2/sites-enabled/hello.conf"
    assert s["tls_files"] == {"cert": "/etc/hello/tls/cert.pem", "key": "/etc/hello/tls/key.pem"}
    gunicorn = f.inventory(f.host())
    assert HostView.of(gunicorn, gunicorn.hosts[0]).settings()["units"] == ["hello.socket", "hello.service"]


def test_no_secret_value_enters_the_view() -> None:
    inv = f.inventory(every_field_set())
    text = json.dumps(HostView.of(inv, inv.hosts[0]).to_json())
    assert SECRET not in text and "APP_SECRET_KEY" in text


def test_check_shows_the_hosts_own_settings() -> None:
    inv = f.inventory(every_field_set())
    shown = describe_inventory(inv, inv.hosts)["hosts"]["web2"]
    assert list(shown) == [fl.name for fl in dataclasses.fields(Host) if fl.name != "name"]
    assert shown["tls"] == {"cert": "/controller/tls/cert.pem", "key": "/controller/tls/key.pem"}
    assert shown["deploy_root"] == "/opt" and shown["ssh_key"] == "/controller/id_ed25519"
    assert shown["groups"] == ["web", "eu"] and shown["become"] is True
    assert shown["known_hosts"] == "/controller/known_hosts"
