"""The release artifact: built once per deploy on the controller, uploaded to every host.

Two files come out of ``build_artifact``:

- the **app tarball** (``<app>-<short hash>.tar.gz``): the app's files and, at its root,
  ``.deployer/manifest.json`` (path -> sha256, size, mode; links; the wheel set). It is
  deterministic: sorted entries, uid/gid 0, mtime 0, modes 0644/0755, gzip mtime 0,
  so the same content gives the same bytes and the same ``content_hash``. Unpack it
  with ``unpack_command`` (``tar --touch``): files then get the unpack time, so
  nginx's ETag and Last-Modified (built from mtime and size) change with each release
  instead of staying at 1970 and answering 304 for a changed file of the same size.
- the **venv tree** (``venv_tree``, ``<key>.tar.gz`` beside the wheel cache entry): the
  installed files of ``<venvs>/<req_hash>``. Every wheel the app installs is built or
  downloaded here for the *hosts'* Python and CPU (hosts have no route to an index),
  checked against the entry's ``requirements.lock`` (sha256 per wheel) and installed
  into a staging tree with PyPA's ``installer`` (RECORD checked, console scripts pointing
  at the venv's python), byte-compiled here when this Python is the hosts' version. A
  host then runs ``venv_command``: ``python -m venv --without-pip`` and one ``tar``.
  Installing once here instead of running pip on every host saves ~1.9 s of host CPU
  per host (measured on the lab), and the hosts need no pip at all.

What goes into a release: everything under ``app.source`` except

- version control: ``.git``, ``.hg``, ``.svn``;
- caches: ``__pycache__``, ``*.pyc``, ``.pytest_cache``, ``.mypy_cache``,
  ``.ruff_cache``, ``node_modules``;
- virtualenvs: ``.venv``, ``venv`` and any directory holding a ``pyvenv.cfg``;
- secrets: the inventory's ``secrets_file`` when it lies inside the source, ``.env``,
  ``.env.*``, ``*.env``, ``*.pem``, ``*.key``;
- the app's ``shared`` paths (e.g. ``instance``): they live in ``shared/`` on the host;
- the patterns in a ``.deployerignore`` file at the source root, with ``.gitignore``
  syntax (``*.log``, ``/docs/``, ``build/``, ``!keep.log``). It can only add
  exclusions: a ``!`` line re-includes what an earlier line of the same file excluded,
  never a secret or a cache from the list above. The file itself is not shipped.

``.deployer`` at the source root is reserved (the manifest lives there). A symlink is
shipped as a symlink when it resolves inside the source; one that leads outside is
refused, as are devices, sockets and FIFOs: every such problem is reported at once.

Identity: ``content_hash`` is the sha256 of the manifest (files, links, directories,
python, the wheel set), never of a timestamp. ``release_id`` is
``<UTC timestamp>-<short_hash>``, so a host holding a release that ends in the short
hash already has this content (``release_has_content``). ``req_hash`` names the venv:
sha256 of the target python, CPU and the sorted wheel file names, which is exactly the
installed set: a code-only change, or a comment in requirements.txt, keeps the venv.

Wheel cache: ``cache_dir`` (default ``$XDG_CACHE_HOME/deployer/wheels``), one directory
per key = sha256(python, CPU, glibc, the text of the requirements file and of every
file it includes with ``-r``/``-c``). A hit runs no pip at all. What a local
``--find-links`` directory holds is not part of the key: after changing such a wheel
without changing its version, delete the cache directory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import pathspec

from deployer.errors import EXIT_BAD_INPUT, DeployerError
from deployer.core.layout import Layout
from deployer.config.model import App

MANIFEST_PATH = ".deployer/manifest.json"
MANIFEST_FORMAT = 1
CACHE_FORMAT = "2"  # bump when the cache entry layout changes
TREE_FORMAT = "1"  # bump when venv trees are built differently
IGNORE_FILE = ".deployerignore"
COMPLETE_MARKER = ".complete"

# Debian 12 (bookworm), the hosts' release, has glibc 2.36: wheels up to manylinux_2_36.
HOST_GLIBC = (2, 36)
FIXED_MTIME = 0

VCS_DIRS = frozenset({".git", ".hg", ".svn"})
CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules"})
VENV_DIRS = frozenset({".venv", "venv"})
CACHE_FILES = ("*.pyc",)
SECRET_FILES = (".env", ".env.*", "*.env", "*.pem", "*.key")
PIP_TAIL_LINES = 15


# --------------------------------------------------------------------------- errors


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


class PipError(ReleaseError):
    """pip failed on the controller; carries its last lines, not a traceback."""

    def __init__(self, what: str, command: Sequence[str], returncode: int, output: str) -> None:
        self.what = what
        self.command = tuple(command)
        self.returncode = returncode
        self.tail = "\n".join(output.strip().splitlines()[-PIP_TAIL_LINES:])
        super().__init__(self.format())

    def format(self) -> str:
        tail = "\n".join(f"  | {line}" for line in self.tail.splitlines()) or "  | (no output)"
        return f"{self.what}: pip exited with {self.returncode}:\n{tail}"


# --------------------------------------------------------------------------- data


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


@dataclass(frozen=True)
class WheelSet:
    """A complete wheel-cache entry."""

    dir: Path
    wheels: tuple[str, ...]  # the installed set, sorted
    req_hash: str


@dataclass(frozen=True)
class VenvTree:
    """A venv's installed files for one venv path on the hosts, as a tar.gz."""

    tarball: Path
    sha256: str
    precompiled: bool  # .pyc files inside; else the host compiles


