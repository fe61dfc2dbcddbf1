"""Find the Flask app in a source tree by parsing it with ``ast`` (never importing or running it).

Running it could do anything (connect to a database, need settings that exist only
in production). What is found:

- the WSGI target: a module-level ``app = Flask(__name__)`` (or ``app = create_app()``,
  or an instance of a ``Flask`` subclass) gives ``module:app``; else a factory
  (``def create_app()``, or any function that builds one) gives ``module:create_app()``.
  Looked for in wsgi.py, app.py, application.py, main.py, then each top-level package
  (``__init__``, ``app``, ``wsgi``; under ``src/`` too), then other modules. ``FLASK_APP``
  in ``.flaskenv`` picks among them;
- the static folders (Flask's ``static/`` beside the module or ``static_folder=``, and
  each blueprint's);
- the instance folder: suggested as ``shared: [instance]`` so it survives releases;
- a health route that answers without a redirect or a login.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from deployer.config.schema import APP_NAME_RE, REL_PATH_RE, URL_PATH_RE
from deployer.errors import UsageError
from deployer.stacks import SERVERS
from deployer.init.reads import (ConfigRead, EnvRead, env_reads, project_metadata, read_flaskenv,
                                 requirement_name, requirement_names)

ENTRY_MODULES = ("wsgi.py", "app.py", "application.py", "main.py")
PACKAGE_MODULES = ("__init__.py", "app.py", "wsgi.py")
FACTORY_NAMES = ("create_app", "make_app")
SKIP_DIRS = {"venv", "env", "node_modules", "tests", "test", "instance", "build", "dist", "site-packages"}
REQUIREMENTS_FILES = ("requirements.txt", "requirements/production.txt", "requirements/prod.txt",
                      "requirements/base.txt", "requirements-prod.txt")
HEALTH_ROUTES = ("/healthz", "/health", "/healthcheck", "/health-check", "/_health", "/livez", "/readyz",
                 "/ping", "/status", "/api/health", "/api/healthz", "/api/ping")
ROUTE_METHODS = {"route", "get"}
GUARD_DECORATOR = re.compile(r"login|auth|require|permission|role", re.IGNORECASE)
MAX_FILES = 500


class InitError(UsageError):
    """Nothing to start from, or a file in the way: exit 2, nothing written."""


@dataclass(frozen=True)
class Entry:
    """Where the app comes from: ``wsgi`` for the inventory and how it was found."""

    wsgi: str
    file: str  # relative to the app directory
    line: int
    what: str  # "app = Flask(__name__)", "factory create_app()"
    flask_call: ast.Call | None  # the Flask(...) construction, for its keyword arguments
    uses_instance_path: bool


@dataclass(frozen=True)
class Route:
    path: str
    file: str
    line: int
    answers: bool  # neither redirects nor sits behind a login/permission decorator


@dataclass
class Findings:
    directory: Path
    name: str
    entry: Entry
    others: list[Entry] = field(default_factory=list)
    requirements: str | None = None
    pyproject: bool = False  # dependencies declared in pyproject.toml
    static: tuple[str, str] | None = None  # (url, dir)
    blueprint_static: list[tuple[str, str]] = field(default_factory=list)  # (blueprint, dir) served by the app
    instance: str | None = None  # why the instance folder should be shared, or None
    caches: list[tuple[str, str]] = field(default_factory=list)  # (nested shared path, why): caches the app writes
    config_files: list[tuple[str, str]] = field(default_factory=list)  # (app.files path, why): files it reads
    health: str = "/healthz"
    env: list[EnvRead] = field(default_factory=list)
    configs: list[ConfigRead] = field(default_factory=list)
    flaskenv: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the user should know or do


# -- finding the app -----------------------------------------------------------------


def _class_name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def flask_classes(trees: list[ast.Module]) -> frozenset[str]:
    """``Flask`` and every class in the app that derives from it (``class App(Flask)``), by name."""
    names = {"Flask"}
    classes = [n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for cls in classes:
            if cls.name not in names and any(_class_name(b) in names for b in cls.bases):
                names.add(cls.name)
                grew = True
    return frozenset(names)


def is_flask_call(node: ast.AST, classes: frozenset[str] = frozenset({"Flask"})) -> bool:
    """``Flask(...)``, ``flask.Flask(...)`` or a subclass's ``MyApp(...)``."""
    return isinstance(node, ast.Call) and _class_name(node.func) in classes


