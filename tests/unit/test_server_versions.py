"""The app server fits the version installed: gunicorn's settings by version, the app's own config
never read by accident, the server added when the app does not depend on it."""

from __future__ import annotations

import re
import runpy
import textwrap
from pathlib import Path, PurePosixPath

import pytest

from deployer.config.inventory import load_inventory
from deployer.core.render import render_host
from deployer.errors import InventoryError
from deployer.run import server_version
from deployer.stacks import gunicorn
from tests import factories as f

DATA = Path(__file__).resolve().parent.parent / "data" / "gunicorn"
HELP = {p.stem: set(p.read_text().split()) for p in DATA.glob("*.txt")}  # version -> its --help options
RENDERED = ("20.1.0", "21.2.0", "22.0.0", "23.0.0", "25.1.0", max(HELP, key=gunicorn.version_tuple))
FLAGS = {s.name: s.flag for s in gunicorn.SETTINGS}


def render_gunicorn(version: str | None, *, app=None, **host_kw) -> tuple[str, str]:
    """(the unit, deployer's gunicorn.conf.py) rendered for ``version``."""
    host = f.host(server="gunicorn", **host_kw)
    inventory = f.inventory(host, app_=app)
    files = {str(x.path): x.content for x in render_host(inventory, host, server_versions={"gunicorn": version} if version else None)}
    return files["/etc/systemd/system/hello.service"], files["/etc/hello/gunicorn.conf.py"]


def conf_names(conf: str) -> list[str]:
    return re.findall(r"^([a-z_]+) = ", conf, re.M)


def test_the_data_covers_every_version_the_issue_names():
    assert {"20.1.0", "21.2.0", "22.0.0", "23.0.0", "25.1.0", "27.0.1"} <= set(HELP)


@pytest.mark.parametrize("setting", gunicorn.SETTINGS, ids=lambda s: s.name)
def test_each_setting_appears_exactly_from_the_version_the_table_says(setting):
    """The table cannot drift from gunicorn: every recorded --help has the flag iff it is that new."""
    has = {version: setting.flag in options for version, options in HELP.items()}
    expected = {version: gunicorn.version_tuple(version) >= setting.since for version in HELP}
    assert has == expected


@pytest.mark.parametrize("version", RENDERED)
def test_every_rendered_option_exists_in_that_version(version):
    unit, conf = render_gunicorn(version)
    names = conf_names(conf)
    assert names and all(FLAGS[name] in HELP[version] for name in names), names
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    flags = [word for word in exec_start.split() if word.startswith("-")]
    assert flags == ["--config", "--pythonpath"] and all(flag in HELP[version] for flag in flags)
    assert f"gunicorn {version} reads this file" in conf


def test_old_versions_get_no_control_socket_setting_and_new_ones_do():
    assert "control_socket_disable" not in conf_names(render_gunicorn("23.0.0")[1])
    assert "control_socket_disable" not in conf_names(render_gunicorn("25.0.3")[1])
    assert "control_socket_disable = True" in render_gunicorn("25.1.0")[1]
    assert "control_socket_disable = True" in render_gunicorn("25.1.0rc1")[1]


def test_no_version_means_the_tested_one():
    assert render_gunicorn(None) == render_gunicorn(gunicorn.TESTED_VERSION)
    assert gunicorn.TESTED_VERSION in HELP  # the constant is a version the table was checked against


def test_the_unit_always_names_deployers_config_and_drops_gunicorn_cmd_args():
    unit, _ = render_gunicorn("20.1.0")
    assert "--config /etc/hello/gunicorn.conf.py --pythonpath /etc/hello/wsgi deployer_wsgi:application" in unit
    assert "UnsetEnvironment=GUNICORN_CMD_ARGS" in unit


def write_app_conf(tmp_path: Path, text: str) -> tuple[object, dict]:
    """Render with deploy_root under tmp_path, put the app's file in its release and run deployer's conf."""
    app = f.app(server_config="conf/gunicorn.conf.py")
    unit, conf = render_gunicorn("23.0.0", app=app, deploy_root=PurePosixPath(tmp_path))
    own = tmp_path / "hello" / "current" / "conf" / "gunicorn.conf.py"
    own.parent.mkdir(parents=True)
    own.write_text(textwrap.dedent(text))
    script = tmp_path / "deployer.conf.py"
    script.write_text(conf)
    return unit, runpy.run_path(str(script))