# --------------------------------------------------------------------------- pure helpers


def short_hash(content_hash: str) -> str:
    """The 12 hex chars that end a release id."""
    if not re.fullmatch(r"[0-9a-f]{12,64}", content_hash):
        raise ValueError(f"expected a sha256 hex digest, got {content_hash!r}")
    return content_hash[:12]


def release_id_for(content_hash: str, now: datetime) -> str:
    """``20261125T163000Z-3f2a9c1b7e4d``; a naive ``now`` is taken as UTC."""
    when = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
    return f"{when:%Y%m%dT%H%M%SZ}-{short_hash(content_hash)}"


def release_has_content(release_id: str, content_hash: str) -> bool:
    """Whether an existing release on a host already holds this content."""
    return release_id.endswith("-" + short_hash(content_hash))


def normal_mode(st_mode: int) -> int:
    if stat.S_ISDIR(st_mode):
        return 0o755
    return 0o755 if st_mode & 0o111 else 0o644


def host_arch(machine: str | None = None) -> str:
    """The wheel platform CPU for the hosts: the controller's (lab hosts run here)."""
    machine = (machine or platform.machine()).lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if arch not in ("x86_64", "aarch64"):
        raise ReleaseError(f"cannot pick wheels for CPU {machine!r}: only x86_64 and aarch64 hosts are supported")
    return arch


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


