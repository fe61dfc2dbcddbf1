"""Why a unit, hook or health gate failed, the pure part: which log to read, and its cause line.

A failed deploy should say why without another command: the error carries the last
lines of the failing unit's journal (Apache's error log under mod_wsgi, where Apache
runs the app) and the one line among them that names the cause. That line is
rarely the last: a hook that cannot import its app ends in click's ``Error: No such
command 'db'.`` twelve lines below the ``ModuleNotFoundError``. No I/O here; the
reading is ``deployer.run.failure_report``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deployer.config.model import App, Host
from deployer.core.commands import Command, sh
from deployer.core.render import app_units
from deployer.stacks import proxy_of

TAIL_LINES = 20

# Lines that name a cause outright, wherever they sit in the tail; the first pattern
# that matches any line wins, its last such line is taken.
CAUSES = tuple(re.compile(p) for p in (
    r"unrecognized arguments",
    r"Read-only file system",
    r"ModuleNotFoundError|No module named",
    r"ImportError",
    r"Permission denied",
    r"Address already in use",
    r"SyntaxError",
    r"UnicodeEncodeError|UnicodeDecodeError",
    r"Failed to exec Python script file",
    r"Failed at step \w+",
))
# The last line of a Python traceback: "pkg.SomeError: message" (or a bare name).
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b(?::.*)?$")
ERROR_LINE = re.compile(r"\b(?:Error|error|ERROR|FATAL|fatal|Fatal)\b:")
# What journalctl's short output, Apache's error log and systemd put before a message.
PREFIXES = (
    re.compile(r"^(?:\[[^\]]*\]\s*)+"),  # Apache: [time] [wsgi:error] [pid 1:tid 2] [remote a:b]
    re.compile(r"^\w{3} \d\d \d\d:\d\d:\d\d \S+ [^:]+: "),  # journalctl --output=short
)


@dataclass(frozen=True)
class FailureLog:
    """The tail of the log that says why, and its cause line (None when no line names one)."""

    source: str  # e.g. "journal of hello.service", "/var/log/apache2/error.log", "hook output"
    lines: tuple[str, ...] = ()
    cause: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, "cause": self.cause, "lines": list(self.lines)}


def message(line: str) -> str:
    """``line`` without the timestamps and tags a log put before it."""
    text = line.rstrip()
    for prefix in PREFIXES:
        text = prefix.sub("", text, count=1)
    return text.strip()


def tail(text: str, lines: int = TAIL_LINES) -> tuple[str, ...]:
    """The last ``lines`` non-blank lines of ``text``."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return tuple(kept[-lines:])


def cause_line(lines: Sequence[str]) -> str | None:
    """The one line that says why: a known cause, else a traceback's last line, else an ``Error:`` line."""
    messages = [message(line) for line in lines]
    for pattern in CAUSES:
        found = [m for m in messages if pattern.search(m)]
        if found:  # the exception's own line over a logger repeating its message
            named = [m for m in found if EXCEPTION_LINE.match(m) or re.match(r"^\w+(?:Error|Exception)\b", m)]
            return (named or found)[-1]
    exceptions = [m for m in messages if EXCEPTION_LINE.match(m)]
    if exceptions:
        return exceptions[-1]
    errors = [m for m in messages if ERROR_LINE.search(m)]
    return errors[-1] if errors else None


def explain(source: str, text: str, lines: int = TAIL_LINES) -> FailureLog:
    """``text``'s tail and cause line: the whole text is searched, only the tail is kept.

    When the cause sits above the tail (gunicorn prints its arbiter's own traceback after the
    worker's ``ModuleNotFoundError``), the lines kept are those that end with the cause: the
    traceback that leads to it says more than what followed.
    """
    searched = tail(text, max(lines, 200))
    cause = cause_line(searched)
    shown = searched[-lines:]
    if cause is not None and all(message(line) != cause for line in shown):
        end = max(i for i, line in enumerate(searched) if message(line) == cause) + 1
        shown = searched[max(0, end - lines):end]
    return FailureLog(source, shown, cause)


def log_source(app: App, host: Host) -> str:
    units = service_units(app, host)
    return f"journal of {', '.join(units)}" if units else str(proxy_of(host).error_log)


def service_units(app: App, host: Host) -> tuple[str, ...]:
    return tuple(u for u in app_units(app, host) if u.endswith(".service"))


def log_command(app: App, host: Host, lines: int = 200) -> Command:
    """The last ``lines`` lines of the app's own log: its services' journal, else Apache's error log."""
    units = service_units(app, host)
    if units:  # --sync first: what the unit printed as it died may not be in the journal yet
        return sh('journalctl --sync 2>/dev/null; exec journalctl "$@"', "--no-pager", "--quiet", "--output=cat",
                  f"--lines={lines}", *(f"--unit={u}" for u in units))
    return sh('exec tail -n "$1" -- "$2"', lines, proxy_of(host).error_log)  # the app runs inside the proxy


def with_response(log: FailureLog, health_output: str) -> FailureLog:
    """A failed health check's last answer (``HTTP 500: <last line of the body>``) first, when it says more."""
    answer = health_output.strip().splitlines()[-1:] if health_output.strip() else []
    lines: Iterable[str] = (*log.lines, *(f"health: {a}" for a in answer))
    cause = log.cause or (answer[0] if answer else None)
    return FailureLog(log.source, tuple(lines)[-TAIL_LINES:], cause)