def test_server_config_runs_the_apps_file_and_deployers_settings_win(tmp_path):
    _, settings = write_app_conf(tmp_path, """\
        import multiprocessing
        bind = "0.0.0.0:8000"
        daemon = True
        user, group = "root", "root"
        pidfile = "/tmp/app.pid"
        accesslog = "/var/log/app-access.log"
        workers = multiprocessing.cpu_count() * 0 + 7
        timeout = 90
        def post_fork(server, worker):
            pass
        """)
    assert settings["bind"] == [f"unix:/run/hello.sock"]
    assert (settings["daemon"], settings["user"], settings["group"], settings["pidfile"]) == (False, None, None, None)
    assert (settings["accesslog"], settings["errorlog"]) == ("-", "-")
    assert settings["chdir"] == str(tmp_path / "hello" / "current")
    assert (settings["workers"], settings["timeout"], settings["threads"]) == (7, 90, 2)  # tunables: the app's
    assert callable(settings["post_fork"])  # hooks pass through
    assert not any(name.startswith("_app") or name == "_runpy" for name in settings)


def test_an_apps_gunicorn_conf_is_not_read_without_server_config(tmp_path):
    _, conf = render_gunicorn("23.0.0")
    assert "run_path" not in conf and "gunicorn.conf.py\")" not in conf
    _, with_it = render_gunicorn("23.0.0", app=f.app(server_config="gunicorn.conf.py"))
    assert '_runpy.run_path("/srv/hello/current/gunicorn.conf.py")' in with_it


def test_uwsgi_and_mod_wsgi_ignore_a_gunicorn_server_config():
    app = f.app(server_config="gunicorn.conf.py")
    for server, proxy in (("uwsgi", "nginx"), ("mod_wsgi", "apache")):
        host = f.host(server=server, proxy=proxy)
        files = render_host(f.inventory(host, app_=app), host)
        assert not any("gunicorn.conf.py" in x.content for x in files), server


# --- which version: the pin, the wheel set, or the one deployer adds -----------------------------


def app_with(tmp_path: Path, requirements: str, **files: str):
    (tmp_path / "requirements.txt").write_text(textwrap.dedent(requirements))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return f.app(source=tmp_path)


@pytest.mark.parametrize(("line", "pin"), [
    ("gunicorn==20.1.0", "20.1.0"), ("Gunicorn == 23.0.0  # prod", "23.0.0"), ("gunicorn[gevent]==22.0.0", "22.0.0"),
    ("gunicorn===21.2.0", "21.2.0"), ("gunicorn>=20", None), ("gunicorn==23.*", None), ("gunicorn", None),
    ("gunicorn==23.0.0 ; python_version >= '3.8'", "23.0.0"),
    ("gunicorn==23.0.0 --hash=sha256:aaaa", "23.0.0"), ("gunicorn==23.0.0 \\", "23.0.0"),
])
def test_declared_pins(tmp_path, line, pin):
    pins = server_version.declared_pins(app_with(tmp_path, f"flask==3.1.3\n{line}\n"))
    assert pins == {"flask": "3.1.3", "gunicorn": pin}


def test_pins_follow_included_files(tmp_path):
    app = app_with(tmp_path, "-r base.txt\n-c constraints.txt\n", **{"base.txt": "flask\ngunicorn==21.2.0\n",
                                                                   "constraints.txt": "werkzeug==3.1.3\n"})
    assert server_version.declared_pins(app)["gunicorn"] == "21.2.0"


def test_a_pinned_gunicorn_is_rendered_for_its_pin_and_not_added(tmp_path):
    app = app_with(tmp_path, "flask\ngunicorn==20.1.0\n")
    hosts = (f.host(server="gunicorn"),)
    assert server_version.pinned_versions(app, hosts) == {"gunicorn": "20.1.0"}
    # not gunicorn itself; but 20.1 imports pkg_resources, which setuptools 82 no longer has
    assert [a.note() for a in server_version.added(app, hosts)] == [
        "setuptools<82 added: gunicorn 20.1.0 imports pkg_resources, gone from setuptools 82"]


@pytest.mark.parametrize(("requirements", "added"), [
    ("flask\ngunicorn==21.2.0\n", []), ("flask\ngunicorn==23.0.0\n", []),
    ("flask\ngunicorn==20.1.0\nsetuptools==80.9.0\n", []),  # the app chose: deployer leaves it alone
    ("flask\ngunicorn==19.9.0\n", ["setuptools<82"]),
])
def test_setuptools_is_capped_only_for_a_gunicorn_that_imports_pkg_resources(tmp_path, requirements, added):
    app = app_with(tmp_path, requirements)
    assert server_version.added_requirements(app, (f.host(server="gunicorn"),)) == tuple(added)


