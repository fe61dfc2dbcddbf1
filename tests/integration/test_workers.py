"""app.processes and app.timers for real, on the three lab stacks.

A queue-less worker (a heartbeat into shared/ every second, one log line each)
and a timer every 10 seconds, on lab1 nginx+gunicorn, lab2 nginx+uwsgi and
lab3 apache+mod_wsgi (where the worker's unit is independent of Apache).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.project import HOSTS, Project, ssh

pytestmark = pytest.mark.integration

HEARTBEAT = "/srv/hello/shared/instance/heartbeat.txt"
TICKS = "/srv/hello/shared/instance/ticks.log"
UNIT, TIMER, JOB = "hello-heartbeat.service", "hello-tick.timer", "hello-tick.service"
WORKER = '''\
"""A queue-less worker: a heartbeat into shared/ every second, until SIGTERM."""
import os, signal, time
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
n = 0
while not stopping:
    n += 1
    with open("instance/heartbeat.tmp", "w") as f:
        f.write("%d %s %d\\n" % (n, os.getcwd(), os.getpid()))
    os.replace("instance/heartbeat.tmp", "instance/heartbeat.txt")
    print("heartbeat %d from %s" % (n, os.getcwd()), flush=True)
    time.sleep(1)
print("heartbeat worker stopped by SIGTERM", flush=True)
'''
TICK = '''\
import os, time
with open("instance/ticks.log", "a") as f:
    f.write("%d %s\\n" % (time.time(), os.getcwd()))
print("tick from", os.getcwd())
'''


@pytest.fixture(scope="module")
def project(lab, tmp_path_factory):
    proj = Project(tmp_path_factory.mktemp("workers"))
    (proj.root / "app" / "heartbeat.py").write_text(WORKER)
    (proj.root / "app" / "tick.py").write_text(TICK)
    proj.doc["app"]["processes"] = {"heartbeat": ["python", "heartbeat.py"]}
    proj.doc["app"]["timers"] = {"tick": {"run": ["python", "tick.py"], "on_calendar": "*:*:0/10"}}
    proj.save()
    code, results = proj.deploy_json()
    assert code == 0, {n: r["error"] for n, r in results.items()}
    yield proj
    proj.doc["app"].pop("processes", None)
    proj.doc["app"].pop("timers", None)
    proj.save()
    proj.deploy_json()  # the lab hosts are shared: leave them without the units


def heartbeat(lab, name: str) -> tuple[int, str, int]:
    count, cwd, pid = ssh(lab, name, "cat", HEARTBEAT).split()
    return int(count), cwd, int(pid)


def current(lab, name: str) -> str:
    return ssh(lab, name, "readlink", "-f", "/srv/hello/current").strip()


def advancing(lab, name: str) -> tuple[int, str, int]:
    """The heartbeat after it has moved on (the worker runs), with the directory it runs in."""
    first = heartbeat(lab, name)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(1.5)
        now = heartbeat(lab, name)
        if now[0] > first[0] or now[2] != first[2]:
            return now
    raise AssertionError(f"{name}: heartbeat stuck at {first}")


def test_worker_heartbeat_advances_from_the_current_release_as_the_app(lab, project) -> None:
    for name in HOSTS:
        count, cwd, pid = advancing(lab, name)
        assert cwd == current(lab, name), name
        owner = ssh(lab, name, "stat", "-c", "%U", f"/proc/{pid}").strip()
        assert owner == "hello", (name, owner)
        assert ssh(lab, name, "systemctl", "is-active", UNIT).strip() == "active", name


def test_timer_runs_its_job_from_the_current_release(lab, project) -> None:
    for name in HOSTS:
        assert ssh(lab, name, "systemctl", "is-enabled", TIMER).strip() == "enabled", name
    deadline = time.monotonic() + 30
    pending = set(HOSTS)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            lines = ssh(lab, name, "cat", TICKS).split("\n")
            if any(line.endswith(current(lab, name)) for line in lines if line):
                pending.discard(name)
        time.sleep(2)
    assert not pending, f"no tick from the timer within 30s on {sorted(pending)}"


def test_status_logs_and_verify_show_the_processes(lab, project) -> None:
    status = json.loads(project.deployer("status", "--json", check=True).stdout)["hosts"]
    for name in HOSTS:
        assert status[name]["units"][UNIT] == "active/enabled", status[name]
        assert status[name]["units"][TIMER] == "active/enabled", status[name]
    logs = project.deployer("logs", "-n", "400", check=True).stdout
    for name in HOSTS:
        assert any(name in line and "heartbeat " in line for line in logs.splitlines()), (name, logs[-2000:])
    result = project.deployer("verify", "--json")
    hosts = {h["host"]: h for h in json.loads(result.stdout)["hosts"]}
    for name in HOSTS:
        checks = {c["name"]: (c["outcome"], c["reason"]) for c in hosts[name]["checks"]}
        assert checks["app-processes"] == ("passed", ""), (name, checks)
    assert result.returncode == 0, result.stdout


def test_code_change_moves_the_worker_to_the_new_release_and_rollback_back(lab, project) -> None:
    before = {name: current(lab, name) for name in HOSTS}
    project.change_code("workers")
    code, results = project.deploy_json()
    assert code == 0 and {r["status"] for r in results.values()} == {"deployed"}, results
    for name in HOSTS:
        _, cwd, _ = advancing(lab, name)
        assert cwd == current(lab, name) != before[name], name
        log = ssh(lab, name, "journalctl", "-u", UNIT, "-n", "200", "--no-pager", "-o", "cat")
        assert "heartbeat worker stopped by SIGTERM" in log, name  # graceful: its own handler ran
    project.deployer("rollback", check=True)
    for name in HOSTS:
        assert current(lab, name) == before[name], name
        _, cwd, _ = advancing(lab, name)
        assert cwd == before[name], name


def test_a_process_that_cannot_run_fails_the_deploy_and_rolls_back_with_the_app(lab, project) -> None:
    before = {name: current(lab, name) for name in HOSTS}
    project.doc["app"]["processes"]["broken"] = ["no-such-command-in-the-venv"]
    project.save()
    project.change_code("broken-worker")
    code, results = project.deploy_json()
    assert code != 0 and {r["status"] for r in results.values()} == {"rolled-back"}, results
    for name in HOSTS:
        error = results[name]["error"]
        assert error.startswith("serving: ") and "hello-broken.service" in error, results[name]
        assert current(lab, name) == before[name], name
        _, cwd, _ = advancing(lab, name)
        assert cwd == before[name], name  # the worker is back on the release it ran before
        assert ssh(lab, name, "sh", "-c", "test -e /etc/systemd/system/hello-broken.service && echo present").strip() == ""
        assert ssh(lab, name, "systemctl", "is-active", "hello-broken.service").strip() != "active", name
    del project.doc["app"]["processes"]["broken"]
    project.save()


def test_a_process_removed_from_the_inventory_is_stopped_and_its_unit_removed(lab, project) -> None:
    project.doc["app"].pop("processes")
    project.doc["app"].pop("timers")
    project.save()
    code, results = project.deploy_json()
    assert code == 0, {n: r["error"] for n, r in results.items()}
    for name in HOSTS:
        for unit in (UNIT, TIMER, JOB):
            assert ssh(lab, name, "sh", "-c", f"test -e /etc/systemd/system/{unit} && echo present").strip() == "", (name, unit)
            assert ssh(lab, name, "systemctl", "is-active", unit).strip() != "active", (name, unit)
        first = heartbeat(lab, name)
        time.sleep(2.5)
        assert heartbeat(lab, name) == first, name
    status = json.loads(project.deployer("status", "--json", check=True).stdout)["hosts"]
    assert all(UNIT not in status[name]["units"] for name in HOSTS), status
