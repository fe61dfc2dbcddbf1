"""One host as later stages and tools see it: a typed, secret-free view, built once, serialized once.

``HostView.of(inventory, host)`` resolves what the inventory implies for a host
(its layout, units, proxy service, site, process marker) next to the host's
own settings. Verify sends it to its per-host pytest process as JSON
(``to_json``/``from_json``); the ``deployer_host`` fixture and the built-in
checks read ``settings()``; ``deployer check`` shows ``host_json``.
Secret values never enter it: only their names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

from deployer.config.model import TLS, Host, Inventory
from deployer.core import jobs
from deployer.core.layout import Layout
from deployer.core.plan import process_marker
from deployer.core.render import app_units, proxy_service, site_path, tls_cert_path, tls_key_path
from deployer.stacks import proxy_of, server_of


def host_json(host: Host) -> dict[str, Any]:
    """A Host's own settings as plain JSON data, in field order (paths as strings)."""
    view: dict[str, Any] = {}
    for f in fields(host):
        value = getattr(host, f.name)
        if isinstance(value, TLS):
            value = {"cert": str(value.cert), "key": str(value.key)}
        elif isinstance(value, tuple):
            value = list(value)
        elif value is not None and not isinstance(value, (str, int, bool)):
            value = str(value)
        view[f.name] = value
    return view


def host_from_json(data: dict[str, Any]) -> Host:
    """The Host ``host_json`` was made from."""
    d = dict(data)
    for key in ("ssh_key", "known_hosts"):
        d[key] = Path(d[key]) if d[key] else None
    d["groups"], d["server_names"] = tuple(d["groups"]), tuple(d["server_names"])
    d["deploy_root"] = PurePosixPath(d["deploy_root"])
    d["tls"] = TLS(Path(d["tls"]["cert"]), Path(d["tls"]["key"])) if d["tls"] else None
    return Host(**d)


@dataclass(frozen=True)
class AppView:
    name: str
    user: str
    wsgi: str
    health: str
    env: dict[str, str]
    secret_names: tuple[str, ...]
    static: dict[str, str] | None  # {"url": ..., "dir": ...}
    app_files: tuple[str, ...]  # globs of where the WSGI module may be, relative to a release (its venv too)


@dataclass(frozen=True)
class HostView:
    host: Host
    app: AppView
    layout: dict[str, str]  # app_root, releases, current, shared, env_file, socket
    units: tuple[str, ...]  # the app's systemd units (none under mod_wsgi)
    services: tuple[str, ...]
    proxy_service: str
    site: str
    site_link: str
    process_marker: str  # mod_wsgi's daemon display-name, else ""
    tls_files: dict[str, str] | None  # cert and key paths on the host
    processes: tuple[str, ...] = ()  # app.processes' units
    timers: tuple[str, ...] = ()  # app.timers' timer units

    @classmethod
    def of(cls, inventory: Inventory, host: Host) -> HostView:
        app = inventory.app
        layout = Layout.of(app, host)
        module = app.wsgi.module.replace(".", "/")
        return cls(
            host=host,
            app=AppView(name=app.name, user=app.user, wsgi=str(app.wsgi), health=app.health, env=dict(app.env),
                        secret_names=tuple(sorted(app.secrets)),
                        static={"url": app.static.url, "dir": app.static.dir} if app.static else None,
                        app_files=tuple(f"{where}{module}{end}" for where in ("", ".venv/lib/python3*/site-packages/")
                                        for end in (".py", "/__init__.py"))),
            layout={"app_root": str(layout.app_root), "releases": str(layout.releases), "current": str(layout.current),
                    "shared": str(layout.shared), "env_file": str(layout.env_file), "socket": str(layout.socket)},
            units=tuple(app_units(app, host)),
            services=tuple(server_of(host).services(app)),
            proxy_service=proxy_service(host),
            site=str(site_path(app, host)),
            site_link=str(proxy_of(host).site_link(app)),
            process_marker=(process_marker(app, host) or ("",))[0],
            tls_files={"cert": str(tls_cert_path(app)), "key": str(tls_key_path(app))} if host.tls else None,
            processes=tuple(jobs.unit(app, p.name) for p in app.processes),
            timers=tuple(jobs.unit(app, t.name, "timer") for t in app.timers),
        )

    def settings(self) -> dict[str, Any]:
        """The resolved settings as plain JSON data: the checks' input and the ``deployer_host`` fixture."""
        h, a = self.host, self.app
        return {
            "name": h.name, "address": h.address, "groups": list(h.groups),
            "ssh_user": h.ssh_user, "server": h.server, "proxy": h.proxy,
            "server_names": list(h.server_names), "server_name": h.server_name,
            "http_port": h.http_port, "https_port": h.https_port, "tls": h.tls is not None,
            "workers": h.workers, "threads": h.threads, "timeout": h.timeout,
            "app": {"name": a.name, "user": a.user, "wsgi": a.wsgi, "health": a.health, "env": dict(a.env),
                    "secret_names": list(a.secret_names), "static": dict(a.static) if a.static else None,
                    "app_files": list(a.app_files)},
            "layout": dict(self.layout),
            "units": list(self.units),
            "services": list(self.services),
            "proxy_service": self.proxy_service,
            "site": self.site,
            "site_link": self.site_link,
            "process_marker": self.process_marker,
            "tls_files": dict(self.tls_files) if self.tls_files else None,
            "processes": list(self.processes),
            "timers": list(self.timers),
        }

    def to_json(self) -> dict[str, Any]:
        """The whole view as JSON data (``from_json`` reads it back)."""
        return {"host": host_json(self.host), "settings": self.settings()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostView:
        s = data["settings"]
        a = s["app"]
        return cls(
            host=host_from_json(data["host"]),
            app=AppView(name=a["name"], user=a["user"], wsgi=a["wsgi"], health=a["health"], env=dict(a["env"]),
                        secret_names=tuple(a["secret_names"]), static=a["static"], app_files=tuple(a["app_files"])),
            layout=dict(s["layout"]), units=tuple(s["units"]), services=tuple(s["services"]), proxy_service=s["proxy_service"], site=s["site"],
            site_link=s["site_link"], process_marker=s["process_marker"], tls_files=s["tls_files"],
            processes=tuple(s.get("processes", ())), timers=tuple(s.get("timers", ())),
        )
