"""The lab as a whole: bring N hosts up, report them, tear them all down.

``up`` keeps hosts that already work and rebuilds any that a killed run left
half-made; hosts beyond N are left alone (``down NAME...`` stops some).
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from deployer.lab import base, cgroups, commands, host, naming, parse
from deployer.lab.run import LabError, run
from deployer.lab.state import LabPaths, lab_dir, locked, write_atomic

TOOLS = {  # debootstrap is checked only when the base must be built
    "systemd-nspawn": "systemd-container",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "mount": "mount",
}

# past ~16 hosts, systemd in the hosts runs out of inotify instances
SYSCTLS = {
    "fs/inotify/max_user_instances": 8192,
    "fs/inotify/max_user_watches": 524288,
}

BOOT_TIMEOUT = 60.0  # seconds for the first host; each more host adds PER_HOST
PER_HOST = 0.5
STOP_TIMEOUT = 15.0  # graceful poweroff, then SIGKILL


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    # "up"; "booting": nspawn runs, sshd not yet answering; "broken": its
    # nspawn is gone (killed) but traces remain; `up` rebuilds, `down` clears
    state: str

    @property
    def index(self) -> int:
        return naming.host_index(self.name)


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("deployer lab needs root (it mounts, runs systemd-nspawn and makes veths)",
                       exit_code=2)


def missing_tools() -> list[str]:
    return [f"{t} (apt-get install -y {pkg})" for t, pkg in TOOLS.items() if shutil.which(t) is None]


def raise_sysctls() -> None:
    """Raise (never lower) the limits many hosts need."""
    for key, want in SYSCTLS.items():
        p = Path("/proc/sys", key)
        if parse.parse_sysctl_int(p.read_text()) < want:
            p.write_text(str(want))


class Lab:
    """Disposable Debian hosts booted with systemd-nspawn on this machine."""

    def __init__(self, root: Path | str | None = None, say=None):
        self.paths = LabPaths(lab_dir(root))
        self.say = say or (lambda msg: None)
        self.hosts: list[LabHost] = []  # what the last up() returned

    @property
    def key_path(self) -> Path:
        return self.paths.key

    @property
    def known_hosts_path(self) -> Path:
        return self.paths.known_hosts

    def session(self, wait: float = float("inf"), say=None):
        """Hold the lab for a whole test session or benchmark (a context manager).

        One lab per machine (names, veths and addresses are fixed): a second
        session queues here instead of taking the hosts down under the first
        one's feet. Lab commands inside the session take their own, shorter lock.
        """
        return locked(self.paths.session_lock, wait, say or self.say, holder="another test session or benchmark")

    # --- discovery -------------------------------------------------------

    def _traces(self) -> list[str]:
        """Every host with anything left of it: files, cgroups or a veth."""
        names = set(self.paths.host_names())
        for h in cgroups.hierarchies():
            try:
                names |= {p.name for p in (h / cgroups.GROUP).iterdir() if p.is_dir()}
            except OSError:
                pass
        try:
            names |= {n[len(naming.VETH_PREFIX):] for n in os.listdir("/sys/class/net")
                      if n.startswith(naming.VETH_PREFIX)}
        except OSError:
            pass
        return naming.sort_names(n for n in names if naming.is_host_name(n))

    def _host(self, name: str, state: str) -> LabHost:
        return LabHost(name, naming.host_address(naming.host_index(name)), state)

    def _state(self, name: str) -> str:
        hp = self.paths.host(name)
        if host.nspawn_pid(hp) is None:
            return "broken"
        return "up" if host.ssh_banner(name, timeout=1.0) else "booting"

    def status(self) -> list[LabHost]:
        require_root()
        names = self._traces()
        with ThreadPoolExecutor(max_workers=16) as pool:
            states = list(pool.map(self._state, names))
        return [self._host(n, s) for n, s in zip(names, states, strict=True)]

    # --- up --------------------------------------------------------------

    def _check_tools(self) -> None:
        missing = missing_tools()
        if missing:
            raise LabError("missing: " + ", ".join(missing))

    def _public_key(self) -> str:
        if not self.paths.key.exists():
            self.paths.key.with_name(self.paths.key.name + ".pub").unlink(missing_ok=True)
            run(commands.ssh_keygen(self.paths.key, "deployer-lab"))
        return self.paths.key.with_name(self.paths.key.name + ".pub").read_text()

    def _write_known_hosts(self) -> None:
        entries = []
        for name in self.paths.host_names():
            hp = self.paths.host(name)
            try:
                pub = hp.host_key_pub.read_text()
            except OSError:
                continue
            entries.append((naming.host_address(naming.host_index(name)), pub))
        write_atomic(self.paths.known_hosts, parse.known_hosts_text(entries))

    def _ensure_base(self, public_key: str) -> None:
        if base.exists(self.paths) and base.is_current(self.paths):
            return
        running = [n for n in self.paths.host_names() if host.nspawn_pid(self.paths.host(n))]
        if base.exists(self.paths) and running:
            self.say("note: the base image is out of date, but hosts are up on it; "
                     "`deployer lab down` then `up` rebuilds it")
            return
        for name in self._traces():  # nothing may sit on the base being replaced
            host.teardown(self.paths.host(name))
        base.build(self.paths, public_key, say=self.say)

    def up(self, n: int = 3) -> list[LabHost]:
        """Make lab1..labN answer SSH; return them (all "up")."""
        require_root()
        naming.check_count(n)
        self._check_tools()
        with locked(self.paths.lock, say=self.say):
            os.chmod(self.paths.root, 0o700)
            public_key = self._public_key()
            self._ensure_base(public_key)
            raise_sysctls()
            self._write_known_hosts()
            wanted = naming.names_for(n)

            with ThreadPoolExecutor(max_workers=16) as pool:
                ok = dict(zip(wanted, pool.map(lambda nm: host.healthy(self.paths, self.paths.host(nm)),
                                               wanted), strict=True))
            todo = [nm for nm in wanted if not ok[nm]]
            for name in todo:  # whatever a killed run left: rebuilt from scratch
                host.teardown(self.paths.host(name))

            started = {}
            failures = []
            for name in todo:  # sequential and thread-free: start() uses a preexec_fn
                hp = self.paths.host(name)
                try:
                    host.prepare(self.paths, hp, public_key)
                    started[name] = host.start(hp)
                except LabError as e:
                    failures.append(str(e))
            self._write_known_hosts()

            deadline = time.monotonic() + BOOT_TIMEOUT + PER_HOST * len(started)

            def wait(name: str) -> tuple[str, str | None]:
                try:
                    return host.bring_up(self.paths, self.paths.host(name), started[name], deadline), None
                except LabError as e:
                    return "", str(e)

            with ThreadPoolExecutor(max_workers=min(32, max(1, len(started)))) as pool:
                for name, (state, err) in zip(started, pool.map(wait, list(started)), strict=True):
                    if err:
                        failures.append(err)
                    elif state != "running":
                        self.say(f"note: {name} is {state}")

            extra = [nm for nm in self.paths.host_names() if naming.host_index(nm) > n]
            if extra:
                self.say(f"note: {', '.join(extra)} left as they are; "
                         f"`deployer lab down {' '.join(extra)}` stops them")
            if failures:
                raise LabError(f"{len(failures)} of {n} hosts did not come up: " + "; ".join(failures))
            self.hosts = [self._host(nm, "up") for nm in wanted]
            return self.hosts

    # --- down ------------------------------------------------------------

    def down(self, names: list[str] | None = None) -> list[str]:
        """Stop hosts (all by default) and remove every trace; returns their names."""
        require_root()
        for name in names or ():
            naming.host_index(name)
        with locked(self.paths.lock, say=self.say):
            present = self._traces()
            targets = present if names is None else [n for n in present if n in set(names)]
            pids = {n: host.request_stop(self.paths.host(n)) for n in targets}
            deadline = time.monotonic() + STOP_TIMEOUT
            for name, pid in pids.items():
                hp = self.paths.host(name)
                while pid is not None and host.nspawn_pid(hp) == pid and time.monotonic() < deadline:
                    time.sleep(0.05)
            errors = []
            for name in targets:
                try:
                    host.teardown(self.paths.host(name))
                except LabError as e:
                    errors.append(str(e))
            self._write_known_hosts()
            if names is None:
                cgroups.remove_group_if_empty()
            if errors:
                raise LabError("; ".join(errors))
            return targets

    def memory_bytes(self) -> dict[str, int | None]:
        """Memory charged to each host's cgroup (for measuring, not for decisions)."""
        return {n: cgroups.memory_bytes(n) for n in self.paths.host_names()}
