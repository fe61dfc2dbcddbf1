"""One SSH connection per host (Fabric), with host-key checking that means something.

Fabric's own default accepts any host key (AutoAddPolicy); here ``strict``
rejects unknown keys and ``accept-new`` records a key seen for the first time
(trust on first use) but still refuses a changed one, as OpenSSH does.
This is the only module that talks to hosts; everything it runs is an argument
tuple joined with ``shlex.join`` here, at the edge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import logging
import re
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import fabric
import paramiko

from deployer.config.model import Host
from deployer.remote.connector import Command, CommandFailed, CommandResult, ConnectError  # noqa: F401 - re-exported
from deployer.secret import Secret, mask_text

_known_hosts_lock = threading.Lock()

# paramiko's transport thread logs its own tracebacks ("Error reading SSH protocol
# banner" from a host that does not answer) and, with no handler configured, Python
# prints them on stderr. The failure reaches the user once, as deployer's own message.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


class LineStream(io.TextIOBase):
    """A file-like sink for invoke's output echo: whole lines, masked, to a callback.

    Masking whole lines means a secret split across two network reads is still caught.
    """

    def __init__(self, on_line: Callable[[str], None], secrets: tuple[Secret, ...]) -> None:
        super().__init__()
        self.on_line, self.secrets, self.pending = on_line, secrets, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.on_line(mask_text(line.rstrip("\r"), self.secrets))
        return len(text)

    def close(self) -> None:
        if self.pending:
            self.on_line(mask_text(self.pending, self.secrets))
            self.pending = ""
        super().close()


class RevokedHostKey(ConnectError):
    pass


@dataclass(frozen=True)
class KnownHost:
    """One line of a known_hosts file: its marker (``@revoked``, ``@cert-authority`` or none), patterns, key."""

    marker: str | None
    patterns: tuple[str, ...]
    key: paramiko.PKey


def read_known_hosts(text: str) -> list[KnownHost]:
    """The lines OpenSSH would use; like it, a line it cannot parse (unknown key type) is skipped."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if len(fields) < 3:
            continue
        try:
            key = paramiko.PKey.from_type_string(fields[1], base64.b64decode(fields[2], validate=True))
        except (binascii.Error, paramiko.SSHException, paramiko.pkey.UnknownKeyType, ValueError):
            continue
        entries.append(KnownHost(marker, tuple(fields[0].split(",")), key))
    return entries


def _glob(pattern: str) -> re.Pattern[str]:
    """OpenSSH's patterns: ``*`` and ``?`` only (``[`` is a literal, as in ``[host]:2222``)."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.I)


def _hashed_match(pattern: str, name: str) -> bool:
    """``|1|salt|hash``: HMAC-SHA1 of the name, keyed with the salt."""
    try:
        salt, digest = (base64.b64decode(part) for part in pattern[3:].split("|", 1))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(hmac.new(salt, name.lower().encode(), hashlib.sha1).digest(), digest)


def host_matches(patterns: tuple[str, ...], name: str) -> bool:
    """As OpenSSH's match_hostname: a matching ``!pattern`` excludes the line, whatever else matches."""
    matched = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        hit = _hashed_match(pattern, name) if pattern.startswith("|1|") else bool(_glob(pattern).fullmatch(name))
        if hit and negated:
            return False
        matched = matched or hit
    return matched


def lookup_name(host: Host) -> str:
    """The name a known_hosts line must match (and paramiko looks up): ``[address]:port`` off port 22."""
    return host.address if host.ssh_port == 22 else f"[{host.address}]:{host.ssh_port}"


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """For a key no (unrevoked) line of known_hosts matches: refuse, or record it (``accept-new``).

    A revoked key is refused either way, as OpenSSH refuses it; a *changed* key
    never reaches this policy: paramiko raises BadHostKeyException first.
    """

    def __init__(self, path: Path, revoked: frozenset[bytes], accept_new: bool) -> None:
        self.path, self.revoked, self.accept_new = path, revoked, accept_new

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if key.asbytes() in self.revoked:
            raise RevokedHostKey(f"host key of {hostname} ({key.get_name()}) is marked @revoked in {self.path}; refused")
        if not self.accept_new:
            raise paramiko.SSHException(f"Server {hostname!r} not found in known_hosts")
        client.get_host_keys().add(hostname, key.get_name(), key)
        with _known_hosts_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="ascii") as handle:
                handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def known_hosts_path(host: Host) -> Path:
    return host.known_hosts or Path.home() / ".ssh" / "known_hosts"


def make_client(host: Host) -> paramiko.SSHClient:
    """An SSHClient that trusts only keys known_hosts gives this host, read as OpenSSH reads it.

    paramiko's own reader skips ``@revoked`` lines (so a revoked key listed
    anywhere else was trusted) and ignores ``*``/``?``/``!`` patterns (so
    ``accept-new`` recorded a new key where a wildcard line named another).
    Here the lines matching the host are handed to paramiko under the name it
    looks up; a key revoked on any line is never trusted. ``@cert-authority``
    lines trust no plain key (paramiko checks no host certificates), as in OpenSSH.
    """
    client = paramiko.SSHClient()
    path = known_hosts_path(host)
    if not path.exists() and host.host_key_policy == "strict":
        raise ConnectError(f"known_hosts file {path} not found (host_key_policy strict needs it)")
    entries = read_known_hosts(path.read_text(encoding="utf-8", errors="replace")) if path.exists() else []
    revoked = frozenset(e.key.asbytes() for e in entries if e.marker == "@revoked")
    name = lookup_name(host)
    for entry in entries:
        if entry.marker is None and entry.key.asbytes() not in revoked and host_matches(entry.patterns, name):
            client.get_host_keys().add(name, entry.key.get_name(), entry.key)
    client.set_missing_host_key_policy(KnownHostsPolicy(path, revoked, host.host_key_policy == "accept-new"))
    return client


