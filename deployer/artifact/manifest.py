"""The release's identity, purely: the manifest, hashes, ids, ignore rules and the hosts' Python.

No I/O here. ``content_hash`` is the sha256 of the manifest (files, links, directories,
python, the wheel set), never of a timestamp. ``release_id`` is
``<UTC timestamp>-<short_hash>``. ``req_hash`` names the venv: sha256 of the target
interpreter and the sorted wheel set with each wheel's sha256, which is exactly the
installed set: a code-only change, or a comment in requirements.txt, keeps the venv
(unless the app itself is installed as a wheel: then its code is in the venv).
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import pathspec

from deployer.errors import EXIT_BAD_INPUT, DeployerError

MANIFEST_PATH = ".deployer/manifest.json"
MANIFEST_FORMAT = 1
IGNORE_FILE = ".deployerignore"

# Debian 12 (bookworm), the hosts' release, has glibc 2.36: wheels up to manylinux_2_36.
HOST_GLIBC = (2, 36)

VCS_DIRS = frozenset({".git", ".hg", ".svn"})
CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules"})
VENV_DIRS = frozenset({".venv", "venv"})
CACHE_FILES = ("*.pyc",)
SECRET_FILES = (".env", ".env.*", "*.env", "*.pem", "*.key")


class ReleaseError(DeployerError):
    """The artifact could not be built."""


class SourceError(ReleaseError):
    """The app's source tree cannot be shipped as it is: every problem at once."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, source: Path, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(f"{self.source}: {p}" for p in self.problems)


# --------------------------------------------------------------------------- the hosts' Python


def host_arch(machine: str) -> str:
    """The wheel platform CPU for a host's ``platform.machine()``."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower())
    if arch not in ("x86_64", "aarch64"):
        raise ReleaseError(f"cannot pick wheels for CPU {machine!r}: only x86_64 and aarch64 hosts are supported")
    return arch


@dataclass(frozen=True)
class HostPython:
    """The interpreter the wheels are resolved for: the hosts', exactly (markers use all of it)."""

    version: str  # "3.11.2" (or "3.11" when only that is known)
    implementation: str = "cpython"  # sys.implementation.name
    arch: str = "x86_64"
    glibc: tuple[int, int] = HOST_GLIBC

    def __post_init__(self) -> None:
        if not re.fullmatch(r"3\.\d{1,2}(\.\d{1,3})?", self.version):
            raise ReleaseError(f"python: expected a version like '3.11.2', got {self.version!r}")
        if self.implementation != "cpython":
            raise ReleaseError(f"the hosts run {self.implementation}: only CPython hosts are supported")

    @property
    def minor(self) -> str:
        """``3.11``: the venv's lib/pythonX.Y and the ``cp311`` tags."""
        return ".".join(self.version.split(".")[:2])

    @property
    def platform(self) -> str:
        """uv's ``--python-platform`` name, e.g. ``x86_64-manylinux_2_36``."""
        return f"{self.arch}-manylinux_{self.glibc[0]}_{self.glibc[1]}"

    def describe(self) -> str:
        return f"CPython {self.version} on {self.platform}"

    def as_dict(self) -> dict:
        return {"version": self.version, "implementation": self.implementation, "arch": self.arch,
                "glibc": list(self.glibc)}


def host_python_of(python: str, platform: Mapping[str, object]) -> HostPython:
    """From the facts: ``python`` "3.11.2" and ``platform`` {implementation, machine, libc}."""
    libc = platform.get("libc") or ["glibc", ".".join(map(str, HOST_GLIBC))]
    if libc[0] != "glibc":
        raise ReleaseError(f"the hosts' C library is {libc[0] or 'unknown'}: only glibc (manylinux) hosts are supported")
    major, minor = (int(x) for x in str(libc[1]).split(".")[:2])
    return HostPython(python, str(platform.get("implementation") or "cpython"),
                      host_arch(str(platform.get("machine") or "x86_64")), (major, minor))


