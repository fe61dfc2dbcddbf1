"""The host programs (deployer/hostside): imported here and run against temp dirs (a fake /proc, fake files).

On a host they run as ``python3 -c TEXT ARG...`` on the host's own Python, so
each must parse as Python 3.9 and import only the standard library.
"""

from __future__ import annotations

import ast
import getpass
import grp
import http.server
import json
import os
import sys
import threading
from pathlib import Path, PurePosixPath

import pytest

from deployer import hostside
from deployer.core import commands as cmd
from deployer.core.facts import facts_command, parse_facts, snapshot_command
from deployer.core.layout import Layout
from deployer.hostside import facts, health, probe, restart, snapshot
from deployer.verify.probe import probe_command

HOSTSIDE = Path(hostside.__file__).parent


# -- every program: a file that can run alone on an old host Python --------------------------


def outside_stdlib(source: str) -> set[str]:
    """Top-level modules a program imports that are not in the standard library; parsed as Python 3.9."""
    tree = ast.parse(source, feature_version=(3, 9))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return {name for name in names if name not in sys.stdlib_module_names}


def test_the_loader_knows_every_program_file_and_only_those() -> None:
    files = {p.stem for p in HOSTSIDE.glob("*.py") if p.stem != "__init__"}
    assert files == set(hostside.PROGRAMS)
    with pytest.raises(ValueError, match="no host program 'nope'"):
        hostside.program("nope")


@pytest.mark.parametrize("name", hostside.PROGRAMS)
def test_each_program_is_standalone_python39_stdlib(name: str) -> None:
    text = hostside.program(name)
    assert text == (HOSTSIDE / f"{name}.py").read_text(encoding="utf-8")
    assert outside_stdlib(text) == set()
    assert 'if __name__ == "__main__":' in text  # python3 -c runs it as __main__


def test_the_standalone_rule_can_fail() -> None:
    assert outside_stdlib("import yaml\nfrom deployer import secret\nfrom . import x\n") == {"yaml", "deployer", "."}
    with pytest.raises(SyntaxError):  # a 3.10 match statement does not parse as 3.9
        outside_stdlib("match x:\n    case 1:\n        pass\n")


def test_commands_send_the_program_text_with_python3_c() -> None:
    layout = Layout("hello", PurePosixPath("/srv"))
    sent = {
        "facts": facts_command(layout, user="hello", packages=(), files=(), links=(), units=()),
        "snapshot": snapshot_command(layout, "r1"),
        "restart": cmd.restart_daemons("apache2.service", "(wsgi:hello)"),
        "health": cmd.health_check("http", 80, "example.com", "/healthz", 30.0),
        "probe": probe_command({"x": 1}),
    }
    for name, argv in sent.items():
        assert argv[:3] == ("python3", "-c", hostside.program(name)), name
    assert sent["snapshot"][3:] == ("/srv/hello/releases/r1/.deployer/config",)
    assert sent["restart"][3:] == ("apache2.service", "(wsgi:hello)")
    assert sent["health"][3:] == ("http", "80", "example.com", "/healthz", "30.0")


# -- a fake /proc ---------------------------------------------------------------------------


def fake_process(proc: Path, pid: int, argv: list[str], *, cwd: Path | None = None, ppid: int = 1,
                 comm: str = "sleep", cgroups: tuple[str, ...] = ()) -> None:
    d = proc / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1\n")
    (d / "cgroup").write_text("".join(f"{i}::{g}\n" for i, g in enumerate(cgroups)) or "0::/\n")
    if cwd is not None:
        (d / "cwd").symlink_to(cwd)


# -- facts ------------------------------------------------------------------------------------


