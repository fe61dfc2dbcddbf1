"""One lab host: its overlay root, its nspawn process, its veth, its sshd.

Each step is safe to repeat, and ``teardown`` undoes whatever subset of them a
killed run left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from deployer.lab import cgroups, commands, naming, parse
from deployer.lab.run import LabError, run, tail
from deployer.lab.state import HostPaths, LabPaths, mounts, remove_tree, write_atomic

# nspawn's own per-machine directory; a killed nspawn leaves it behind
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")


def _stat(pid: int) -> tuple[str, int, int] | None:
    try:
        return parse.parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def _reap(pid: int) -> None:
    # hosts started by this process are its children: collect them when they exit
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def nspawn_pid(hp: HostPaths) -> int | None:
    """The host's live nspawn process, checked against its start time so a
    recycled pid is not mistaken for it."""
    try:
        rec = parse.parse_pidfile(hp.pidfile.read_text())
    except OSError:
        return None
    if rec is None:
        return None
    pid, start = rec
    _reap(pid)
    st = _stat(pid)
    if st is None or st[0] in "ZX" or st[2] != start:
        return None
    return pid


def leader(nspawn: int) -> int | None:
    """The container's PID 1: the nspawn process's child."""
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{nspawn}/task").iterdir():
            kids += parse.parse_pids((task / "children").read_text())
    except OSError:
        return None
    return kids[0] if len(kids) == 1 else None


def veth_exists(name: str) -> bool:
    return Path("/sys/class/net", naming.veth_name(name)).exists()


def is_mounted(path: Path) -> bool:
    return any(m.target == str(path) for m in mounts())


def prepare(paths: LabPaths, hp: HostPaths, public_key: str) -> None:
    """Overlay root over the base, with this host's identity written in before boot."""
    for d in (hp.upper, hp.work, hp.root):
        d.mkdir(parents=True, exist_ok=True)
    if not hp.host_key.exists():
        for p in (hp.host_key, hp.host_key_pub):
            p.unlink(missing_ok=True)
        run(commands.ssh_keygen(hp.host_key, f"root@{hp.name}"))
    if not is_mounted(hp.root):
        run(commands.mount_overlay(paths.base, hp.upper, hp.work, hp.root))
    # written through the mount, so overlayfs copies up parents with the
    # base's owners and modes (/root stays 0700)
    r = hp.root
    write_atomic(r / "etc/hostname", hp.name + "\n")
    write_atomic(r / "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{hp.name}\n"
                                  "::1\tlocalhost ip6-localhost ip6-loopback\n")
    write_atomic(r / "etc/machine-id", uuid.uuid4().hex + "\n", mode=0o444)
    write_atomic(r / "etc/ssh/ssh_host_ed25519_key", hp.host_key.read_bytes(), mode=0o600)
    write_atomic(r / "etc/ssh/ssh_host_ed25519_key.pub", hp.host_key_pub.read_bytes())
    (r / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    write_atomic(r / "root/.ssh/authorized_keys", public_key, mode=0o600)


def machine_uuid(hp: HostPaths) -> str:
    mid = (hp.root / "etc/machine-id").read_text().strip()
    return str(uuid.UUID(mid))


def start(hp: HostPaths) -> int:
    """Start nspawn detached, in its own session and its own cgroups.

    Call with no other threads running: the cgroup join is a preexec_fn.
    """
    procs = cgroups.create(hp.name)
    with open(hp.log, "ab") as log:
        try:
            p = subprocess.Popen(
                list(commands.nspawn(hp.root, hp.name, machine_uuid(hp))),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=cgroups.joiner(procs), close_fds=True,
            )
        except FileNotFoundError:
            raise LabError("systemd-nspawn is not installed (apt-get install -y systemd-container)") from None
        except subprocess.SubprocessError as e:
            raise LabError(f"{hp.name}: cannot start systemd-nspawn in its cgroups: {e}") from None
    st = _stat(p.pid)
    write_atomic(hp.pidfile, f"{p.pid} {st[2] if st else 0}\n")
    return p.pid


def configure_network(index: int, name: str, leader_pid: int) -> None:
    """Address both ends of the veth; the host gets a /30 and no default route."""
    for cmd in commands.controller_network(naming.veth_name(name), naming.gateway_address(index)):
        run(cmd)
    for cmd in commands.container_network(leader_pid, naming.host_address(index)):
        run(cmd)


def routed_via_veth(name: str) -> bool:
    """Traffic to the host would go through its own veth, not the default route.

    Checked before any connection that is not bound to the veth: a lab address
    whose veth is gone would otherwise be sent out of this machine.
    """
    address = naming.host_address(naming.host_index(name))
    res = run(commands.ip_route_get(address), check=False)
    return res.returncode == 0 and parse.route_dev(res.stdout) == naming.veth_name(name)


def ssh_banner(name: str, timeout: float = 1.0) -> bool:
    """sshd answers with its banner (cheaper than an ssh process per poll).

    The socket is bound to the host's veth, so a probe never leaves the machine.
    """
    address = naming.host_address(naming.host_index(name))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                         naming.veth_name(name).encode())
            s.settimeout(timeout)
            s.connect((address, 22))
            ok = parse.is_ssh_banner(s.recv(64))
            if ok:  # identify back, or sshd logs an error for every probe
                s.sendall(b"SSH-2.0-deployer-lab-probe\r\n")
            return ok
    except OSError:
        return False


