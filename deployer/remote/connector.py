"""The seam between deployer and a host: what every connection (SSH, or the in-memory fake) offers.

Everything above this layer (apply, rollout, exec, logs, verify, the CLI) talks to a
``Connector`` and never to Fabric or paramiko, so the same code runs over SSH
(``deployer.remote.ssh.Remote``) and against ``deployer.remote.fake.FakeConnector``
in-process. Commands are argument tuples; joining them for a shell happens in the
implementation, at the edge.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from deployer.errors import DeployerError

if TYPE_CHECKING:
    from deployer.config.model import Host
    from deployer.secret import Secret

Command = tuple[str, ...]


@dataclass(frozen=True)
class CommandResult:
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def brief(argv: Command) -> str:
    """A command for an error message: inline scripts shown as <script>, long lists cut."""
    shown = ["<script>" if "\n" in arg else arg for arg in argv]
    text = shlex.join(shown)
    return text if len(text) <= 300 else text[:297] + "..."


class ConnectError(DeployerError):
    pass


class CommandFailed(DeployerError):
    def __init__(self, host: str, argv: Command, result: CommandResult) -> None:
        self.host, self.argv, self.result = host, argv, result
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-5:]
        super().__init__(f"{brief(argv)} exited {result.code}" + (": " + " | ".join(detail) if detail else ""))


class Stream(Protocol):
    """A running command's combined output, read as it arrives (paramiko's Channel has this shape)."""

    def recv(self, size: int) -> bytes: ...

    def recv_exit_status(self) -> int: ...

    def close(self) -> None: ...


class Connector(Protocol):
    """One host's connection. Not thread-safe: one per host."""

    host: Host
    secrets: tuple[Secret, ...]

    def open(self) -> None:
        """Connect; raises ``ConnectError`` with a message naming the host."""

    def close(self) -> None: ...

    def run(self, argv: Command, *, check: bool = True, timeout: float | None = None, mask: bool = True,
            on_line: Callable[[str], None] | None = None) -> CommandResult:
        """Run ``argv`` (as root when the host says ``become``); secrets masked unless ``mask=False``.

        ``on_line`` gets each output line as it arrives, always masked. ``check``
        raises ``CommandFailed`` on a non-zero exit.
        """

    def open_stream(self, argv: Command) -> Stream:
        """Start ``argv`` and return its unread output (``logs --follow``); the caller closes it."""

    def upload(self, local: Path | bytes, name: str) -> PurePosixPath:
        """Put a local file (or bytes) into a private staging dir on the host; its path there."""

    def download(self, path: PurePosixPath) -> bytes:
        """A file's bytes, as the SSH user reads it."""

    def cleanup(self) -> None:
        """Remove the staging dir."""


ConnectorFactory = Callable[["Host", "tuple[Secret, ...]"], Connector]


def ssh_connector(host: Host, secrets: tuple[Secret, ...]) -> Connector:
    """The real one: an SSH connection (imported here, since fabric is slow to load for ``check``)."""
    from deployer.remote.ssh import Remote

    return Remote(host, secrets=secrets)
