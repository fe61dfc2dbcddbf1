"""``deployer init``: read a Flask app's source (never import or run it) and write a starter inventory.

The app's code is parsed with ``ast``: running it could do anything (connect to a
database, need settings that exist only in production). What it finds:

- the WSGI target: a module-level ``app = Flask(__name__)`` (or ``app = create_app()``)
  gives ``module:app``; else a factory (``def create_app()``, or any function that builds
  a ``Flask``) gives ``module:create_app()``. Looked for in wsgi.py, app.py, application.py,
  main.py, then each top-level package (``__init__``, ``app``, ``wsgi``), then other modules;
- the requirements file (requirements.txt, or a requirements/ file) and whether it installs
  Flask and gunicorn (the default server runs from the app's virtualenv);
- the static folder (Flask's ``static/`` beside the module, or ``static_folder=``);
- the instance folder (``instance/``, ``instance_relative_config=True`` or code that uses
  ``instance_path``): suggested as ``shared: [instance]`` so it survives releases;
- a health route (``/healthz``, ``/health``, else ``/``).
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click

from deployer.errors import UsageError
from deployer.config.schema import APP_NAME_RE, REL_PATH_RE, URL_PATH_RE

ENTRY_MODULES = ("wsgi.py", "app.py", "application.py", "main.py")
PACKAGE_MODULES = ("__init__.py", "app.py", "wsgi.py")
FACTORY_NAMES = ("create_app", "make_app")
SKIP_DIRS = {"venv", "env", "node_modules", "tests", "test", "instance", "build", "dist", "site-packages"}
REQUIREMENTS_FILES = ("requirements.txt", "requirements/production.txt", "requirements/prod.txt",
                      "requirements/base.txt", "requirements-prod.txt")
HEALTH_ROUTES = ("/healthz", "/health", "/")
ROUTE_METHODS = {"route", "get", "post", "put", "patch", "delete"}
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


@dataclass
class Findings:
    directory: Path
    name: str
    entry: Entry
    others: list[Entry] = field(default_factory=list)
    requirements: str | None = None
    static: tuple[str, str] | None = None  # (url, dir)
    instance: str | None = None  # why the instance folder should be shared, or None
    health: str = "/healthz"
    notes: list[str] = field(default_factory=list)  # what the user should know or do


# -- finding the app -----------------------------------------------------------------


def is_flask_call(node: ast.AST) -> bool:
    """``Flask(...)`` or ``flask.Flask(...)``."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "Flask") or (isinstance(func, ast.Attribute) and func.attr == "Flask")


def callable_without_arguments(func: ast.FunctionDef) -> bool:
    args = func.args
    required = len(args.posonlyargs) + len(args.args) - len(args.defaults)
    return required <= 0 and all(default is not None for default in args.kw_defaults)


def find_entries(tree: ast.Module, module: str, file: str) -> list[Entry]:
    """The app objects and factories this module defines, best first."""
    uses_instance = any(isinstance(n, ast.Attribute) and n.attr == "instance_path" for n in ast.walk(tree))
    factories: dict[str, tuple[ast.FunctionDef, ast.Call | None]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            call = next((n for n in ast.walk(node) if is_flask_call(n)), None)
            if call is not None or node.name in FACTORY_NAMES:
                factories[node.name] = (node, call)
    objects: list[Entry] = []
    for node in tree.body:
        target, value = _single_assignment(node)
        if target is None:
            continue
        if is_flask_call(value):
            objects.append(Entry(f"{module}:{target}", file, node.lineno, f"{target} = Flask(...)", value, uses_instance))
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
    """(dotted module, file) in the order a WSGI entry is looked for."""
    for name in ENTRY_MODULES:
        if (directory / name).is_file():
            yield name[:-3], directory / name
    for package in sorted(p for p in directory.iterdir() if (p / "__init__.py").is_file() and _wanted_dir(p)):
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


def route_paths(directory: Path) -> set[str]:
    """String paths in ``@x.route(...)``/``@x.get(...)`` decorators anywhere in the app."""
    paths: set[str] = set()
    for path in _python_files(directory):
        tree = parse_module(path)
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for deco in node.decorator_list:
                    if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)
                            and deco.func.attr in ROUTE_METHODS and deco.args
                            and isinstance(deco.args[0], ast.Constant) and isinstance(deco.args[0].value, str)):
                        paths.add(deco.args[0].value)
    return paths


