"""Release hooks and `deployer exec` for real, on the three lab stacks.

lab1 nginx+gunicorn, lab2 nginx+uwsgi, lab3 apache+mod_wsgi (inventories/lab.yml,
whose before_switch hook runs the example app's SQLite migration on each host).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.project import HOSTS, SECRET, Project, get, ssh

pytestmark = pytest.mark.integration

DB = "/srv/hello/shared/instance/counter.sqlite3"
ONCE_FILE = "/srv/hello/shared/instance/run-once.txt"
OLD_DATABASE = f"""
import os, sqlite3
for suffix in ("", "-wal", "-shm"):
    if os.path.exists("{DB}" + suffix):
        os.remove("{DB}" + suffix)
db = sqlite3.connect("{DB}")
with db:
    db.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("INSERT INTO counter (id, value) VALUES (1, 41)")
db.close()
os.chown("{DB}", os.stat("/srv/hello/shared/instance").st_uid, os.stat("/srv/hello/shared/instance").st_gid)
"""
SCHEMA = f"""
import sqlite3
db = sqlite3.connect("{DB}")
print(db.execute("PRAGMA user_version").fetchone()[0], *[r[1] for r in db.execute("PRAGMA table_info(counter)")])
"""


@pytest.fixture(scope="module")
def project(lab, tmp_path_factory) -> Project:
    proj = Project(tmp_path_factory.mktemp("hooks"))
    code, results = proj.deploy_json()
    assert code == 0, results
    assert {r["status"] for r in results.values()} <= {"deployed", "unchanged"}
    return proj


def current(lab, name: str) -> str:
    return ssh(lab, name, "readlink", "/srv/hello/current").strip()


def deploy(project: Project, *args: str) -> tuple[int, dict[str, dict], str]:
    """A deploy with its JSON results and its progress output (stderr), which must never show the secret."""
    result = project.deployer("deploy", "--json", *args)
    assert SECRET not in result.stdout + result.stderr
    doc = json.loads(result.stdout)
    return result.returncode, {r["host"]: r for r in doc["results"]}, result.stderr


def exec_(project: Project, *argv: str, limit: str | None = None) -> subprocess.CompletedProcess:
    options = ["--limit", limit] if limit else []
    cmd = [sys.executable, "-m", "deployer.cli", "exec", "-i", str(project.inventory), *options, "--", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=project.root)


def test_migration_hook_changes_the_schema_and_the_counter_survives(project: Project, lab) -> None:
    for name in HOSTS:  # each host's database as the app wrote it before it had migrations
        ssh(lab, name, "python3", "-c", OLD_DATABASE)
        assert ssh(lab, name, "python3", "-c", SCHEMA).split() == ["0", "id", "value"], name
    project.change_code("migration")
    code, results, progress = deploy(project)
    assert code == 0 and {r["status"] for r in results.values()} == {"deployed"}, (results, progress)
    for name, address in HOSTS.items():
        assert f"{name}: before_switch> /srv/hello/releases/{results[name]['release']}/instance/counter.sqlite3: schema 0 -> 2" in progress
        assert ssh(lab, name, "python3", "-c", SCHEMA).split() == ["2", "id", "value", "updated_at"], name
        assert json.loads(get(address, "/count")[1]) == {"count": 42}, name
        log = f"/srv/hello/{current(lab, name)}/.deployer/hooks.log"
        assert ssh(lab, name, "stat", "-c", "%a %U", log).split() == ["600", "root"], name
        assert "schema 0 -> 2" in ssh(lab, name, "cat", log), name


def test_failing_before_switch_hook_leaves_the_old_release_serving(project: Project, lab) -> None:
    before = {name: current(lab, name) for name in HOSTS}
    greeting = project.doc["app"]["env"]["APP_GREETING"]
    project.doc["app"]["hooks"]["before_switch"].append({"shell": "echo checking $APP_SECRET_KEY; exit 3"})
    project.greet("Hello from a release that never goes live")
    project.change_code("failing-hook")
    try:
        code, results, progress = deploy(project)
    finally:
        project.doc["app"]["hooks"]["before_switch"].pop()
        project.greet(greeting)
    assert code == 1 and {r["status"] for r in results.values()} == {"failed"}, results
    for name, address in HOSTS.items():
        assert "before_switch: hook sh -c" in results[name]["error"] and "exited 3" in results[name]["error"]
        assert f"{name}: before_switch> checking ***" in progress
        assert current(lab, name) == before[name]
        assert greeting in get(address, "/")[1]  # the env file was never touched
        assert get(address, "/healthz") == (200, "ok\n")
        bad = f"/srv/hello/releases/{results[name]['release']}/.deployer/BAD"
        assert "exited 3" in ssh(lab, name, "cat", bad), name
        assert ssh(lab, name, "ls", "/srv/hello/.deployer").split().count("lock") == 0, name


def test_hook_past_its_timeout_is_stopped_on_the_host(project: Project, lab) -> None:
    before = current(lab, "lab2")
    project.doc["app"]["hooks"]["before_switch"].append({"shell": "echo started; sleep 60", "timeout": 2})
    project.save()
    project.change_code("slow-hook")
    try:
        code, results, progress = deploy(project, "--limit", "lab2")
    finally:
        project.doc["app"]["hooks"]["before_switch"].pop()
        project.save()
    assert code == 1 and results["lab2"]["status"] == "failed", results
    assert "timed out after 2s" in results["lab2"]["error"] and results["lab2"]["seconds"] < 30, results
    assert "lab2: before_switch> started" in progress
    assert current(lab, "lab2") == before
    assert "sleep 60" not in ssh(lab, "lab2", "ps", "-eo", "args")


def test_hook_of_a_killed_deploy_is_stopped_on_the_host(project: Project, lab) -> None:
    before = current(lab, "lab1")
    project.doc["app"]["hooks"]["before_switch"].append({"shell": "sleep 61"})
    project.save()
    project.change_code("killed-during-hook")
    cmd = [sys.executable, "-m", "deployer.cli", "deploy", "-i", str(project.inventory), "--limit", "lab1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=project.root)
    try:
        for line in proc.stdout:
            if "before_switch hook: sh -c 'sleep 61'" in line:
                time.sleep(1)
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
    finally:
        project.doc["app"]["hooks"]["before_switch"].pop()
        project.save()
    deadline = time.monotonic() + 15
    while "sleep 61" in ssh(lab, "lab1", "ps", "-eo", "args"):
        assert time.monotonic() < deadline, "the hook kept running after deployer was killed"
        time.sleep(0.5)
    assert current(lab, "lab1") == before
    project.deployer("unlock", "--limit", "lab1", check=True)


def test_run_once_hook_runs_on_one_host_also_in_batches(project: Project, lab) -> None:
    for name in HOSTS:
        ssh(lab, name, "rm", "-f", ONCE_FILE)
    project.doc["app"]["hooks"]["before_switch"].insert(0, {"shell": f'hostname >> {ONCE_FILE}', "run_once": True})
    project.save()
    project.change_code("run-once")
    try:
        plan = project.deployer("plan").stdout
        code, results, progress = deploy(project, "--serial", "2")
    finally:
        project.doc["app"]["hooks"]["before_switch"].pop(0)
        project.save()
    assert f"run before_switch hook once, for every host: sh -c 'hostname >> {ONCE_FILE}'" in plan, plan
    assert plan.count("wait for the run_once hooks on lab1") == 2, plan
    assert code == 0 and {r["status"] for r in results.values()} == {"deployed"}, (results, progress)
    ran = {name: ssh(lab, name, "cat", ONCE_FILE).split() for name in HOSTS}
    assert ran == {"lab1": ["lab1"], "lab2": [], "lab3": []}, ran


def test_failing_run_once_hook_stops_every_host_before_the_switch(project: Project, lab) -> None:
    before = {name: current(lab, name) for name in HOSTS}
    project.doc["app"]["hooks"]["before_switch"].insert(0, {"run": ["false"], "run_once": True})
    project.save()
    project.change_code("run-once-fails")
    try:
        code, results, _ = deploy(project)
    finally:
        project.doc["app"]["hooks"]["before_switch"].pop(0)
        project.save()
    assert code == 1 and {r["status"] for r in results.values()} == {"failed"}, results
    assert "hook false exited 1" in results["lab1"]["error"]
    for name in ("lab2", "lab3"):
        assert "the run_once hooks on lab1 did not succeed: before_switch: hook false exited 1" in results[name]["error"], results[name]
    assert {name: current(lab, name) for name in HOSTS} == before


def test_failing_after_switch_hook_rolls_back_and_runs_after_rollback(project: Project, lab) -> None:
    before = {name: current(lab, name) for name in HOSTS}
    marker = "/srv/hello/shared/instance/after-rollback.txt"
    ssh(lab, "lab1", "rm", "-f", marker)
    project.doc["app"]["hooks"]["after_switch"] = [["false"]]
    project.doc["app"]["hooks"]["after_rollback"] = [{"shell": f"pwd >> {marker}"}]
    project.save()
    project.change_code("after-switch-fails")
    try:
        code, results, _ = deploy(project, "--limit", "lab1")
    finally:
        del project.doc["app"]["hooks"]["after_switch"], project.doc["app"]["hooks"]["after_rollback"]
        project.save()
    assert code == 1 and results["lab1"]["status"] == "rolled-back", results
    assert current(lab, "lab1") == before["lab1"]
    assert ssh(lab, "lab1", "cat", marker).split() == [f"/srv/hello/{before['lab1']}"]


def test_rollback_command_runs_after_rollback_in_the_release_returned_to(project: Project, lab) -> None:
    marker = "/srv/hello/shared/instance/rollback-command.txt"
    ssh(lab, "lab1", "rm", "-f", marker)
    project.doc["app"]["hooks"]["after_rollback"] = [{"shell": f"pwd >> {marker}"}]
    project.save()
    try:
        result = project.deployer("rollback", "--limit", "lab1")
    finally:
        del project.doc["app"]["hooks"]["after_rollback"]
        project.save()
    assert result.returncode == 0 and "rolled-back-to" in result.stdout, result.stdout + result.stderr
    assert ssh(lab, "lab1", "cat", marker).split() == [f"/srv/hello/{current(lab, 'lab1')}"]
    assert "lab1: after_rollback hook: sh -c" in result.stderr
    assert ssh(lab, "lab1", "grep", "-c", SECRET, "/etc/hello/env").strip() == "1"  # the snapshot's real secret, not ***


def test_exec_sees_the_app_env_and_secret_without_printing_it(project: Project) -> None:
    check = (f"import os, pwd, sys; print(os.environ['APP_SECRET_KEY'] == {SECRET!r}, os.environ['APP_GREETING'], "
             "pwd.getpwuid(os.getuid()).pw_name, os.getcwd().startswith('/srv/hello/releases/'), sys.prefix != sys.base_prefix)")
    result = exec_(project, "python", "-c", check)
    assert result.returncode == 0, result.stderr
    for name in HOSTS:
        assert f"{name}: True Hello from the lab hello True True" in result.stdout, result.stdout
        assert f"{name}: exit 0" in result.stderr
    shown = exec_(project, "python", "-c", "import os; print(os.environ['APP_SECRET_KEY'])")
    assert SECRET not in shown.stdout + shown.stderr
    assert all(f"{name}: ***" in shown.stdout for name in HOSTS), shown.stdout


def test_exec_interrupted_stops_the_command_on_every_host(project: Project, lab) -> None:
    marker = "time.sleep(60)  # exec-interrupt"
    cmd = [sys.executable, "-m", "deployer.cli", "exec", "-i", str(project.inventory), "--",
           "python", "-c", f"print('started', flush=True); import time; {marker}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=project.root)
    seen = [proc.stdout.readline() for _ in HOSTS]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert sorted(seen) == [f"{name}: started\n" for name in HOSTS]
    assert proc.returncode == 130, (out, err)
    deadline = time.monotonic() + 15
    while any(marker in ssh(lab, name, "ps", "-eo", "args") for name in HOSTS):
        assert time.monotonic() < deadline, "the command kept running on a host after Ctrl-C"
        time.sleep(0.5)


def test_exec_exit_code_per_host(project: Project) -> None:
    result = exec_(project, "sh", "-c", 'echo "to stderr" >&2; exit 4', limit="lab2")
    assert result.returncode == 1
    assert "lab2: to stderr" in result.stdout and "lab2: exit 4" in result.stderr
    assert "lab1" not in result.stdout + result.stderr
