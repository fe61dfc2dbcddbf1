"""The code stays readable at a glance: no function over 60 lines, no class over 200 (issue 9).

A long function is where an unnamed step hides; a long class is two concepts. When this
fails, split along the seam the code already has, do not raise the limit.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "deployer"
MAX_FUNCTION, MAX_CLASS = 60, 200


def sizes() -> list[tuple[str, str, int, int]]:
    """(kind, where, lines, limit) of every function and class in deployer/."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kind, limit = ("class", MAX_CLASS) if isinstance(node, ast.ClassDef) else ("function", MAX_FUNCTION)
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"
                found.append((kind, where, node.end_lineno - node.lineno + 1, limit))
    return found


def test_the_scan_sees_every_module() -> None:
    assert len({w.split(":")[0] for _, w, _, _ in sizes()}) > 40


def test_no_function_or_class_is_too_long() -> None:
    too_long = [f"{kind} {where}: {lines} lines (limit {limit})" for kind, where, lines, limit in sizes() if lines > limit]
    assert not too_long, "\n".join(too_long)
