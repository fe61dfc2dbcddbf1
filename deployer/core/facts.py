"""What a host looks like now, gathered in ONE round trip, and parsed purely.

A fact is a command plus a parser (as in pyinfra). All facts a deploy needs
come from one small Python program run on the host (``deployer/hostside/facts.py``),
so a no-change deploy costs a single SSH command per host. The parser is pure and tested with
recorded outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from deployer import hostside
from deployer.core.layout import Layout

Command = tuple[str, ...]


@dataclass(frozen=True)
class Release:
    id: str
    bad: bool = False
    venv: str | None = None


@dataclass(frozen=True)
class LiveFile:
    sha256: str
    mode: int
    content: str


@dataclass(frozen=True)
class Unit:
    active: str
    enabled: str
    pid: int = 0


@dataclass(frozen=True)
class Facts:
    python: str
    disk_free_mb: int
    packages: dict[str, bool]
    user: dict | None
    current: str | None
    releases: tuple[Release, ...]
    venvs: tuple[str, ...]
    lock: dict | None
    files: dict[str, LiveFile | None] = field(default_factory=dict)
    links: dict[str, str | None] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)
    serving: dict[str, str] = field(default_factory=dict)
    managed_units: tuple[str, ...] = ()  # the app's process and timer units installed on the host
    # the interpreter's implementation, CPU and C library: wheels are resolved for them
    platform: dict = field(default_factory=dict)

    @property
    def python_version(self) -> tuple[int, int]:
        major, minor = self.python.split(".")[:2]
        return int(major), int(minor)

    def release(self, release_id: str | None) -> Release | None:
        return next((r for r in self.releases if r.id == release_id), None)

    def missing_packages(self) -> tuple[str, ...]:
        return tuple(name for name, ok in self.packages.items() if not ok)


# What a plan is made from. Free space, pids, what serves and the lock itself change on
# their own (a crash-looping app flips its unit's active state): comparing them would
# refuse the very deploy that fixes it.
PLANNED_ON = ("python", "platform", "packages", "user", "current", "releases", "venvs", "files", "links", "managed_units")


def drift(planned: Facts, now: Facts) -> tuple[str, ...]:
    """The facts a plan depends on that differ now: another deploy ran between the plan and the lock."""
    changed = [name for name in PLANNED_ON if getattr(planned, name) != getattr(now, name)]
    enabled = lambda facts: {name: unit.enabled for name, unit in facts.units.items()}  # noqa: E731
    if enabled(planned) != enabled(now):
        changed.append("units")
    return tuple(changed)


def facts_command(
    layout: Layout,
    *,
    user: str,
    packages: tuple[str, ...],
    files: tuple[PurePosixPath, ...],
    links: tuple[PurePosixPath, ...],
    units: tuple[str, ...],
    process_markers: tuple[str, ...] = (),
) -> Command:
    query = {
        "app": layout.app,
        "app_root": str(layout.app_root),
        "user": user,
        "packages": list(packages),
        "files": [str(p) for p in files],
        "links": [str(p) for p in links],
        "units": list(units),
        "process_markers": list(process_markers),
    }
    return hostside.command("facts", json.dumps(query, separators=(",", ":")))


def parse_facts(stdout: str) -> Facts:
    data = json.loads(stdout)
    return Facts(
        python=data["python"],
        disk_free_mb=int(data["disk_free_mb"]),
        packages=dict(data["packages"]),
        user=data["user"],
        current=data["current"],
        releases=tuple(Release(**r) for r in data["releases"]),
        venvs=tuple(data["venvs"]),
        lock=data["lock"],
        files={k: LiveFile(**v) if v else None for k, v in data["files"].items()},
        links=dict(data["links"]),
        units={k: Unit(**v) for k, v in data["units"].items()},
        serving=dict(data["serving"]),
        managed_units=tuple(data.get("managed_units", ())),
        platform=dict(data.get("platform") or {}),
    )


def facts_failure(code: int, stderr: str) -> str:
    """Why the facts program failed, for an error message: its exit code and last line on stderr.

    Never its stdout: that carries the live config files, the env file's old secrets among them.
    """
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    return f"exit {code}" + (f": {last[-200:]}" if last else "")


def snapshot_command(layout: Layout, release_id: str) -> Command:
    """A release's config snapshot (what a rollback installs again): see deployer.hostside.snapshot."""
    return hostside.command("snapshot", str(layout.release(release_id) / ".deployer" / "config"))


def log_command(layout: Layout, lines: int = 200) -> Command:
    return ("tail", "-n", str(lines), str(layout.state_dir / "releases.log"))


def parse_log(stdout: str) -> list[dict]:
    records = []
    for line in stdout.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
