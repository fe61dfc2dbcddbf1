"""The source walk: what of ``app.source`` ships, and the deterministic app tarball.

Everything under ``app.source`` ships except

- version control: ``.git``, ``.hg``, ``.svn``;
- caches: ``__pycache__``, ``*.pyc``, ``.pytest_cache``, ``.mypy_cache``,
  ``.ruff_cache``, ``node_modules``;
- virtualenvs: ``.venv``, ``venv`` and any directory holding a ``pyvenv.cfg``;
- secrets: the inventory's ``secrets_file`` when it lies inside the source, ``.env``,
  ``.env.*``, ``*.env``, ``*.pem``, ``*.key``;
- the app's ``shared`` paths (e.g. ``instance``): they live in ``shared/`` on the host;
- the patterns in a ``.deployerignore`` file at the source root, with ``.gitignore``
  syntax. It can only add exclusions; the file itself is not shipped.

``.deployer`` at the source root is reserved (the manifest lives there). Symlinks are
checked against the release as it will be *on the host*, not against the controller's
tree: there ``.venv`` and the shared paths are links that deployer makes to outside the
release, so ``static -> .venv/../../../../etc`` leads to ``/etc``. A link ships when it
resolves inside the release; otherwise it is refused, as are devices, sockets and FIFOs:
every such problem is reported at once.

The tarball is deterministic: sorted entries, uid/gid 0, mtime 0, modes 0644/0755,
gzip mtime 0: the same content gives the same bytes. Hosts unpack it with ``tar
--touch`` so nginx's ETag and Last-Modified change with each release.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import pathspec

from deployer.artifact.manifest import (
    IGNORE_FILE, MANIFEST_PATH, AppFile, IgnoreRules, ReleaseError, SourceError, normal_mode,
)
from deployer.config.model import App

FIXED_MTIME = 0
MAX_LINK_HOPS = 40
VENV_LINK = ".venv"  # the release's link to its venv, made on the host


def collect_app_files(app: App) -> list[AppFile]:
    """Walk ``app.source``: what ships, sorted, with hashes. Raises ``SourceError``."""
    source = Path(app.source)
    if not source.is_dir():
        raise SourceError(source, ["the app source is not a directory"])
    real_source = source.resolve()
    problems: list[str] = []
    rules = IgnoreRules(app.shared, _secrets_rel(app, real_source), _ignore_lines(source, problems),
                        [f.path for f in app.files])
    if (source / ".deployer").exists() or (source / ".deployer").is_symlink():
        problems.append("'.deployer' is reserved for deployer's manifest: rename it")

    found: list[AppFile] = []
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        rel_here = here.relative_to(source).as_posix()
        keep_dirs = []
        for name in sorted(dirnames + filenames):
            rel = name if rel_here == "." else f"{rel_here}/{name}"
            if rel != ".deployer":
                entry = _entry(here / name, rel, rules, real_source, problems)
                if entry is not None:
                    found.append(entry)
                    if entry.kind == "dir":
                        keep_dirs.append(name)
        dirnames[:] = keep_dirs  # os.walk descends only into these; links are not followed
    found.sort(key=lambda f: f.path.split("/"))
    problems += release_link_problems(found, host_links(app))
    problems += linked_parent_problems(found, host_links(app))
    if problems:
        raise SourceError(source, problems)
    return found


def _entry(path: Path, rel: str, rules: IgnoreRules, real_source: Path, problems: list[str]) -> AppFile | None:
    st = path.lstat()
    is_dir = stat.S_ISDIR(st.st_mode)
    # a link to a directory is matched as one: `venv -> /opt/venv` is a virtualenv
    if rules.reason(rel, is_dir or stat.S_ISLNK(st.st_mode) and path.is_dir()):
        return None
    if stat.S_ISLNK(st.st_mode):
        return _link_entry(path, rel, real_source, problems)
    if is_dir:
        if (path / "pyvenv.cfg").is_file():
            return None  # a virtualenv, whatever its name
        return AppFile(rel, "dir", 0o755)
    if stat.S_ISREG(st.st_mode):
        data = path.read_bytes()
        return AppFile(rel, "file", normal_mode(st.st_mode), len(data), hashlib.sha256(data).hexdigest(), source=path)
    problems.append(f"{rel}: not a regular file, directory or symlink (a device, socket or FIFO)")
    return None


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
    """A link as it ships; an absolute target inside the app becomes relative (it exists only here)."""
    target = os.readlink(path)
    if os.path.isabs(target):
        resolved = path.resolve()
        if not resolved.is_relative_to(real_source):
            problems.append(f"{rel}: symlink to {target!r} leads outside the app ({resolved}); "
                            "copy the file in, or list it in .deployerignore")
            return None
        target = os.path.relpath(resolved, path.parent.resolve())
    return AppFile(rel, "link", 0o777, link=target)


def host_links(app: App) -> dict[str, str]:
    """The links deployer makes in every release on the host, all to outside it."""
    links = {VENV_LINK: "the release's venv (<app_root>/venvs/<req_hash>)"}
    links.update({str(p): f"a shared path (<app_root>/shared/{p})" for p in app.shared})
    links.update({f.path: f"an app.files link (/etc/{app.name}/files/{f.path})" for f in app.files})
    return links


def linked_parent_problems(files: Sequence[AppFile], host_made: Mapping[str, str]) -> list[str]:
    """A path deployer links on the host must have real directories (or nothing) above it in the release.

    The host makes those links as root inside the unpacked release: a shipped link on the
    way (``pkg -> ../elsewhere``) would have root place it wherever that link leads.
    """
    kinds = {f.path: f.kind for f in files}
    problems = []
    for rel in sorted(host_made):
        parts = PurePosixPath(rel).parts
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if kinds.get(parent, "dir") != "dir":
                problems.append(f"{parent}: is a {kinds[parent]} in the app, but {rel} (which deployer links on the host) "
                                "lies under it: make it a directory")
                break
    return problems


def release_link_problems(files: Sequence[AppFile], outside: Mapping[str, str]) -> list[str]:
    """Every shipped link that leads out of the release on the host (pure)."""
    entries = {f.path: f for f in files}
    problems = []
    for f in files:
        if f.kind == "link":
            why = link_escape(f.path, entries, outside)
            if why:
                problems.append(f"{f.path}: symlink to {f.link!r} {why}; copy the file in, or list it in .deployerignore")
    return problems


def link_escape(rel: str, entries: Mapping[str, AppFile], outside: Mapping[str, str]) -> str | None:
    """Why link ``rel`` leaves the release, resolving it as the host will, or None.

    Walks the target one component at a time from the link's directory; a component that
    is a shipped link is replaced by its target, one of ``outside`` (``.venv``, the shared
    paths) leaves the release, and so does a ``..`` above its root.
    """
    here = list(PurePosixPath(rel).parent.parts)
    todo = list(PurePosixPath(entries[rel].link).parts)
    for _ in range(MAX_LINK_HOPS):
        while todo:
            part = todo.pop(0)
            if part.startswith("/"):
                return "is absolute"
            if part == "..":
                if not here:
                    return "leads out of the release"
                here.pop()
                continue
            here.append(part)
            current = "/".join(here)
            if current in outside:
                return f"goes through {current}, which on the host is {outside[current]}, outside the release"
            entry = entries.get(current)
            if entry is not None and entry.kind == "link":
                here.pop()
                todo = list(PurePosixPath(entry.link).parts) + todo
                break
        else:
            return None
    return "has too many levels of symlinks"


def write_app_tarball(fh, files: Sequence[AppFile], manifest_bytes: bytes) -> None:
    """A deterministic tar.gz: same entries and bytes in, same bytes out."""
    manifest_dir = AppFile(".deployer", "dir", 0o755)
    manifest = AppFile(MANIFEST_PATH, "file", 0o644, len(manifest_bytes))
    entries = sorted([*files, manifest_dir, manifest], key=lambda f: f.path.split("/"))
    with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in entries:
                info = tarinfo(entry.path, entry.mode)
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


def tarinfo(name: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = mode, FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
