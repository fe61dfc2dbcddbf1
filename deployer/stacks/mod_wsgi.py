"""mod_wsgi: the app runs in daemon processes inside Apache; no units of its own.

Its processes are found by their display-name ``(wsgi:<app>)`` and signalled
(SIGUSR1) on a new release; Apache itself is left alone.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from deployer.config.model import App, Host
from deployer.core.commands import restart_daemons
from deployer.stacks.base import AppServer, Command, FileSpec, LogSource, Proxy


def wsgi_script_path(app: App) -> PurePosixPath:
    """deployer's WSGI entry (``app/wsgi.py.j2``), rendered for every app server (render.render_host).

    A folder of its own on gunicorn's and uWSGI's Python path: nothing else there
    can shadow the app's modules, and its name cannot be one of them (an app's own
    ``wsgi.py`` is common). mod_wsgi loads it with WSGIScriptAlias.
    """
    return PurePosixPath("/etc") / app.name / "wsgi" / "deployer_wsgi.py"


class ModWsgi(AppServer):
    name = "mod_wsgi"
    packages = ("libapache2-mod-wsgi-py3",)
    proxies = ("apache",)
    embedded = True
    proxy_modules = ("wsgi",)
    verify_checks = ("wsgi-daemons",)

    def files(self, app: App, host: Host, proxy: Proxy) -> tuple[FileSpec, ...]:
        conf = proxy.config_root / "conf-available" / f"{app.name}-wsgi.conf"
        return (FileSpec(conf, "apache/wsgi-global.conf.j2", proxy.check),)

    def proxy_confs(self, app: App) -> tuple[str, ...]:
        return (f"{app.name}-wsgi",)

    def process_markers(self, app: App) -> tuple[str, ...]:
        return (f"(wsgi:{app.name})",)

    def restart(self, app: App, proxy: Proxy) -> tuple[Command, ...]:
        """New daemon processes on the new release, Apache left alone (see commands.restart_daemons)."""
        return tuple(restart_daemons(proxy.service, marker) for marker in self.process_markers(app))

    def log_sources(self, app: App, proxy: Proxy) -> tuple[tuple[LogSource, ...], str | None]:
        label = proxy.packages[0]
        note = (f"server {self.name} runs {app.name} inside {label}: showing {proxy.service}'s journal "
                f"and {proxy.error_log}")
        return (LogSource(label, units=(proxy.service,)), LogSource(f"{label} error.log", file=proxy.error_log)), note


STACK = ModWsgi()
