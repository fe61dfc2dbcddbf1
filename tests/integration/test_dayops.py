"""Day-two commands on the lab: ``logs`` (merged, prefixed, ``--follow`` cleaned up) and ``init``.

lab1 nginx+gunicorn, lab2 nginx+uwsgi, lab3 apache+mod_wsgi (inventories/lab.yml).
"""

from __future__ import annotations

import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration.project import HOSTS, REPO, SECRET, Project, get, ssh

pytestmark = pytest.mark.integration
STAMP_COLUMN = len(max(HOSTS, key=len)) + 2  # "<host padded>  <time>  <source>: <text>"


@pytest.fixture(scope="module")
def project(lab, tmp_path_factory) -> Project:
    proj = Project(tmp_path_factory.mktemp("dayops"))
    code, results = proj.deploy_json()
    assert code == 0, results
    return proj


def hosts_of(lines: list[str]) -> set[str]:
    return {line.split(" ", 1)[0] for line in lines}


def test_logs_merges_every_hosts_lines_in_time_order(project: Project) -> None:
    marker = f"/logs-{uuid.uuid4().hex[:8]}-{SECRET}"  # request logs echo the path: the secret must be masked
    for address in HOSTS.values():
        get(address, marker)
    result = project.deployer("logs", "-n", "20")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert hosts_of(lines) == set(HOSTS), result.stdout
    assert all(line[STAMP_COLUMN - 2:STAMP_COLUMN] == "  " and line[STAMP_COLUMN:STAMP_COLUMN + 4].isdigit()
               for line in lines), result.stdout  # aligned: the time starts in one column
    stamps = [line[STAMP_COLUMN:].split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps)
    assert any(line.startswith("lab1 ") and "/logs-" in line and "***" in line for line in lines), result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert "lab3: server mod_wsgi runs hello inside apache2" in result.stderr
    for name in HOSTS:
        assert sum(line.startswith(name + " ") for line in lines) <= 40  # -n per log: lab3 reads two


def test_logs_proxy_adds_the_error_logs(project: Project) -> None:
    for address in HOSTS.values():
        get(address, "/static/no-such-file.css")  # the proxy logs a missing static file as an error
    result = project.deployer("logs", "-n", "5", "--proxy", "--limit", "lab1,lab3")
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("lab1 ") and "nginx error.log: " in line for line in result.stdout.splitlines()), result.stdout
    assert any(line.startswith("lab3 ") and "apache2 error.log: " in line for line in result.stdout.splitlines()), result.stdout
    assert hosts_of(result.stdout.splitlines()) == {"lab1", "lab3"}


def followers(lab) -> dict[str, str]:
    """journalctl and tail processes still running on each host."""
    found = {name: ssh(lab, name, "pgrep", "-a", "-x", "journalctl|tail").strip() for name in HOSTS}
    return {name: procs for name, procs in found.items() if procs}


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "killed"])
def test_follow_streams_a_new_request_then_leaves_nothing_running(project: Project, lab, stop: signal.Signals) -> None:
    assert followers(lab) == {}
    marker = f"/follow-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, "-m", "deployer.cli", "logs", "--follow", "--proxy", "-n", "0",
                             "-i", str(project.inventory)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        seen = None
        deadline = time.monotonic() + 60
        while seen is None and time.monotonic() < deadline:
            get(HOSTS["lab1"], marker)  # again until the follower, started meanwhile, shows it
            try:
                while seen is None:
                    line = lines.get(timeout=1)
                    seen = line if marker in line else None
            except queue.Empty:
                pass
        assert seen is not None and seen.startswith("lab1 "), "the new request never showed"
        assert len(followers(lab)) == len(HOSTS)  # one follower per log on every host while it runs
        proc.send_signal(stop)  # SIGKILL: no clean-up on our side, the dropped connection must do
        assert proc.wait(timeout=30) == (-stop if stop == signal.SIGKILL else 0), proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while followers(lab) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert followers(lab) == {}


def test_init_writes_an_inventory_that_deploys_to_a_lab_host(project: Project, lab, tmp_path: Path) -> None:
    app_dir = tmp_path / "hello"
    shutil.copytree(REPO / "examples" / "hello", app_dir, ignore=shutil.ignore_patterns("__pycache__", "instance"))

    def deployer(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "deployer.cli", *args], capture_output=True, text=True, timeout=600)

    made = deployer("init", str(app_dir))
    assert made.returncode == 0 and "app:app" in made.stdout, made.stdout + made.stderr
    inventory = app_dir / "deploy.yml"
    unfilled = deployer("check", "-i", str(inventory))
    assert unfilled.returncode == 2 and "hosts/web1/address" in unfilled.stderr
    doc = yaml.safe_load(inventory.read_text())
    doc["defaults"].update(ssh_key=str(lab.key_path), known_hosts=str(lab.known_hosts_path))
    doc["hosts"] = {"lab1": {"address": HOSTS["lab1"]}}
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert deployer("check", "-i", str(inventory)).returncode == 0
    deployed = deployer("deploy", "-i", str(inventory))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    status, body = get(HOSTS["lab1"], "/")
    assert status == 200 and "Hello from deployer" in body  # the app's default: the starter sets no env
    assert get(HOSTS["lab1"], "/static/style.css")[0] == 200
