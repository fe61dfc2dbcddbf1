"""The lab for real: boots, survives a crash, scales, and is locked down.

Tests that take hosts down bring lab1..lab3 back before they end, because the
session's other integration tests share the same ``lab``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deployer.lab import Lab, naming
from deployer.lab import host as labhost

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def ssh(lab: Lab, name: str, *command: str, known_hosts: Path | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    address = naming.host_address(naming.host_index(name))
    cmd = ["ssh", "-i", str(lab.key_path), "-o", "IdentitiesOnly=yes",
           "-o", f"UserKnownHostsFile={known_hosts or lab.known_hosts_path}",
           "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
           "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "--", f"root@{address}", *command]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def nspawn_pids(lab: Lab) -> dict[str, int | None]:
    return {n: labhost.nspawn_pid(lab.paths.host(n)) for n in lab.paths.host_names()}


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    path = [str(REPO), os.environ.get("PYTHONPATH")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, path)))
    return subprocess.run([sys.executable, "-m", "deployer.lab.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def assert_no_traces(lab: Lab, names: list[str]) -> None:
    mountinfo = Path("/proc/self/mountinfo").read_text()
    for name in names:
        assert not (lab.paths.hosts / name).exists()
        assert not Path("/sys/class/net", naming.veth_name(name)).exists()
        assert f"/hosts/{name}/" not in mountinfo
        assert not any(Path(h, "deployer-lab", name).exists() for h in Path("/sys/fs/cgroup").iterdir())


def test_up_is_idempotent(lab):
    lab.up(3)  # whatever earlier tests left
    before = nspawn_pids(lab)
    hosts = lab.up(3)
    assert [(h.name, h.address, h.state) for h in hosts] == [
        ("lab1", "198.18.1.2", "up"), ("lab2", "198.18.2.2", "up"), ("lab3", "198.18.3.2", "up")]
    assert nspawn_pids(lab) == before  # nothing was restarted


def test_down_up_down_twice_up(lab):
    assert lab.down() == ["lab1", "lab2", "lab3"]
    assert lab.status() == []
    assert_no_traces(lab, ["lab1", "lab2", "lab3"])
    assert lab.down() == []  # safe to run twice
    assert [h.state for h in lab.up(3)] == ["up"] * 3
    assert ssh(lab, "lab1", "hostname").stdout.strip() == "lab1"


def test_up_repairs_hosts_whose_nspawn_was_killed(lab):
    for pid in nspawn_pids(lab).values():
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(h.state != "broken" for h in lab.status()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [h.state for h in lab.status()] == ["broken"] * 3
    assert [h.state for h in lab.up(3)] == ["up"] * 3
    assert [h.state for h in lab.status()] == ["up"] * 3
    for name in ("lab1", "lab2", "lab3"):
        assert ssh(lab, name, "systemctl", "is-system-running", "--wait").stdout.strip() == "running"


def test_eight_hosts_then_back_to_three(lab):
    hosts = lab.up(8)
    assert [h.name for h in hosts] == [f"lab{i}" for i in range(1, 9)]
    assert {h.state for h in lab.status()} == {"up"}
    out = ssh(lab, "lab8", "hostname", "-I").stdout.split()
    assert out == ["198.18.8.2"]
    extra = [f"lab{i}" for i in range(4, 9)]
    assert lab.down(extra) == extra
    assert_no_traces(lab, extra)
    assert [(h.name, h.state) for h in lab.status()] == [("lab1", "up"), ("lab2", "up"), ("lab3", "up")]


def test_cli_ssh_is_system_running(lab):
    res = lab_cli("ssh", "lab2", "systemctl", "is-system-running")
    assert res.stdout.strip() == "running", res.stderr


def test_cli_status_table(lab):
    res = lab_cli("status")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[1].split() == ["lab1", "198.18.1.2", "up"]


def test_each_host_has_its_own_host_key(lab):
    lines = lab.known_hosts_path.read_text().splitlines()
    keys = {line.split()[0]: line.split()[2] for line in lines}
    assert set(keys) >= {"198.18.1.2", "198.18.2.2", "198.18.3.2"}
    assert len(set(keys.values())) == len(keys)
    for address, key in keys.items():  # and each host presents the key we recorded
        scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", address], capture_output=True,
                              text=True, timeout=15)
        assert scan.stdout.split()[2] == key


def test_strict_host_key_checking(lab, tmp_path):
    assert ssh(lab, "lab1", "true").returncode == 0
    empty = tmp_path / "empty"
    empty.write_text("")
    res = ssh(lab, "lab1", "true", known_hosts=empty)
    assert res.returncode == 255 and "host key" in res.stderr.lower()
    # lab1's address with lab2's key: a man in the middle must be refused
    lines = dict(line.split(" ", 1) for line in lab.known_hosts_path.read_text().splitlines())
    swapped = tmp_path / "swapped"
    swapped.write_text(f"198.18.1.2 {lines['198.18.2.2']}\n")
    res = ssh(lab, "lab1", "true", known_hosts=swapped)
    assert res.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in res.stderr


def test_host_reaches_nothing_outside_its_slash30(lab):
    routes = ssh(lab, "lab1", "ip", "-4", "route").stdout
    assert "default" not in routes
    assert routes.split()[0] == "198.18.1.0/30"
    # the route lookups need no packet; the connect tries another lab host
    for target in ("198.18.2.2", "192.0.2.1"):
        res = ssh(lab, "lab1", "ip", "route", "get", target)
        assert res.returncode != 0 and "unreachable" in res.stderr.lower()
    probe = ("import socket\ntry:\n socket.create_connection(('198.18.2.2', 22), 3)\n"
             "except OSError as e:\n print(e.errno)")
    res = ssh(lab, "lab1", shlex.join(["python3", "-c", probe]))  # ssh hands one string to a shell
    assert res.stdout.strip() == "101"  # ENETUNREACH
    assert ssh(lab, "lab1", "true").returncode == 0  # while the controller end works
