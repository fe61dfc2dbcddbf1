"""What each host runs now, read-only: ``status``, ``releases`` and config drift."""

from __future__ import annotations

from datetime import datetime, timezone

from deployer.core.facts import Facts, log_command, parse_log
from deployer.core.layout import Layout
from deployer.core.outcomes import LogResult
from deployer.core.render import RenderedFile


def lock_age(lock: dict | None, now: datetime | None = None) -> str | None:
    if not lock or "since" not in lock:
        return None
    now = now or datetime.now(timezone.utc)
    try:
        since = datetime.strptime(lock["since"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    seconds = int((now - since).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def drift(facts: Facts, files: tuple[RenderedFile, ...]) -> list[str]:
    """Live files whose content differs from what the inventory renders now."""
    out = []
    for file in files:
        live = facts.files.get(str(file.path))
        if live is None:
            out.append(f"{file.path}: missing")
        elif live.content != file.content:
            out.append(f"{file.path}: differs")
        elif live.mode != file.mode:
            out.append(f"{file.path}: mode {live.mode:04o}, expected {file.mode:04o}")
    return out


def host_status(layout: Layout, facts: Facts, files: tuple[RenderedFile, ...], log: list[dict]) -> dict:
    last = next((r for r in reversed(log) if r.get("release") == facts.current and r.get("result") == LogResult.DEPLOYED), None)
    releases_dir = str(layout.releases) + "/"
    serving = {unit: path[len(releases_dir):] for unit, path in facts.serving.items() if path.startswith(releases_dir)}
    return {
        "current": facts.current,
        "deployed_at": last.get("time") if last else None,
        "deployed_by": f"{last.get('user')}@{last.get('controller')}" if last else None,
        "serving": serving,
        "units": {name: f"{u.active}/{u.enabled}" for name, u in facts.units.items()},
        "lock": ({"holder": facts.lock.get("holder"), "pid": facts.lock.get("pid"), "since": facts.lock.get("since"),
                  "age": lock_age(facts.lock)} if facts.lock else None),
        "drift": drift(facts, files),
        "releases": [{"id": r.id, "bad": r.bad, "current": r.id == facts.current} for r in facts.releases],
    }


__all__ = ["host_status", "drift", "lock_age", "log_command", "parse_log"]
