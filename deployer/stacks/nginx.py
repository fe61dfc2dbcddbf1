"""nginx as the front proxy: one site file, enabled by a symlink."""

from __future__ import annotations

from pathlib import PurePosixPath

from deployer.config.model import App, Host
from deployer.stacks.base import AppServer, Check, FileSpec, Link, Proxy


class Nginx(Proxy):
    name = "nginx"
    packages = ("nginx",)
    service = "nginx.service"
    config_root = PurePosixPath("/etc/nginx")
    check = Check.NGINX
    check_argv = ("nginx", "-t", "-q")
    check_label = "nginx -t"
    error_log = PurePosixPath("/var/log/nginx/error.log")  # no error_log in templates/nginx: the default

    def files(self, app: App, host: Host, server: AppServer) -> tuple[FileSpec, ...]:
        return (FileSpec(self.site_path(app), "nginx/site.conf.j2", Check.NGINX),)

    def links(self, app: App, host: Host, server: AppServer) -> tuple[Link, ...]:
        available, enabled = self.site_path(app), self.site_link(app)
        return (Link(enabled, str(available), ("ln", "-sfn", str(available), str(enabled))),)


STACK = Nginx()
