"""deployer's WSGI entry (templates/app/wsgi.py.j2) as rendered, run against a real Flask app.

The entry applies the proxy headers of the one hop deployer configured; these tests
feed it requests as each app server hands them over (gunicorn reports a unix-socket
peer as '', uWSGI as '0.0.0.0', mod_wsgi the real client) and check what the app sees.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from werkzeug.test import Client

from deployer.config.model import WsgiTarget
from deployer.core.render import render_host
from tests import factories as f

PROBE = '''
import json
from flask import Flask, request
app = Flask(__name__)

@app.get("/")
def whoami():
    return json.dumps([request.remote_addr, request.scheme, request.host])
'''


def entry(tmp_path, monkeypatch, *, server="gunicorn", proxy="nginx", proxyfix=False, **host_kw):
    """The rendered entry's ``application``, importing a probe app (wrapped in ProxyFix if asked)."""
    name = f"probe_{server}_{'fix' if proxyfix else 'plain'}_{len(host_kw)}"
    code = PROBE + ("\nfrom werkzeug.middleware.proxy_fix import ProxyFix\n"
                    "app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)\n" if proxyfix else "")
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    host = f.host(server=server, proxy=proxy, **host_kw)
    app = f.app(wsgi=WsgiTarget(name, "app"), env={})
    files = {x.path.name: x.content for x in render_host(f.inventory(host, app_=app), host)}
    script = files["deployer_wsgi.py"]
    if server == "mod_wsgi":
        env_file = tmp_path / "env"
        env_file.write_text(files["env"])
        script = script.replace('ENV_FILE = "/etc/hello/env"', f'ENV_FILE = "{env_file}"')
    namespace: dict = {"__name__": "deployer_wsgi_test"}
    exec(compile(script, "deployer_wsgi.py", "exec"), namespace)  # noqa: S102 - our own rendered entry
    return namespace["application"]


def seen(application, peer: str, headers: dict[str, str], host: str = "app.example") -> list[str]:
    response = Client(application).get("/", headers={"Host": host, **headers}, environ_base={"REMOTE_ADDR": peer})
    return json.loads(response.get_data(as_text=True))


NGINX_SENDS = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example:8443"}


@pytest.mark.parametrize("peer", ["", "0.0.0.0"], ids=["gunicorn-unix", "uwsgi-unix"])
@pytest.mark.parametrize("proxyfix", [False, True], ids=["plain", "app-has-proxyfix"])
def test_one_hop_applied_once(tmp_path, monkeypatch, peer, proxyfix):
    application = entry(tmp_path, monkeypatch, proxyfix=proxyfix)
    assert seen(application, peer, NGINX_SENDS) == ["198.51.100.7", "https", "shop.example:8443"]


def test_a_chain_yields_its_last_hop(tmp_path, monkeypatch):
    """Behind Apache's mod_proxy without ProxyAddHeaders Off there would be a chain: the last hop wins."""
    application = entry(tmp_path, monkeypatch)
    sent = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "http"}
    assert seen(application, "", sent) == ["198.51.100.7", "http", "app.example"]


def test_not_from_the_local_proxy_nothing_is_believed(tmp_path, monkeypatch):
    application = entry(tmp_path, monkeypatch, proxyfix=True)
    assert seen(application, "203.0.113.50", NGINX_SENDS) == ["203.0.113.50", "http", "app.example"]


def test_mod_wsgi_has_no_hop_and_drops_forged_headers(tmp_path, monkeypatch):
    application = entry(tmp_path, monkeypatch, server="mod_wsgi", proxy="apache", proxyfix=True)
    assert seen(application, "198.51.100.7", NGINX_SENDS) == ["198.51.100.7", "http", "app.example"]


def test_opt_out_leaves_the_headers_to_the_app(tmp_path, monkeypatch):
    plain = entry(tmp_path, monkeypatch, trust_proxy_headers=False)
    assert seen(plain, "", NGINX_SENDS) == ["", "http", "app.example"]  # as gunicorn reports the socket
    fixed = entry(tmp_path, monkeypatch, proxyfix=True, trust_proxy_headers=False)
    assert seen(fixed, "", NGINX_SENDS) == ["198.51.100.7", "https", "shop.example:8443"]


def test_proxies_overwrite_what_a_client_sent():
    def site(server, proxy, **kw):
        host = f.host(server=server, proxy=proxy, **kw)
        return next(x.content for x in render_host(f.inventory(host), host) if "sites-available" in str(x.path))

    nginx = site("gunicorn", "nginx")
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    assert "$proxy_add_x_forwarded_for" not in nginx and 'proxy_set_header X-Forwarded-Port "";' in nginx
    assert "$proxy_add_x_forwarded_for" in site("gunicorn", "nginx", trust_proxy_headers=False)
    apache = site("uwsgi", "apache")
    assert "ProxyAddHeaders Off" in apache and 'RequestHeader set X-Forwarded-For "expr=%{REMOTE_ADDR}"' in apache
    assert "ProxyAddHeaders Off" not in site("uwsgi", "apache", trust_proxy_headers=False)
    wsgi = site("mod_wsgi", "apache")
    assert "WSGIPassAuthorization On" in wsgi and "RequestHeader unset X-Forwarded-For" in wsgi
    assert " lang=C.UTF-8 locale=C.UTF-8 " in wsgi


def test_every_unit_runs_with_a_utf8_locale():
    for server in ("gunicorn", "uwsgi"):
        host = f.host(server=server)
        service = next(x.content for x in render_host(f.inventory(host), host) if x.path.name == "hello.service")
        assert "Environment=LANG=C.UTF-8 " in service


def test_env_values_survive_the_loader_with_the_daemons_locale(tmp_path):
    """As a mod_wsgi daemon runs it: LANG=C.UTF-8 (lang=/locale=), no locale coercion, no UTF-8 mode.

    Under the C locale itself os.environ cannot hold these values (UnicodeEncodeError):
    the daemon's locale is the fix, this checks it is enough and the quoting round-trips.
    """
    import subprocess

    values = {"GREETING": "Grüß Gott, 世界 👋", "MOTTO": "say \"hi\" & 'bye'", "TRICKY": r"$HOME ${PATH} $$ a\b\\n %s `id`"}
    host = f.host(server="mod_wsgi", proxy="apache")
    files = {x.path.name: x.content for x in render_host(f.inventory(host, app_=f.app(env=values, secrets={})), host,
                                                         reveal_secrets=True)}
    (tmp_path / "env").write_text(files["env"], encoding="utf-8")
    loader = files["deployer_wsgi.py"].split("\nif LOAD_ENV:\n")[0]
    program = loader + f"\nload_env_file({str(tmp_path / 'env')!r})\nimport json, os, sys\n" \
        f"sys.stdout.buffer.write(json.dumps({{k: os.environ[k] for k in {sorted(values)!r}}}).encode())\n"
    out = subprocess.run([sys.executable, "-X", "utf8=0", "-c", program], capture_output=True, check=True,
                         env={"LANG": "C.UTF-8", "PYTHONCOERCECLOCALE": "0", "PATH": "/usr/bin:/bin"}).stdout
    assert json.loads(out) == values
