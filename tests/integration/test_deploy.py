"""Deploys for real: the example app onto the three lab stacks, over SSH.

lab1 nginx+gunicorn, lab2 nginx+uwsgi, lab3 apache+mod_wsgi (inventories/lab.yml).
Every test works on a copy of the app and inventory in a temp dir, so a test
can change code or templates without touching the repo.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.integration.project import HOSTS, SECRET, Project, get, ssh

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(lab, tmp_path_factory) -> Project:
    proj = Project(tmp_path_factory.mktemp("deploy"))
    code, results = proj.deploy_json()
    assert code == 0, results
    assert {r["status"] for r in results.values()} <= {"deployed", "unchanged"}  # unchanged: lab reused
    return proj


def test_cold_deploy_serves_every_stack(project: Project) -> None:
    for name, address in HOSTS.items():
        status, body = get(address, "/")
        assert status == 200 and "Hello from the lab" in body, (name, body)
        assert get(address, "/healthz") == (200, "ok\n")
        status, css = get(address, "/static/style.css")
        assert status == 200 and css.strip(), name
        status, who = get(address, "/whoami")
        assert json.loads(who)["host"] == address and json.loads(who)["remote_addr"].startswith("198.18."), (name, who)


def test_security_headers_also_on_404(project: Project) -> None:
    for address in HOSTS.values():
        conn = http.client.HTTPConnection(address, 80, timeout=10)
        conn.request("GET", "/no-such-page", headers={"Host": address})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404
        assert resp.getheader("X-Content-Type-Options") == "nosniff"


def test_identical_redeploy_is_unchanged(project: Project) -> None:
    code, results = project.deploy_json()
    assert code == 0 and {r["status"] for r in results.values()} == {"unchanged"}, results


def test_env_file_is_private_and_secret_never_printed(project: Project, lab) -> None:
    for name in HOSTS:
        mode, owner = ssh(lab, name, "stat", "-c", "%a %U:%G", "/etc/hello/env").split()
        assert mode in ("600", "640") and owner == "root:hello", (name, mode, owner)
    result = project.deployer("render")
    assert SECRET not in result.stdout
    assert SECRET not in project.deployer("plan").stdout
    assert SECRET not in project.deployer("status", "--json").stdout


def test_code_change_deploys_counter_survives_and_rollback_works(project: Project) -> None:
    before = {n: json.loads(get(a, "/count")[1])["count"] for n, a in HOSTS.items()}
    project.greet("Hello again")
    project.change_code("v2")
    code, results = project.deploy_json()
    assert code == 0 and {r["status"] for r in results.values()} == {"deployed"}, results
    for name, address in HOSTS.items():
        assert "Hello again" in get(address, "/")[1]
        assert json.loads(get(address, "/count")[1])["count"] == before[name] + 1
    result = project.deployer("rollback", check=True)
    assert "rolled-back-to" in result.stdout
    for address in HOSTS.values():
        assert "Hello from the lab" in get(address, "/")[1]
    project.greet("Hello from the lab")


def test_failing_health_check_rolls_back(project: Project) -> None:
    healthy = {n: get(a, "/")[1] for n, a in HOSTS.items()}
    path = project.root / "app" / "app.py"
    original = path.read_text()
    path.write_text(original.replace('return "ok\\n", 200', 'return "broken\\n", 503'))
    try:
        code, results = project.deploy_json()
    finally:
        path.write_text(original)
    assert code == 1
    assert {r["status"] for r in results.values()} == {"rolled-back"}, results
    for name, address in HOSTS.items():
        assert get(address, "/healthz") == (200, "ok\n")
        assert get(address, "/")[1] == healthy[name]
    releases = project.deployer("releases").stdout
    assert "!" in releases  # the failed release is marked bad


def test_broken_template_override_changes_nothing(project: Project, lab) -> None:
    overrides = project.root / "overrides" / "nginx"
    overrides.mkdir(parents=True)
    (overrides / "site.conf.j2").write_text("server { listen 80; this_is_not_a_directive on; }\n")
    project.doc["templates"] = "../overrides"
    project.save()
    live = ssh(lab, "lab1", "cat", "/etc/nginx/sites-available/hello.conf")
    try:
        code, results = project.deploy_json("--limit", "lab1")
    finally:
        del project.doc["templates"]
        project.save()
    assert code == 1 and results["lab1"]["status"] == "failed", results
    assert "nginx" in results["lab1"]["error"]
    assert ssh(lab, "lab1", "cat", "/etc/nginx/sites-available/hello.conf") == live
    assert get(HOSTS["lab1"], "/healthz") == (200, "ok\n")


def test_second_concurrent_deploy_is_refused_with_exit_3(project: Project, lab) -> None:
    ssh(lab, "lab2", "sh", "-c", 'mkdir /srv/hello/.deployer/lock && echo \'{"holder": "someone@elsewhere", "since": "2026-01-01T00:00:00Z"}\' > /srv/hello/.deployer/lock/info')
    try:
        project.change_code("locked")
        code, results = project.deploy_json("--limit", "lab2")
        assert code == 3 and results["lab2"]["status"] == "locked", results
        assert "someone@elsewhere" in project.deployer("status").stdout
    finally:
        project.deployer("unlock", "--limit", "lab2", check=True)


def test_killed_deploy_leaves_old_release_serving(project: Project, lab) -> None:
    project.change_code("killed")
    before = ssh(lab, "lab1", "readlink", "/srv/hello/current")
    proc = subprocess.Popen([sys.executable, "-m", "deployer.cli", "deploy", "-i", str(project.inventory), "--limit", "lab1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "uploading release" in line or "installing" in line or "switching" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert get(HOSTS["lab1"], "/healthz") == (200, "ok\n")
    current = ssh(lab, "lab1", "readlink", "/srv/hello/current")
    assert current in (before, current)  # killed before or after the atomic switch: one of the two, never none
    project.deployer("unlock", "--limit", "lab1", check=True)
    code, results = project.deploy_json("--limit", "lab1")
    assert code == 0 and results["lab1"]["status"] in ("deployed", "unchanged"), results


def test_zero_downtime_during_code_change(project: Project) -> None:
    failures: list[str] = []
    counts = {name: 0 for name in HOSTS}
    stop = threading.Event()

    def hammer(name: str, address: str) -> None:
        deadline = time.monotonic() + 120  # bounded: never outlives the test
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                status, _ = get(address, "/healthz")
                counts[name] += 1
                if status != 200:
                    failures.append(f"{name}: HTTP {status}")
            except OSError as exc:
                failures.append(f"{name}: {exc}")
            time.sleep(0.01)

    threads = [threading.Thread(target=hammer, args=item) for item in HOSTS.items()]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        project.change_code("zero-downtime")
        code, results = project.deploy_json()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert code == 0, results
    assert all(c > 20 for c in counts.values()), counts
    assert failures == [], failures[:10]


def test_mod_wsgi_code_change_restarts_the_daemons_not_apache(project: Project, lab) -> None:
    """An Apache reload would rotate the daemons' socket (wsgi.<pid>.<generation>.<id>.sock) and drop requests."""
    def daemons() -> dict[str, str]:  # pid -> release dir
        out = ssh(lab, "lab3", "sh", "-c", 'for p in $(pgrep -u hello -f "^[(]wsgi:hello[)]"); do echo "$p $(readlink /proc/$p/cwd)"; done')
        return dict(line.split() for line in out.splitlines())

    sockets = ssh(lab, "lab3", "sh", "-c", "ls /run/apache2/wsgi.*.sock")
    before = daemons()
    project.change_code("daemons-only")
    code, results = project.deploy_json("--limit", "lab3")
    assert code == 0 and results["lab3"]["status"] == "deployed", results
    after = daemons()
    assert ssh(lab, "lab3", "sh", "-c", "ls /run/apache2/wsgi.*.sock") == sockets  # same Apache generation: no reload
    assert len(after) == len(before) == 2 and not set(after) & set(before), (before, after)
    assert set(after.values()) == {"/srv/hello/releases/" + results["lab3"]["release"]}, after


