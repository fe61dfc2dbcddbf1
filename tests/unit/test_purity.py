"""The pure layer stays pure: deployer.core imports no I/O library.

``core`` is validate/render/plan/command builders/fact parsers: data in, data
out, unit-tested without a host. Anything that opens a connection, starts a
process or a socket belongs in ``remote`` or ``run``.

One read is allowed, by rule: the text of deployer's own host programs, through
the loader ``deployer.hostside.program`` (package data, as ``render`` reads the
built-in templates). The programs themselves run on hosts and use subprocess
and sockets there; core never imports them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import deployer

CORE = Path(deployer.__file__).parent / "core"
LOADER = Path(deployer.__file__).parent / "hostside" / "__init__.py"
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


def deployer_imports(path: Path) -> set[str]:
    """Every deployer name a module imports, dotted: ``from deployer.hostside import facts`` gives both."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("deployer"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deployer"):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


HOST_PROGRAMS = tuple(f"deployer.hostside.{p.stem}" for p in sorted(LOADER.parent.glob("*.py")) if p.stem != "__init__")


def test_core_pulls_in_no_ssh_library_transitively() -> None:
    modules = [f"deployer.core.{p.stem}" for p in sorted(CORE.glob("*.py")) if p.stem != "__init__"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + (
        f"print(' '.join(sorted(m for m in ('fabric', 'paramiko', 'invoke') + {HOST_PROGRAMS!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_reaches_host_programs_only_as_text_through_the_loader(path: Path) -> None:
    assert deployer_imports(path) & set(HOST_PROGRAMS) == set()


def test_the_loader_itself_imports_no_io_library() -> None:
    assert imported_modules(LOADER) & FORBIDDEN == set()
    assert deployer_imports(LOADER) == set()


def test_the_check_sees_an_import() -> None:
    # The rule must be able to fail: a planted import is found.
    assert "subprocess" in imported_modules(Path(__file__))
    planted = Path(__file__).with_name("test_hostside.py")
    assert "deployer.hostside.facts" in deployer_imports(planted) & set(HOST_PROGRAMS)
