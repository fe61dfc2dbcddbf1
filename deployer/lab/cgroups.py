"""One cgroup per lab host, in every mounted hierarchy.

This controller has no systemd as PID 1, so every nspawn would otherwise share
one cgroup tree and the hosts' systemds would race on same-named units (3 of
240 starts failed with 219/CGROUP that way; 0 of 480 with a cgroup each).
The host's cgroup is also how ``down`` finds and kills everything it ran.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from deployer.lab import parse
from deployer.lab.state import mounts

GROUP = "deployer-lab"


def hierarchies() -> list[Path]:
    return [Path(p) for p in parse.cgroup_hierarchies(mounts())]


def lab_paths(name: str) -> list[Path]:
    return [h / GROUP / name for h in hierarchies()]


def _inherit_cpuset(d: Path) -> None:
    # a v1 cpuset cgroup takes no task until it has cpus and mems
    for f in ("cpuset.cpus", "cpuset.mems"):
        mine = d / f
        if mine.exists() and not mine.read_text().strip():
            mine.write_text((d.parent / f).read_text())


def create(name: str) -> list[Path]:
    """Make (or reuse) the host's cgroup in each hierarchy; returns the procs files."""
    procs = []
    for h in hierarchies():
        for d in (h / GROUP, h / GROUP / name):
            d.mkdir(exist_ok=True)
            _inherit_cpuset(d)
        procs.append(h / GROUP / name / "cgroup.procs")
    return procs


def joiner(procs: list[Path]):
    """A preexec_fn that moves the child into the host's cgroups before exec."""
    targets = [os.fsencode(p) for p in procs]

    def join() -> None:
        pid = str(os.getpid()).encode()
        for t in targets:
            fd = os.open(t, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    return join


def _walk(top: Path):
    """Directories of a cgroup subtree, deepest first."""
    if not top.is_dir():
        return []
    dirs = [Path(d) for d, _, _ in os.walk(top)]
    return sorted(dirs, key=lambda p: -len(p.parts))


def _tracking_root(name: str) -> Path | None:
    # name=systemd and cgroup2 see every process the container runs
    for h in hierarchies():
        if h.name in ("unified", "systemd"):
            return h / GROUP / name
    hs = hierarchies()
    return hs[0] / GROUP / name if hs else None


def pids(name: str) -> list[int]:
    top = _tracking_root(name)
    if top is None:
        return []
    found: list[int] = []
    for d in _walk(top):
        try:
            found += parse.parse_pids((d / "cgroup.procs").read_text())
        except OSError:
            continue
    return found


def kill(name: str, timeout: float = 10.0) -> bool:
    """SIGKILL everything in the host's cgroups; True once they are empty."""
    deadline = time.monotonic() + timeout
    while True:
        left = pids(name)
        if not left:
            return True
        for h in hierarchies():
            k = h / GROUP / name / "cgroup.kill"
            if k.exists():
                try:
                    k.write_text("1")
                except OSError:
                    pass
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:  # our own child (nspawn started by this process) would stay a zombie
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def remove(name: str, timeout: float = 5.0) -> list[Path]:
    """rmdir the host's cgroups bottom-up; returns those that would not go."""
    deadline = time.monotonic() + timeout
    while True:
        stuck = []
        for h in hierarchies():
            for d in _walk(h / GROUP / name):
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    stuck.append(d)
        if not stuck or time.monotonic() > deadline:
            return stuck
        time.sleep(0.1)


def remove_group_if_empty() -> None:
    for h in hierarchies():
        try:
            (h / GROUP).rmdir()
        except OSError:
            pass


def memory_bytes(name: str) -> int | None:
    """Memory charged to the host (v1 memory.usage_in_bytes, page cache included)."""
    for h in hierarchies():
        f = h / GROUP / name / "memory.usage_in_bytes"
        if f.exists():
            return int(f.read_text())
    return None