def test_serial_batches_stop_after_a_failed_batch(project: Project, lab) -> None:
    """--serial 1: lab1 fails its health gate, so lab2 and lab3 are never touched."""
    before = {name: ssh(lab, name, "readlink", "/srv/hello/current").strip() for name in HOSTS}
    path = project.root / "app" / "app.py"
    original = path.read_text()
    # unhealthy only where the marker exists (lab1), as a bad host-specific state would be
    probe = '        _db().execute("SELECT 1").fetchone()\n'
    assert probe in original and "import os" in original
    path.write_text(original.replace(
        probe, '        if os.path.exists("/etc/hello-broken"):\n            return "broken\\n", 503\n' + probe))
    ssh(lab, "lab1", "touch", "/etc/hello-broken")
    try:
        code, results = project.deploy_json("--serial", "1")
    finally:
        ssh(lab, "lab1", "rm", "-f", "/etc/hello-broken")
    assert code == 1, results
    assert results["lab1"]["status"] == "rolled-back", results
    assert {results[n]["status"] for n in ("lab2", "lab3")} == {"skipped"}, results
    assert {name: ssh(lab, name, "readlink", "/srv/hello/current").strip() for name in HOSTS} == before

    # healthy again: batches of two (lab1+lab2, then lab3) all go through, in inventory order
    code, results = project.deploy_json("--serial", "2")
    path.write_text(original)
    assert code == 0, {n: (r["status"], r["error"]) for n, r in results.items()}
    assert {r["status"] for r in results.values()} == {"deployed"}, results
    switched = {name: int(ssh(lab, name, "stat", "-c", "%Y", "/srv/hello/current")) for name in HOSTS}
    assert max(switched["lab1"], switched["lab2"]) <= switched["lab3"], switched
