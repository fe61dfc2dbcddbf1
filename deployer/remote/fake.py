"""An in-memory host behind the ``Connector`` protocol: every command recorded, answered from a scripted state.

For running deploy, plan, rollback, status, releases, unlock, exec, logs and verify
in-process (``deployer.cli.common.Wiring(connect=fleet.connect)``). The fake knows
the commands deployer sends by their shape (the same builders in
``deployer.core.commands``, the host programs by their text) and keeps what they do
to the host in ``HostState``: the lock, releases and ``current``, installed files
and their backups, links, unit states, which release the app processes run, the
release log. What it cannot know (a health answer, the verify probe, a command's
output, a checker that refuses a config) is scripted: fields of ``HostState``, or
``HostState.answer`` for any command. A command it does not know exits 127, so a
test notices a new command rather than passing over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from deployer.remote.connector import Command, CommandFailed, CommandResult, ConnectError
from deployer.remote.fake_shell import FakeFile, FakeRelease, Shell

__all__ = ["FakeFile", "FakeRelease", "HostState", "FakeConnector", "FakeFleet", "FakeStream"]


@dataclass
class HostState:
    """One fake host. Mutable: commands change it as they would change the real one."""

    python: str = "3.11.2"
    platform: dict = field(default_factory=lambda: {"implementation": "cpython", "machine": "x86_64",
                                                    "libc": ["glibc", "2.36"]})
    disk_free_mb: int = 5000
    missing_packages: set[str] = field(default_factory=set)
    user: dict | None = None
    files: dict[str, FakeFile] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    releases: dict[str, FakeRelease] = field(default_factory=dict)
    current: str | None = None
    venvs: set[str] = field(default_factory=set)
    lock: str | None = None  # the lock's info file, as take_lock wrote it
    units: dict[str, dict] = field(default_factory=dict)  # name -> {"active", "enabled", "pid"}
    running: dict[str, str] = field(default_factory=dict)  # unit (or "daemons") -> the release current was at its (re)start
    log: list[str] = field(default_factory=list)  # releases.log lines
    journal: dict[str, str] = field(default_factory=dict)  # unit -> journalctl --output=json lines
    health: CommandResult = CommandResult(0, "200\n", "")
    probe: dict | None = None  # what the verify probe reports (None: the probe fails)
    in_release: Callable[[Command], tuple[int, str]] = lambda argv: (0, "")  # exec and hooks: argv -> code, output
    unreachable: str | None = None  # open() fails with this
    answers: list[tuple[Callable[[Command], bool], CommandResult]] = field(default_factory=list)
    calls: list[Command] = field(default_factory=list)
    uploads: dict[str, bytes | Path] = field(default_factory=dict)
    opened: int = 0
    closed: int = 0

    def answer(self, when: Callable[[Command], bool], code: int = 0, stdout: str = "", stderr: str = "") -> None:
        """Answer every command ``when`` picks with this result, before anything else is consulted."""
        self.answers.append((when, CommandResult(code, stdout, stderr)))

    def sent(self, predicate: Callable[[Command], bool]) -> list[Command]:
        return [argv for argv in self.calls if predicate(argv)]


class FakeStream:
    """A finished command's output, read as ``logs --follow`` reads a channel."""

    def __init__(self, data: bytes, code: int = 0) -> None:
        self.data, self.code, self.closed = data, code, False

    def recv(self, size: int) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def recv_exit_status(self) -> int:
        return self.code

    def close(self) -> None:
        self.closed = True


class FakeConnector:
    """The ``Connector`` of a ``HostState``: what the SSH ``Remote`` does, in memory."""

    def __init__(self, host, secrets: tuple = (), state: HostState | None = None) -> None:  # noqa: ANN001
        self.host, self.secrets = host, secrets
        self.state = state if state is not None else HostState()
        self.shell = Shell(self.state)

    def open(self) -> None:
        if self.state.unreachable:
            raise ConnectError(f"{self.host.name}: cannot connect to {self.host.address}:{self.host.ssh_port}: "
                               f"{self.state.unreachable}")
        self.state.opened += 1

    def close(self) -> None:
        self.state.closed += 1

    def run(self, argv: Command, *, check: bool = True, timeout: float | None = None, mask: bool = True,
            on_line: Callable[[str], None] | None = None) -> CommandResult:
        from deployer.secret import mask_text

        argv = tuple(str(a) for a in argv)
        self.state.calls.append(argv)
        raw = next((result for when, result in self.state.answers if when(argv)), None) or self.shell.run(argv)
        if on_line is not None:
            for line in (raw.stdout + raw.stderr).splitlines():
                on_line(mask_text(line, self.secrets))
        result = CommandResult(raw.code, mask_text(raw.stdout, self.secrets) if mask else raw.stdout,
                               mask_text(raw.stderr, self.secrets))
        if check and not result.ok:
            raise CommandFailed(self.host.name, argv, result)
        return result

    def open_stream(self, argv: Command) -> FakeStream:
        result = self.run(argv, check=False, mask=False)
        return FakeStream((result.stdout + result.stderr).encode(), result.code)

    def upload(self, local: Path | bytes, name: str) -> PurePosixPath:
        remote = PurePosixPath("/tmp/deployer.fake") / name
        self.state.uploads[str(remote)] = local
        return remote

    def download(self, path: PurePosixPath) -> bytes:
        file = self.state.files.get(str(path))
        if file is None:
            raise FileNotFoundError(str(path))
        return file.content.encode()

    def cleanup(self) -> None:
        self.state.uploads.clear()


class FakeFleet:
    """Fake hosts by name; ``connect`` is the ``ConnectorFactory`` to wire into a command."""

    def __init__(self, **states: HostState) -> None:
        self.states = states

    def __getitem__(self, name: str) -> HostState:
        return self.states.setdefault(name, HostState())

    def connect(self, host, secrets: tuple = ()) -> FakeConnector:  # noqa: ANN001
        return FakeConnector(host, secrets, self[host.name])