def app_tree(root: Path) -> None:
    for rid, bad in (("r1", False), ("r2", True)):
        (root / "releases" / rid / ".deployer").mkdir(parents=True)
        (root / "releases" / rid / ".venv").symlink_to(f"../../venvs/v{rid}")
    (root / "releases" / "r2" / ".deployer" / "BAD").write_text("health failed\n")
    (root / "releases" / "junk").mkdir()  # not deployer's: no .deployer/
    (root / "releases" / ".tmp-r3" / ".deployer").mkdir(parents=True)  # an upload in progress
    (root / "venvs" / "vr1").mkdir(parents=True)
    (root / "venvs" / "vr1" / ".complete").touch()
    (root / "venvs" / "half").mkdir()
    (root / "current").symlink_to("releases/r1")


def fake_run(units: dict[str, str], installed: tuple[str, ...]):  # noqa: ANN201
    def run(*argv: str) -> str:
        if argv[0] == "systemctl":
            return units.get(argv[2], "ActiveState=inactive\nUnitFileState=\nMainPID=0\n")
        if argv[0] == "dpkg-query":
            return "".join(f"{p} installed\n" if p in installed else f"{p} not-installed\n" for p in argv[3:])
        raise AssertionError(argv)
    return run


def test_facts_read_releases_venvs_lock_files_units_and_what_serves(tmp_path) -> None:
    root, proc = tmp_path / "srv" / "hello", tmp_path / "proc"
    app_tree(root)
    (root / ".deployer" / "lock").mkdir(parents=True)
    conf = tmp_path / "hello.conf"
    conf.write_text("server {}\n")
    conf.chmod(0o640)
    fake_process(proc, 40, ["gunicorn: master"], cwd=root / "releases" / "r1")
    fake_process(proc, 41, ["(wsgi:hello)"], cwd=root / "releases" / "r2")
    fake_process(proc, 42, ["(wsgi:hello)"], cwd=root / "releases" / "r1")
    fake_process(proc, 43, ["(wsgi:hello2)"], cwd=tmp_path)
    query = {"app_root": str(root), "user": getpass.getuser(), "packages": ["nginx", "curl"],
             "files": [str(conf), str(tmp_path / "absent")], "links": [str(root / "current"), str(conf)],
             "units": ["hello.service", "gone.service"], "process_markers": ["(wsgi:hello)", "(wsgi:other)"]}
    run = fake_run({"hello.service": "ActiveState=active\nUnitFileState=enabled\nMainPID=40\n"}, ("nginx",))
    got = parse_facts(json.dumps(facts.gather(query, run=run, proc=str(proc))))
    assert [(r.id, r.bad, r.venv) for r in got.releases] == [("r1", False, "vr1"), ("r2", True, "vr2")]
    assert got.current == "r1" and got.venvs == ("vr1",)
    assert got.lock == {"holder": "unknown (lock dir without info)"}
    assert got.packages == {"nginx": True, "curl": False} and got.missing_packages() == ("curl",)
    assert got.user["uid"] == os.getuid()
    assert got.files[str(tmp_path / "absent")] is None
    assert (got.files[str(conf)].mode, got.files[str(conf)].content) == (0o640, "server {}\n")
    assert got.links == {str(root / "current"): "releases/r1", str(conf): None}
    assert got.units["hello.service"].pid == 40 and got.units["gone.service"].active == "inactive"
    assert got.serving == {"hello.service": str(root / "releases" / "r1"),
                           "(wsgi:hello)": f"{root / 'releases' / 'r1'} and {root / 'releases' / 'r2'}"}
    assert got.python_version == sys.version_info[:2]


def test_facts_of_a_host_with_nothing_deployed(tmp_path) -> None:
    query = {"app_root": str(tmp_path / "not" / "yet"), "user": "no-such-user-here", "packages": [], "files": [],
             "links": [], "units": [], "process_markers": []}
    out = facts.gather(query, run=fake_run({}, ()), proc=str(tmp_path))
    assert (out["current"], out["releases"], out["venvs"], out["lock"], out["user"]) == (None, [], [], None, None)
    assert out["disk_free_mb"] > 0  # measured where the root would be created


