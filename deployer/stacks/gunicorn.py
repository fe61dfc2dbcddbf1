"""gunicorn: socket-activated systemd service running the app from its virtualenv.

gunicorn reads ``./gunicorn.conf.py`` from its working directory unless ``--config``
names a file, so the unit always passes ``--config`` with deployer's own rendered
file: an app's file is used only when ``app.server_config`` names it. Which settings
that file renders depends on the gunicorn version the release installs (``SETTINGS``:
the first version that knows each one; an older gunicorn refuses an unknown option).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from deployer.config.model import App, Host
from deployer.core.layout import Layout
from deployer.stacks.base import FileSpec, Proxy, SocketServer

# The version deployer adds when the app does not depend on gunicorn (the lab's examples/hello runs it).
TESTED_VERSION = "27.0.1"


@dataclass(frozen=True)
class Setting:
    """One gunicorn setting deployer renders: its config-file name, its CLI flag, the first version with it."""

    name: str
    flag: str
    since: tuple[int, ...] = (20, 1)
    wins: bool = False  # set after the app's server_config: the app cannot change it


SETTINGS = (
    # Tunables from the inventory; an app's server_config may change them.
    Setting("workers", "--workers"),
    Setting("threads", "--threads"),
    Setting("timeout", "--timeout"),
    Setting("graceful_timeout", "--graceful-timeout"),
    # deployer's, always: socket, process model, identity, files, trusted proxy.
    Setting("bind", "--bind", wins=True),
    Setting("daemon", "--daemon", wins=True),
    Setting("pidfile", "--pid", wins=True),
    Setting("user", "--user", wins=True),
    Setting("group", "--group", wins=True),
    Setting("chdir", "--chdir", wins=True),
    Setting("worker_tmp_dir", "--worker-tmp-dir", wins=True),
    Setting("accesslog", "--access-logfile", wins=True),
    Setting("errorlog", "--error-logfile", wins=True),
    Setting("forwarded_allow_ips", "--forwarded-allow-ips", wins=True),
    Setting("control_socket_disable", "--no-control-socket", (25, 1), wins=True),
)


# gunicorn before 21.0 imports pkg_resources (its metadata asks only for setuptools>=3.0),
# and setuptools 82.0 dropped pkg_resources: without a cap gunicorn 20.1 cannot start.
PKG_RESOURCES_UNTIL = (21, 0)
# gunicorn before 21.0 calls setuid(its own uid) in every worker (21.0 skips it when the uid is
# already right); the unit's SystemCallFilter=~@privileged makes that EPERM and no worker boots.
# Setting one's own uid again grants nothing (no capabilities, NoNewPrivileges), so it is allowed.
SETUID_UNTIL = (21, 0)
PKG_RESOURCES_SETUPTOOLS = "setuptools<82"


def version_tuple(version: str) -> tuple[int, ...]:
    """``"23.0.0"`` -> (23, 0, 0); a pre/post/dev suffix ends the numbers (``"25.1.0rc1"`` -> (25, 1, 0))."""
    numbers = re.match(r"\d+(?:\.\d+)*", version)
    if numbers is None:
        raise ValueError(f"not a version: {version!r}")
    return tuple(int(part) for part in numbers.group().split("."))


def config_path(app: App) -> PurePosixPath:
    return PurePosixPath("/etc") / app.name / "gunicorn.conf.py"


class Gunicorn(SocketServer):
    name = "gunicorn"
    packages = ()  # installed into the release's virtualenv, not from Debian
    distribution = "gunicorn"
    tested_version = TESTED_VERSION
    config_suffix = ".py"
    default_config = "gunicorn.conf.py"
    proxies = ("nginx", "apache")
    service_template = "systemd/gunicorn.service.j2"

    def files(self, app: App, host: Host, proxy: Proxy) -> tuple[FileSpec, ...]:
        return super().files(app, host, proxy) + (FileSpec(config_path(app), "gunicorn/gunicorn.conf.py.j2"),)

    def values(self, app: App, host: Host) -> dict[str, object]:
        """Each setting's value for this host (None: gunicorn's default, the unit's User= and Group=)."""
        layout = Layout.of(app, host)
        return {
            "workers": host.workers, "threads": host.threads, "timeout": host.timeout,
            "graceful_timeout": host.timeout,
            "bind": (f"unix:{layout.socket}",),  # unused with systemd's socket (LISTEN_FDS), but never the app's
            "daemon": False, "pidfile": None, "user": None, "group": None, "chdir": str(layout.current),
            "worker_tmp_dir": f"/run/{app.name}", "accesslog": "-", "errorlog": "-",
            "forwarded_allow_ips": "127.0.0.1,::1", "control_socket_disable": True,
        }

    def settings(self, app: App, host: Host, version: str | None) -> tuple[tuple[str, object, bool], ...]:
        """(name, value, wins) for every setting ``version`` knows, in ``SETTINGS`` order."""
        have = version_tuple(version or self.tested_version)
        values = self.values(app, host)
        return tuple((s.name, values[s.name], s.wins) for s in SETTINGS if have >= s.since)

    def requirements_for(self, version: str) -> tuple[tuple[str, str], ...]:
        if version_tuple(version) < PKG_RESOURCES_UNTIL:
            return ((PKG_RESOURCES_SETUPTOOLS, f"gunicorn {version} imports pkg_resources, gone from setuptools 82"),)
        return ()

    def context(self, app: App, host: Host, version: str | None) -> dict[str, object]:
        return {
            "gunicorn_conf": config_path(app),
            "gunicorn_version": version or self.tested_version,
            "gunicorn_settings": self.settings(app, host, version),
            "server_config": self.own_config(app),
            "gunicorn_syscalls": ("setuid",) if version_tuple(version or self.tested_version) < SETUID_UNTIL else (),
        }


STACK = Gunicorn()
