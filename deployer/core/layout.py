"""Where things live on a server. One place, so templates, plans and checks agree.

    <deploy_root>/<app>/releases/<id>/     immutable release (app files + .venv link)
    <deploy_root>/<app>/current -> releases/<id>
    <deploy_root>/<app>/shared/<path>       persists across releases (linked in)
    <deploy_root>/<app>/venvs/<req-hash>/   virtualenvs, reused while requirements match
    /etc/<app>/env                          environment + secrets, 0640 root:<app>
    /run/<app>.sock                         app socket, owned by a systemd .socket unit
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from deployer.config.model import App, Host

PROXY_GROUP = "www-data"  # nginx and apache both run as www-data on Debian


@dataclass(frozen=True)
class Layout:
    app: str
    deploy_root: PurePosixPath

    @classmethod
    def of(cls, app: App, host: Host) -> "Layout":
        return cls(app.name, host.deploy_root)

    @property
    def app_root(self) -> PurePosixPath:
        return self.deploy_root / self.app

    @property
    def releases(self) -> PurePosixPath:
        return self.app_root / "releases"

    def release(self, release_id: str) -> PurePosixPath:
        return self.releases / release_id

    @property
    def current(self) -> PurePosixPath:
        return self.app_root / "current"

    @property
    def shared(self) -> PurePosixPath:
        return self.app_root / "shared"

    @property
    def venvs(self) -> PurePosixPath:
        return self.app_root / "venvs"

    @property
    def current_venv(self) -> PurePosixPath:
        """The venv of whatever release ``current`` points at (a link inside it)."""
        return self.current / ".venv"

    @property
    def etc_dir(self) -> PurePosixPath:
        return PurePosixPath("/etc") / self.app

    @property
    def env_file(self) -> PurePosixPath:
        return self.etc_dir / "env"

    @property
    def socket(self) -> PurePosixPath:
        return PurePosixPath("/run") / f"{self.app}.sock"

    @property
    def state_dir(self) -> PurePosixPath:
        """deployer's own bookkeeping on the host: lock, release log."""
        return self.app_root / ".deployer"
