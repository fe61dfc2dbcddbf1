"""Background processes and scheduled jobs (``app.processes``, ``app.timers``) as systemd units. Pure.

Every stack gets the same units: they run from the app's release, venv, env
file and sandbox, independent of the app server (under mod_wsgi too, where
Apache runs the app). Each unit file carries a marker line naming the app and
the kind of unit; the facts program finds the units of an app on a host by it,
so a unit the inventory no longer lists is found and removed, and another
app's ``<app>-<name>`` unit is never taken for this app's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from deployer.stacks.base import SYSTEMD_DIR

if TYPE_CHECKING:
    from deployer.config.model import App

PROCESS, ONESHOT, TIMER = "process", "job", "timer"
MARKER = "# deployer-unit: app={app} kind={kind}"
MARKER_RE = re.compile(r"# deployer-unit: app=([a-z][a-z0-9-]*) kind=(process|job|timer)")
# systemd.time(7) calendar events: words (daily, Mon..Sun, weekly), digits, * , . : / ~ - + and single spaces.
CALENDAR_RE = re.compile(r"[A-Za-z0-9*,.:/~+-]+( [A-Za-z0-9*,.:/~+-]+){0,5}", re.ASCII)
TEMPLATES = {PROCESS: "systemd/process.service.j2", ONESHOT: "systemd/job.service.j2", TIMER: "systemd/job.timer.j2"}


def unit(app: App, name: str, suffix: str = "service") -> str:
    """``<app>-<name>.service`` (or ``.timer``)."""
    return f"{app.name}-{name}.{suffix}"


@dataclass(frozen=True)
class JobFile:
    """One unit file to render: where, from which template, and the values only it has."""

    path: PurePosixPath
    kind: str
    template: str
    name: str
    argv: tuple[str, ...]
    timeout: int
    on_calendar: str = ""


def job_files(app: App) -> tuple[JobFile, ...]:
    """The unit files of the app's processes and timers, in inventory order."""
    files = [JobFile(SYSTEMD_DIR / unit(app, p.name), PROCESS, TEMPLATES[PROCESS], p.name, p.argv, p.stop_timeout)
             for p in app.processes]
    for t in app.timers:
        files.append(JobFile(SYSTEMD_DIR / unit(app, t.name), ONESHOT, TEMPLATES[ONESHOT], t.name, t.argv, t.timeout,
                             t.on_calendar))
        files.append(JobFile(SYSTEMD_DIR / unit(app, t.name, "timer"), TIMER, TEMPLATES[TIMER], t.name, t.argv,
                             t.timeout, t.on_calendar))
    return tuple(files)


def unit_word(arg: str) -> str:
    """One ExecStart word that systemd hands on as exactly ``arg``.

    Double-quoted with C escapes for backslash, quote, tab and newline; ``$``
    doubled (no env expansion: a ``$SECRET`` argument must not put the secret
    into /proc/<pid>/cmdline) and ``%`` doubled (no specifier expansion).
    """
    escaped = (arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
               .replace("$", "$$").replace("%", "%%"))
    return f'"{escaped}"'


def exec_words(argv: tuple[str, ...]) -> str:
    """The ExecStart command line: ``/usr/bin/env`` finds argv[0] on the unit's PATH (venv first)."""
    return " ".join(("/usr/bin/env", "--", *map(unit_word, argv)))


def calendar(spec: str) -> str:
    """``spec`` if it reads as a calendar event (schema's allowlist, checked again before rendering)."""
    from deployer.core.guard import UnsafeValue

    if not CALENDAR_RE.fullmatch(spec):
        raise UnsafeValue("on_calendar", spec)
    return spec


@dataclass(frozen=True)
class JobUnits:
    """The app's process services, oneshot job services and timers that a set of unit files defines."""

    processes: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    timers: tuple[str, ...] = ()
    calendars: tuple[str, ...] = ()  # the timers' OnCalendar values, for systemd-analyze calendar

    @property
    def enabled(self) -> tuple[str, ...]:
        """What ``enable --now`` starts: processes and timers (a timer starts its job)."""
        return self.processes + self.timers

    @property
    def all(self) -> tuple[str, ...]:
        return self.processes + self.jobs + self.timers


def kind_of(app_name: str, content: str) -> str | None:
    """The kind of an app's job unit from its marker line; None for any other file (another app's too)."""
    for line in content.splitlines()[:3]:
        match = MARKER_RE.fullmatch(line.strip())
        if match and match.group(1) == app_name:
            return match.group(2)
    return None


def units_of(app_name: str, files) -> JobUnits:  # noqa: ANN001 - RenderedFile or anything with .path/.content
    """The job units among ``files`` (rendered now, or a release's snapshot for a rollback)."""
    found: dict[str, list[str]] = {PROCESS: [], ONESHOT: [], TIMER: []}
    calendars = []
    for file in files:
        if file.path.parent != SYSTEMD_DIR:
            continue
        kind = kind_of(app_name, file.content)
        if kind:
            found[kind].append(file.path.name)
            if kind == TIMER:
                calendars += [line.split("=", 1)[1] for line in file.content.splitlines() if line.startswith("OnCalendar=")]
    return JobUnits(tuple(found[PROCESS]), tuple(found[ONESHOT]), tuple(found[TIMER]), tuple(calendars))
