"""The stacks: each module fills the whole protocol, nothing outside tests a stack's name, and a new
server plugs in through the registry alone."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path, PurePosixPath

import pytest

import deployer
from deployer import stacks
from deployer.config.inventory import load_inventory
from deployer.core import journal
from deployer.core.facts import Facts
from deployer.core.layout import Layout
from deployer.core.plan import Target, plan_host, required_links, required_packages
from deployer.core.render import app_units, builtin_templates_dir, file_metadata, render_host
from deployer.errors import InventoryError
from deployer.lab import base as lab_base
from deployer.run.rollout import snapshot_files
from deployer.stacks import AppServer, Check, FileSpec, LogSource, Proxy, SocketServer
from deployer.verify.checks import applicable, probe_query, settings
from tests import factories as f

MODULES = ("nginx", "apache", "gunicorn", "uwsgi", "mod_wsgi")
PACKAGE = Path(deployer.__file__).parent

# What each stack provides, read from its module: the test fails when a module drops or changes one.
PROVIDES = {
    "nginx": {"packages": ("nginx",), "service": "nginx.service", "check": Check.NGINX,
              "check_argv": ("nginx", "-t", "-q"), "templates": {"nginx/site.conf.j2"},
              "error_log": PurePosixPath("/var/log/nginx/error.log"), "links": 1},
    "apache": {"packages": ("apache2",), "service": "apache2.service", "check": Check.APACHE,
               "check_argv": ("apache2ctl", "-t"), "templates": {"apache/site-proxy.conf.j2"},
               "error_log": PurePosixPath("/var/log/apache2/error.log"), "links": 6},
    "gunicorn": {"packages": (), "units": ("hello.socket", "hello.service"), "markers": (),
                 "templates": {"systemd/app.socket.j2", "systemd/gunicorn.service.j2", "gunicorn/gunicorn.conf.py.j2"},
                 "verify_checks": ("app-service", "unit-security"), "proxies": ("nginx", "apache")},
    "uwsgi": {"packages": ("uwsgi", "uwsgi-plugin-python3"), "units": ("hello.socket", "hello.service"), "markers": (),
              "templates": {"systemd/app.socket.j2", "systemd/uwsgi.service.j2", "uwsgi/uwsgi.ini.j2"},
              "verify_checks": ("app-service", "unit-security"), "proxies": ("nginx", "apache")},
    "mod_wsgi": {"packages": ("libapache2-mod-wsgi-py3",), "units": (), "markers": ("(wsgi:hello)",),
                 "templates": {"apache/wsgi-global.conf.j2"},  # app/wsgi.py.j2: every server, render_host
                 "verify_checks": ("wsgi-daemons",), "proxies": ("apache",)},
}

PROXY_PROTOCOL = ("name", "packages", "service", "config_root", "check", "check_argv", "check_label", "error_log",
                  "site_path", "site_link", "files", "modules", "confs", "links", "reload", "log_sources")
SERVER_PROTOCOL = ("name", "packages", "proxies", "embedded", "proxy_modules", "verify_checks", "files", "units",
                   "sockets", "services", "process_markers", "proxy_confs", "restart", "log_sources")

ABSTRACT = {Proxy: ("files", "links"), AppServer: ("files", "log_sources")}  # the base raises NotImplementedError


def protocol_gaps(stack: object, protocol: tuple[str, ...], base: type) -> list[str]:
    """Names the stack lacks, and methods it leaves as the base's NotImplementedError."""
    gaps = [name for name in protocol if not hasattr(stack, name)]
    for name in ABSTRACT[base]:
        if getattr(type(stack), name, None) is getattr(base, name):
            gaps.append(f"{name} (not implemented)")
    return gaps


@pytest.mark.parametrize("module", MODULES)
def test_each_stack_module_provides_the_full_protocol(module: str) -> None:
    stack = importlib.import_module(f"deployer.stacks.{module}").STACK
    expected = PROVIDES[module]
    app = f.app()
    if isinstance(stack, Proxy):
        assert stacks.PROXIES[module] is stack
        assert protocol_gaps(stack, PROXY_PROTOCOL, Proxy) == []
        server = stacks.SERVERS["gunicorn"]
        host = f.host(proxy=module)
        specs = stack.files(app, host, server)
        assert (stack.packages, stack.service, stack.check, stack.check_argv, stack.error_log) == (
            expected["packages"], expected["service"], expected["check"], expected["check_argv"], expected["error_log"])
        assert len(stack.links(app, host, server)) == expected["links"]
        assert stack.reload() == ("systemctl", "reload-or-restart", stack.service)
        assert all(s.file == stack.error_log for s in stack.log_sources())
        assert stack.site_path(app).is_relative_to(stack.config_root)
    else:
        assert stacks.SERVERS[module] is stack
        assert protocol_gaps(stack, SERVER_PROTOCOL, AppServer) == []
        proxy = stacks.PROXIES[expected["proxies"][-1]]
        host = f.host(server=module, proxy=proxy.name)
        specs = stack.files(app, host, proxy)
        assert (stack.packages, stack.units(app), stack.process_markers(app), stack.verify_checks, stack.proxies) == (
            expected["packages"], expected["units"], expected["markers"], expected["verify_checks"], expected["proxies"])
        assert stack.embedded == (not stack.units(app))  # a server without units runs inside the proxy
        assert stack.restart(app, proxy)
        sources, _ = stack.log_sources(app, proxy)
        assert sources and all(isinstance(s, LogSource) for s in sources)
    assert {s.template for s in specs} == expected["templates"]
    assert all(isinstance(s, FileSpec) and (builtin_templates_dir() / s.template).is_file() for s in specs)


