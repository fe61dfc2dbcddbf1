"""``deployer logs``, the I/O part: read each host's logs over its connection, merge, print.

What to read and how to parse it is in ``deployer.core.journal``; this module only runs those
commands (in parallel, one connection per host) and, with ``--follow``, reads one channel
per log per host until Ctrl-C or SIGTERM, then closes every channel and connection.
"""

from __future__ import annotations

import queue
import signal
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deployer.core import journal
from deployer.config.model import Host, Inventory
from deployer.console import echo
from deployer.secret import mask_text

if TYPE_CHECKING:  # imported when a command runs: fabric is slow to load for `check`
    from deployer.remote.connector import Connector
    from deployer.run.rollout import Session

DEFAULT_LINES = 50


@dataclass
class Collected:
    """Every host's lines, the notes to show first, and the hosts that could not be read."""

    lines: dict[str, list[journal.LogLine]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)


def fetch(session: Session, inventory: Inventory, lines: int, since: str | None, proxy: bool) -> Collected:
    """The last ``lines`` lines of each log on every connected host."""
    from deployer.remote.connector import brief

    out = Collected()

    def one(remote: Connector) -> None:
        name = remote.host.name
        sources, note = journal.host_sources(inventory.app, remote.host, proxy)
        if note:
            out.notes[name] = note
        collected: list[journal.LogLine] = []
        for source in sources:
            argv = journal.read_command(source, lines, since, follow=False)
            result = remote.run(argv, check=False, mask=False)
            if not result.ok:
                detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
                out.errors.setdefault(name, []).append(f"{source.label}: {brief(argv)} exited {result.code}: {' | '.join(detail)}")
            collected += journal.parse_output(name, source, result.stdout)
        out.lines[name] = collected

    session.each(one, catch=())
    return out


@dataclass(frozen=True)
class Ended:
    """A follower that stopped by itself (bad --since, unreadable file...), with its exit code."""

    host: str
    label: str
    code: int


class Follower:
    """One channel per log per host, each read by its own thread into one queue of printable lines."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.items: queue.Queue[str | Ended | None] = queue.Queue()
        self.channels: list = []
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.failed = False

    def start(self, remote: Connector, source: journal.Source, lines: int, since: str | None) -> None:
        argv = journal.stop_on_close(journal.read_command(source, lines, since, follow=True))
        channel = remote.open_stream(argv)
        self.channels.append(channel)
        thread = threading.Thread(target=self._read, args=(remote, source, channel), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _read(self, remote: Connector, source: journal.Source, channel) -> None:  # noqa: ANN001
        parser = journal.LineParser(remote.host.name, source)
        pending = b""
        try:
            while chunk := channel.recv(65536):
                *complete, pending = (pending + chunk).split(b"\n")
                for raw in complete:
                    self._put(remote, parser.feed(raw.decode("utf-8", "replace")))
            self._put(remote, parser.feed(pending.decode("utf-8", "replace")))
            if not self.stopping.is_set():
                self.items.put(Ended(remote.host.name, source.label, channel.recv_exit_status()))
        except OSError:
            pass  # the channel was closed under us: we are stopping
        finally:
            self.items.put(None)

    def _put(self, remote: Connector, lines: list[journal.LogLine]) -> None:
        for line in lines:
            self.items.put(mask_text(journal.format_line(line, self.width), remote.secrets))

    def run(self) -> None:
        """Print lines as they come until every stream ends (or Ctrl-C/SIGTERM raises here)."""
        running = len(self.threads)
        while running:
            try:
                item = self.items.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                running -= 1
            elif isinstance(item, Ended):
                self.failed |= item.code != 0
                echo(f"{item.host}: {item.label}: stopped (exit {item.code})", err=True)
            else:
                echo(item)

    def close(self) -> None:
        """Close every channel (EOF first): on the host, ``journal.stop_on_close`` stops each follower."""
        self.stopping.set()
        for channel in self.channels:
            try:
                channel.close()
            except (OSError, EOFError):
                pass
        for thread in self.threads:
            thread.join(timeout=5)


def stream(session: Session, inventory: Inventory, hosts: tuple[Host, ...], lines: int, since: str | None,
           proxy: bool) -> bool:
    """Follow every log until Ctrl-C/SIGTERM (or until all stop by themselves); False if one failed."""
    follower = Follower(width=max(len(h.name) for h in hosts))
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM ends it as Ctrl-C does
    try:
        for remote in session.connected():
            sources, note = journal.host_sources(inventory.app, remote.host, proxy)
            if note:
                echo(f"{remote.host.name}: {note}", err=True)
            for source in sources:
                try:
                    follower.start(remote, source, lines, since)
                except Exception as exc:  # noqa: BLE001 - one host's channel failing must not stop the others
                    follower.failed = True
                    echo(f"{remote.host.name}: {source.label}: error: {exc}", err=True)
        follower.run()
    except KeyboardInterrupt:
        pass
    finally:
        follower.close()
        signal.signal(signal.SIGTERM, previous)
    return not follower.failed


def show(collected: Collected, session: Session, hosts: tuple[Host, ...]) -> None:
    width = max(len(h.name) for h in hosts)
    for name, note in collected.notes.items():
        echo(f"{name}: {note}", err=True)
    for line in journal.merge(collected.lines.get(h.name, []) for h in hosts):
        echo(mask_text(journal.format_line(line, width), session.remotes[line.host].secrets))
    for name, errors in collected.errors.items():
        for error in errors:
            echo(f"{name}: error: {mask_text(error, session.remotes[name].secrets)}", err=True)