def _python_files(directory: Path) -> Iterator[Path]:
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


def find_requirements(directory: Path, notes: list[str]) -> str | None:
    found = next((name for name in REQUIREMENTS_FILES if (directory / name).is_file()), None)
    if found is None:
        notes.append("no requirements.txt: create one (Flask, gunicorn and what the app imports, pinned); "
                     "deployer installs it into each release's virtualenv")
        return None
    names = requirement_names((directory / found).read_text(encoding="utf-8", errors="replace"))
    for package, why in (("flask", "the app imports it"), ("gunicorn", "server: gunicorn runs it from the app's virtualenv")):
        if package not in names:
            notes.append(f"{found} does not list {package}: add it ({why})")
    return found


def requirement_names(text: str) -> set[str]:
    """Lower-case project names in a requirements file (options and includes skipped)."""
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line) if line and not line.startswith("-") else None
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(0)).lower())
    return names


def app_name(directory: Path) -> str:
    """The directory's name made into an app name (system user, /srv/<name>, units)."""
    name = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:31].rstrip("-")
    return name if APP_NAME_RE.fullmatch(name or "") else "app"


def inspect_app(directory: Path) -> Findings:
    """Everything ``init`` can tell about the Flask app in ``directory``, or InitError."""
    if not directory.is_dir():
        raise InitError(f"{directory}: not a directory")
    entries: list[Entry] = []
    unreadable: list[str] = []
    for module, path in candidate_modules(directory):
        tree = parse_module(path)
        if tree is None:
            unreadable.append(path.relative_to(directory).as_posix())
            continue
        entries += find_entries(tree, module, path.relative_to(directory).as_posix())
    if not entries:
        looked = ", ".join(ENTRY_MODULES) + ", <package>/__init__.py, other top-level modules"
        hint = f" (could not parse: {', '.join(unreadable)})" if unreadable else ""
        raise InitError(f"{directory}: no Flask app found{hint}: looked for a module-level `app = Flask(__name__)` "
                        f"or a `def create_app()` factory in {looked}")
    objects = [e for e in entries if not e.wsgi.endswith("()")]
    best = (objects or entries)[0]
    notes: list[str] = []
    found = Findings(directory=directory, name=app_name(directory), entry=best,
                     others=[e for e in entries if e is not best], notes=notes)
    found.requirements = find_requirements(directory, notes)
    found.static = find_static(directory, best, notes)
    found.instance = find_instance(directory, best)
    routes = route_paths(directory)
    found.health = next((r for r in HEALTH_ROUTES if r in routes), "/healthz")
    if found.health == "/":
        notes.append("health: / is checked after each deploy; a cheap /healthz route is better")
    elif found.health not in routes:
        notes.append("no /healthz route: add one that answers 200, or set app.health to a page that does")
    return found


# -- writing ----------------------------------------------------------------------------


def scalar(value: str) -> str:
    """A YAML scalar: plain when that is safe, else a double-quoted (JSON) string."""
    return value if re.fullmatch(r"[A-Za-z0-9_./][A-Za-z0-9_./:()-]*", value) else json.dumps(value)


def commented(text: str, comment: str = "") -> str:
    """One inventory line with its comment in the column the example inventories use."""
    return f"{text.ljust(33)} # {comment}".rstrip() + "\n" if comment else text + "\n"