def ssh_run(paths: LabPaths, address: str, command: tuple[str, ...], timeout: float = 10):
    """Run a command on a host over SSH (batch mode, strict host keys)."""
    cmd = commands.ssh(paths.key, paths.known_hosts, address, command, batch=True,
                       connect_timeout=max(1, min(5, int(timeout))))
    return run(cmd, check=False, timeout=timeout)


def ssh_ok(paths: LabPaths, address: str, timeout: float = 10) -> bool:
    try:
        return ssh_run(paths, address, ("true",), timeout).returncode == 0
    except LabError:
        return False


def boot_state(paths: LabPaths, address: str, timeout: float) -> str:
    """``running``, or ``degraded (failed: units)``, once the host finished booting."""
    res = ssh_run(paths, address, ("systemctl", "is-system-running", "--wait"), timeout)
    state = res.stdout.strip() or f"unknown (exit {res.returncode})"
    if state == "degraded":
        failed = ssh_run(paths, address, ("systemctl", "list-units", "--failed", "--plain",
                                          "--no-legend", "--no-pager"), timeout)
        units = [ln.split()[0] for ln in failed.stdout.splitlines() if ln.strip()]
        state += f" (failed: {', '.join(units) or '?'})"
    return state


def _fail(hp: HostPaths, why: str) -> LabError:
    return LabError(f"{hp.name}: {why}; log {hp.log}: {tail(hp.log) or '(empty)'}")


def bring_up(paths: LabPaths, hp: HostPaths, nspawn: int, deadline: float) -> str:
    """After start: wire the network, wait for sshd to take the lab key and for
    the boot to finish; returns what ``systemctl is-system-running`` says."""
    index = naming.host_index(hp.name)
    lead = None
    while lead is None or not veth_exists(hp.name):
        if nspawn_pid(hp) != nspawn:
            raise _fail(hp, "systemd-nspawn exited during boot")
        if time.monotonic() > deadline:
            raise _fail(hp, "container did not start in time")
        time.sleep(0.02)
        lead = leader(nspawn)
    configure_network(index, hp.name, lead)
    address = naming.host_address(index)
    while not ssh_banner(hp.name):
        if nspawn_pid(hp) != nspawn:
            raise _fail(hp, "systemd-nspawn exited during boot")
        if time.monotonic() > deadline:
            raise _fail(hp, f"sshd at {address} did not answer in time")
        time.sleep(0.1)
    while not ssh_ok(paths, address):
        if time.monotonic() > deadline:
            raise _fail(hp, f"ssh root@{address} with the lab key failed")
        time.sleep(0.2)
    try:
        return boot_state(paths, address, max(5.0, deadline - time.monotonic()))
    except LabError as e:
        raise _fail(hp, f"boot did not finish: {e}") from None


def healthy(paths: LabPaths, hp: HostPaths) -> bool:
    """Up and usable: nspawn alive, network wired (re-done if not), ssh works."""
    pid = nspawn_pid(hp)
    lead = leader(pid) if pid else None
    if lead is None or not veth_exists(hp.name):
        return False
    try:
        configure_network(naming.host_index(hp.name), hp.name, lead)
    except LabError:
        return False
    address = naming.host_address(naming.host_index(hp.name))
    return ssh_banner(hp.name, timeout=2.0) and ssh_ok(paths, address)


def request_stop(hp: HostPaths) -> int | None:
    """Ask for a clean poweroff: nspawn passes SIGTERM on as SIGRTMIN+3."""
    pid = nspawn_pid(hp)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return None
    return pid


def teardown(hp: HostPaths) -> None:
    """Remove every trace of the host: processes, veth, mounts, files, cgroups."""
    pid = nspawn_pid(hp)
    if not cgroups.kill(hp.name):
        raise LabError(f"{hp.name}: processes survive SIGKILL in its cgroup")
    if pid is not None and nspawn_pid(hp) == pid:
        os.kill(pid, signal.SIGKILL)
        _reap(pid)
    if veth_exists(hp.name):
        run(commands.ip_link_delete(naming.veth_name(hp.name)), check=False)
    remove_tree(hp.dir)
    remove_tree(NSPAWN_PROPAGATE / hp.name)
    stuck = cgroups.remove(hp.name)
    if stuck:
        raise LabError(f"{hp.name}: cannot remove cgroup {stuck[0]}")
