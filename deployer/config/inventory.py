"""Load an inventory file: read, parse, validate, check the files it names.

The I/O edge of the load stage. All problems (YAML, schema, missing files,
secrets file) come back together in one ``InventoryError``.

Files are read as bytes and decoded here, so a byte that is not UTF-8 is
reported on its line; files over ``MAX_BYTES`` are refused unread. TLS files
must hold PEM of the right kind: ``render`` prints the certificate, so
``tls.cert: secrets.env`` must not show the secrets.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from deployer.config.dotenv import parse_dotenv
from deployer.errors import InventoryError, Problem
from deployer.config.model import App, Inventory
from deployer.config.schema import validate
from deployer.config.yamldoc import YamlDoc, YamlSyntaxError, key_path, parse
from deployer.core.templating import AppTemplateProblem, render_config

MAX_BYTES = 1 << 20  # an inventory or secrets file of a megabyte is a mistake or an attack
TLS_DIRS_VARIABLE = "DEPLOYER_TLS_DIRS"  # colon-separated: more places tls files may come from
PEM_MARKERS = {"cert": ("-----BEGIN CERTIFICATE-----",), "key": ("-----BEGIN PRIVATE KEY-----",
               "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----")}


def display_path(path: Path) -> str:
    """Relative to the working directory when inside it: shorter, clickable."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)


def read_text(path: Path, label: str, what: str) -> str:
    """A UTF-8 text file, or InventoryError naming the line of the first bad byte."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InventoryError([Problem(label, 0, "", f"{what} not found")]) from None
    except OSError as exc:
        raise InventoryError([Problem(label, 0, "", f"cannot read {what}: {exc.strerror}")]) from None
    if len(data) > MAX_BYTES:
        raise InventoryError([Problem(label, 0, "", f"{what} is larger than {MAX_BYTES} bytes")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InventoryError([Problem(label, line, "", f"byte 0x{data[exc.start]:02x} is not UTF-8 ({what} must be UTF-8)")]) from None


def tls_dirs() -> tuple[Path, ...]:
    """Directories besides the inventory's that the controller's user allows tls files from."""
    return tuple(Path(p).expanduser() for p in os.environ.get(TLS_DIRS_VARIABLE, "").split(":") if p)


def load_inventory(path: str | Path) -> Inventory:
    path = Path(path).absolute()
    label = display_path(path)
    text = read_text(path, label, "inventory file")
    try:
        doc = parse(text)
    except YamlSyntaxError as exc:
        raise InventoryError([Problem(label, exc.line, "", exc.message)]) from None

    result = validate(doc, label, path, tls_dirs())
    problems = list(result.problems)
    missing: list[Path] = []
    for need in result.needs:
        ok = need.path.is_dir() if need.kind == "dir" else need.path.is_file()
        if not ok and not any(need.path.is_relative_to(parent) for parent in missing):
            missing.append(need.path)
            what = "a directory" if need.kind == "dir" else "a file"
            state = "not found" if not need.path.exists() else f"not {what}"
            problems.append(Problem(label, doc.line(need.key), key_path(need.key),
                                    f"expected {what}, got {display_path(need.path)!r} ({state})"))
    problems += pem_problems(result.inventory, doc, label) if result.inventory and not problems else []
    if problems or result.inventory is None:
        raise InventoryError(problems)

    inventory = result.inventory
    app = inventory.app
    if app.secrets_file is not None:
        secrets_label = display_path(app.secrets_file)
        secrets, secret_problems = parse_dotenv(read_text(app.secrets_file, secrets_label, "secrets file"), secrets_label)
        for name in sorted(set(secrets) & set(app.env)):
            secret_problems.append(Problem(label, doc.line(("app", "env", name)), f"app/env/{name}",
                                           "also defined in the secrets file: define it once"))
        if secret_problems:
            raise InventoryError(secret_problems)
        inventory = dataclasses.replace(inventory, app=dataclasses.replace(app, secrets=secrets))
    if inventory.app.files:
        inventory = dataclasses.replace(inventory, app=with_config_files(inventory.app))
    return inventory


def with_config_files(app: App) -> App:
    """Read each ``app.files`` template and render it once (secrets masked): a problem names the template's line."""
    files, problems = [], []
    context = {"env": dict(app.env), "secrets": {k: str(v) for k, v in app.secrets.items()}, "app": app.name, "host": "-"}
    for item in app.files:
        label = display_path(item.template)
        text = read_text(item.template, label, f"template of app.files {item.path}")
        try:
            render_config(text, context)
        except AppTemplateProblem as exc:
            problems.append(Problem(label, exc.line, "", f"app.files {item.path}: {exc.message}"))
        files.append(dataclasses.replace(item, text=text))
    if problems:
        raise InventoryError(problems)
    return dataclasses.replace(app, files=tuple(files))


def pem_problems(inventory: Inventory, doc: YamlDoc, label: str) -> list[Problem]:
    """Each host's tls.cert must be a PEM certificate and tls.key a PEM private key."""
    problems: list[Problem] = []
    checked: set[tuple[str, Path]] = set()
    for need_host in inventory.hosts:
        if need_host.tls is None:
            continue
        for kind, file in (("cert", need_host.tls.cert), ("key", need_host.tls.key)):
            if (kind, file) in checked:
                continue
            checked.add((kind, file))
            text = read_text(file, display_path(file), f"tls {kind} file")
            if not any(marker in text for marker in PEM_MARKERS[kind]):
                wanted = "a PEM certificate" if kind == "cert" else "a PEM private key"
                where = _tls_key(doc, need_host.name, kind)
                problems.append(Problem(label, doc.line(where), key_path(where),
                                        f"expected {wanted} ({PEM_MARKERS[kind][0]}), got {display_path(file)!r} (its content is not shown)"))
    return problems


def _tls_key(doc: YamlDoc, host: str, kind: str) -> tuple[str | int, ...]:
    """Where the tls file is named: on the host, in a group's vars, or in defaults."""
    for path in doc.lines:
        if path[-2:] == ("tls", kind) and (host in path or "vars" in path or path[0] == "defaults"):
            return path
    return ("tls", kind)
