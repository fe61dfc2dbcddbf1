"""The renderer: which files each combination gets, their modes, masking, overrides."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import re

import pytest

from deployer.core.render import (
    TlsMaterial,
    apache_confs,
    apache_modules,
    app_units,
    builtin_templates_dir,
    env_quote,
    proxy_service,
    render_host,
    size_bytes,
)
from deployer.core.templating import TemplateProblem
from deployer.secret import Secret
from tests import factories as f

TLS = TlsMaterial(cert="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                  key=Secret("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"))

EXPECTED = {
    ("gunicorn", "nginx"): ["/etc/nginx/sites-available/hello.conf", "/etc/systemd/system/hello.socket",
                            "/etc/systemd/system/hello.service", "/etc/hello/gunicorn.conf.py", "/etc/hello/wsgi/deployer_wsgi.py", "/etc/hello/env"],
    ("uwsgi", "nginx"): ["/etc/nginx/sites-available/hello.conf", "/etc/systemd/system/hello.socket",
                         "/etc/systemd/system/hello.service", "/etc/hello/uwsgi.ini", "/etc/hello/wsgi/deployer_wsgi.py", "/etc/hello/env"],
    ("gunicorn", "apache"): ["/etc/apache2/sites-available/hello.conf", "/etc/systemd/system/hello.socket",
                             "/etc/systemd/system/hello.service", "/etc/hello/gunicorn.conf.py", "/etc/hello/wsgi/deployer_wsgi.py", "/etc/hello/env"],
    ("uwsgi", "apache"): ["/etc/apache2/sites-available/hello.conf", "/etc/systemd/system/hello.socket",
                          "/etc/systemd/system/hello.service", "/etc/hello/uwsgi.ini", "/etc/hello/wsgi/deployer_wsgi.py", "/etc/hello/env"],
    ("mod_wsgi", "apache"): ["/etc/apache2/sites-available/hello.conf", "/etc/apache2/conf-available/hello-wsgi.conf",
                             "/etc/hello/wsgi/deployer_wsgi.py", "/etc/hello/env"],
}
TLS_FILES = ["/etc/hello/tls/cert.pem", "/etc/hello/tls/key.pem"]


def render(server="gunicorn", proxy="nginx", *, tls=False, reveal=False, inv_kw=None, **host_kw):
    host = f.host(server=server, proxy=proxy, tls=tls, **host_kw)
    inventory = f.inventory(host, **(inv_kw or {}))
    return {str(x.path): x for x in render_host(inventory, host, reveal_secrets=reveal, tls=TLS if tls else None)}


@pytest.mark.parametrize("tls", [False, True], ids=["http", "tls"])
@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS, ids=lambda v: v)
def test_files_per_combination(server, proxy, tls):
    files = render(server, proxy, tls=tls)
    assert list(files) == EXPECTED[server, proxy] + (TLS_FILES if tls else [])
    for path, file in files.items():
        assert PurePosixPath(path).is_absolute()
        assert file.content.endswith("\n")
        if file.check:
            assert "\n\n\n" not in file.content
        assert "Undefined" not in file.content
    checks = {path: file.check for path, file in files.items()}
    assert checks[EXPECTED[server, proxy][0]] == proxy
    if server != "mod_wsgi":
        assert checks["/etc/systemd/system/hello.service"] == "systemd"
        assert checks["/etc/systemd/system/hello.socket"] == "systemd"


def test_modes_owners_and_secret_flags():
    files = render("uwsgi", "nginx", tls=True)
    env = files["/etc/hello/env"]
    assert (env.mode, env.owner, env.group, env.secret) == (0o640, "root", "hello", True)
    key = files["/etc/hello/tls/key.pem"]
    assert (key.mode, key.owner, key.group, key.secret) == (0o600, "root", "root", True)
    cert = files["/etc/hello/tls/cert.pem"]
    assert (cert.mode, cert.secret) == (0o644, False)
    for path in ("/etc/nginx/sites-available/hello.conf", "/etc/systemd/system/hello.service", "/etc/hello/uwsgi.ini"):
        assert (files[path].mode, files[path].owner, files[path].secret) == (0o644, "root", False)


def test_secrets_masked_unless_revealed():
    masked = render(tls=True)
    assert 'APP_SECRET_KEY="***"' in masked["/etc/hello/env"].content
    assert "s3cr3t" not in "".join(x.content for x in masked.values())
    assert masked["/etc/hello/tls/key.pem"].content == "***\n"
    revealed = render(tls=True, reveal=True)
    assert 'APP_SECRET_KEY="s3cr3t-Key_value"' in revealed["/etc/hello/env"].content
    assert "MIIE" in revealed["/etc/hello/tls/key.pem"].content
    assert 'APP_GREETING="Hello from the lab"' in masked["/etc/hello/env"].content


def test_tls_material_omitted_when_not_given():
    host = f.host(tls=True)
    paths = [str(x.path) for x in render_host(f.inventory(host), host)]
    assert not set(TLS_FILES) & set(paths)
    assert "ssl_certificate /etc/hello/tls/cert.pem;" in render(tls=True)["/etc/nginx/sites-available/hello.conf"].content


def test_nginx_site():
    plain = render()["/etc/nginx/sites-available/hello.conf"].content
    assert "server unix:/run/hello.sock" in plain
    assert "server_name web1.lab.example www.web1.lab.example;" in plain
    assert "listen 80;" in plain and "ssl" not in plain and "Strict-Transport-Security" not in plain
    assert "alias /srv/hello/current/static/;" in plain
    assert "proxy_read_timeout 30s;" in plain and "client_max_body_size 1m;" in plain
    assert 'add_header X-Frame-Options "DENY" always;' in plain
    # nginx drops inherited add_header in any block that has its own: keep them all at server level.
    locations = re.findall(r"^ +location [^{]*\{(.*?)^ +\}", plain, flags=re.M | re.S)
    assert len(locations) == 2
    for block in locations:
        assert not re.search(r"^ *add_header", block, flags=re.M)

    tls = render(tls=True, https_port=8443)["/etc/nginx/sites-available/hello.conf"].content
    http_server, https_server = tls.split("server {")[1:]
    assert "return 308 https://$host:8443$request_uri;" in http_server
    assert "Strict-Transport-Security" not in http_server
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in https_server
    assert "listen 8443 ssl http2;" in https_server
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in https_server and "ssl_session_tickets off;" in https_server


def test_apache_proxy_site():
    site = render("gunicorn", "apache", tls=True)["/etc/apache2/sites-available/hello.conf"].content
    assert "ProxyPass / unix:/run/hello.sock|http://hello/" in site
    assert "ProxyPass /static/ !" in site and "ProxyPreserveHost On" in site
    assert 'RequestHeader set X-Forwarded-Proto "https"' in site
    assert "[R=308,L]" in site and "Redirect permanent" not in site
    assert "SSLSessionTickets off" in site and "SSLHonorCipherOrder off" in site
    assert "Listen" not in site  # 80/443 come from Debian's ports.conf
    assert "LimitRequestBody 1048576" in site
    other_ports = render("gunicorn", "apache", tls=True, http_port=8080, https_port=8443)
    content = other_ports["/etc/apache2/sites-available/hello.conf"].content
    assert "Listen 8080\n" in content and "Listen 8443 https\n" in content
    assert "https://%{SERVER_NAME}:8443%{REQUEST_URI}" in content


def test_apache_mod_wsgi_site():
    files = render("mod_wsgi", "apache")
    site = files["/etc/apache2/sites-available/hello.conf"].content
    assert ("WSGIDaemonProcess hello user=hello group=hello processes=2 threads=2 "
            "python-home=/srv/hello/current/.venv python-path=/srv/hello/current home=/srv/hello/current") in site
    assert "WSGIScriptAlias / /etc/hello/wsgi/deployer_wsgi.py" in site and "WSGIApplicationGroup %{GLOBAL}" in site
    assert "RequestHeader unset X-Forwarded-For" in site
    assert "WSGIRestrictEmbedded" not in site.replace("(WSGIRestrictEmbedded)", "")
    assert "WSGIRestrictEmbedded On" in files["/etc/apache2/conf-available/hello-wsgi.conf"].content


def test_units():
    gunicorn = render("gunicorn")["/etc/systemd/system/hello.service"].content
    assert "ExecStart=/srv/hello/current/.venv/bin/gunicorn " in gunicorn
    assert "--config /etc/hello/gunicorn.conf.py --pythonpath /etc/hello/wsgi deployer_wsgi:application" in gunicorn
    conf = render("gunicorn")["/etc/hello/gunicorn.conf.py"].content
    assert "control_socket_disable = True" in conf and "forwarded_allow_ips = '127.0.0.1,::1'" in conf
    assert "*" not in conf.split("forwarded_allow_ips = ")[1].split()[0]
    assert "ExecReload=/bin/kill -s HUP $MAINPID" in gunicorn and "KillMode=mixed" in gunicorn
    assert "Requires=hello.socket" in gunicorn and "Type=notify" in gunicorn
    assert "User=hello" in gunicorn and "EnvironmentFile=/etc/hello/env" in gunicorn
    assert "ReadWritePaths=/srv/hello/shared" in gunicorn
    graceful = int(conf.split("graceful_timeout = ")[1].split()[0])
    assert int(gunicorn.split("TimeoutStopSec=")[1].split()[0]) >= graceful
    socket = render("gunicorn")["/etc/systemd/system/hello.socket"].content
    assert "ListenStream=/run/hello.sock" in socket and "SocketGroup=www-data" in socket
    assert "SocketMode=0660" in socket

    uwsgi = render("uwsgi")
    ini = uwsgi["/etc/hello/uwsgi.ini"].content
    assert "http-socket = /run/hello.sock" in ini and "protocol = http" in ini
    assert "virtualenv = /srv/hello/current/.venv" in ini and "module = deployer_wsgi:application" in ini
    assert "pythonpath = /etc/hello/wsgi\n" in ini
    assert "vacuum" not in ini.replace("never `vacuum`", "")
    assert "hook-master-start = unix_signal:15 gracefully_kill_them_all" in ini
    assert "ExecStart=/usr/bin/uwsgi --ini /etc/hello/uwsgi.ini" in uwsgi["/etc/systemd/system/hello.service"].content


def test_factory_target():
    from deployer.config.model import WsgiTarget

    app = f.app(wsgi=WsgiTarget("app", "create_app", factory=True))
    for server, path, needle in (
        ("gunicorn", "/etc/systemd/system/hello.service", " --pythonpath /etc/hello/wsgi deployer_wsgi:application\n"),
        ("uwsgi", "/etc/hello/uwsgi.ini", "module = deployer_wsgi:application\n"),
        ("gunicorn", "/etc/hello/wsgi/deployer_wsgi.py", "FACTORY = True\n"),
        ("mod_wsgi", "/etc/hello/wsgi/deployer_wsgi.py", "FACTORY = True\n"),
    ):
        host = f.host(server=server, proxy="apache" if server == "mod_wsgi" else "nginx")
        files = {str(x.path): x.content for x in render_host(f.inventory(host, app_=app), host)}
        assert needle in files[path]


def test_helpers():
    gunicorn_nginx = f.host()
    assert app_units(f.app(), gunicorn_nginx) == ("hello.socket", "hello.service")
    assert app_units(f.app(), f.host(server="mod_wsgi", proxy="apache")) == ()
    assert proxy_service(gunicorn_nginx) == "nginx.service"
    assert proxy_service(f.host(proxy="apache")) == "apache2.service"
    assert apache_modules(gunicorn_nginx) == ()
    assert apache_modules(f.host(proxy="apache")) == ("authz_core", "alias", "headers", "proxy", "proxy_http")
    assert apache_modules(f.host(server="mod_wsgi", proxy="apache", tls=True)) == (
        "authz_core", "alias", "headers", "wsgi", "socache_shmcb", "ssl", "rewrite")
    assert apache_confs(f.app(), f.host(server="mod_wsgi", proxy="apache")) == ("hello-wsgi",)
    assert apache_confs(f.app(), f.host(proxy="apache")) == ()
    assert size_bytes("1m") == 1048576 and size_bytes("10k") == 10240 and size_bytes("512") == 512
    assert env_quote('a"b\\c$d`e f') == '"a\\"b\\\\c\\$d\\`e f"'


def test_builtin_templates_found():
    assert (builtin_templates_dir() / "nginx" / "site.conf.j2").is_file()


def test_user_override_takes_precedence(tmp_path: Path):
    (tmp_path / "nginx").mkdir()
    (tmp_path / "nginx" / "site.conf.j2").write_text("# custom site for {{ app.name }}\n")
    files = render(inv_kw={"templates_dir": tmp_path})
    assert files["/etc/nginx/sites-available/hello.conf"].content == "# custom site for hello\n"
    # templates the user did not override still come from the built-ins
    assert "ListenStream=/run/hello.sock" in files["/etc/systemd/system/hello.socket"].content


def test_override_with_missing_variable_fails(tmp_path: Path):
    (tmp_path / "systemd").mkdir()
    (tmp_path / "systemd" / "app.socket.j2").write_text("ListenStream={{ layout.sockett }}\n")
    with pytest.raises(TemplateProblem, match=f"^{tmp_path}/systemd/app.socket.j2:1: "):
        render(inv_kw={"templates_dir": tmp_path})
    (tmp_path / "systemd" / "app.socket.j2").write_text("ListenStream={{ no_such_variable }}\n")
    with pytest.raises(TemplateProblem, match="no_such_variable"):
        render(inv_kw={"templates_dir": tmp_path})