def test_facts_find_the_apps_process_and_timer_units_by_their_marker(tmp_path) -> None:
    units = {"hello-worker.service": "# deployer-unit: app=hello kind=process\n",
             "hello-tick.timer": "# deployer-unit: app=hello kind=timer\n",
             "hello-api-worker.service": "# deployer-unit: app=hello-api kind=process\n",  # another app's
             "hello-mine.service": "[Service]\nExecStart=/bin/true\n",  # made by hand
             "hello-worker.service.deployer-old": "# deployer-unit: app=hello kind=process\n",  # a backup
             "hello.service": "# Managed by deployer for hello\n"}
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    assert facts.managed_units("hello", str(tmp_path)) == ["hello-tick.timer", "hello-worker.service"]
    assert facts.managed_units("hello", str(tmp_path / "absent")) == []


def test_a_lock_with_unreadable_info_is_still_held(tmp_path) -> None:
    (tmp_path / ".deployer" / "lock").mkdir(parents=True)
    (tmp_path / ".deployer" / "lock" / "info").write_text("{not json")
    assert facts.lock(str(tmp_path)) == {"holder": "unknown (unreadable lock info)"}
    (tmp_path / ".deployer" / "lock" / "info").write_text('{"holder": "ann@laptop"}')
    assert facts.lock(str(tmp_path)) == {"holder": "ann@laptop"}


def test_facts_main_prints_one_json_object(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(facts, "run", fake_run({}, ()))
    monkeypatch.setattr(facts.gather, "__defaults__", (facts.run, str(tmp_path)))
    facts.main(["-c", json.dumps({"app_root": str(tmp_path), "user": "root", "packages": [], "files": [],
                                  "links": [], "units": [], "process_markers": []})])
    assert parse_facts(capsys.readouterr().out).current is None


# -- snapshot ---------------------------------------------------------------------------------


def test_snapshot_lists_each_file_at_its_installed_path_sorted(tmp_path) -> None:
    base = tmp_path / "config"
    (base / "etc" / "nginx").mkdir(parents=True)
    (base / "etc" / "nginx" / "site.conf").write_text("server {}\n")
    (base / "etc" / "hello.env").write_text("KEY=\"v\"\n")
    (base / "etc" / "hello.env").chmod(0o600)
    (base / "a.txt").write_bytes(b"\xff bad utf-8\n")
    got = snapshot.snapshot(str(base))
    assert [f["path"] for f in got] == ["/a.txt", "/etc/hello.env", "/etc/nginx/site.conf"]
    env = got[1]
    assert (env["mode"], env["content"], env["owner"]) == (0o600, 'KEY="v"\n', getpass.getuser())
    assert env["group"] == grp.getgrgid(os.getgid()).gr_name
    assert got[0]["content"] == "\ufffd bad utf-8\n"


# -- restart ----------------------------------------------------------------------------------


def test_restart_finds_only_the_groups_children_of_the_main_process(tmp_path) -> None:
    proc = tmp_path / "proc"
    fake_process(proc, 10, ["/usr/sbin/apache2", "-k", "start"], ppid=1)
    fake_process(proc, 11, ["(wsgi:hello)"], ppid=10, comm="apache2 ) odd")  # ")" and spaces in comm
    fake_process(proc, 12, ["(wsgi:hello)"], ppid=10)
    fake_process(proc, 13, ["(wsgi:hello)"], ppid=99)  # right name, another parent
    fake_process(proc, 14, ["/usr/sbin/apache2"], ppid=10)  # a worker, not a daemon of the group
    (proc / "15").mkdir()  # exited while listed
    (proc / "self").mkdir()
    assert sorted(restart.children("10", b"(wsgi:hello)", str(proc))) == ["11", "12"]
    assert restart.children("99", b"(wsgi:hello)", str(proc)) == ["13"]


def test_a_display_name_cut_to_apaches_argv0_length_still_names_the_group(tmp_path) -> None:
    proc = tmp_path / "proc"
    fake_process(proc, 10, ["/usr/sbin/apache2"])
    fake_process(proc, 11, ["(wsgi:factory-pkg"], ppid=10)  # "(wsgi:factory-pkg)" cut by one
    fake_process(proc, 12, ["(wsgi:"], ppid=10)  # too short to name any group
    fake_process(proc, 13, ["(wsgi:factory-pkg)    "], ppid=10)  # a shorter name is padded with spaces
    assert restart.children("10", b"(wsgi:factory-pkg)", str(proc)) == ["11", "13"]
    assert probe.names_group("(wsgi:factory-pkg)    ", "(wsgi:factory-pkg)")
    assert [restart.names_group(n, b"(wsgi:hello)") for n in (b"(wsgi:hello)", b"(wsgi:hell", b"(wsgi:hello2)")] == [
        True, True, False]
    assert facts.names_group(b"(wsgi:hell", b"(wsgi:hello)") and probe.names_group("(wsgi:hell", "(wsgi:hello)")


@pytest.mark.skipif(os.getuid() != 0, reason="a fake process of another user needs chown")
def test_facts_count_only_the_app_users_daemons(tmp_path) -> None:
    proc = tmp_path / "proc"
    fake_process(proc, 30, ["(wsgi:hello"], cwd=tmp_path / "mine")
    fake_process(proc, 31, ["(wsgi:hello"], cwd=tmp_path / "theirs")  # another app's group, same cut prefix
    os.chown(proc / "31", 65534, 65534)
    assert facts.cwds_of("(wsgi:hello)", os.getuid(), str(proc)) == [str(tmp_path / "mine")]
    query = {"app_root": str(tmp_path), "user": "no-such-user-here", "packages": [], "files": [], "links": [],
             "units": [], "process_markers": ["(wsgi:hello)"]}
    assert facts.gather(query, run=fake_run({}, ()), proc=str(proc))["serving"] == {}  # no app user, no daemons of it


def test_restart_reports_a_stopped_service(monkeypatch, capsys) -> None:
    monkeypatch.setattr(restart, "main_pid", lambda service: None)
    assert restart.main(["-c", "apache2.service", "(wsgi:hello)"]) == 1
    assert capsys.readouterr().out == "apache2.service is not running\n"


# -- health -----------------------------------------------------------------------------------


@pytest.fixture
def server():  # noqa: ANN201
    """A loopback HTTP server answering ``answers[path]`` and recording each request's Host header."""
    answers: dict[str, int] = {}
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hosts.append(self.headers["Host"])
            self.send_response(answers.get(self.path, 404))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], answers, hosts
    httpd.shutdown()
    httpd.server_close()


