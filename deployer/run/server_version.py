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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deployer.artifact.release import parse_wheel_name, requirements_files
from deployer.config.model import App, Host
from deployer.stacks import AppServer, server_of

REQUIREMENT_RE = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)")


def normal_name(name: str) -> str:
    """PEP 503: ``Gunicorn``, ``gunicorn_x`` and ``gunicorn.x`` name the same project as ``gunicorn-x``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_pins(app: App) -> dict[str, str | None]:
    """Each project the app's requirements name -> its exact ``==`` version, or None when not pinned so."""
    found: dict[str, str | None] = {}
    requirements = Path(app.source) / app.requirements
    if not requirements.is_file():
        return found
    for path in requirements_files(requirements.resolve()):
        for line in path.read_text(encoding="utf-8").splitlines():
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
    """A server the app does not depend on, added at the version deployer was tested with."""

    distribution: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    def note(self) -> str:
        return f"{self.distribution} {self.version} added: the app does not depend on it"


def venv_servers(hosts: Iterable[Host]) -> tuple[AppServer, ...]:
    """The selected hosts' servers that run from the app's virtualenv, each once."""
    servers = {server.name: server for server in map(server_of, hosts) if server.distribution}
    return tuple(servers.values())


def added(app: App, hosts: Iterable[Host]) -> tuple[Added, ...]:
    """The servers deployer installs because the app's requirements do not name them."""
    pins = declared_pins(app)
    return tuple(Added(s.distribution, s.tested_version) for s in venv_servers(hosts)
                 if normal_name(s.distribution) not in pins and s.tested_version)


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