def test_the_protocol_check_can_fail() -> None:
    class Half(AppServer):
        name = "half"

    assert protocol_gaps(Half(), SERVER_PROTOCOL, AppServer) == ["proxies", "files (not implemented)",
                                                                 "log_sources (not implemented)"]


def test_the_registry_maps_every_inventory_name_and_the_valid_pairs() -> None:
    assert set(stacks.PROXIES) | set(stacks.SERVERS) == set(MODULES)
    assert stacks.combinations() == (("gunicorn", "nginx"), ("uwsgi", "nginx"), ("gunicorn", "apache"),
                                     ("uwsgi", "apache"), ("mod_wsgi", "apache"))
    assert stacks.combination_problem("mod_wsgi", "nginx") == (
        "server mod_wsgi runs inside apache: set proxy: apache (got proxy nginx)")
    assert stacks.check_for_path(PurePosixPath("/etc/apache2/conf-available/x.conf")) == Check.APACHE
    assert stacks.check_for_path(PurePosixPath("/etc/systemd/system/x.service")) == Check.SYSTEMD
    assert stacks.check_for_path(PurePosixPath("/etc/hello/env")) is None


def test_the_lab_image_carries_every_stack_package() -> None:
    # lab/base.py keeps its own list (it is part of the image's cache key); it must cover the registry.
    needed = {p for stack in (*stacks.PROXIES.values(), *stacks.SERVERS.values()) for p in stack.packages}
    assert needed <= set(lab_base.PACKAGES)
    assert {p.service for p in stacks.PROXIES.values()} <= set(lab_base.DISABLED)


# --- no stack names tested outside stacks/ and the schema ----------------------------------------

NAMES = "apache|nginx|gunicorn|uwsgi|mod_wsgi"
NAME_TEST = re.compile(
    rf"""(==|!=)\s*["']({NAMES})["']"""  # x == "nginx"
    rf"""|["']({NAMES})["']\s*(==|!=|in\b|not\s+in\b)"""  # "nginx" == x, "nginx" in checks
    rf"""|\bin\s*[(\[{{][^)\]}}]*["']({NAMES})["']"""  # x in ("nginx", "apache")
)
ALLOWED = {PACKAGE / "config" / "schema.py"}


def name_tests(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if NAME_TEST.search(line)]


def test_nothing_outside_stacks_tests_a_stack_name() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "stacks") or path in ALLOWED:
            continue
        hits = name_tests(path.read_text(encoding="utf-8"))
        if hits:
            found[str(path.relative_to(PACKAGE))] = hits
    assert found == {}


@pytest.mark.parametrize("line", [
    'if host.proxy == "nginx":', "if s['server'] != 'mod_wsgi':", 'if "apache" in checks:',
    'if host.server in ("gunicorn", "uwsgi"):', 'x = c.file.check in ["nginx", "apache"]',
])
def test_the_name_grep_finds_each_form(line: str) -> None:
    assert name_tests(line) == [line]


# --- a new app server plugs in through the registry alone --------------------------------------


class Waitress(SocketServer):
    """A waitress-like server: socket-activated, from the app's virtualenv, its own unit template."""

    name = "waitress"
    packages = ("python3-waitress",)
    proxies = ("nginx",)
    service_template = "systemd/waitress.service.j2"


INVENTORY = """\
app:
  name: hello
  source: app
  wsgi: app:app
hosts:
  web1: {address: 203.0.113.10, server: waitress}
  web2: {address: 203.0.113.11, server: waitress, proxy: apache}
  web3: {address: 203.0.113.12, server: tornado}
"""