class Remote:
    """A host reached over SSH (the ``Connector`` of real hosts): run commands, move files. One per host."""

    def __init__(self, host: Host, secrets: tuple[Secret, ...] = (), connect_timeout: int = 10) -> None:
        self.host = host
        self.secrets = secrets
        connect_kwargs: dict[str, object] = {"allow_agent": host.ssh_key is None, "look_for_keys": host.ssh_key is None}
        if host.ssh_key is not None:
            connect_kwargs["key_filename"] = str(host.ssh_key)
        self._conn = fabric.Connection(
            host.address,
            user=host.ssh_user,
            port=host.ssh_port,
            connect_kwargs=connect_kwargs,
            connect_timeout=connect_timeout,
            config=fabric.Config(ssh_config=paramiko.SSHConfig()),
        )
        self._conn.client = make_client(host)
        self._staging: PurePosixPath | None = None

    def open(self) -> None:
        try:
            self._conn.open()
        except paramiko.BadHostKeyException as exc:
            raise ConnectError(
                f"{self.host.name}: host key for {self.host.address} does not match {known_hosts_path(self.host)} "
                f"(possible man-in-the-middle; got {exc.key.get_name()})"
            ) from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise ConnectError(
                    f"{self.host.name}: host key for {self.host.address} is not in {known_hosts_path(self.host)} "
                    "(host_key_policy strict; add it, or use accept-new for a first connection)"
                ) from None
            raise ConnectError(f"{self.host.name}: ssh {self.host.ssh_user}@{self.host.address}:{self.host.ssh_port}: {exc}") from None
        except OSError as exc:
            raise ConnectError(f"{self.host.name}: cannot connect to {self.host.address}:{self.host.ssh_port}: {exc.strerror or exc}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Remote":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wrap(self, argv: Command) -> str:
        """The command line sent: ``sudo -n`` in front when the host says ``become``."""
        if self.host.become:
            argv = ("sudo", "-n", "--") + tuple(argv)
        return shlex.join(argv)

    def run(self, argv: Command, *, check: bool = True, timeout: float | None = None, mask: bool = True,
            on_line: Callable[[str], None] | None = None) -> CommandResult:
        """Run ``argv``; output has secrets masked unless ``mask=False`` (facts compare real content).

        ``on_line`` receives each output line (stdout and stderr) as it arrives, always masked.
        """
        streams: dict[str, object] = {}
        if on_line is not None:
            streams = {"out_stream": LineStream(on_line, self.secrets), "err_stream": LineStream(on_line, self.secrets)}
        raw = self._conn.run(self.wrap(argv), hide=True, warn=True, in_stream=False, timeout=timeout, **streams)
        for stream in streams.values():
            stream.close()
        hide = (lambda text: mask_text(text, self.secrets)) if mask else (lambda text: text)
        result = CommandResult(raw.exited, hide(raw.stdout), mask_text(raw.stderr, self.secrets))
        if check and not result.ok:
            raise CommandFailed(self.host.name, argv, result)
        return result

    def open_stream(self, argv: Command) -> paramiko.Channel:
        """Start ``argv`` on a channel of its own and return it unread (stdout and stderr
        combined), for output read as it arrives (``logs --follow``). The caller masks
        secrets in what it reads and closes the channel."""
        channel = self._conn.client.get_transport().open_session()
        channel.set_combine_stderr(True)
        channel.exec_command(self.wrap(argv))
        return channel

    def staging(self) -> PurePosixPath:
        """A private temp dir owned by the SSH user, for uploads before ``sudo`` moves them."""
        if self._staging is None:
            out = self._conn.run(shlex.join(("mktemp", "-d", "/tmp/deployer.XXXXXXXX")), hide=True, in_stream=False)
            self._staging = PurePosixPath(out.stdout.strip())
        return self._staging

    def upload(self, local: Path | bytes, name: str) -> PurePosixPath:
        """Put a local file (or bytes) into the staging dir; return its remote path."""
        remote = self.staging() / name
        sftp = self._conn.sftp()
        if "/" in name:
            self._conn.run(shlex.join(("mkdir", "-p", str(remote.parent))), hide=True, in_stream=False)
        if isinstance(local, bytes):
            sftp.putfo(io.BytesIO(local), str(remote))
        else:
            sftp.put(str(local), str(remote))
        return remote

    def download(self, path: PurePosixPath) -> bytes:
        buffer = io.BytesIO()
        self._conn.sftp().getfo(str(path), buffer)
        return buffer.getvalue()

    def cleanup(self) -> None:
        if self._staging is not None:
            self._conn.run(shlex.join(("rm", "-rf", "--", str(self._staging))), hide=True, warn=True, in_stream=False)
            self._staging = None
