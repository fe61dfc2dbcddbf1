"""The stacks a host can run, by the names the inventory uses.

``PROXIES`` and ``SERVERS`` map inventory names to stack objects; the schema
takes its allowed names from them, and every other module asks
``proxy_of(host)`` / ``server_of(host)`` instead of testing a name. Adding a
stack: one module here (its ``STACK``), its templates, its tests, one line below.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from deployer.stacks import apache, gunicorn, mod_wsgi, nginx, uwsgi
from deployer.stacks.base import SYSTEMD_DIR, AppServer, Check, FileSpec, Link, LogSource, Proxy, SocketServer

if TYPE_CHECKING:
    from deployer.config.model import Host

__all__ = ["PROXIES", "SERVERS", "AppServer", "Check", "FileSpec", "Link", "LogSource", "Proxy", "SocketServer",
           "check_for_path", "combination_problem", "combinations", "proxy_of", "register", "server_of"]

PROXIES: dict[str, Proxy] = {stack.name: stack for stack in (nginx.STACK, apache.STACK)}
SERVERS: dict[str, AppServer] = {stack.name: stack for stack in (gunicorn.STACK, uwsgi.STACK, mod_wsgi.STACK)}


def register(stack: Proxy | AppServer) -> None:
    """Add a stack under its name (a plugin, or a test's own server)."""
    (PROXIES if isinstance(stack, Proxy) else SERVERS)[stack.name] = stack


def proxy_of(host: Host) -> Proxy:
    return PROXIES[host.proxy]


def server_of(host: Host) -> AppServer:
    return SERVERS[host.server]


def combination_problem(server: str, proxy: str) -> str | None:
    """Why ``server`` cannot run with ``proxy``; None when it can (both names known)."""
    if server not in SERVERS or proxy not in PROXIES:
        return None  # an unknown name is its own schema error
    return SERVERS[server].combination_problem(proxy)


def combinations() -> tuple[tuple[str, str], ...]:
    """Every valid (server, proxy) pair, proxy by proxy in registry order."""
    return tuple((s, p) for p in PROXIES for s, server in SERVERS.items() if server.combination_problem(p) is None)


def check_for_path(path: PurePosixPath) -> Check | None:
    """The checker of a file no render knows of any more (a rollback to an older release's configs)."""
    if path.is_relative_to(SYSTEMD_DIR):
        return Check.SYSTEMD
    return next((p.check for p in PROXIES.values() if path.is_relative_to(p.config_root)), None)