def test_an_unpinned_gunicorn_assumes_the_tested_version_until_the_wheels_say(tmp_path):
    app = app_with(tmp_path, "flask\ngunicorn>=20\n")
    hosts = (f.host(server="gunicorn"),)
    assert server_version.pinned_versions(app, hosts) == {"gunicorn": gunicorn.TESTED_VERSION}
    assert server_version.added(app, hosts) == ()
    wheels = ("flask-3.1.3-py3-none-any.whl", "gunicorn-22.0.0-py3-none-any.whl")
    assert server_version.installed_versions(wheels, hosts) == {"gunicorn": "22.0.0"}


def test_gunicorn_is_added_when_the_app_does_not_depend_on_it(tmp_path):
    app = app_with(tmp_path, "flask==3.1.3\n")
    added = server_version.added(app, (f.host(server="gunicorn"), f.host("web2", server="uwsgi")))
    assert [a.requirement for a in added] == [f"gunicorn=={gunicorn.TESTED_VERSION}"]
    assert added[0].note() == f"gunicorn {gunicorn.TESTED_VERSION} added: the app does not depend on it"


def test_nothing_is_added_for_servers_from_debian(tmp_path):
    app = app_with(tmp_path, "flask==3.1.3\n")
    hosts = (f.host(server="uwsgi"), f.host("web2", server="mod_wsgi", proxy="apache"))
    assert server_version.added(app, hosts) == () and server_version.pinned_versions(app, hosts) == {}


# --- app.server_config in the inventory -------------------------------------------------------

INVENTORY = """\
app:
  name: hello
  source: app
  wsgi: app:app
  server_config: {value}
hosts:
  web1: {{address: 203.0.113.10}}
"""


def load(tmp_path: Path, value: str):
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "requirements.txt").write_text("flask\n")
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY.format(value=value))
    return load_inventory(path)


def test_server_config_is_a_gunicorn_file_inside_the_app(tmp_path):
    (tmp_path / "app" / "deploy").mkdir(parents=True)
    (tmp_path / "app" / "deploy" / "gunicorn.conf.py").write_text("workers = 3\n")
    assert load(tmp_path, "deploy/gunicorn.conf.py").app.server_config == "deploy/gunicorn.conf.py"


@pytest.mark.parametrize(("value", "message"), [
    ("uwsgi.ini", "inv.yml:5: app/server_config: expected a .py file"),
    ("../gunicorn.conf.py", "inv.yml:5: app/server_config: expected a relative path inside the app"),
    ("gunicorn.conf.py", "inv.yml:5: app/server_config: expected a file"),
])
def test_server_config_problems(tmp_path, monkeypatch, value, message):
    monkeypatch.chdir(tmp_path)  # problems name the inventory as the user did
    with pytest.raises(InventoryError) as info:
        load(tmp_path, value)
    assert any(str(p).startswith(message) for p in info.value.problems), info.value.problems


# --- deploy and plan: the wheel set decides, and plan hears what was added ------------------------


class FakeArtifact:
    release_id, content_hash, req_hash, python = "20261202T000000Z-abc", "ab" * 32, "cd" * 32, "3.11"

    def __init__(self, wheel_names):
        self.wheel_names = wheel_names


def test_build_release_renders_for_the_wheel_sets_version_and_notes_what_it_added(tmp_path, monkeypatch):
    from deployer.artifact import release
    from deployer.run import rollout

    asked = {}

    def build(app, *, python, extra_requirements):
        asked["extra"] = extra_requirements
        return FakeArtifact(("flask-3.1.3-py3-none-any.whl", "gunicorn-20.1.0-py3-none-any.whl"))

    monkeypatch.setattr(release, "build_artifact", build)
    app = app_with(tmp_path, "flask==3.1.3\n")
    host = f.host(server="gunicorn")
    inventory = f.inventory(host, app_=app)
    files = rollout.render_all(inventory, (host,), reveal_secrets=True)
    assert "control_socket_disable" in next(x.content for x in files["web1"] if x.path.name == "gunicorn.conf.py")
    built = rollout.build_release(inventory, (host,), {}, files)
    assert asked["extra"] == (f"gunicorn=={gunicorn.TESTED_VERSION}",)
    assert built.notes == (f"gunicorn {gunicorn.TESTED_VERSION} added: the app does not depend on it",)
    conf = next(x.content for x in built.files["web1"] if x.path.name == "gunicorn.conf.py")
    assert "gunicorn 20.1.0 reads this file" in conf and "control_socket_disable" not in conf


