"""What the app sees at run time on the three lab stacks, and what a failure says.

An app written without deployer in mind (no ProxyFix, settings with non-Latin text)
is deployed over HTTPS to lab1 (nginx+gunicorn), lab2 (nginx+uwsgi) and lab3
(apache+mod_wsgi): deployer's WSGI entry makes request.remote_addr the client (this
controller's end of the host's veth), request.scheme https and request.host the
Host asked for, a forged X-Forwarded-For is not believed, an app that applies
ProxyFix itself sees the same, env values round-trip, and a release that cannot
import names the ModuleNotFoundError in deploy's own error.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.project import HOSTS

pytestmark = pytest.mark.integration
NAMES = {name: f"{name}.deployer.test" for name in HOSTS}  # verify's tls-cert check wants a DNS name
STACKS = {"lab1": {"server": "gunicorn"}, "lab2": {"server": "uwsgi", "threads": 1},
          "lab3": {"server": "mod_wsgi", "proxy": "apache"}}
SETTINGS = {"GREETING": "Grüß Gott, 世界 👋", "MOTTO": "say \"hi\" & 'bye'", "TRICKY": r"$HOME ${PATH} $$ a\b\\n %s `id`"}
PROBE = '''\
"""A probe that reports what WSGI gives it; ProxyFix of its own when PROBE_PROXYFIX is set."""

import json
import os

from flask import Flask, Response, request

app = Flask(__name__)
if os.environ.get("PROBE_PROXYFIX"):
    from werkzeug.middleware.proxy_fix import ProxyFix
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/whoami")
def whoami():
    return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host}


@app.get("/settings")
def settings():
    values = {name: os.environ.get(name) for name in %r}
    return Response(json.dumps(values, ensure_ascii=False), content_type="application/json; charset=utf-8")
''' % (tuple(SETTINGS),)


class Probe:
    """The probe app and its inventory (TLS on every host) in a private directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "app").mkdir()
        (root / "app" / "app.py").write_text(PROBE)
        (root / "app" / "requirements.txt").write_text("Flask==3.1.3\ngunicorn\n")
        (root / "inv").mkdir()
        self.cert = root / "inv" / "cert.pem"
        sans = ",".join(f"DNS:{n}" for n in NAMES.values())  # valid 30 days: verify wants more than 14
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(root / "inv" / "key.pem"), "-out", str(self.cert), "-days", "30",
                        "-subj", "/CN=deployer-lab", "-addext", f"subjectAltName={sans}"],
                       check=True, capture_output=True)
        self.doc = {
            "app": {"name": "probe", "source": "../app", "wsgi": "app:app", "health": "/healthz", "env": dict(SETTINGS)},
            "defaults": {"ssh_user": "root", "ssh_key": "/var/lib/deployer-lab/id_ed25519",
                         "known_hosts": "/var/lib/deployer-lab/known_hosts", "host_key_policy": "strict",
                         "workers": 2, "threads": 2, "tls": {"cert": "cert.pem", "key": "key.pem"}},
            "hosts": {name: {"address": HOSTS[name], "server_name": NAMES[name], **STACKS[name]} for name in HOSTS},
        }
        self.save()

    @property
    def inventory(self) -> Path:
        return self.root / "inv" / "deploy.yml"

    def save(self) -> None:
        self.inventory.write_text(yaml.safe_dump(self.doc, sort_keys=False, allow_unicode=True), encoding="utf-8")

    def deploy(self) -> tuple[int, dict[str, dict], str]:
        result = subprocess.run([sys.executable, "-m", "deployer.cli", "deploy", "--json", "-i", str(self.inventory)],
                                capture_output=True, text=True, timeout=600, cwd=self.root)
        try:
            doc = json.loads(result.stdout)
        except ValueError:
            raise AssertionError(f"not JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}") from None
        return result.returncode, {r["host"]: r for r in doc["results"]}, result.stderr

    def get(self, name: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """GET over HTTPS to the host's address, the certificate verified for its server name."""
        context = ssl.create_default_context(cafile=str(self.cert))
        conn = http.client.HTTPSConnection(NAMES[name], 443, timeout=15)
        conn.sock = context.wrap_socket(socket.create_connection((HOSTS[name], 443), timeout=15),
                                        server_hostname=NAMES[name])
        conn.request("GET", path, headers={"Host": NAMES[name], **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8")


@pytest.fixture(scope="module")
def probe(lab, tmp_path_factory) -> Probe:
    app = Probe(tmp_path_factory.mktemp("runtime"))
    code, results, stderr = app.deploy()
    assert code == 0 and {r["status"] for r in results.values()} == {"deployed"}, (results, stderr[-2000:])
    return app


def controller(address: str) -> str:
    return address.rsplit(".", 1)[0] + ".1"  # our end of the host's veth pair


def whoami(probe: Probe, name: str, headers: dict[str, str] | None = None) -> tuple[str, str, str]:
    status, body = probe.get(name, "/whoami", headers)
    assert status == 200, (name, status, body[-300:])
    seen = json.loads(body)
    return seen["remote_addr"], seen["scheme"], seen["host"]


def test_the_app_sees_the_client_scheme_and_host_on_every_stack(probe: Probe) -> None:
    for name, address in HOSTS.items():
        assert whoami(probe, name) == (controller(address), "https", NAMES[name]), name


def test_forged_forwarded_headers_are_not_believed(probe: Probe) -> None:
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example",
              "X-Forwarded-Port": "1", "Forwarded": "for=203.0.113.9"}
    for name, address in HOSTS.items():
        assert whoami(probe, name, forged) == (controller(address), "https", NAMES[name]), name


def test_non_ascii_env_values_round_trip_on_every_stack(probe: Probe) -> None:
    for name in HOSTS:
        status, body = probe.get(name, "/settings")
        assert status == 200 and json.loads(body) == SETTINGS, (name, body[-500:])


def test_an_app_with_its_own_proxyfix_sees_the_same(probe: Probe) -> None:
    probe.doc["app"]["env"]["PROBE_PROXYFIX"] = "1"
    probe.save()
    code, results, stderr = probe.deploy()
    assert code == 0, (results, stderr[-2000:])
    forged = {"X-Forwarded-For": "203.0.113.9"}
    for name, address in HOSTS.items():
        assert whoami(probe, name, forged) == (controller(address), "https", NAMES[name]), name


def test_an_import_error_is_named_in_deploys_error(probe: Probe) -> None:
    """Runs last: the broken release is rolled back, the probe keeps serving."""
    source = probe.root / "app" / "app.py"
    source.write_text("import deployer_lab_no_such_module  # noqa: F401\n" + source.read_text())
    code, results, _ = probe.deploy()
    assert code != 0
    needle = "ModuleNotFoundError: No module named 'deployer_lab_no_such_module'"
    for name in HOSTS:
        result = results[name]
        assert result["status"] == "rolled-back", (name, result)
        assert needle in result["error"] and result["cause"].endswith(needle), (name, result["error"], result["log"])
        assert any(needle in line for line in result["log"]["lines"]), (name, result["log"])
    for name in HOSTS:
        assert whoami(probe, name)[1] == "https", name