def platform_tags(arch: str, glibc: tuple[int, int] = HOST_GLIBC) -> tuple[str, ...]:
    """Every wheel platform tag a glibc ``glibc`` Linux host on ``arch`` accepts, best first.

    pip expands the legacy ``manylinux2014`` name itself but no ``manylinux_2_X`` one,
    so the list spells them all out.
    """
    major, newest = glibc
    oldest = 5 if arch == "x86_64" else 17
    tags = [f"manylinux_{major}_{minor}_{arch}" for minor in range(newest, oldest - 1, -1)]
    legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
    tags += [f"{name}_{arch}" for name, minor in legacy.items() if oldest <= minor <= newest]
    tags.append(f"linux_{arch}")
    return tuple(tags)


def parse_wheel_name(filename: str) -> tuple[str, str, str, str, str]:
    """``name-ver(-build)?-py-abi-plat.whl`` -> (name, version, python, abi, platform)."""
    if not filename.endswith(".whl"):
        raise ValueError(f"not a wheel: {filename}")
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        raise ValueError(f"not a wheel file name: {filename}")
    return parts[0], parts[1], parts[-3], parts[-2], parts[-1]


def is_pure_wheel(filename: str) -> bool:
    """A wheel any Python 3 on any platform installs: ``py3-none-any`` and the like."""
    _, _, py, abi, plat = parse_wheel_name(filename)
    return abi == "none" and plat == "any" and any(tag.startswith("py3") for tag in py.split("."))


def _python_tag_fits(tag: str, abi: str, minor: int) -> bool:
    if tag in ("py3", f"py3{minor}", f"cp3{minor}"):
        return True
    found = re.fullmatch(r"(?:py|cp)3(\d+)", tag)
    # an older tag fits only as a pure wheel (py38) or the stable ABI (cp38-abi3)
    return bool(found) and int(found.group(1)) <= minor and (abi in ("none", "abi3"))


def wheel_misfit(filename: str, target: HostPython) -> str | None:
    """Why a wheel will not run on the hosts (its tags, PEP 425), or None when it fits."""
    try:
        _, _, pys, abis, plats = parse_wheel_name(filename)
    except ValueError as exc:
        return str(exc)
    minor = int(target.minor.split(".")[1])
    abis_ok = {"none", "abi3", f"cp3{minor}"}
    plats_ok = {"any", *platform_tags(target.arch, target.glibc)}
    if not any(_python_tag_fits(py, abi, minor) for py in pys.split(".") for abi in abis.split(".")):
        return f"{filename}: built for Python {pys.replace('.', ', ')}, the hosts run {target.describe()}"
    if not set(abis.split(".")) & abis_ok:
        return f"{filename}: ABI {abis} does not fit {target.describe()}"
    if not set(plats.split(".")) & plats_ok:
        return f"{filename}: platform {plats} does not fit {target.describe()}"
    return None


# --------------------------------------------------------------------------- identity


@dataclass(frozen=True)
class Artifact:
    release_id: str  # "<UTC %Y%m%dT%H%M%SZ>-<short_hash(content_hash)>"
    content_hash: str  # sha256 of the manifest: app files + the wheel set; the identity
    app_tarball: Path  # tar.gz, .deployer/manifest.json at its root
    req_hash: str  # names <venvs>/<req_hash> on hosts
    wheels_dir: Path  # the wheel cache entry's wheels + requirements.lock
    wheel_names: tuple[str, ...]  # what the venv installs, sorted
    python: str  # the hosts' Python, "3.11"
    size: int = 0  # bytes of app_tarball
    target: HostPython | None = None  # what the wheels were resolved for
    declared: str = ""  # where the dependencies came from, e.g. "uv.lock"
    # Flask names whose instance folder is <venv>/var/<name>-instance (the app is installed
    # as a wheel): the venv links it to shared/instance, so data outlives the venv
    instance_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppFile:
    """One entry of the release, relative to the source root (POSIX path)."""

    path: str
    kind: str  # "file", "dir" or "link"
    mode: int = 0o644  # normalised: 0644/0755 for files, 0755 for dirs
    size: int = 0
    sha256: str = ""
    link: str = ""  # a link's target, relative
    source: Path | None = None  # where to read a file's bytes on the controller


