"""Programs deployer runs ON the hosts, kept as real files so they are linted and unit-tested.

Each module here is a standalone Python 3.9+ program using only the standard
library (the host's own ``python3`` runs it): facts, snapshot, probe, restart,
health. deployer never imports them to run them; it sends their text as
``python3 -c PROGRAM ARG...``, so nothing has to be installed on a host.
Tests import them and call their functions against temp dirs.

``program`` reads a module's text from the installed package (package data,
like the templates): the only I/O ``deployer.core`` may reach, and only of
deployer's own files (tests/unit/test_purity.py names this rule).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

PROGRAMS = ("facts", "snapshot", "probe", "restart", "health")

Command = tuple[str, ...]


@lru_cache(maxsize=None)
def program(name: str) -> str:
    """The source text of the host program ``name`` (one of PROGRAMS)."""
    if name not in PROGRAMS:
        raise ValueError(f"no host program {name!r} (known: {', '.join(PROGRAMS)})")
    return resources.files(__package__).joinpath(f"{name}.py").read_text(encoding="utf-8")


def command(name: str, *args: str) -> Command:
    """``python3 -c PROGRAM ARG...``: how each host program is sent (argv[1:] are ``args``)."""
    return ("python3", "-c", program(name), *args)