def pip_download_args(requirements: Path, dest: Path, python: str, arch: str,
                      find_links: Sequence[Path] = ()) -> list[str]:
    args = ["download", "--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    for tag in platform_tags(arch):
        args += ["--platform", tag]
    for link in find_links:
        args += ["--find-links", str(link)]
    return args + ["--dest", str(dest), "-r", str(requirements)]


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


def requirements_lock_hash(wheel_names: Sequence[str], python: str, arch: str) -> str:
    """``req_hash``: changes iff the installed set (or the Python or CPU it targets) does."""
    doc = {"python": python, "arch": arch, "wheels": sorted(wheel_names)}
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_of(files: Sequence[AppFile], python: str, req_hash: str, wheel_names: Sequence[str]) -> dict:
    """The manifest without its own hash; ``content_hash`` is the sha256 of this."""
    return {
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


class IgnoreRules:
    """Which app-relative paths stay out of a release, and why (no I/O)."""

    def __init__(self, shared: Sequence[str] = (), secrets_file: str | None = None,
                 ignore_lines: Sequence[str] = ()) -> None:
        self.shared = tuple(PurePosixPath(p) for p in shared)
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
        if rel == IGNORE_FILE:
            return IGNORE_FILE
        if self.spec is not None and self.spec.match_file(rel + "/" if is_dir else rel):
            return IGNORE_FILE
        return None


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(PurePosixPath(name).match(p) for p in patterns)


def venv_site_packages(venv: PurePosixPath, python: str) -> PurePosixPath:
    return venv / "lib" / f"python{python}" / "site-packages"


def venv_scheme(venv: PurePosixPath, python: str, distribution: str) -> dict[str, str]:
    """Where a wheel's parts go in a venv (what ``sysconfig`` says inside that venv)."""
    site = str(venv_site_packages(venv, python))
    return {"purelib": site, "platlib": site, "scripts": str(venv / "bin"), "data": str(venv),
            "headers": str(venv / "include" / "site" / f"python{python}" / distribution)}


VENV_SCRIPT = (
    'set -e; venv=$1 tree=$2 sum=$3 python=$4 compile=$5\n'
    'printf "%s  %s\\n" "$sum" "$tree" | sha256sum --check --quiet --strict\n'
    '"$python" -m venv --clear --without-pip "$venv"\n'
    'tar -xzf "$tree" -C "$venv" --no-same-owner\n'
    # as pip does, a file that does not compile (py2-only test data...) is not an error
    'if [ "$compile" = yes ]; then "$venv/bin/python" -m compileall -q -j 0 '
    '--invalidation-mode unchecked-hash "$venv/lib" >/dev/null || :; fi\n'
    'rm -f "$tree"; touch "$venv/.complete"\n'
)


def venv_command(layout: Layout, req_hash: str, tree: PurePosixPath, tree_sha256: str,
                 python: str = "3.11", precompiled: bool = True) -> tuple[str, ...]:
    """Create ``<venvs>/<req_hash>`` from an uploaded venv tree, in one round trip.

    The tree's sha256 is checked first (a truncated upload fails loudly). The venv gets
    no pip (``--without-pip``: no ensurepip). ``--clear`` empties a half-built venv left
    by an earlier try; the ``.complete`` marker comes last: a venv without it is not used.
    """
    venv = layout.venvs / req_hash
    compile_ = "no" if precompiled else "yes"
    return ("sh", "-c", VENV_SCRIPT, "sh", str(venv), str(tree), tree_sha256, f"python{python}", compile_)


def unpack_command(tarball: PurePosixPath, dest: PurePosixPath) -> tuple[str, ...]:
    """Unpack an app tarball into an existing release dir; ``--touch`` gives files the
    unpack time (see the module docstring: nginx ETags)."""
    return ("tar", "-xzf", str(tarball), "-C", str(dest), "--touch", "--no-same-owner")


# --------------------------------------------------------------------------- controller I/O


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deployer" / "wheels"


def build_artifact(app: App, *, python: str = "3.11", cache_dir: Path | None = None,
                   now: datetime | None = None, out_dir: Path | None = None,
                   extra_requirements: Sequence[str] = ()) -> Artifact:
    """Collect the app, get its wheels (from the cache when it can), write both tarballs.

    ``extra_requirements`` are installed beside the app's own (the app server the app
    does not depend on: ``deployer.run.server_version.added_requirements``).

    ``out_dir`` (where the app tarball goes) defaults to ``artifacts/`` beside
    ``cache_dir``. Raises ``SourceError`` (exit 2) for an unshippable source tree and
    ``PipError`` when pip fails.
    """
    if not re.fullmatch(r"3\.\d{1,2}", python):
        raise ReleaseError(f"python: expected a version like '3.11', got {python!r}")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out_dir = Path(out_dir) if out_dir is not None else cache_dir.parent / "artifacts"
    now = now or datetime.now(timezone.utc)

    files = collect_app_files(app)  # before pip: source problems are cheap to report
    wheels = ensure_wheels(app, python=python, cache_dir=cache_dir, extra=extra_requirements)
    manifest = manifest_of(files, python, wheels.req_hash, wheels.wheels)
    content_hash = content_hash_of(manifest)
    manifest_bytes = json.dumps({**manifest, "content_hash": content_hash}, sort_keys=True,
                                indent=1, ensure_ascii=False).encode() + b"\n"

    out_dir.mkdir(parents=True, exist_ok=True)
    tarball = out_dir / f"{app.name}-{short_hash(content_hash)}.tar.gz"
    _atomic_write(tarball, lambda fh: write_app_tarball(fh, files, manifest_bytes))
    return Artifact(
        release_id=release_id_for(content_hash, now),
        content_hash=content_hash,
        app_tarball=tarball,
        req_hash=wheels.req_hash,
        wheels_dir=wheels.dir,
        wheel_names=wheels.wheels,
        python=python,
        size=tarball.stat().st_size,
    )


def collect_app_files(app: App) -> list[AppFile]:
    """Walk ``app.source``: what ships, sorted, with hashes. Raises ``SourceError``."""
    source = Path(app.source)
    if not source.is_dir():
        raise SourceError(source, ["the app source is not a directory"])
    real_source = source.resolve()
    problems: list[str] = []
    rules = IgnoreRules(app.shared, _secrets_rel(app, real_source), _ignore_lines(source, problems))
    if (source / ".deployer").exists() or (source / ".deployer").is_symlink():
        problems.append("'.deployer' is reserved for deployer's manifest: rename it")

    found: list[AppFile] = []
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        rel_here = here.relative_to(source).as_posix()
        keep_dirs = []
        for name in sorted(dirnames + filenames):
            path = here / name
            rel = name if rel_here == "." else f"{rel_here}/{name}"
            if rel == ".deployer":
                continue
            st = path.lstat()
            is_dir = stat.S_ISDIR(st.st_mode)
            # a link to a directory is matched as one: `venv -> /opt/venv` is a virtualenv
            if rules.reason(rel, is_dir or stat.S_ISLNK(st.st_mode) and path.is_dir()):
                continue
            if stat.S_ISLNK(st.st_mode):
                entry = _link_entry(path, rel, real_source, problems)
                if entry:
                    found.append(entry)
            elif is_dir:
                if (path / "pyvenv.cfg").is_file():
                    continue  # a virtualenv, whatever its name
                found.append(AppFile(rel, "dir", 0o755))
                keep_dirs.append(name)
            elif stat.S_ISREG(st.st_mode):
                data = path.read_bytes()
                found.append(AppFile(rel, "file", normal_mode(st.st_mode), len(data),
                                     hashlib.sha256(data).hexdigest(), source=path))
            else:
                problems.append(f"{rel}: not a regular file, directory or symlink (a device, socket or FIFO)")
        dirnames[:] = keep_dirs  # os.walk descends only into these; links are not followed
    if problems:
        raise SourceError(source, problems)
    return sorted(found, key=lambda f: f.path.split("/"))


def _secrets_rel(app: App, real_source: Path) -> str | None:
    if app.secrets_file is None:
        return None
    real = Path(app.secrets_file).resolve()
    return real.relative_to(real_source).as_posix() if real.is_relative_to(real_source) else None


def _ignore_lines(source: Path, problems: list[str]) -> list[str]:
    path = source / IGNORE_FILE
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        pathspec.GitIgnoreSpec.from_lines(lines)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # pathspec raises ValueError subclasses
        problems.append(f"{IGNORE_FILE}: {exc}")
        return []
    return lines


def _link_entry(path: Path, rel: str, real_source: Path, problems: list[str]) -> AppFile | None:
    target = os.readlink(path)
    resolved = path.resolve()
    if not resolved.is_relative_to(real_source):
        problems.append(f"{rel}: symlink to {target!r} leads outside the app ({resolved}); "
                        "copy the file in, or list it in .deployerignore")
        return None
    if os.path.isabs(target):  # inside the app, but the absolute path exists only here
        target = os.path.relpath(resolved, path.parent.resolve())
    return AppFile(rel, "link", 0o777, link=target)


def write_app_tarball(fh, files: Sequence[AppFile], manifest_bytes: bytes) -> None:
    """A deterministic tar.gz: same entries and bytes in, same bytes out."""
    manifest_dir = AppFile(".deployer", "dir", 0o755)
    manifest = AppFile(MANIFEST_PATH, "file", 0o644, len(manifest_bytes))
    entries = sorted([*files, manifest_dir, manifest], key=lambda f: f.path.split("/"))
    with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in entries:
                info = _tarinfo(entry.path, entry.mode)
                if entry.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif entry.kind == "link":
                    info.type, info.linkname = tarfile.SYMTYPE, entry.link
                    tar.addfile(info)
                else:
                    data = manifest_bytes if entry is manifest else entry.source.read_bytes()
                    if entry is not manifest and hashlib.sha256(data).hexdigest() != entry.sha256:
                        raise ReleaseError(f"{entry.source}: changed while the release was being built")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def _tarinfo(name: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = mode, FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- wheels


def run_pip(args: Sequence[str], *, cwd: Path, what: str) -> str:
    """``python -m pip ARGS`` on the controller; its output, or ``PipError``."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    try:
        done = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise PipError(what, command, -1, str(exc)) from None
    if done.returncode != 0:
        raise PipError(what, command, done.returncode, done.stdout)
    return done.stdout


def requirements_files(requirements: Path) -> list[Path]:
    """The requirements file and every file it pulls in with -r/-c, recursively."""
    seen: list[Path] = []
    todo = [requirements]
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.append(path)
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"\s*(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+)(\S+)", line)
            if match:
                todo.append((path.parent / match.group(1)).resolve())
    return seen


def wheel_cache_key(texts: Sequence[bytes], python: str, arch: str) -> str:
    doc = {"format": CACHE_FORMAT, "python": python, "arch": arch, "glibc": list(HOST_GLIBC),
           "requirements": [hashlib.sha256(t).hexdigest() for t in texts]}
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def ensure_wheels(app: App, *, python: str, cache_dir: Path, extra: Sequence[str] = ()) -> WheelSet:
    """The app's wheel set (with the ``extra`` requirements) from the cache, filling the entry on a miss."""
    requirements = Path(app.source) / app.requirements
    if not requirements.is_file():
        raise SourceError(Path(app.source), [f"{app.requirements}: requirements file not found"])
    try:
        paths = requirements_files(requirements.resolve())
        texts = [p.read_bytes() for p in paths]
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(Path(app.source), [f"{app.requirements}: {exc}"]) from None
    if extra:
        texts.append("\n".join(extra).encode())
    arch = host_arch()
    entry = cache_dir / wheel_cache_key(texts, python, arch)
    cached = _read_entry(entry)
    if cached is not None:
        return cached

    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir))
    try:
        wheels = download_wheels(_with_extra(requirements.resolve(), extra, work), work, python=python, arch=arch)
        digests = {name: _sha256_file(work / "wheels" / name) for name in wheels}
        info = {"format": CACHE_FORMAT, "python": python, "arch": arch, "wheels": sorted(wheels),
                "sha256": digests, "req_hash": requirements_lock_hash(wheels, python, arch),
                "requirements": [str(p) for p in paths]}
        (work / "entry.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        try:
            os.rename(work, entry)
        except OSError:  # another build filled the same entry first: use that one
            if _read_entry(entry) is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = _read_entry(entry)
    assert result is not None
    return result


def _with_extra(requirements: Path, extra: Sequence[str], work: Path) -> Path:
    """``requirements`` itself, or a file in ``work`` that includes it (and its index options) plus ``extra``."""
    if not extra:
        return requirements
    text = requirements.read_text(encoding="utf-8")
    combined = work / "requirements-with-server.txt"
    combined.write_text("\n".join([*_index_options(text), f"-r {requirements}", *extra]) + "\n", encoding="utf-8")
    return combined


def _index_options(text: str) -> list[str]:
    """The lines of a requirements file that say where packages come from (pip applies them file-wide)."""
    return [line.strip() for line in text.splitlines()
            if re.match(r"\s*(-i|-f|--index-url|--extra-index-url|--find-links|--no-index|"
                        r"--trusted-host|--pre)\b", line)]


def _read_entry(entry: Path) -> WheelSet | None:
    try:
        info = json.loads((entry / "entry.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if info.get("format") != CACHE_FORMAT:
        return None
    return WheelSet(entry / "wheels", tuple(info["wheels"]), info["req_hash"])


def download_wheels(requirements: Path, work: Path, *, python: str, arch: str) -> list[str]:
    """Fill ``work/wheels`` with wheels for the hosts; return their file names.

    ``pip download --only-binary=:all:`` for the hosts' tags. A requirement with no
    such wheel is built here with ``pip wheel --no-deps`` and accepted only if the
    result is pure Python; then the download runs again, into a fresh directory so
    that only the final resolution's wheels remain.
    """
    built = work / "built"
    built.mkdir()
    attempts: list[str] = []
    for attempt in range(1, 51):
        dest = work / f"download-{attempt}"
        try:
            run_pip(pip_download_args(requirements, dest, python, arch, [built] if attempts else []),
                    cwd=requirements.parent, what=f"downloading wheels for {requirements.name} "
                    f"(python {python}, {arch})")
            break
        except PipError as exc:
            missing = re.findall(r"No matching distribution found for (\S+)", exc.tail)
            if not missing or missing[-1] in attempts:
                raise
            requirement = missing[-1]
            attempts.append(requirement)
            try:
                _build_pure_wheel(requirement, requirements, built, work, python, arch)
            except PipError as build_error:
                if "No matching distribution found" in build_error.tail:
                    raise exc from None  # no sdist either: the download's words say it best
                raise
    else:
        raise ReleaseError(f"{requirements}: gave up after {len(attempts)} wheels built from source")
    wheels = sorted(p.name for p in dest.iterdir() if p.name.endswith(".whl"))
    (work / "wheels").mkdir()
    for name in wheels:
        os.replace(dest / name, work / "wheels" / name)
    return wheels


def _build_pure_wheel(requirement: str, requirements: Path, built: Path, work: Path,
                      python: str, arch: str) -> None:
    """``pip wheel --no-deps`` one requirement, with the index options of the file."""
    options = _index_options(requirements.read_text(encoding="utf-8"))
    one = work / "one-requirement.txt"
    one.write_text("\n".join([*options, requirement]) + "\n", encoding="utf-8")
    out = work / "build-out"
    shutil.rmtree(out, ignore_errors=True)
    run_pip(["wheel", "--no-deps", "--wheel-dir", str(out), "-r", str(one)], cwd=requirements.parent,
            what=f"no wheel of {requirement} for python {python} on {arch}; building it from source")
    for wheel in sorted(out.glob("*.whl")):
        if not is_pure_wheel(wheel.name):
            raise ReleaseError(
                f"no wheel of {requirement} for python {python} on manylinux {arch}, and its "
                f"source builds a platform-specific wheel ({wheel.name}) that the hosts may not "
                "run: pin a version that publishes manylinux wheels")
        os.replace(wheel, built / wheel.name)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()




# --------------------------------------------------------------------------- venv trees

_tree_lock = threading.Lock()  # host threads ask at once; one builds, the others reuse it


def venv_tree(artifact: Artifact, venv: PurePosixPath) -> VenvTree:
    """The installed files of ``venv`` (a path on the hosts), built once here and cached.

    Scripts name ``venv``'s python in their ``#!`` line, so the tree is per venv path
    (the same on every host unless ``deploy_root`` differs). Each wheel is checked against
    the sha256 recorded when it entered the cache. Byte-compiled here only when this
    Python is the hosts' version (pycs are version-specific); ``unchecked-hash`` pycs do
    not depend on file times, so unpacking cannot make them stale.
    """
    from installer import install
    from installer.sources import WheelFile
    from installer.destinations import SchemeDictionaryDestination

    entry = artifact.wheels_dir.parent
    key = hashlib.sha256(f"{TREE_FORMAT}\0{venv}".encode()).hexdigest()[:16]
    tarball, meta = entry / "trees" / f"{key}.tar.gz", entry / "trees" / f"{key}.json"
    with _tree_lock:
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            if tarball.is_file():
                return VenvTree(tarball, info["sha256"], info["precompiled"])
        except (OSError, ValueError, KeyError):
            pass
        digests = json.loads((entry / "entry.json").read_text(encoding="utf-8")).get("sha256", {})
        precompiled = f"{sys.version_info[0]}.{sys.version_info[1]}" == artifact.python
        stage = Path(tempfile.mkdtemp(prefix=".tree-", dir=entry))
        try:
            for name in artifact.wheel_names:
                path = artifact.wheels_dir / name
                if _sha256_file(path) != digests.get(name):
                    raise ReleaseError(f"{path}: sha256 differs from the wheel cache's record; "
                                       f"delete {entry} and deploy again")
                with WheelFile.open(path) as source:
                    source.validate_record()
                    install(source, SchemeDictionaryDestination(
                        venv_scheme(venv, artifact.python, source.distribution),
                        interpreter=str(venv / "bin" / "python"), script_kind="posix",
                        destdir=str(stage)), {"INSTALLER": b"deployer\n"})
            root = stage / str(venv).lstrip("/")
            if precompiled:
                import compileall
                import py_compile

                compileall.compile_dir(root / "lib", quiet=2, ddir=str(venv / "lib"), workers=0,
                                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            tarball.parent.mkdir(exist_ok=True)
            _atomic_write(tarball, lambda fh: _write_tree(fh, root))
            meta.write_text(json.dumps({"venv": str(venv), "sha256": _sha256_file(tarball),
                                        "precompiled": precompiled}) + "\n", encoding="utf-8")
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return VenvTree(tarball, json.loads(meta.read_text(encoding="utf-8"))["sha256"], precompiled)


def _write_tree(fh, root: Path) -> None:
    """A gzipped tar of ``root``'s contents, sorted, owned by root, modes kept."""
    with gzip.GzipFile(fileobj=fh, mode="wb", mtime=FIXED_MTIME, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isfile():
                with open(path, "rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