def test_health_passes_on_2xx_with_the_host_header(server) -> None:
    port, answers, hosts = server
    answers["/healthz"] = 204
    assert health.wait_healthy("http", port, "example.com", "/healthz", 0) == (True, "204")
    assert hosts == ["example.com"]


def test_health_retries_until_the_deadline_then_says_the_last_answer(server, monkeypatch) -> None:
    port, answers, hosts = server
    answers["/healthz"] = 503
    monkeypatch.setattr(health, "RETRY_EVERY", 0.01)
    assert health.wait_healthy("http", port, "example.com", "/healthz", 0.1) == (False, "HTTP 503")
    assert len(hosts) >= 2


def test_health_names_the_error_when_nothing_listens(capsys) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening
        assert health.main(["-c", "http", str(port), "example.com", "/", "0"]) == 1
    assert "refused" in capsys.readouterr().out.lower()


# -- probe ------------------------------------------------------------------------------------


def test_probe_counts_a_units_processes_by_cgroup_not_by_name_prefix(tmp_path) -> None:
    proc = tmp_path / "proc"
    cg = "/system.slice/hello.service"
    fake_process(proc, 20, ["gunicorn: master"], cgroups=(cg,))
    fake_process(proc, 21, ["gunicorn: worker"], cgroups=(cg + "/sub",))
    fake_process(proc, 22, ["(wsgi:hello)"], cgroups=("/system.slice/hello.service-other",))
    procs = probe.processes(str(proc))
    me = getpass.getuser()
    assert sorted(procs) == sorted([(me, [cg], "gunicorn: master"), (me, [cg + "/sub"], "gunicorn: worker"),
                                    (me, ["/system.slice/hello.service-other"], "(wsgi:hello)")])
    show = f"ActiveState=active\nSubState=running\nUnitFileState=enabled\nControlGroup={cg}\n"
    assert probe.unit_state(show, procs) == {"active": "active", "sub": "running", "enabled": "enabled",
                                             "users": [me], "processes": 2, "cwd": None}
    fake_process(proc, 23, ["python"], cgroups=(cg,), cwd=tmp_path / "releases" / "r2")
    assert probe.unit_state(show + "MainPID=23\n", procs, str(proc))["cwd"] == str(tmp_path / "releases" / "r2")
    assert probe.unit_state("ActiveState=inactive\nControlGroup=\n", procs)["processes"] == 0


