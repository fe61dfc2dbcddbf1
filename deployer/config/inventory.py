"""Load an inventory file: read, parse, validate, check the files it names.

The I/O edge of the load stage. All problems (YAML, schema, missing files,
secrets file) come back together in one ``InventoryError``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from deployer.config.dotenv import parse_dotenv
from deployer.errors import InventoryError, Problem
from deployer.config.model import Inventory
from deployer.config.schema import validate
from deployer.config.yamldoc import YamlSyntaxError, parse


def display_path(path: Path) -> str:
    """Relative to the working directory when inside it: shorter, clickable."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)


def load_inventory(path: str | Path) -> Inventory:
    path = Path(path).absolute()
    label = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError([Problem(label, 0, "", "inventory file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError([Problem(label, 0, "", f"cannot read inventory: {exc}")]) from None
    try:
        doc = parse(text)
    except YamlSyntaxError as exc:
        raise InventoryError([Problem(label, exc.line, "", exc.message)]) from None

    result = validate(doc, label, path)
    problems = list(result.problems)
    missing: list[Path] = []
    for need in result.needs:
        ok = need.path.is_dir() if need.kind == "dir" else need.path.is_file()
        if not ok and not any(need.path.is_relative_to(parent) for parent in missing):
            missing.append(need.path)
            what = "a directory" if need.kind == "dir" else "a file"
            state = "not found" if not need.path.exists() else f"not {what}"
            problems.append(Problem(label, doc.line(need.key), "/".join(map(str, need.key)),
                                    f"expected {what}, got {display_path(need.path)!r} ({state})"))
    if problems or result.inventory is None:
        raise InventoryError(problems)

    inventory = result.inventory
    app = inventory.app
    if app.secrets_file is not None:
        secrets, secret_problems = parse_dotenv(app.secrets_file.read_text(encoding="utf-8"), display_path(app.secrets_file))
        for name in sorted(set(secrets) & set(app.env)):
            secret_problems.append(Problem(label, doc.line(("app", "env", name)), f"app/env/{name}",
                                           "also defined in the secrets file: define it once"))
        if secret_problems:
            raise InventoryError(secret_problems)
        inventory = dataclasses.replace(inventory, app=dataclasses.replace(app, secrets=secrets))
    return inventory
