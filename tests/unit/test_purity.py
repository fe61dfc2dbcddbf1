"""The pure layer stays pure: deployer.core imports no I/O library.

``core`` is validate/render/plan/command builders/fact parsers: data in, data
out, unit-tested without a host. Anything that opens a connection, starts a
process or a socket belongs in ``remote`` or ``run``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import deployer

CORE = Path(deployer.__file__).parent / "core"
FORBIDDEN = {"fabric", "paramiko", "invoke", "subprocess", "socket", "http", "urllib", "shutil", "tempfile"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io_library(path: Path) -> None:
    assert imported_modules(path) & FORBIDDEN == set()


def test_core_pulls_in_no_ssh_library_transitively() -> None:
    modules = [f"deployer.core.{p.stem}" for p in sorted(CORE.glob("*.py")) if p.stem != "__init__"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + (
        "print(' '.join(sorted(m for m in ('fabric', 'paramiko', 'invoke') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_the_check_sees_an_import() -> None:
    # The rule must be able to fail: a planted import is found.
    assert "subprocess" in imported_modules(Path(__file__))
