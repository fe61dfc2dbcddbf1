"""Where things live on a server. One place, so templates, plans and checks agree.

    <deploy_root>/<app>/releases/<id>/     immutable release (app files + .venv link)
    <deploy_root>/<app>/current -> releases/<id>
    <deploy_root>/<app>/shared/<path>       persists across releases (linked in)
    <deploy_root>/<app>/venvs/<req-hash>/   virtualenvs, reused while requirements match
    /etc/<app>/env                          environment + secrets, 0640 root:<app>
    /etc/<app>/files/<path>                 app.files (config the app reads), 0640 root:<app>
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
    def files_dir(self) -> PurePosixPath:
        """``app.files`` live here (root:<app> 0640) and are linked to from where the app reads them."""
        return self.etc_dir / "files"

    def config_file(self, rel: str) -> PurePosixPath:
        return self.files_dir / rel

    @property
    def socket(self) -> PurePosixPath:
        return PurePosixPath("/run") / f"{self.app}.sock"

    @property
    def state_dir(self) -> PurePosixPath:
        """deployer's own bookkeeping on the host: lock, release log."""
        return self.app_root / ".deployer"


def config_links(app: App, layout: Layout) -> tuple[tuple[tuple[str, PurePosixPath], ...], tuple[tuple[str, PurePosixPath], ...]]:
    """``app.files`` links: (those under a shared path, made by the app user; those in the release, made at unpack).

    Each pair is (app-relative path, /etc/<app>/files/<path>). Under a shared path the
    path is given relative to ``shared/`` (the link lives in the app's own directory).
    """
    in_shared, in_release = [], []
    for item in app.files:
        target = layout.config_file(item.path)
        if any(item.path.startswith(s + "/") for s in app.shared):
            in_shared.append((item.path, target))
        else:
            in_release.append((item.path, target))
    return tuple(in_shared), tuple(in_release)
