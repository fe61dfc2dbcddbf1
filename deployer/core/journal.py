"""``deployer logs``, the pure part: which logs a host has, the commands that read them,
and parsers that turn their output into timestamped lines to merge across hosts. No I/O.

The app's own output goes to the journal of its units (gunicorn, uWSGI) and is read as
``journalctl --output=json``, whose ``__REALTIME_TIMESTAMP`` (microseconds, UTC) orders
lines across hosts. Under mod_wsgi the app runs inside Apache: there is no app unit and
its output lands in Apache's error log. Proxy error logs are plain files (``tail``); their
own timestamps are in the host's local time, so each read starts with ``date +%z``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from deployer.core.commands import Command, sh
from deployer.errors import UsageError
from deployer.config.model import App, Host
from deployer.core import jobs
from deployer.stacks import LogSource, proxy_of, server_of

JOURNAL_FIELDS = "MESSAGE,SYSLOG_IDENTIFIER,_COMM,_PID"
SINCE_RE = re.compile(r"[A-Za-z0-9@+][A-Za-z0-9 :.+_-]{0,63}")


Source = LogSource  # one log on one host: a set of journal units or one file


def host_sources(app: App, host: Host, proxy: bool) -> tuple[tuple[Source, ...], str | None]:
    """The logs to read on ``host`` and, when the app's output is not in units of its own, a note saying where."""
    front = proxy_of(host)
    sources, note = server_of(host).log_sources(app, front)
    sources += job_sources(app)
    if proxy:
        sources += tuple(s for s in front.log_sources() if all(s.file != have.file for have in sources))
    return tuple(sources), note


def job_sources(app: App) -> tuple[Source, ...]:
    """The journals of the app's processes and scheduled jobs: their units are the same on every stack."""
    named = [(p.name, jobs.unit(app, p.name)) for p in app.processes] + [(t.name, jobs.unit(app, t.name)) for t in app.timers]
    return tuple(Source(f"{app.name}-{name}", units=(unit,)) for name, unit in named)


def check_since(value: str | None) -> str | None:
    """journalctl's ``--since`` syntax, kept to characters it uses and never an option."""
    if value is None:
        return None
    if value.startswith("-"):
        raise UsageError(f"--since {value!r}: write a relative time as '1h ago' or '10 min ago', not with a leading '-'")
    if not SINCE_RE.fullmatch(value):
        raise UsageError(f"--since {value!r}: expected a journalctl time like '2026-01-31 12:00', 'today', "
                         "'yesterday' or '30 min ago' (letters, digits, ' :.+_-', at most 64)")
    return value


def read_command(source: Source, lines: int, since: str | None, follow: bool) -> Command:
    """The command that prints ``source``'s last ``lines`` lines (and, following, every new one)."""
    if source.file is None:
        return ("journalctl", "--no-pager", "--quiet", "--output=json", f"--output-fields={JOURNAL_FIELDS}",
                f"--lines={lines}", *(f"--unit={u}" for u in source.units),
                *((f"--since={since}",) if since else ()), *(("--follow",) if follow else ()))
    return sh('date +%z && exec tail "$@"', "-n", lines, *(("-F",) if follow else ()), "--", source.file)


# Runs a follower ("$@") until the SSH channel's stdin closes, then stops it: closing the
# channel (Ctrl-C, or a dropped connection) leaves no journalctl or tail on the host. A
# background list's stdin is /dev/null in sh, so the watcher reads the channel through fd 3.
STOP_ON_CLOSE = (
    'exec 3<&0\n'
    '"$@" 3<&- &\n'
    'pid=$!\n'
    '{ cat >/dev/null; kill "$pid"; } <&3 >/dev/null 2>&1 &\n'
    'exec 3<&-\n'
    'wait "$pid"\n'
)


def stop_on_close(argv: Command) -> Command:
    return sh(STOP_ON_CLOSE, *argv)


