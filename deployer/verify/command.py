"""``deployer verify``: the click command (registered by ``deployer.cli``).

Built by a function that takes the shared ``-i``/``--limit`` options from the
CLI module, so the two modules do not import each other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from deployer.console import echo
from deployer.errors import UsageError


def verify_command(inventory_option: Callable, limit_option: Callable, load: Callable) -> click.Command:
    @click.command()
    @inventory_option
    @limit_option
    @click.option("--tests", "tests_dir", type=click.Path(file_okay=False, path_type=Path),
                  help="Directory of your own Testinfra tests (default: verify.tests of the inventory).")
    @click.option("-k", "keyword", metavar="EXPR", help="Only checks and tests matching EXPR (pytest -k syntax).")
    @click.option("--junit", "junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML to FILE.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout, nothing else.")
    def verify(inventory_path: Path, limit: str | None, tests_dir: Path | None, keyword: str | None,
               junit: Path | None, as_json: bool) -> None:
        """Check every host is right: built-in Testinfra checks from its settings, plus your tests."""
        from deployer.verify.report import exit_code, render_json, render_junit, render_table
        from deployer.safe_write import replace_file
        from deployer.verify.runner import verify_all

        if tests_dir is not None and not tests_dir.is_dir():
            raise UsageError(f"--tests {tests_dir}: not a directory")
        inventory, hosts = load(inventory_path, limit)
        reports = verify_all(inventory, hosts, tests_dir=(tests_dir or inventory.verify_tests), keyword=keyword)
        if keyword and not any(r.checks or r.error for r in reports):
            raise UsageError(f"-k {keyword!r} selects no check on any host")
        if junit is not None:
            replace_file(junit, render_junit(reports))  # a new file renamed into place: never through a link
        if as_json:
            click.echo(render_json(reports))
        else:
            echo(render_table(reports))
        sys.exit(exit_code(reports))

    return verify
