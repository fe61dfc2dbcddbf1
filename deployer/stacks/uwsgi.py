"""uWSGI: socket-activated systemd service (Debian's uwsgi + python3 plugin) with its own ini file."""

from __future__ import annotations

from pathlib import PurePosixPath

from deployer.config.model import App, Host
from deployer.stacks.base import FileSpec, Proxy, SocketServer


def ini_path(app: App) -> PurePosixPath:
    return PurePosixPath("/etc") / app.name / "uwsgi.ini"


class Uwsgi(SocketServer):
    name = "uwsgi"
    packages = ("uwsgi", "uwsgi-plugin-python3")
    proxies = ("nginx", "apache")
    service_template = "systemd/uwsgi.service.j2"

    def files(self, app: App, host: Host, proxy: Proxy) -> tuple[FileSpec, ...]:
        return super().files(app, host, proxy) + (FileSpec(ini_path(app), "uwsgi/uwsgi.ini.j2"),)


STACK = Uwsgi()
