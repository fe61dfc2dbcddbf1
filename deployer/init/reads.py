"""What a Flask app reads from around its code: project metadata, ``.flaskenv``, env vars, config files.

All of it by parsing (``tomllib``, ``ast``, a dotenv reader), never by running the
app: the point is to list what production will have to provide.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deployer.config.schema import ENV_NAME_RE

SECRET_NAME = re.compile(r"SECRET|PASSW|TOKEN|(^|_)KEY($|_)|CREDENTIAL|PRIVATE|(^|_)DSN$|_URL$|_URI$|API_?KEY|AUTH")
RUNTIME_VARS = {"FLASK_APP", "FLASK_RUN_HOST", "FLASK_RUN_PORT", "FLASK_RUN_CERT", "FLASK_RUN_KEY",
                "FLASK_RUN_RELOAD", "FLASK_RUN_DEBUGGER", "FLASK_SKIP_DOTENV", "PATH", "HOME", "PWD",
                "USER", "LANG", "TERM", "PYTHONPATH", "WERKZEUG_RUN_MAIN", "WERKZEUG_SERVER_FD"}


@dataclass(frozen=True)
class EnvRead:
    """One environment variable the code reads, where, and the default it falls back to (if literal)."""

    name: str
    file: str
    line: int
    default: str | None = None

    @property
    def secret(self) -> bool:
        return bool(SECRET_NAME.search(self.name))


@dataclass(frozen=True)
class ConfigRead:
    """A config file or settings variable the app loads: ``from_pyfile``/``from_envvar``/``from_prefixed_env``."""

    how: str  # from_pyfile | from_envvar | from_prefixed_env
    target: str  # the file name, the variable naming a file, or the prefix
    file: str
    line: int


# -- project metadata ----------------------------------------------------------------------


def project_metadata(directory: Path) -> tuple[str | None, tuple[str, ...]]:
    """(project name, dependency names) from ``pyproject.toml`` (PEP 621 or Poetry); (None, ()) if absent."""
    path = directory / "pyproject.toml"
    if not path.is_file():
        return None, ()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None, ()
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    poetry = data.get("tool", {}).get("poetry", {}) if isinstance(data.get("tool"), dict) else {}
    name = project.get("name") or (poetry.get("name") if isinstance(poetry, dict) else None)
    deps = [d for d in project.get("dependencies", ()) if isinstance(d, str)]
    if isinstance(poetry, dict) and isinstance(poetry.get("dependencies"), dict):
        deps += [d for d in poetry["dependencies"] if d.lower() != "python"]
    return (name if isinstance(name, str) else None), tuple(requirement_name(d) for d in deps if requirement_name(d))


def requirement_name(spec: str) -> str | None:
    """The normalized project name of a requirement line or PEP 508 string, or None."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def requirement_names(text: str) -> set[str]:
    """Lower-case project names in a requirements file (options and includes skipped)."""
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        name = requirement_name(line) if line and not line.startswith("-") else None
        if name:
            names.add(name)
    return names


def read_flaskenv(directory: Path) -> dict[str, str]:
    """``.flaskenv`` as the Flask CLI reads it (``KEY=VALUE``, ``export``, quotes); {} if absent."""
    path = directory / ".flaskenv"
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if ENV_NAME_RE.fullmatch(key):
            out[key] = value
    return out


# -- what the code reads -------------------------------------------------------------------


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ`` (``from os import environ``)."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (isinstance(node, ast.Name) and node.id == "environ")


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def env_reads_in(tree: ast.Module, file: str) -> Iterable[EnvRead]:
    """``os.environ["X"]``, ``os.environ.get("X", d)``, ``os.getenv("X", d)``, ``environ.setdefault``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_environ(node.value) and _literal(node.slice):
            yield EnvRead(_literal(node.slice), file, node.lineno)
        elif isinstance(node, ast.Call) and node.args and _literal(node.args[0]):
            name = _call_name(node)
            is_get = (name in ("get", "setdefault") and isinstance(node.func, ast.Attribute) and _is_environ(node.func.value))
            if is_get or name == "getenv":
                default = _literal(node.args[1]) if len(node.args) > 1 else None
                yield EnvRead(_literal(node.args[0]), file, node.lineno, default)


def config_reads_in(tree: ast.Module, file: str) -> Iterable[ConfigRead]:
    """``*.config.from_pyfile("f")``, ``from_envvar("VAR")``, ``from_prefixed_env(prefix=...)``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        if name in ("from_pyfile", "from_envvar") and node.args and _literal(node.args[0]):
            yield ConfigRead(name, _literal(node.args[0]), file, node.lineno)
        elif name == "from_prefixed_env":
            given = _literal(node.args[0]) if node.args else next(
                (_literal(k.value) for k in node.keywords if k.arg == "prefix"), None)
            yield ConfigRead(name, given or "FLASK", file, node.lineno)


def env_reads(trees: Iterable[tuple[ast.Module, str]]) -> tuple[list[EnvRead], list[ConfigRead]]:
    """Every variable the code reads (first place each is read, runtime variables left out) and config loads."""
    seen: dict[str, EnvRead] = {}
    configs: list[ConfigRead] = []
    for tree, file in trees:
        for read in env_reads_in(tree, file):
            if ENV_NAME_RE.fullmatch(read.name) and read.name not in RUNTIME_VARS:
                seen.setdefault(read.name, read)
        configs += config_reads_in(tree, file)
    return sorted(seen.values(), key=lambda r: r.name), configs