def test_probe_reads_listening_ports_and_sockets(tmp_path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    head = "  sl  local_address rem_address   st\n"
    (net / "tcp").write_text(head + "   0: 00000000:0050 00000000:0000 0A\n   1: 0100007F:1F90 0100007F:C350 01\n")
    any6 = "0" * 32
    (net / "tcp6").write_text(head + f"   0: {any6}:01BB {any6}:0000 0A\n")
    (net / "unix").write_text("Num RefCount Protocol Flags Type St Inode Path\n"
                              "0: 00000002 00000000 00010000 0001 01 100 /run/hello/gunicorn.sock\n"
                              "0: 00000002 00000000 00000000 0001 03 101 /run/client.sock\n")
    assert probe.listening(str(tmp_path)) == {"tcp": [80, 443], "unix": ["/run/hello/gunicorn.sock"]}
    assert probe.listening(str(tmp_path / "none")) == {"tcp": [], "unix": []}


def test_probe_judges_current_and_finds_a_static_file(tmp_path) -> None:
    rel = tmp_path / "releases" / "r1"
    (rel / ".venv" / "bin").mkdir(parents=True)
    (rel / ".venv" / "bin" / "python").touch()
    (rel / "hello.py").touch()
    (rel / "static" / "b").mkdir(parents=True)
    (rel / "static" / ".hidden").touch()
    (rel / "static" / "b" / "z.css").touch()
    (tmp_path / "current").symlink_to("releases/r1")
    got = probe.current(str(tmp_path / "current"), str(tmp_path / "releases"), ["hello.py", "hello/__init__.py"])
    assert got == {"link": "releases/r1", "exists": True, "in_releases": True, "has_app": True, "has_venv": True,
                   "target": str(rel)}
    assert probe.first_static_file(str(tmp_path / "current" / "static")) == "b/z.css"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "current").unlink()
    (tmp_path / "current").symlink_to("elsewhere")
    moved = probe.current(str(tmp_path / "current"), str(tmp_path / "releases"), ["hello.py"])
    assert (moved["exists"], moved["in_releases"], moved["has_app"]) == (True, False, False)


def test_probe_asks_each_request_and_skips_static_without_a_file(server) -> None:
    port, answers, hosts = server
    answers["/healthz"] = 200
    answers["/static/app.css"] = 200
    requests = {"health": ["http", port, "/healthz"], "static": ["http", port, "/static"]}
    got = probe.answers(requests, "app.css", "example.com")
    assert got["health"]["status"] == 200 and got["static"]["status"] == 200
    assert "content-length" in got["health"]["headers"] and hosts == ["example.com"] * 2
    assert set(probe.answers(requests, None, "example.com")) == {"health"}


def test_probe_reports_a_command_that_cannot_start() -> None:
    assert probe.finish(probe.start(["/no/such/tool"]))["code"] == 127
    assert probe.finish(probe.start(["sh", "-c", "echo a; echo b; echo c; echo d; exit 3"])) == {
        "code": 3, "output": "b\nc\nd"}