@pytest.fixture
def waitress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "app" / "static").mkdir(parents=True)
    (tmp_path / "app" / "requirements.txt").write_text("flask\nwaitress\n")
    (tmp_path / "templates" / "systemd").mkdir(parents=True)
    (tmp_path / "templates" / "systemd" / "waitress.service.j2").write_text(
        "[Service]\nExecStart={{ layout.current }}/.venv/bin/waitress-serve --unix-socket={{ layout.socket }} x\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(stacks.SERVERS, "waitress", Waitress())
    return tmp_path


def test_a_new_server_is_known_to_the_schema_and_wrong_pairs_and_names_fail_with_file_and_line(waitress: Path) -> None:
    (waitress / "inv.yml").write_text(INVENTORY)
    with pytest.raises(InventoryError) as info:
        load_inventory(waitress / "inv.yml")
    assert [str(p) for p in info.value.problems] == [
        "inv.yml:7: hosts/web2: server waitress runs inside nginx: set proxy: nginx (got proxy apache)",
        "inv.yml:8: hosts/web3/server: expected one of gunicorn, uwsgi, mod_wsgi, waitress, got 'tornado'",
    ]


def test_a_new_server_renders_plans_logs_and_verifies_without_other_modules_knowing_it(waitress: Path) -> None:
    (waitress / "inv.yml").write_text(INVENTORY.replace("  web2: {address: 203.0.113.11, server: waitress, proxy: apache}\n", "")
                                      .replace("  web3: {address: 203.0.113.12, server: tornado}\n", "")
                                      + "templates: templates\n")
    inventory = load_inventory(waitress / "inv.yml")
    host = inventory.hosts[0]
    files = {str(file.path): file for file in render_host(inventory, host)}
    assert list(files) == ["/etc/nginx/sites-available/hello.conf", "/etc/systemd/system/hello.socket",
                           "/etc/systemd/system/hello.service", "/etc/hello/wsgi/deployer_wsgi.py", "/etc/hello/env"]
    assert "waitress-serve --unix-socket=/run/hello.sock" in files["/etc/systemd/system/hello.service"].content
    assert files["/etc/systemd/system/hello.service"].check == Check.SYSTEMD
    assert required_packages(host)[-1] == "python3-waitress"
    assert [str(link.path) for link in required_links(inventory.app, host)] == ["/etc/nginx/sites-enabled/hello.conf"]
    assert app_units(inventory.app, host) == ("hello.socket", "hello.service")

    fresh = Facts(python="3.11.2", disk_free_mb=5000, packages={}, user=None, current=None, releases=(), venvs=(),
                  lock=None)
    plan = plan_host(inventory, host, Target("r2-abc", "abc", "h1", "3.11"), tuple(files.values()), fresh)
    assert plan.services == ("hello.service",) and plan.daemons == ()
    assert plan.enable_units == ("hello.socket", "hello.service", "nginx.service")

    sources, note = journal.host_sources(inventory.app, host, proxy=True)
    assert [s.label for s in sources] == ["hello", "nginx error.log"] and note is None
    s = settings(inventory, host)
    assert "app-service" in applicable(s) and "wsgi-daemons" not in applicable(s)
    assert probe_query(s)["security_unit"] == "hello.service"


# --- a rollback takes each file's checker and secrecy from render ---------------------------------


class SnapshotRemote:
    """Answers the snapshot read of a rollback with recorded files; nothing else is asked."""

    def __init__(self, items: list[dict]) -> None:
        self.items = items
        self.host = f.host()

    def run(self, argv, *, check=True, mask=True, timeout=None):  # noqa: ANN001, ANN201
        return type("Result", (), {"ok": True, "stdout": json.dumps(self.items)})()


def test_a_rollback_snapshot_gets_checker_and_secrecy_from_render_not_from_paths() -> None:
    inv = f.inventory(f.host(server="mod_wsgi", proxy="apache", tls=True))
    host = inv.hosts[0]

    def item(path: str, mode: int) -> dict:
        return {"path": path, "content": "x\n", "mode": mode, "owner": "root", "group": "root"}

    items = [item("/etc/apache2/sites-available/hello.conf", 0o644), item("/etc/hello/wsgi.py", 0o644),
             item("/etc/hello/env", 0o644),  # render says secret whatever its mode
             item("/etc/hello/tls/key.pem", 0o644), item("/etc/hello/tls/cert.pem", 0o600),
             item("/etc/systemd/system/hello.service", 0o640)]  # a unit of an older release: render has none
    files = snapshot_files(SnapshotRemote(items), Layout.of(inv.app, host), "r1", file_metadata(inv, host))
    got = {str(x.path): (x.check, x.secret) for x in files}
    assert got == {
        "/etc/apache2/sites-available/hello.conf": (Check.APACHE, False),
        "/etc/hello/wsgi.py": (None, False),
        "/etc/hello/env": (None, True),
        "/etc/hello/tls/key.pem": (None, True),
        "/etc/hello/tls/cert.pem": (None, False),
        "/etc/systemd/system/hello.service": (Check.SYSTEMD, True),  # not rendered now: its directory, its mode
    }