def callable_without_arguments(func: ast.FunctionDef) -> bool:
    args = func.args
    required = len(args.posonlyargs) + len(args.args) - len(args.defaults)
    return required <= 0 and all(default is not None for default in args.kw_defaults)


def find_entries(tree: ast.Module, module: str, file: str,
                 classes: frozenset[str] = frozenset({"Flask"})) -> list[Entry]:
    """The app objects and factories this module defines, best first."""
    uses_instance = any(isinstance(n, ast.Attribute) and n.attr == "instance_path" for n in ast.walk(tree))
    factories: dict[str, tuple[ast.FunctionDef, ast.Call | None]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            call = next((n for n in ast.walk(node) if is_flask_call(n, classes)), None)
            if call is not None or node.name in FACTORY_NAMES:
                factories[node.name] = (node, call)
    objects: list[Entry] = []
    for node in tree.body:
        target, value = _single_assignment(node)
        if target is None:
            continue
        if is_flask_call(value, classes):
            objects.append(Entry(f"{module}:{target}", file, node.lineno, f"{target} = {_class_name(value.func)}(...)",
                                 value, uses_instance))
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and (
                value.func.id in factories or value.func.id in FACTORY_NAMES):
            call = factories.get(value.func.id, (None, None))[1]
            objects.append(Entry(f"{module}:{target}", file, node.lineno, f"{target} = {value.func.id}()", call, uses_instance))
    made = [Entry(f"{module}:{name}()", file, func.lineno, f"factory {name}()", call, uses_instance)
            for name, (func, call) in factories.items() if callable_without_arguments(func)]
    return objects + made


def _single_assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return node.target.id, node.value
    return None, None


def candidate_modules(directory: Path) -> Iterator[tuple[str, Path]]:
    """(dotted module, file) in the order a WSGI entry is looked for; ``src/`` packages count as top-level."""
    for name in ENTRY_MODULES:
        if (directory / name).is_file():
            yield name[:-3], directory / name
    roots = [directory] + ([directory / "src"] if (directory / "src").is_dir() else [])
    for root in roots:
        for package in sorted(p for p in root.iterdir() if (p / "__init__.py").is_file() and _wanted_dir(p)):
            for name in PACKAGE_MODULES:
                if (package / name).is_file():
                    yield package.name if name == "__init__.py" else f"{package.name}.{name[:-3]}", package / name
    for path in sorted(directory.glob("*.py")):
        if path.name not in ENTRY_MODULES and path.stem.isidentifier() and path.name not in ("setup.py", "conftest.py"):
            yield path.stem, path


def _wanted_dir(path: Path) -> bool:
    return path.name.isidentifier() and path.name not in SKIP_DIRS and not path.name.startswith(".")


def parse_module(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None


def python_files(directory: Path) -> Iterator[Path]:
    count = 0
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")
                         and not (Path(root) / d / "pyvenv.cfg").exists())
        for name in sorted(files):
            if name.endswith(".py"):
                count += 1
                if count > MAX_FILES:
                    return
                yield Path(root) / name


def pick_entry(entries: list[Entry], flaskenv: dict[str, str]) -> Entry:
    """``FLASK_APP`` from ``.flaskenv`` when it names a found entry; else an app object before a factory."""
    wanted = flaskenv.get("FLASK_APP", "").replace(" ", "")
    for entry in entries:
        module, _, attr = entry.wsgi.partition(":")
        if wanted in (entry.wsgi, f"{module}:{attr.removesuffix('()')}", module if entry is entries[0] else None):
            return entry
    objects = [e for e in entries if not e.wsgi.endswith("()")]
    return (objects or entries)[0]


# -- what surrounds it ------------------------------------------------------------------


def keyword(call: ast.Call | None, name: str) -> tuple[bool, object]:
    """(given?, literal value) of a ``Flask(...)`` keyword; a computed value reads as ``...``."""
    for kw in call.keywords if call else ():
        if kw.arg == name:
            return True, kw.value.value if isinstance(kw.value, ast.Constant) else ...
    return False, None


def find_static(directory: Path, entry: Entry, notes: list[str]) -> tuple[str, str] | None:
    given, folder = keyword(entry.flask_call, "static_folder")
    if given and folder is None:
        return None
    if folder is ... or (given and not isinstance(folder, str)):
        notes.append("static_folder is computed in code: add app.static yourself if the proxy should serve it")
        return None
    folder = folder if given else "static"
    root = (directory / entry.file).parent
    path = (root / folder).resolve()
    if not path.is_dir():
        return None
    try:
        rel = path.relative_to(directory.resolve()).as_posix()
    except ValueError:
        notes.append(f"static folder {path} is outside the app directory: not served by the proxy")
        return None
    _, url = keyword(entry.flask_call, "static_url_path")
    url = url if isinstance(url, str) else "/" + Path(folder).name
    if not REL_PATH_RE.fullmatch(rel) or not URL_PATH_RE.fullmatch(url) or url.rstrip("/") == "":
        notes.append(f"static folder {rel!r} at {url!r}: names deployer cannot put in a proxy config; add app.static yourself")
        return None
    return url.rstrip("/"), rel


def blueprint_static(directory: Path, trees: list[tuple[ast.Module, Path]]) -> list[tuple[str, str]]:
    """(blueprint name, app-relative dir) of every ``Blueprint(..., static_folder="...")`` whose folder exists."""
    found = []
    for tree, path in trees:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _class_name(node.func) == "Blueprint"):
                continue
            given, folder = keyword(node, "static_folder")
            name = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else "?"
            target = (path.parent / folder).resolve() if given and isinstance(folder, str) else None
            if target is not None and target.is_dir() and target.is_relative_to(directory.resolve()):
                found.append((str(name), target.relative_to(directory.resolve()).as_posix()))
    return found


