"""Which version of its app server a release runs, read on the controller.

gunicorn's options differ between versions (``stacks/gunicorn.SETTINGS``), so the
configs are rendered for the version the release installs: the wheel set's (deploy,
plan), or the app's exact ``==`` pin when there is no wheel set yet (``render``,
before facts). An app that does not depend on its server gets the version deployer
was tested with added (``added_requirements``), and ``plan`` says so.

The two readers of the artifact's side (``declared_pins``, ``wheel_versions``) are the
only places that know how requirements and wheel names look.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass

from deployer.artifact.dependencies import detect, normal_name
from deployer.artifact.manifest import SourceError, parse_wheel_name
from deployer.config.model import App, Host
from deployer.stacks import AppServer, server_of

REQUIREMENT_RE = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)")


def declared_pins(app: App) -> dict[str, str | None]:
    """Each project the app declares -> its exact version (``==`` pin, or uv.lock's), None when not pinned.

    Read from what ``artifact.dependencies.detect`` finds: requirements files (with their
    ``-r``/``-c`` includes), uv.lock, or ``[project].dependencies`` (dynamic ones: unknown, {}).
    """
    try:
        declared = detect(app)
    except SourceError:
        return {}
    if declared.kind == "uv.lock":
        lock = tomllib.loads(declared.path.read_text(encoding="utf-8"))
        return {normal_name(p["name"]): p.get("version") for p in lock.get("package", ()) if "name" in p}
    if declared.kind == "pyproject":
        return spec_pins(declared.dependencies or ())
    return spec_pins(line for path in declared.inputs for line in path.read_text(encoding="utf-8").splitlines())


def spec_pins(lines: Iterable[str]) -> dict[str, str | None]:
    """Requirement lines or PEP 508 strings -> {project: exact version or None}."""
    found: dict[str, str | None] = {}
    for line in lines:
        line = line.split(" #", 1)[0].split(";", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = REQUIREMENT_RE.fullmatch(line)
        if match:
            name, spec = normal_name(match.group(1)), match.group(2).replace(" ", "").split("--hash", 1)[0]
            pin = re.fullmatch(r"===?([0-9][A-Za-z0-9.+!-]*)", spec)
            found[name] = pin.group(1) if pin and "*" not in spec else found.get(name)
    return found


def wheel_versions(wheel_names: Iterable[str]) -> dict[str, str]:
    """Project -> version in a wheel set (``Artifact.wheel_names``)."""
    return {normal_name(name): version for name, version, *_ in map(parse_wheel_name, wheel_names)}


@dataclass(frozen=True)
class Added:
    """A requirement deployer adds to the app's: its server, or what that server's version needs."""

    requirement: str  # as uv reads it: gunicorn==27.0.1, setuptools<82
    why: str

    def note(self) -> str:
        return f"{self.requirement.replace('==', ' ')} added: {self.why}"


def venv_servers(hosts: Iterable[Host]) -> tuple[AppServer, ...]:
    """The selected hosts' servers that run from the app's virtualenv, each once."""
    servers = {server.name: server for server in map(server_of, hosts) if server.distribution}
    return tuple(servers.values())


def added(app: App, hosts: Iterable[Host]) -> tuple[Added, ...]:
    """What deployer installs beside the app's requirements: a server they do not name (the
    tested version), and what the server's version needs that the app does not declare."""
    hosts = tuple(hosts)
    pins, versions = declared_pins(app), pinned_versions(app, hosts)
    result = []
    for server in venv_servers(hosts):
        if normal_name(server.distribution) not in pins and server.tested_version:
            result.append(Added(f"{server.distribution}=={server.tested_version}", "the app does not depend on it"))
        for requirement, why in server.requirements_for(versions[server.distribution]):
            if normal_name(REQUIREMENT_RE.match(requirement).group(1)) not in pins:
                result.append(Added(requirement, why))
    return tuple(result)


def added_requirements(app: App, hosts: Iterable[Host]) -> tuple[str, ...]:
    return tuple(a.requirement for a in added(app, hosts))


def pinned_versions(app: App, hosts: Iterable[Host]) -> dict[str, str]:
    """Before there is a wheel set: the exact pin, else the tested version (what ``added`` would add)."""
    pins = declared_pins(app)
    return {s.distribution: pins.get(normal_name(s.distribution)) or s.tested_version
            for s in venv_servers(hosts) if s.tested_version}


def installed_versions(wheel_names: Iterable[str], hosts: Iterable[Host]) -> dict[str, str]:
    """The versions the release installs, for the selected hosts' venv servers."""
    have = wheel_versions(wheel_names)
    return {s.distribution: have[normal_name(s.distribution)] for s in venv_servers(hosts)
            if normal_name(s.distribution) in have}