def short_hash(content_hash: str) -> str:
    """The 12 hex chars that end a release id."""
    if not re.fullmatch(r"[0-9a-f]{12,64}", content_hash):
        raise ValueError(f"expected a sha256 hex digest, got {content_hash!r}")
    return content_hash[:12]


def release_id_for(content_hash: str, now: datetime) -> str:
    """``20261125T163000Z-3f2a9c1b7e4d``; a naive ``now`` is taken as UTC."""
    when = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
    return f"{when:%Y%m%dT%H%M%SZ}-{short_hash(content_hash)}"


def normal_mode(st_mode: int) -> int:
    if stat.S_ISDIR(st_mode):
        return 0o755
    return 0o755 if st_mode & 0o111 else 0o644


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def requirements_lock_hash(wheels: Mapping[str, str], target: HostPython) -> str:
    """``req_hash``: changes iff the installed set (name -> sha256) or the interpreter does."""
    doc = {"target": target.as_dict(), "wheels": dict(sorted(wheels.items()))}
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def manifest_of(files: Sequence[AppFile], python: str, req_hash: str, wheel_names: Sequence[str],
                config_files: Sequence[str] = ()) -> dict:
    """The manifest without its own hash; ``content_hash`` is the sha256 of this.

    ``config_files`` (``app.files`` paths) are links the host puts in the release: a
    new one is a new release (only listed when there are any, so other hashes stay).
    """
    extra = {"config_files": sorted(config_files)} if config_files else {}
    return {
        **extra,
        "format": MANIFEST_FORMAT,
        "python": python,
        "requirements": {"req_hash": req_hash, "wheels": sorted(wheel_names)},
        "files": {f.path: {"sha256": f.sha256, "size": f.size, "mode": f"{f.mode:04o}"}
                  for f in files if f.kind == "file"},
        "links": {f.path: f.link for f in files if f.kind == "link"},
        "dirs": [f.path for f in files if f.kind == "dir"],
    }


def content_hash_of(manifest: dict) -> str:
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


def files_digest(files: Sequence[AppFile]) -> str:
    """The sha256 of what a source tree holds (paths, modes, hashes, links): names an app wheel."""
    doc = [[f.path, f.kind, f.mode, f.sha256, f.link] for f in files]
    return hashlib.sha256(canonical_json(doc)).hexdigest()


class IgnoreRules:
    """Which app-relative paths stay out of a release, and why (no I/O)."""

    def __init__(self, shared: Sequence[str] = (), secrets_file: str | None = None,
                 ignore_lines: Sequence[str] = (), config_files: Sequence[str] = ()) -> None:
        self.shared = tuple(PurePosixPath(p) for p in shared)
        self.config_files = frozenset(config_files)
        self.secrets_file = secrets_file
        self.spec = pathspec.GitIgnoreSpec.from_lines(ignore_lines) if ignore_lines else None

    def reason(self, rel: str, is_dir: bool) -> str | None:
        """Why ``rel`` is left out, or None to ship it."""
        path = PurePosixPath(rel)
        name = path.name
        if is_dir and name in VCS_DIRS:
            return "version control"
        if is_dir and name in CACHE_DIRS or not is_dir and _matches(name, CACHE_FILES):
            return "cache"
        if is_dir and name in VENV_DIRS:
            return "virtualenv"
        if not is_dir and (_matches(name, SECRET_FILES) or rel == self.secrets_file):
            return "secret"
        if any(path == s or s in path.parents for s in self.shared):
            return "shared path (lives in shared/ on the host)"
        if rel in self.config_files:
            return "app.files (rendered from the inventory's template on the host)"
        if rel == IGNORE_FILE:
            return IGNORE_FILE
        if self.spec is not None and self.spec.match_file(rel + "/" if is_dir else rel):
            return IGNORE_FILE
        return None


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(PurePosixPath(name).match(p) for p in patterns)
