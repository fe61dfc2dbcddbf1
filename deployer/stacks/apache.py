"""Apache as the front proxy: a site, the modules it uses, and a server embedded in it (mod_wsgi)."""

from __future__ import annotations

from pathlib import PurePosixPath

from deployer.config.model import App, Host
from deployer.stacks.base import AppServer, Check, FileSpec, Link, Proxy

BASE_MODULES = ("authz_core", "alias", "headers")  # Require, static files, security headers
UPSTREAM_MODULES = ("proxy", "proxy_http")  # to an app server's unix socket
TLS_MODULES = ("socache_shmcb", "ssl", "rewrite")  # ssl + its session cache; the 308 to HTTPS


class Apache(Proxy):
    name = "apache"
    packages = ("apache2",)
    service = "apache2.service"
    config_root = PurePosixPath("/etc/apache2")
    check = Check.APACHE
    check_argv = ("apache2ctl", "-t")
    check_label = "apache2ctl -t"
    error_log = PurePosixPath("/var/log/apache2/error.log")  # no ErrorLog in templates/apache: the default

    def modules(self, host: Host, server: AppServer) -> tuple[str, ...]:
        """Modules the rendered site uses, for ``a2enmod`` (idempotent), in load order.

        Complete on its own: the checker tests load only an MPM plus these.
        """
        mods = BASE_MODULES + (server.proxy_modules if server.embedded else UPSTREAM_MODULES)
        return mods + (TLS_MODULES if host.tls is not None else ())

    def confs(self, app: App, server: AppServer) -> tuple[str, ...]:
        return server.proxy_confs(app)

    def files(self, app: App, host: Host, server: AppServer) -> tuple[FileSpec, ...]:
        template = "apache/site-wsgi.conf.j2" if server.embedded else "apache/site-proxy.conf.j2"
        return (FileSpec(self.site_path(app), template, Check.APACHE),)

    def links(self, app: App, host: Host, server: AppServer) -> tuple[Link, ...]:
        root = self.config_root
        mods = tuple(Link(root / "mods-enabled" / f"{mod}.load", f"../mods-available/{mod}.load", ("a2enmod", "-q", mod))
                     for mod in self.modules(host, server))
        # a2ensite/a2enconf strip the suffix with an unescaped regex (/.conf$/): a bare name
        # ending in "-conf" or "xconf" loses it ("own-gunicorn-conf" -> "own-gunicorn"). Named
        # with ".conf", exactly that suffix goes.
        confs = tuple(Link(root / "conf-enabled" / f"{conf}.conf", f"../conf-available/{conf}.conf",
                           ("a2enconf", "-q", f"{conf}.conf")) for conf in self.confs(app, server))
        site = Link(self.site_link(app), f"../sites-available/{app.name}.conf", ("a2ensite", "-q", f"{app.name}.conf"))
        return mods + confs + (site,)


STACK = Apache()
