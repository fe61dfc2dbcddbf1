"""gunicorn: socket-activated systemd service running the app from its virtualenv."""

from __future__ import annotations

from deployer.stacks.base import SocketServer


class Gunicorn(SocketServer):
    name = "gunicorn"
    packages = ()  # installed into the release's virtualenv, not from Debian
    proxies = ("nginx", "apache")
    service_template = "systemd/gunicorn.service.j2"


STACK = Gunicorn()
