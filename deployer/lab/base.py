"""The base image every lab host boots from (as the lower layer of an overlay).

Built once with debootstrap into a temporary directory and renamed into place
only when complete, so a killed build never leaves a half image behind. The
recipe (packages, units, tweaks) is hashed into the image; a changed recipe
means a rebuild.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from deployer.lab import commands, parse
from deployer.lab.run import LabError, run, run_logged
from deployer.lab.state import LabPaths, remove_tree, write_atomic

SUITE = "bookworm"

# What a deploy may need on a host: both proxies and all three WSGI servers.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-venv",
    "iproute2", "nginx", "apache2", "libapache2-mod-wsgi-py3", "uwsgi",
    "uwsgi-plugin-python3", "rsync", "sudo", "curl", "ca-certificates",
)

# Installed but off: a deploy enables what its host needs. The apt timers would
# only try a network the hosts do not have.
DISABLED = (
    "nginx.service", "apache2.service", "uwsgi.service",
    "apt-daily.timer", "apt-daily-upgrade.timer",
)

# Units that cannot work in a container. remount-fs: / is an overlay nspawn
# already mounted; sysusers: fails in a container (measured); the rest are
# not wanted there either.
MASKED = (
    "systemd-remount-fs.service", "systemd-sysusers.service",
)

SSHD_CONFIG = """\
# deployer lab: root by key only, one host key (ed25519, written per host).
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""

# Hosts have no route out: apt must fail fast, never wait on a prompt or a mirror.
APT_CONFIG = """\
// deployer lab: never prompt, never wait long for a network that is not there.
APT::Get::Assume-Yes "true";
Dpkg::Options { "--force-confdef"; "--force-confold"; };
Acquire::Retries "0";
Acquire::http::Timeout "5";
Acquire::https::Timeout "5";
"""

# Bump when the customisation below changes in a way the lists above do not show.
RECIPE_VERSION = 2


def recipe_hash() -> str:
    text = repr((RECIPE_VERSION, SUITE, PACKAGES, DISABLED, MASKED, SSHD_CONFIG, APT_CONFIG))
    return hashlib.sha256(text.encode()).hexdigest()


def is_current(paths: LabPaths) -> bool:
    try:
        return paths.base_recipe.read_text().strip() == recipe_hash()
    except OSError:
        return False


def exists(paths: LabPaths) -> bool:
    return (paths.base / "sbin" / "init").exists() or (paths.base / "lib" / "systemd" / "systemd").exists()


def apt_mirror() -> str:
    """The mirror this machine's apt uses (DEPLOYER_LAB_MIRROR overrides)."""
    if os.environ.get("DEPLOYER_LAB_MIRROR"):
        return os.environ["DEPLOYER_LAB_MIRROR"]
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            texts.append((p.name, p.read_text()))
        except OSError:
            continue
    return parse.mirror_from_sources(texts, SUITE)


def _keyring() -> Path | None:
    k = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
    return k if k.exists() else None


def build(paths: LabPaths, public_key: str, say=print) -> None:
    """Build the base into base.tmp.PID, then swap it in for any old one."""
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is not installed (apt-get install -y debootstrap)")
    for stale in paths.temp_dirs():
        remove_tree(stale)
    tmp = paths.root / f"base.tmp.{os.getpid()}"
    tmp.mkdir(parents=True)
    paths.build_log.write_text("")
    mirror = apt_mirror()
    say(f"building the base image from {mirror} (once; about a minute; log: {paths.build_log})")
    try:
        run_logged(commands.debootstrap(tmp, mirror, PACKAGES, SUITE, _keyring()), paths.build_log,
                   timeout=1800)
        customise(tmp, public_key)
        write_atomic(tmp / paths.base_recipe.relative_to(paths.base), recipe_hash() + "\n")
    except BaseException:
        remove_tree(tmp)
        raise
    if paths.base.exists():
        old = paths.root / f"base.tmp.old.{os.getpid()}"
        os.rename(paths.base, old)
        os.rename(tmp, paths.base)
        remove_tree(old)
    else:
        os.rename(tmp, paths.base)


def _mask(root: Path, unit: str) -> None:
    link = root / "etc/systemd/system" / unit
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("/dev/null")


def customise(root: Path, public_key: str) -> None:
    """Turn a fresh debootstrap into a lab host template."""
    present = [u for u in DISABLED if _unit_known(root, u)]
    if present:
        run(commands.chroot(root, "systemctl", "disable", "--quiet", *present))
    for unit in MASKED:
        _mask(root, unit)

    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    write_atomic(root / "etc/ssh/sshd_config.d/deployer-lab.conf", SSHD_CONFIG)

    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    write_atomic(ssh_dir / "authorized_keys", public_key, mode=0o600)

    write_atomic(root / "etc/apt/apt.conf.d/90deployer-lab", APT_CONFIG)
    # pam_env warns on every SSH login without it; C.UTF-8 ships with libc
    write_atomic(root / "etc/default/locale", "LANG=C.UTF-8\n")
    run(commands.chroot(root, "debconf-set-selections"),
        input="debconf debconf/frontend select Noninteractive\n")

    # Each host writes its own machine-id; an empty one here would make
    # systemd treat every boot as a first boot and re-apply presets.
    write_atomic(root / "etc/machine-id", "")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.is_symlink() or dbus_id.exists():
        dbus_id.unlink()
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.symlink_to("/etc/machine-id")

    run(commands.chroot(root, "apt-get", "clean"))


def _unit_known(root: Path, unit: str) -> bool:
    name = unit.rsplit(".", 1)[0]
    return any(
        (root / d / unit).exists() for d in ("lib/systemd/system", "etc/systemd/system")
    ) or (unit.endswith(".service") and (root / "etc/init.d" / name).exists())