def find_instance(directory: Path, entry: Entry) -> str | None:
    """Why the app needs its instance folder kept across releases, or None."""
    if keyword(entry.flask_call, "instance_path")[0]:
        return None  # an explicit path: not the release-relative instance/ that shared covers
    if (directory / "instance").is_dir():
        return "instance/ exists"
    if keyword(entry.flask_call, "instance_relative_config")[1] is True:
        return "instance_relative_config=True"
    if entry.uses_instance_path:
        return "the code uses app.instance_path"
    return None


def _answers(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A view that neither redirects nor hides behind a login/permission decorator (so it can answer 2xx)."""
    guarded = any(GUARD_DECORATOR.search(ast.unparse(d)) for d in func.decorator_list if not _route_call(d))
    redirects = any(isinstance(n, ast.Call) and _class_name(n.func) in ("redirect", "abort") for n in ast.walk(func))
    return not guarded and not redirects


def _route_call(deco: ast.expr) -> str | None:
    """The literal path of ``@x.route("/p")`` / ``@x.get("/p")``, else None."""
    if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr in ROUTE_METHODS
            and deco.args and isinstance(deco.args[0], ast.Constant) and isinstance(deco.args[0].value, str)):
        return deco.args[0].value
    return None


def _blueprint_prefixes(tree: ast.Module) -> dict[str, str]:
    """``bp = Blueprint(..., url_prefix="/api")`` -> {"bp": "/api"} for this module."""
    prefixes = {}
    for node in tree.body:
        target, value = _single_assignment(node)
        if target and isinstance(value, ast.Call) and _class_name(value.func) == "Blueprint":
            given, prefix = keyword(value, "url_prefix")
            if given and isinstance(prefix, str):
                prefixes[target] = prefix.rstrip("/")
    return prefixes


def routes(directory: Path, trees: list[tuple[ast.Module, Path]]) -> list[Route]:
    """GET routes with literal paths anywhere in the app (a blueprint's literal url_prefix applied)."""
    found = []
    for tree, path in trees:
        prefixes = _blueprint_prefixes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for deco in node.decorator_list:
                route = _route_call(deco)
                owner = deco.func.value.id if route and isinstance(deco.func.value, ast.Name) else ""
                if route is not None and not _posts_only(deco):
                    full = prefixes.get(owner, "") + route
                    found.append(Route(full or "/", path.relative_to(directory).as_posix(), deco.lineno, _answers(node)))
    return found


def _posts_only(deco: ast.Call) -> bool:
    methods = next((k.value for k in deco.keywords if k.arg == "methods"), None)
    if not isinstance(methods, (ast.List, ast.Tuple)):
        return False
    names = {e.value.upper() for e in methods.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return bool(names) and "GET" not in names


def find_health(found: list[Route], notes: list[str]) -> str:
    """The first known health path that answers; ``/`` if it answers; else ``/healthz`` with a hint to add it."""
    answering = {r.path for r in found if r.answers}
    for path in HEALTH_ROUTES:
        if path in answering:
            return path
    if "/" in answering:
        notes.append("health: / is checked after each deploy; a cheap /healthz route is better")
        return "/"
    root = next((r for r in found if r.path == "/"), None)
    why = f" (/ at {root.file}:{root.line} redirects or needs a login: the gate needs a 2xx)" if root else ""
    notes.append(f"no health route found{why}: add one that answers 200 without a login, e.g. "
                 "@app.get('/healthz') returning 'ok', or set app.health to a page that does")
    return "/healthz"


def find_requirements(directory: Path, pyproject_deps: tuple[str, ...], notes: list[str]) -> str | None:
    found = next((name for name in REQUIREMENTS_FILES if (directory / name).is_file()), None)
    if found is None and not pyproject_deps:
        notes.append("no requirements.txt or pyproject.toml dependencies: declare Flask, gunicorn and what the app "
                     "imports (pinned); deployer installs them into each release's virtualenv")
        return None
    names = (requirement_names((directory / found).read_text(encoding="utf-8", errors="replace"))
             if found else set(pyproject_deps))
    where = found or "pyproject.toml"
    if "flask" not in names:
        notes.append(f"{where} does not list flask: add it (the app imports it)")
    for server in SERVERS.values():
        if server.distribution and requirement_name(server.distribution) not in names:
            notes.append(f"{where} does not list {server.distribution}: deployer adds {server.distribution} "
                         f"{server.tested_version} (the version it was tested with) for server: {server.name}; "
                         f"pin {server.distribution}==X to choose")
        if server.default_config and (directory / server.default_config).is_file():
            notes.append(f"{server.default_config} is not read ({server.name} gets deployer's own config): set "
                         f"app.server_config: {server.default_config} to use it, deployer's socket, daemon, user, "
                         "pid and log settings winning")
    return found


def app_name(directory: Path, project: str | None = None) -> str:
    """The project's name (pyproject), else the directory's, made into an app name (user, /srv/<name>, units)."""
    for raw in (project, directory.resolve().name):
        name = re.sub(r"[^a-z0-9]+", "-", (raw or "").lower()).strip("-")
        name = re.sub(r"^[^a-z]+", "", name)[:31].rstrip("-")
        if APP_NAME_RE.fullmatch(name or ""):
            return name
    return "app"


def _entries(directory: Path, classes: frozenset[str]) -> list[Entry]:
    entries: list[Entry] = []
    unreadable: list[str] = []
    for module, path in candidate_modules(directory):
        tree = parse_module(path)
        if tree is None:
            unreadable.append(path.relative_to(directory).as_posix())
            continue
        entries += find_entries(tree, module, path.relative_to(directory).as_posix(), classes)
    if not entries:
        looked = ", ".join(ENTRY_MODULES) + ", <package>/__init__.py (also under src/), other top-level modules"
        hint = f" (could not parse: {', '.join(unreadable)})" if unreadable else ""
        raise InitError(f"{directory}: no Flask app found{hint}: looked for a module-level `app = Flask(__name__)` "
                        f"or a `def create_app()` factory in {looked}")
    return entries


def inspect_app(directory: Path) -> Findings:
    """Everything ``init`` can tell about the Flask app in ``directory``, or InitError."""
    if not directory.is_dir():
        raise InitError(f"{directory}: not a directory")
    trees = [(tree, path) for path in python_files(directory) if (tree := parse_module(path)) is not None]
    entries = _entries(directory, flask_classes([t for t, _ in trees]))
    flaskenv = read_flaskenv(directory)
    best = pick_entry(entries, flaskenv)
    project, deps = project_metadata(directory)
    notes: list[str] = []
    found = Findings(directory=directory, name=app_name(directory, project), entry=best,
                     others=[e for e in entries if e is not best], flaskenv=flaskenv, notes=notes)
    found.requirements = find_requirements(directory, deps, notes)
    found.pyproject = found.requirements is None and bool(deps)
    found.static = find_static(directory, best, notes)
    found.blueprint_static = blueprint_static(directory, trees)
    found.instance = find_instance(directory, best)
    found.health = find_health(routes(directory, trees), notes)
    found.env, found.configs = env_reads((tree, path.relative_to(directory).as_posix()) for tree, path in trees)
    found.caches = asset_caches(found, trees)
    _config_notes(found)
    return found


ASSET_MODULES = ("flask_assets", "webassets")
ASSET_CACHE = ".webassets-cache"  # webassets' default cache directory, inside the static folder


def asset_caches(found: Findings, trees: list[tuple[ast.Module, Path]]) -> list[tuple[str, str]]:
    """webassets (Flask-Assets) writes ``<static folder>/.webassets-cache`` at run time: a nested shared path.

    Found by an import of flask_assets/webassets or the name in the code; the release is
    read-only, so without it the app fails on its first asset build.
    """
    if found.static is None:
        return []
    for tree, path in trees:
        for node in ast.walk(tree):
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            named = (isinstance(node, ast.Constant) and isinstance(node.value, str) and ASSET_CACHE in node.value
                     and "\n" not in node.value)  # a name in the code, not a docstring's prose
            if named or any(m.split(".")[0] in ASSET_MODULES for m in imported):
                where = f"{path.relative_to(found.directory).as_posix()}:{node.lineno}"
                return [(f"{found.static[1]}/{ASSET_CACHE}", f"{where}: webassets writes its cache in the static folder")]
    return []


def _config_notes(found: Findings) -> None:
    for read in found.configs:
        if read.how == "from_pyfile":
            where = "instance/" if found.instance else ""
            if REL_PATH_RE.fullmatch(f"{where}{read.target}"):
                found.config_files.append((f"{where}{read.target}", f"{read.file}:{read.line} (from_pyfile)"))
            found.notes.append(f"{read.file}:{read.line} loads {where}{read.target} (from_pyfile): render it with "
                               f"app.files (a template beside the inventory, env and secrets filled in on deploy)")
        elif read.how == "from_envvar":
            found.notes.append(f"{read.file}:{read.line} loads the settings file named by ${read.target}: "
                               "set it under env and put that file on each host")
        else:
            found.notes.append(f"{read.file}:{read.line} reads every {read.target}_* variable (from_prefixed_env): "
                               "set them under env or secrets")
    if found.flaskenv.get("FLASK_DEBUG", "0") not in ("0", "", "false", "False"):
        found.notes.append(".flaskenv sets FLASK_DEBUG: not carried into the inventory (never debug in production)")
