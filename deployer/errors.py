"""Errors that know their exit code and how to show themselves (as click's do).

Exit codes are a contract for scripts and CI:
0 every host fine; 1 some host failed; 2 bad input; 3 a host is locked.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_LOCKED = 3


class DeployerError(Exception):
    """An error a user can act on: printed as one message, no traceback."""

    exit_code = EXIT_FAILED

    def format(self) -> str:
        return str(self)


class UsageError(DeployerError):
    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, located as FILE:LINE: key/path."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InventoryError(DeployerError):
    """Every problem found in an inventory, reported together."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__(self.format())

    def format(self) -> str:
        count = len(self.problems)
        lines = [str(p) for p in self.problems]
        lines.append(f"{count} problem{'s' if count != 1 else ''} found")
        return "\n".join(lines)
