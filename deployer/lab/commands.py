"""Command builders: each returns an argument tuple and does no I/O.

The executor runs them as lists, so nothing is ever quoted by hand, and the
tests compare tuples.
"""

from __future__ import annotations

from pathlib import Path

from deployer.lab.naming import CONTAINER_IFACE, PREFIX_LEN

Cmd = tuple[str, ...]


def debootstrap(target: Path, mirror: str, packages: tuple[str, ...], suite: str = "bookworm",
                keyring: Path | None = None) -> Cmd:
    cmd: Cmd = ("debootstrap", "--variant=minbase", "--components=main",
                "--include=" + ",".join(packages))
    if keyring is not None:
        cmd += (f"--keyring={keyring}",)
    return cmd + (suite, str(target), mirror)


def chroot(root: Path, *argv: str) -> Cmd:
    return ("chroot", str(root), *argv)


def overlay_options(lower: Path, upper: Path, work: Path) -> str:
    for p in (lower, upper, work):
        if any(c in str(p) for c in ",:"):
            raise ValueError(f"overlayfs cannot take a path with ',' or ':': {p}")
    return f"lowerdir={lower},upperdir={upper},workdir={work}"


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> Cmd:
    return ("mount", "-t", "overlay", "overlay", "-o", overlay_options(lower, upper, work), str(target))


def umount(target: str, lazy: bool = False) -> Cmd:
    return ("umount", "-l", target) if lazy else ("umount", target)


def nspawn(root: Path, name: str, uuid: str) -> Cmd:
    """Boot ``root`` as machine ``name``.

    --register=no and --keep-unit because this controller has no systemd and
    no bus to register with; --console=read-only so the boot lands in the
    host's log; hostname, machine-id and keys come from the overlay's upper dir.
    """
    return (
        "systemd-nspawn",
        "--quiet",
        "--boot",
        "--register=no",
        "--keep-unit",
        "--network-veth",
        f"--machine={name}",
        f"--directory={root}",
        f"--uuid={uuid}",
        "--console=read-only",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
    )


def nsenter_net(pid: int, *argv: str) -> Cmd:
    """Run ``argv`` in the network namespace of ``pid`` (the container's PID 1)."""
    return ("nsenter", "-t", str(pid), "-n", *argv)


def ip_addr_replace(address: str, dev: str, prefix_len: int = PREFIX_LEN) -> Cmd:
    return ("ip", "addr", "replace", f"{address}/{prefix_len}", "dev", dev)


def ip_link_up(dev: str) -> Cmd:
    return ("ip", "link", "set", "dev", dev, "up")


def ip_route_get(address: str) -> Cmd:
    return ("ip", "-o", "route", "get", address)


def ip_link_delete(dev: str) -> Cmd:
    return ("ip", "link", "delete", "dev", dev)


def container_network(leader: int, address: str) -> list[Cmd]:
    """Configure host0 from outside: address, link up, and no route beyond it."""
    return [
        nsenter_net(leader, *ip_addr_replace(address, CONTAINER_IFACE)),
        nsenter_net(leader, *ip_link_up(CONTAINER_IFACE)),
        nsenter_net(leader, *ip_link_up("lo")),
    ]


def controller_network(veth: str, gateway: str) -> list[Cmd]:
    return [ip_addr_replace(gateway, veth), ip_link_up(veth)]


def ssh_keygen(path: Path, comment: str) -> Cmd:
    return ("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))


def ssh_options(key: Path, known_hosts: Path, connect_timeout: int | None = None) -> Cmd:
    """Options for a lab SSH session: the lab key only, strict host keys."""
    opts: Cmd = (
        "-i", str(key),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "LogLevel=ERROR",
    )
    if connect_timeout is not None:
        opts += ("-o", f"ConnectTimeout={connect_timeout}")
    return opts


def ssh(key: Path, known_hosts: Path, address: str, command: tuple[str, ...] = (),
        batch: bool = False, connect_timeout: int | None = None, user: str = "root") -> Cmd:
    """ssh to a lab host; ``command`` words are passed as ssh passes them."""
    cmd: Cmd = ("ssh", *ssh_options(key, known_hosts, connect_timeout))
    if batch:
        cmd += ("-o", "BatchMode=yes")
    # '--' before the destination: ssh parses options again right after it
    return cmd + ("--", f"{user}@{address}", *command)
