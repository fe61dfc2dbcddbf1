"""What a stack is: the protocol every proxy and app server module fills in. Pure data.

A stack module (``nginx.py``, ``gunicorn.py``, ...) says which templates it
renders to which paths, which packages and units it needs, how its config is
checked and reloaded, where its logs are and which verify checks apply to it.
Everything outside ``deployer/stacks`` asks a stack object instead of testing
its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployer.config.model import App, Host

Command = tuple[str, ...]
SYSTEMD_DIR = PurePosixPath("/etc/systemd/system")


class Check(StrEnum):
    """The real checker that validates a rendered file."""

    SYSTEMD = "systemd"
    NGINX = "nginx"
    APACHE = "apache"


@dataclass(frozen=True)
class FileSpec:
    """A file a stack renders: where it goes, from which template, who checks it."""

    path: PurePosixPath
    template: str
    check: Check | None = None
    tidy: bool = True  # config files: trailing spaces and blank runs removed


@dataclass(frozen=True)
class Link:
    """A link the proxy needs (site enabled, module loaded): path -> target."""

    path: PurePosixPath
    target: str
    enable: Command  # the idempotent command that creates it


@dataclass(frozen=True)
class LogSource:
    """One log on one host: a set of journal units or one file."""

    label: str  # shown before each line of it when no better name is known
    units: tuple[str, ...] = ()
    file: PurePosixPath | None = None


def unit_path(unit: str) -> PurePosixPath:
    return SYSTEMD_DIR / unit


class Proxy:
    """A front proxy: serves HTTP(S), static files, and passes requests to the app server."""

    name: str
    packages: tuple[str, ...]
    service: str  # systemd unit, reloaded after its config changes
    config_root: PurePosixPath  # every file under it is checked by ``check``
    check: Check
    check_argv: Command  # validates the whole live config
    check_label: str  # how a failed check names the tool
    error_log: PurePosixPath

    def site_path(self, app: App) -> PurePosixPath:
        return self.config_root / "sites-available" / f"{app.name}.conf"

    def site_link(self, app: App) -> PurePosixPath:
        return self.config_root / "sites-enabled" / f"{app.name}.conf"

    def files(self, app: App, host: Host, server: AppServer) -> tuple[FileSpec, ...]:
        raise NotImplementedError

    def modules(self, host: Host, server: AppServer) -> tuple[str, ...]:
        """Modules to enable for this host's site and server; () when the proxy has none to enable."""
        return ()

    def confs(self, app: App, server: AppServer) -> tuple[str, ...]:
        """Conf snippets to enable for the server; () when the proxy has none to enable."""
        return ()

    def links(self, app: App, host: Host, server: AppServer) -> tuple[Link, ...]:
        raise NotImplementedError

    def reload(self) -> Command:
        return ("systemctl", "reload-or-restart", self.service)

    def log_sources(self) -> tuple[LogSource, ...]:
        """``deployer logs --proxy``: the proxy's error log."""
        return (LogSource(f"{self.name} error.log", file=self.error_log),)


class AppServer:
    """Runs the app's WSGI callable: in its own systemd units, or inside the proxy (``embedded``)."""

    name: str
    packages: tuple[str, ...] = ()
    proxies: tuple[str, ...]  # proxy names it can run behind (or inside)
    embedded: bool = False  # runs inside the proxy: no units of its own
    proxy_modules: tuple[str, ...] = ()  # embedded: the proxy modules that host it
    verify_checks: tuple[str, ...] = ()  # the server-specific verify checks that apply to it
    distribution: str | None = None  # the PyPI project it runs from in the app's venv; None: Debian's
    tested_version: str | None = None  # the distribution's version deployer adds when the app lacks it
    config_suffix: str | None = None  # the app's own config format (``app.server_config``) it can use
    default_config: str | None = None  # the file it reads from its working directory unless told otherwise

    def own_config(self, app: App) -> str | None:
        """The app's ``server_config`` when it is this server's format (a path inside the app), else None."""
        path = app.server_config
        return path if path is not None and self.config_suffix and path.endswith(self.config_suffix) else None

    def requirements_for(self, version: str) -> tuple[tuple[str, str], ...]:
        """(requirement, why) its ``version`` needs in the venv beyond its own metadata; () for none."""
        return ()

    def context(self, app: App, host: Host, version: str | None) -> dict[str, object]:
        """What this server's templates need beyond the common context; ``version`` is its distribution's."""
        return {}

    def files(self, app: App, host: Host, proxy: Proxy) -> tuple[FileSpec, ...]:
        raise NotImplementedError

    def units(self, app: App) -> tuple[str, ...]:
        """systemd units of the app server, socket first; () when embedded."""
        return ()

    def sockets(self, app: App) -> tuple[str, ...]:
        return ()

    def services(self, app: App) -> tuple[str, ...]:
        """The units restarted on a new release."""
        return ()

    def process_markers(self, app: App) -> tuple[str, ...]:
        """How to find its processes that no unit of its own holds (signalled on a new release)."""
        return ()

    def proxy_confs(self, app: App) -> tuple[str, ...]:
        """Proxy conf snippets it needs enabled (``a2enconf``)."""
        return ()

    def restart(self, app: App, proxy: Proxy) -> tuple[Command, ...]:
        """The commands that put a new release in service."""
        return (("systemctl", "restart", *self.services(app)),)

    def log_sources(self, app: App, proxy: Proxy) -> tuple[tuple[LogSource, ...], str | None]:
        """Where the app's own output is, and a note when it is not where people look first."""
        raise NotImplementedError

    def combination_problem(self, proxy: str) -> str | None:
        if proxy in self.proxies:
            return None
        return f"server {self.name} runs inside {' or '.join(self.proxies)}: set proxy: {self.proxies[0]} (got proxy {proxy})"


class SocketServer(AppServer):
    """A server systemd starts from a socket unit: ``<app>.socket`` + ``<app>.service``.

    Start/enable the socket; restart the service on a release change (a HUP does
    not follow a new ``current`` link); the socket keeps accepting meanwhile.
    """

    service_template: str
    verify_checks = ("app-service", "unit-security")

    def units(self, app: App) -> tuple[str, ...]:
        return (f"{app.name}.socket", f"{app.name}.service")

    def sockets(self, app: App) -> tuple[str, ...]:
        return (f"{app.name}.socket",)

    def services(self, app: App) -> tuple[str, ...]:
        return (f"{app.name}.service",)

    def files(self, app: App, host: Host, proxy: Proxy) -> tuple[FileSpec, ...]:
        return (FileSpec(unit_path(f"{app.name}.socket"), "systemd/app.socket.j2", Check.SYSTEMD),
                FileSpec(unit_path(f"{app.name}.service"), self.service_template, Check.SYSTEMD))

    def log_sources(self, app: App, proxy: Proxy) -> tuple[tuple[LogSource, ...], str | None]:
        return (LogSource(app.name, units=tuple(reversed(self.units(app)))),), None  # service first