def starter_inventory(found: Findings, source: str) -> str:
    """The commented inventory text; ``source`` is the app directory relative to the file."""
    static = (commented(f"  static: {{url: {found.static[0]}, dir: {scalar(found.static[1])}}}", "served by the proxy itself")
              if found.static else commented("  # static: {url: /static, dir: static}", "a folder the proxy serves itself"))
    shared = (commented("  shared: [instance]", "Flask's instance folder: kept across releases (SQLite, uploads)")
              if found.instance else commented("  # shared: [instance]", "paths kept across releases (SQLite, uploads)"))
    return "".join([
        f"# Starter inventory for {found.name}, written by `deployer init` from {found.entry.file}:{found.entry.line}\n",
        f"# ({found.entry.what}). Fill in every FILL IN, then:\n",
        "#   deployer check -i THIS_FILE && deployer plan -i THIS_FILE && deployer deploy -i THIS_FILE\n",
        "app:\n",
        commented(f"  name: {found.name}", "system user, /srv/<name>, unit and site names"),
        commented(f"  source: {scalar(source)}", "the app directory, relative to this file"),
        commented(f"  wsgi: {found.entry.wsgi}", "module:attribute, or module:factory()"),
        commented(f"  requirements: {scalar(found.requirements or 'requirements.txt')}",
                  "installed into each release's virtualenv" if found.requirements else "FILL IN: this file is missing"),
        commented(f"  health: {found.health}", "must answer 2xx through the proxy after a deploy"),
        commented("  # env: {APP_MODE: production}", "plain settings for the app's environment"),
        commented("  # secrets: secrets.env", "dotenv file kept out of version control; masked in all output"),
        shared,
        static,
        commented("  keep_releases: 5"),
        "\n",
        commented("defaults:", "every host; a host's own settings win"),
        commented("  ssh_user: root", "or a sudo user, with become: true"),
        commented("  # ssh_key: ~/.ssh/id_ed25519"),
        commented("  known_hosts: ~/.ssh/known_hosts", "host keys are checked against this file"),
        commented("  host_key_policy: strict", "accept-new records a host's key on first contact"),
        commented("  server: gunicorn", "gunicorn | uwsgi | mod_wsgi (with proxy: apache)"),
        commented("  proxy: nginx", "nginx | apache"),
        commented("  # server_name: [www.example.com]", "default: the address"),
        "\n",
        "hosts:\n",
        "  web1:\n",
        commented("    address:", "FILL IN: the server's IP address or DNS name"),
    ])


def write_new(path: Path, text: str) -> None:
    """Create ``path``; an existing file is never overwritten."""
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise InitError(f"{path} already exists: not overwritten (move it away, or write elsewhere with -o PATH)") from None
    except OSError as exc:
        raise InitError(f"cannot write {path}: {exc.strerror or exc}") from None


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Inventory file to write (default: DIRECTORY/deploy.yml).")
def init(directory: Path, out: Path | None) -> None:
    """Look at a Flask app (without running it) and write a commented starter inventory."""
    found = inspect_app(directory)
    out = out or directory / "deploy.yml"
    source = os.path.relpath(directory.resolve(), out.resolve().parent)
    write_new(out, starter_inventory(found, source))
    click.echo(f"found in {directory}:")
    click.echo(f"  app:          {found.entry.wsgi}  ({found.entry.file}:{found.entry.line}: {found.entry.what})")
    for other in found.others:
        click.echo(f"  also:         {other.wsgi}  ({other.file}:{other.line})")
    click.echo(f"  requirements: {found.requirements or 'MISSING'}")
    click.echo(f"  static:       {f'{found.static[1]}/ at {found.static[0]}' if found.static else 'none'}")
    click.echo(f"  instance:     {f'shared: [instance] ({found.instance})' if found.instance else 'not used'}")
    click.echo(f"  health:       {found.health}")
    for note in found.notes:
        click.echo(f"  ! {note}")
    click.echo(f"wrote {out}")
    click.echo(f"fill in: hosts/web1/address (and ssh_user/ssh_key/known_hosts under defaults), then: deployer check -i {out}")
