"""Where the lab keeps its state on the controller, and how it finds it again.

Everything lives under one directory (``DEPLOYER_LAB_DIR``, default
/var/lib/deployer-lab) so that a run killed at any point leaves traces a later
``up`` or ``down`` can find: the host directories, their mounts, their pid files.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deployer.lab import commands, naming, parse
from deployer.lab.run import LabError, run

ENV_DIR = "DEPLOYER_LAB_DIR"
DEFAULT_DIR = Path("/var/lib/deployer-lab")


def lab_dir(root: Path | str | None = None) -> Path:
    if root is None:
        root = os.environ.get(ENV_DIR) or DEFAULT_DIR
    return Path(root).absolute()


@dataclass(frozen=True)
class HostPaths:
    """Files of one host. ``root`` is the overlay mount nspawn boots."""

    name: str
    dir: Path

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def log(self) -> Path:
        return self.dir / "nspawn.log"

    @property
    def pidfile(self) -> Path:
        return self.dir / "nspawn.pid"

    @property
    def host_key(self) -> Path:
        """Private key kept outside the overlay, then copied in before boot."""
        return self.dir / "ssh_host_ed25519_key"

    @property
    def host_key_pub(self) -> Path:
        return self.dir / "ssh_host_ed25519_key.pub"


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def base_recipe(self) -> Path:
        """Hash of the recipe the base was built from, inside it so one rename
        publishes both."""
        return self.base / "etc" / "deployer-lab-recipe"

    @property
    def build_log(self) -> Path:
        return self.root / "base-build.log"

    @property
    def hosts(self) -> Path:
        return self.root / "hosts"

    @property
    def key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    @property
    def session_lock(self) -> Path:
        return self.root / "session.lock"

    def host(self, name: str) -> HostPaths:
        naming.host_index(name)
        return HostPaths(name, self.hosts / name)

    def host_names(self) -> list[str]:
        """Hosts that have state on disk, in index order."""
        try:
            entries = [p.name for p in self.hosts.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return []
        return naming.sort_names(n for n in entries if naming.is_host_name(n))

    def temp_dirs(self) -> list[Path]:
        """Half-built base images left by a killed build."""
        try:
            return sorted(p for p in self.root.iterdir() if p.name.startswith("base.tmp."))
        except FileNotFoundError:
            return []


LOCK_WAIT = 600.0  # a base build by another command takes about a minute


@contextmanager
def locked(lock: Path, wait: float = LOCK_WAIT, say=lambda msg: None, holder: str = "another lab command"):
    """Hold ``lock`` (an flock), waiting up to ``wait`` s for ``holder``; the kernel drops it if we die."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabError(f"{holder} still holds {lock} after {wait:g} s") from None
                if wait:
                    say(f"waiting for {holder} ({lock})")
                    say = lambda msg: None  # noqa: E731 - say it once
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def mounts() -> list[parse.Mount]:
    return parse.parse_mountinfo(Path("/proc/self/mountinfo").read_text())


def unmount_under(path: Path) -> None:
    """Unmount everything at or below ``path``, deepest first; lazily if busy."""
    for target in parse.mounts_under(mounts(), str(path)):
        if run(commands.umount(target), check=False).returncode != 0:
            run(commands.umount(target, lazy=True))


def remove_tree(path: Path) -> None:
    """rm -rf that first unmounts and never crosses into another filesystem.

    A build killed inside debootstrap leaves /proc and /sys mounted in its
    target; --one-file-system keeps a missed mount from being emptied.
    """
    if not path.exists() and not path.is_symlink():
        return
    unmount_under(path)
    res = subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise LabError(f"cannot remove {path}: {res.stderr.strip().splitlines()[-1]}")
