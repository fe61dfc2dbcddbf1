"""Which file declares the app's dependencies: detected in a fixed order, overridable.

Order (the first that exists wins):

1. ``app.requirements`` when the inventory sets it (a requirements file);
2. ``uv.lock`` beside a ``pyproject.toml``: the exact pins of the lock;
3. ``requirements.txt`` (with ``-r``/``-c`` includes, markers, hashes);
4. ``pyproject.toml`` with a PEP 621 ``[project]`` table.

With 2 and 4, a project that names a PEP 517 ``[build-system]`` is a package: it is
built as a wheel on the controller and installed into the venv with its dependencies,
as Flask's "Deploy to Production" tutorial does. One without is installed from source
as before (the release dir is on the path); only its dependencies go into the venv.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from deployer.artifact.manifest import SourceError
from deployer.config.model import App

INCLUDE_RE = re.compile(r"\s*(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+)(\S+)")


@dataclass(frozen=True)
class Declared:
    """Where the dependencies come from, and every file whose text decides them."""

    kind: str  # "requirements", "uv.lock" or "pyproject"
    path: Path  # the requirements file, uv.lock or pyproject.toml
    inputs: tuple[Path, ...]  # the cache key is made of these files' bytes
    build_app: bool = False  # the app itself is built as a wheel and installed
    dependencies: tuple[str, ...] | None = None  # [project].dependencies when static

    @property
    def label(self) -> str:
        """How plan names it: ``uv.lock``, ``pyproject.toml``, ``requirements/prod.txt``."""
        if self.kind == "requirements":
            return self.rel
        return self.path.name

    @property
    def rel(self) -> str:
        return self.inputs_rel[0] if self.inputs_rel else self.path.name

    inputs_rel: tuple[str, ...] = ()


def detect(app: App) -> Declared:
    """The app's declaration, in the documented order. Raises ``SourceError``."""
    source = Path(app.source).absolute()  # uv and pip run elsewhere: every path is absolute
    if app.requirements:
        return requirements(source, app.requirements)
    pyproject = source / "pyproject.toml"
    if (source / "uv.lock").is_file() and pyproject.is_file():
        project = read_pyproject(source)
        return Declared("uv.lock", source / "uv.lock", (source / "uv.lock", pyproject),
                        build_app=is_package(project))
    if (source / "requirements.txt").is_file():
        return requirements(source, "requirements.txt")
    if pyproject.is_file():
        project = read_pyproject(source)
        if "project" in project:
            return Declared("pyproject", pyproject, (pyproject,), build_app=is_package(project),
                            dependencies=static_dependencies(project))
    raise SourceError(source, ["no dependencies declared: add requirements.txt, a pyproject.toml with a "
                               "[project] table, or uv.lock (or set app.requirements)"])


def requirements(source: Path, rel: str) -> Declared:
    path = source / rel
    if not path.is_file():
        raise SourceError(source, [f"{rel}: requirements file not found"])
    try:
        return Declared("requirements", path, tuple(requirements_files(path.resolve())), inputs_rel=(rel,))
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(source, [f"{rel}: {exc}"]) from None


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
            match = INCLUDE_RE.match(line)
            if match:
                todo.append((path.parent / match.group(1)).resolve())
    return seen


def read_pyproject(source: Path) -> dict:
    try:
        return tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SourceError(source, [f"pyproject.toml: {exc}"]) from None


def is_package(pyproject: dict) -> bool:
    """A PEP 517 build backend is named: the project builds a wheel of itself."""
    return bool(pyproject.get("build-system", {}).get("build-backend")) and "project" in pyproject


def static_dependencies(pyproject: dict) -> tuple[str, ...] | None:
    """``[project].dependencies`` when written out; None when the backend computes them."""
    project = pyproject.get("project", {})
    if "dependencies" in project.get("dynamic", ()):
        return None
    return tuple(str(d) for d in project.get("dependencies", ()))


def pinned_hashes(paths: tuple[Path, ...]) -> dict[str, set[str]]:
    """``--hash=sha256:...`` per project name in requirements files: what a fetched file must match."""
    hashes: dict[str, set[str]] = {}
    for path in paths:
        if path.suffix == ".toml" or path.name == "uv.lock":
            continue
        text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
        for line in text.splitlines():
            found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
            digests = re.findall(r"--hash[=\s]sha256:([0-9a-fA-F]{64})", line)
            if found and digests and not line.lstrip().startswith("-"):
                hashes.setdefault(normal_name(found.group(1)), set()).update(d.lower() for d in digests)
    return hashes


def normal_name(name: str) -> str:
    """PEP 503: ``Flask_Login`` and ``flask.login`` are ``flask-login``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def index_options(paths: tuple[Path, ...]) -> list[str]:
    """The index lines (``--index-url``, ``--find-links``, ``--no-index``...) of requirements files."""
    option = re.compile(r"\s*(-i|-f|--index-url|--extra-index-url|--find-links|--no-index|--trusted-host|--pre)\b")
    lines = []
    for path in paths:
        if path.suffix != ".toml" and path.name != "uv.lock":
            for line in path.read_text(encoding="utf-8").splitlines():
                if option.match(line):
                    lines.append(_absolute_links(line.strip(), path.parent))
    return lines


def _absolute_links(line: str, base: Path) -> str:
    """``--find-links ../dist`` relative to its file, as pip reads it, spelt out."""
    found = re.fullmatch(r"(-f|--find-links)(?:\s*=\s*|\s+)(\S+)", line)
    if not found or "://" in found.group(2):
        return line
    return f"{found.group(1)} {(base / found.group(2)).resolve()}"
