"""Files deployer writes on the controller (``render --out``, ``verify --junit``): new files only.

deployer often runs as root, and what it writes can hold every secret
(``render --out --show-secrets``). A link planted where it writes would make it
overwrite (and chmod) the link's target; a file someone else created in advance
would receive the content and stay theirs. So files are created with
O_CREAT|O_EXCL|O_NOFOLLOW (never an existing file, never through a link) and
get their mode before any byte is written: 0600 for secret content, else 0644.
``render --out`` writes into a directory it creates itself; ``--junit`` writes a
new file beside the target and renames it over (a rename replaces a link, it
does not follow it).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from deployer.errors import UsageError

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def fresh_directory(path: Path) -> None:
    """Create ``path`` (its missing parents too); refuse one that exists, a link included."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o755)
    except FileExistsError:
        raise UsageError(f"--out {path}: already exists; give a new directory (deployer writes new files only)") from None
    except OSError as exc:
        raise UsageError(f"--out {path}: {exc.strerror or exc}") from None


def write_new(path: Path, text: str, *, secret: bool) -> None:
    """Create ``path`` with ``text``; an existing file or link there is an error, never overwritten."""
    try:
        _create(path, text, SECRET_MODE if secret else PUBLIC_MODE)
    except OSError as exc:
        raise UsageError(f"{path}: cannot create: {exc.strerror or exc}") from None


def _create(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, FLAGS, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(fd, mode)  # exactly this mode, whatever the umask
        out.write(text)


def write_under(root: Path, relative: PurePosixPath, text: str, *, secret: bool) -> Path:
    """``text`` as the new file ``root/relative``; its directories are created, a ``..`` step is refused."""
    if relative.is_absolute() or any(part in ("", ".", "..") for part in relative.parts):
        raise UsageError(f"{relative}: not a plain relative path under {root}")
    target = root.joinpath(*relative.parts)
    directory = root
    for part in relative.parts[:-1]:
        directory = directory / part
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            if directory.is_symlink() or not directory.is_dir():
                raise UsageError(f"{directory}: not a directory deployer created") from None
    write_new(target, text, secret=secret)
    return target


def replace_file(path: Path, text: str, *, secret: bool = False) -> None:
    """Write ``text`` to a new file beside ``path``, then rename it over ``path`` (a link there is replaced, not followed)."""
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    try:
        _create(temporary, text, SECRET_MODE if secret else PUBLIC_MODE)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink()  # ours: created just now
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