@dataclass(frozen=True)
class LogLine:
    time: int  # microseconds since the epoch, UTC
    host: str
    source: str
    text: str


class LineParser:
    """Turns one source's output, line by line, into ``LogLine``s.

    A line without a timestamp of its own (a traceback's continuation, a message
    from ``tail``) takes the time of the line before it, so it stays in place.
    """

    def __init__(self, host: str, source: Source) -> None:
        self.host = host
        self.source = source
        self.offset: timezone | None = None if source.file else timezone.utc
        self.last = 0

    def feed(self, raw: str) -> list[LogLine]:
        raw = raw.rstrip("\r\n")
        if self.offset is None:
            self.offset = parse_offset(raw)
            if self.offset is not None:
                return []
            self.offset = timezone.utc
        if self.source.file is None:
            parsed = parse_journal_entry(raw)
        else:
            parsed = parse_error_log_line(raw, self.offset, self.source.label)
        if parsed is None:
            return [LogLine(self.last, self.host, self.source.label, raw)] if raw.strip() else []
        time, name, message = parsed
        self.last = time
        return [LogLine(time, self.host, name, part) for part in message.splitlines() or [""]]


def parse_offset(text: str) -> timezone | None:
    """``date +%z`` output (``+0100``) as a timezone."""
    match = re.fullmatch(r"([+-])(\d\d)(\d\d)", text.strip())
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def parse_journal_entry(text: str) -> tuple[int, str, str] | None:
    """One ``journalctl --output=json`` line: (time, ``ident[pid]``, message), or None."""
    try:
        entry = json.loads(text)
        time = int(entry["__REALTIME_TIMESTAMP"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(entry, dict):
        return None
    message = entry.get("MESSAGE")
    if isinstance(message, list):  # not valid UTF-8: journald hands over the bytes
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    ident = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM") or "?"
    pid = entry.get("_PID")
    return time, f"{ident}[{pid}]" if pid else str(ident), str(message or "")


NGINX_TIME_RE = re.compile(r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) (.*)")
APACHE_TIME_RE = re.compile(r"\[\w{3} (\w{3} \d\d \d\d:\d\d:\d\d)(?:\.(\d{1,6}))? (\d{4})\] (.*)")


def parse_error_log_line(text: str, offset: timezone, label: str) -> tuple[int, str, str] | None:
    """An nginx or Apache error log line: (time, label, the rest after its timestamp), or None."""
    match = NGINX_TIME_RE.fullmatch(text)
    if match:
        stamp, rest = match.groups()
        moment = datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S").replace(tzinfo=offset)
        return _micros(moment), label, rest
    match = APACHE_TIME_RE.fullmatch(text)
    if match:
        stamp, fraction, year, rest = match.groups()
        try:
            moment = datetime.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S").replace(tzinfo=offset)
        except ValueError:
            return None
        return _micros(moment) + int((fraction or "0").ljust(6, "0")), label, rest
    return None


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


def parse_output(host: str, source: Source, text: str) -> list[LogLine]:
    parser = LineParser(host, source)
    return [line for raw in text.splitlines() for line in parser.feed(raw)]


def merge(per_host: Iterable[list[LogLine]]) -> list[LogLine]:
    """Every host's lines in time order; equal times keep host order, then each host's own order."""
    return sorted((line for lines in per_host for line in lines), key=lambda line: line.time)


def stamp(time: int) -> str:
    """UTC with milliseconds; a line seen before any timestamp (an error from tail) gets '-'."""
    if time <= 0:
        return "-".ljust(24)
    moment = datetime.fromtimestamp(time // 1_000_000, timezone.utc).replace(microsecond=time % 1_000_000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def format_line(line: LogLine, width: int) -> str:
    """``host  time  source: text``, the host padded to ``width`` so columns line up."""
    return f"{line.host:<{width}}  {stamp(line.time)}  {line.source}: {line.text}"
