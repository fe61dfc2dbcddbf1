"""The validated inventory: plain frozen data that every later stage reads.

Nothing here does I/O. ``deployer.config.inventory`` builds these from YAML after
validation, so code that receives a ``Host`` may trust every field.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from deployer.secret import Secret

HOST_KEY_POLICIES = ("strict", "accept-new")
HOOK_STAGES = ("before_switch", "after_switch", "after_rollback")
HOOK_TIMEOUT = 600  # seconds; a hook's own `timeout` overrides it


@dataclass(frozen=True)
class Hook:
    """A command run as the app in a release's environment.

    ``argv`` is an argument list run without a shell; with ``shell`` it is
    ``("sh", "-c", script)``, because the user asked for a shell by name.
    """

    argv: tuple[str, ...]
    shell: bool = False
    run_once: bool = False
    timeout: int = HOOK_TIMEOUT

    def __str__(self) -> str:
        return f"sh -c {shlex.quote(self.argv[2])}" if self.shell else shlex.join(self.argv)


@dataclass(frozen=True)
class Hooks:
    """Release hooks by stage, in the order the inventory lists them."""

    before_switch: tuple[Hook, ...] = ()
    after_switch: tuple[Hook, ...] = ()
    after_rollback: tuple[Hook, ...] = ()

    def stage(self, name: str) -> tuple[Hook, ...]:
        return getattr(self, name)


PROCESS_STOP_TIMEOUT = 30  # seconds a process has after SIGTERM before systemd kills it
TIMER_TIMEOUT = 3600  # seconds a scheduled job may run


@dataclass(frozen=True)
class Process:
    """A long-running background process (``app.processes``): its own unit, the app's release and sandbox."""

    name: str
    argv: tuple[str, ...]
    stop_timeout: int = PROCESS_STOP_TIMEOUT


@dataclass(frozen=True)
class Timer:
    """A scheduled job (``app.timers``): a oneshot unit started by a systemd timer."""

    name: str
    argv: tuple[str, ...]
    on_calendar: str
    timeout: int = TIMER_TIMEOUT


@dataclass(frozen=True)
class WsgiTarget:
    """``module:attr`` or ``module:factory()``."""

    module: str
    attr: str
    factory: bool = False

    def __str__(self) -> str:
        return f"{self.module}:{self.attr}{'()' if self.factory else ''}"


@dataclass(frozen=True)
class Static:
    url: str  # URL prefix, e.g. /static (no trailing slash)
    dir: str  # app-relative directory, e.g. static


@dataclass(frozen=True)
class TLS:
    cert: Path  # on the controller
    key: Path  # on the controller


@dataclass(frozen=True)
class ConfigFile:
    """``app.files``: a file the app reads at ``path`` (release-relative), rendered from ``template``.

    ``text`` is the template's source, read by the loader; rendering (with env and
    secrets) happens in ``deployer.core.render``, sandboxed.
    """

    path: str
    template: Path  # on the controller
    text: str = ""


@dataclass(frozen=True)
class App:
    name: str
    source: Path  # absolute, on the controller
    wsgi: WsgiTarget
    requirements: str | None = None  # relative to source; None: detected (artifact.dependencies)
    health: str = "/healthz"
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    secrets_file: Path | None = None
    shared: tuple[str, ...] = ()
    files: tuple[ConfigFile, ...] = ()
    static: Static | None = None
    keep_releases: int = 5
    hooks: Hooks = field(default_factory=Hooks)
    processes: tuple[Process, ...] = ()
    timers: tuple[Timer, ...] = ()
    server_config: str | None = None  # the app's own gunicorn.conf.py / uwsgi.ini (relative to source)

    @property
    def user(self) -> str:
        """The dedicated system user (and group) the app runs as."""
        return self.name


@dataclass(frozen=True)
class Host:
    """One server with its effective settings (host > group vars > defaults)."""

    name: str
    address: str
    groups: tuple[str, ...] = ()
    ssh_user: str = "root"
    ssh_port: int = 22
    ssh_key: Path | None = None
    become: bool = False
    known_hosts: Path | None = None
    host_key_policy: str = "strict"
    server: str = "gunicorn"
    proxy: str = "nginx"
    server_names: tuple[str, ...] = ()
    http_port: int = 80
    https_port: int = 443
    tls: TLS | None = None
    workers: int = 2
    threads: int = 2
    timeout: int = 30
    deploy_root: PurePosixPath = PurePosixPath("/srv")
    client_max_body_size: str = "1m"
    trust_proxy_headers: bool = True  # deployer's WSGI entry applies its proxy's one hop

    @property
    def server_name(self) -> str:
        """The primary name: the Host header for health checks."""
        return self.server_names[0]


@dataclass(frozen=True)
class Inventory:
    path: Path  # the inventory file, absolute
    app: App
    hosts: tuple[Host, ...]
    groups: dict[str, tuple[str, ...]]  # group name -> host names, in file order
    templates_dir: Path | None = None  # user overrides, searched before the built-ins
    verify_tests: Path | None = None

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)