# --- real gunicorn: the oldest and the newest serve with deployer's file, the app's file in the cwd ----

APP_CONF = 'bind = "0.0.0.0:1"\ndaemon = True\nworkers = 3\npidfile = "/nonexistent/app.pid"\nraw_env = ["SEEN=read"]\n'
APP_PY = ("import os\nfrom flask import Flask\napp = Flask(__name__)\n\n\n@app.get('/')\n"
          "def index():\n    return os.environ.get('SEEN', 'not read')\n")


def serve_once(venv: Path, conf: Path, cwd: Path, sock: Path) -> tuple[str, str]:
    """Start gunicorn as systemd would (socket activation), GET / over the socket; (body, gunicorn's log)."""
    import http.client
    import shutil
    import socket
    import subprocess
    import time

    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed")
    proc = subprocess.Popen([activate, "-l", str(sock), str(venv / "bin" / "gunicorn"), "--config", str(conf), "app:app"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("localhost", timeout=10)
                conn.sock = socket.socket(socket.AF_UNIX)
                conn.sock.connect(str(sock))
                conn.request("GET", "/")
                body = conn.getresponse().read().decode()
                break
            except (FileNotFoundError, ConnectionError, http.client.RemoteDisconnected):
                time.sleep(0.1)
        else:
            body = ""
        alive = proc.poll() is None  # daemon = True would have left: the master forks away
    finally:
        proc.terminate()
        try:
            log = proc.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:  # a busy machine: the workers' graceful stop is slow
            proc.kill()
            log = proc.communicate()[0]
    assert alive, log
    return body, log


@pytest.mark.network
@pytest.mark.parametrize("version", ["20.1.0", max(HELP, key=gunicorn.version_tuple)])
@pytest.mark.parametrize("own", [False, True], ids=["no-server_config", "server_config"])
def test_real_gunicorn_reads_only_deployers_file_unless_told(tmp_path, version, own):
    import subprocess
    import sys

    from deployer.run import rollout

    release = tmp_path / "srv" / "hello" / "current"
    release.mkdir(parents=True)
    (release / "app.py").write_text(APP_PY)
    (release / "gunicorn.conf.py").write_text(APP_CONF)
    (release / "requirements.txt").write_text(f"flask==3.1.3\ngunicorn=={version}\n")
    app = f.app(source=release, server_config="gunicorn.conf.py" if own else None)
    host = f.host(server="gunicorn", deploy_root=PurePosixPath(tmp_path / "srv"))
    inventory = f.inventory(host, app_=app)
    try:  # what deploy does: the wheel set (with what deployer adds), the files for its gunicorn
        built = rollout.build_release(inventory, (host,), {}, rollout.render_all(inventory, (host,), reveal_secrets=True))
    except Exception as exc:  # noqa: BLE001 - no index: the test cannot run here
        pytest.skip(f"no wheels for gunicorn {version}: {exc}")
    artifact = built.artifact
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # the wheels alone, as on a host
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-index",
                    *(str(artifact.wheels_dir / n) for n in artifact.wheel_names)], check=True, capture_output=True)
    assert server_version.installed_versions(artifact.wheel_names, (host,)) == {"gunicorn": version}
    rendered = built.files[host.name]
    conf = next(x.content for x in rendered if x.path.name == "gunicorn.conf.py")
    (tmp_path / "run").mkdir()
    (tmp_path / "deployer.conf.py").write_text(conf.replace("'/run/hello'", repr(str(tmp_path / "run"))))
    body, log = serve_once(venv, tmp_path / "deployer.conf.py", release, tmp_path / "app.sock")
    assert body == ("read" if own else "not read"), log
    assert f"Starting gunicorn {version}" in log
    assert log.count("Booting worker") == (3 if own else 2), log  # workers: the app's file is a tunable's source


@pytest.mark.parametrize(("version", "allowed"), [("20.1.0", ["setuid"]), ("21.2.0", []), ("27.0.1", [])])
def test_an_old_gunicorn_may_call_setuid_with_its_own_uid(version, allowed):
    """gunicorn 20.1 setuid()s to its own uid in every worker: under ~@privileged (EPERM) none booted on lab1."""
    unit, _ = render_gunicorn(version)
    filters = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("SystemCallFilter=")]
    assert filters[:2] == ["@system-service", "~@privileged @resources"]  # the sandbox itself is unchanged
    assert filters[2:] == allowed  # after the deny list: systemd adds it back to the allowed set
