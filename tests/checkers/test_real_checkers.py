"""Rendered configs for every combination pass the real programs from Debian.

nginx -t, apache2 -t and systemd-analyze (verify, security --offline) run
against temporary roots; nothing is started and nothing outside tmp_path is written.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

from deployer.core.render import apache_confs, apache_modules, render_host
from tests import factories as f
from tests.checkers.conftest import materialize, need, run

NGINX = [c for c in f.COMBINATIONS if c[1] == "nginx"]
APACHE = [c for c in f.COMBINATIONS if c[1] == "apache"]
UNITS = ["gunicorn", "uwsgi"]
TLS_IDS = {False: "http", True: "tls"}


def rendered(server, proxy, tls, tls_material, **host_kw):
    host = f.host(server=server, proxy=proxy, tls=tls, **host_kw)
    return render_host(f.inventory(host), host, reveal_secrets=True, tls=tls_material if tls else None), host


@pytest.mark.parametrize("tls", [False, True], ids=TLS_IDS.get)
@pytest.mark.parametrize(("server", "proxy"), NGINX, ids=[f"{s}-{p}" for s, p in NGINX])
def test_nginx_accepts_site(server, proxy, tls, tls_material, tmp_path: Path):
    nginx = need("nginx")
    files, host = rendered(server, proxy, tls, tls_material)
    written = materialize(files, tmp_path / "root")
    site = written["/etc/nginx/sites-available/hello.conf"]
    conf = tmp_path / "nginx.conf"
    temp = "\n".join(f"    {kind}_temp_path {tmp_path}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\n"
        "events {}\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    access_log {tmp_path}/access.log;\n"
        f"{temp}\n"
        f"    include {site};\n"
        "}\n"
    )
    result = run(nginx, "-t", "-q", "-p", tmp_path, "-c", conf)
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


def apache_main_conf(tmp_path: Path, host, includes: list[Path]) -> Path:
    """A minimal main config: an MPM plus exactly apache_modules(host), like a2enmod would."""
    loads = [Path("/etc/apache2/mods-available/mpm_event.load").read_text().strip()]
    for module in apache_modules(host):
        load = Path(f"/etc/apache2/mods-available/{module}.load")
        assert load.is_file(), f"a2enmod {module} would fail: no {load}"
        loads.append(load.read_text().strip())
    conf = tmp_path / "apache2.conf"
    conf.write_text(
        "\n".join(
            [
                f"ServerRoot {tmp_path}",
                "ServerName localhost",
                f"PidFile {tmp_path}/apache2.pid",
                f"DefaultRuntimeDir {tmp_path}",
                f"Mutex file:{tmp_path} default",
                f"ErrorLog {tmp_path}/error.log",
                "User www-data",
                "Group www-data",
                *loads,
                # as Debian's ports.conf
                "Listen 80",
                "<IfModule ssl_module>",
                "    Listen 443",
                "</IfModule>",
                *(f"Include {p}" for p in includes),
            ]
        )
        + "\n"
    )
    return conf


@pytest.mark.parametrize("tls", [False, True], ids=TLS_IDS.get)
@pytest.mark.parametrize(("server", "proxy"), APACHE, ids=[f"{s}-{p}" for s, p in APACHE])
def test_apache_accepts_site(server, proxy, tls, tls_material, tmp_path: Path):
    apache2 = need("apache2")
    files, host = rendered(server, proxy, tls, tls_material)
    written = materialize(files, tmp_path / "root")
    site = written["/etc/apache2/sites-available/hello.conf"]
    if server == "mod_wsgi":
        # Apache resolves WSGIDaemonProcess user= while parsing; the deploy
        # creates "hello" on the host, this machine has www-data.
        site.write_text(site.read_text().replace("user=hello group=hello", "user=www-data group=www-data"))
    confs = [written[f"/etc/apache2/conf-available/{name}.conf"] for name in apache_confs(f.app(), host)]
    conf = apache_main_conf(tmp_path, host, confs + [site])
    result = run(apache2, "-t", "-f", conf)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert output == "Syntax OK", output


def test_apache_accepts_other_ports(tls_material, tmp_path: Path):
    apache2 = need("apache2")
    files, host = rendered("gunicorn", "apache", True, tls_material, http_port=8080, https_port=8443)
    written = materialize(files, tmp_path / "root")
    conf = apache_main_conf(tmp_path, host, [written["/etc/apache2/sites-available/hello.conf"]])
    result = run(apache2, "-t", "-f", conf)
    assert result.returncode == 0, result.stdout + result.stderr


EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)")


@pytest.mark.parametrize("server", UNITS)
def test_systemd_units_verify_and_are_hardened(server, tmp_path: Path, record_property):
    analyze = need("systemd-analyze")
    if server == "uwsgi":
        need("uwsgi")  # verify checks that ExecStart's binary exists
    # deploy_root inside tmp_path, so ExecStart's venv binary can exist for verify
    files, host = rendered(server, "nginx", False, None, deploy_root=PurePosixPath(tmp_path / "srv"))
    venv_bin = tmp_path / "srv" / "hello" / "current" / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "gunicorn").write_text("#!/bin/sh\nexit 0\n")
    (venv_bin / "gunicorn").chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for file in files:
        if file.check == "systemd":
            (units / file.path.name).write_text(file.content)
    socket, service = units / "hello.socket", units / "hello.service"

    result = run(analyze, "verify", socket, service)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings: none allowed

    result = run(analyze, "security", "--offline=true", "--threshold=19", service)
    match = EXPOSURE.search(result.stdout)
    assert match, result.stdout + result.stderr
    exposure, verdict = float(match.group(1)), match.group(2)
    record_property("exposure", exposure)
    print(f"{server}: systemd-analyze security exposure {exposure} {verdict}")
    assert exposure < 2.0 and verdict == "OK", result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
