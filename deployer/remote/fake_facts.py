"""What ``deployer/hostside/facts.py`` would print on a fake host: its answer to one query, from the ``HostState``."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployer.remote.fake import HostState


def facts_of(state: HostState, query: dict) -> dict:
    """The same document as the real program, for exactly what ``query`` asks (files, links, units, markers)."""
    root = query["app_root"]
    def release_dir(key: str) -> str | None:
        return f"{root}/releases/{state.running[key]}" if state.running.get(key) else None

    out = {
        "python": state.python,
        "platform": dict(state.platform),
        "disk_free_mb": state.disk_free_mb,
        "packages": {p: p not in state.missing_packages for p in query["packages"]},
        "user": state.user,
        "current": state.current,
        "releases": [{"id": rid, "bad": r.bad, "venv": r.venv} for rid, r in sorted(state.releases.items())],
        "venvs": sorted(state.venvs),
        "lock": _lock(state),
        "files": {},
        "links": {path: state.links.get(path) for path in query["links"]},
        "units": {},
        "serving": {},
    }
    for path in query["files"]:
        file = state.files.get(path)
        out["files"][path] = None if file is None else {
            "sha256": hashlib.sha256(file.content.encode("utf-8")).hexdigest(), "mode": file.mode,
            "content": file.content}
    for unit in query["units"]:
        info = state.units.get(unit, {"active": "inactive", "enabled": "", "pid": 0})
        out["units"][unit] = dict(info)
        if info["pid"] and info["active"] == "active":
            out["serving"][unit] = (release_dir(unit) or "/") if _runs_in_current(state, unit, root) else "/"
    for marker in query["process_markers"]:
        if release_dir("daemons"):
            out["serving"][marker] = release_dir("daemons")
    return out


def _runs_in_current(state: HostState, unit: str, root: str) -> bool:
    """A unit whose file (as the deploy installed it) starts in ``current``: the app's own."""
    file = state.files.get(f"/etc/systemd/system/{unit}")
    return file is not None and f"WorkingDirectory={root}/current" in file.content


def _lock(state: HostState) -> dict | None:
    import json

    if state.lock is None:
        return None
    try:
        return json.loads(state.lock)
    except ValueError:
        return {"holder": "unknown (unreadable lock info)"}
