"""``deployer verify``: Testinfra checks on every selected host (how they run: ``deployer.verify.runner``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deployer.cli.common import inventory_option, limit_option, load, wiring
from deployer.console import echo
from deployer.errors import UsageError


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
    from deployer.safe_write import replace_file
    from deployer.verify.report import exit_code, render_json, render_junit, render_table

    if tests_dir is not None and not tests_dir.is_dir():
        raise UsageError(f"--tests {tests_dir}: not a directory")
    inventory, hosts = load(inventory_path, limit)
    reports = wiring().verify_hosts(inventory, hosts, tests_dir or inventory.verify_tests, keyword)
    if keyword and not any(r.checks or r.error for r in reports):
        raise UsageError(f"-k {keyword!r} selects no check on any host")
    if junit is not None:
        replace_file(junit, render_junit(reports))  # a new file renamed into place: never through a link
    if as_json:
        click.echo(render_json(reports))
    else:
        echo(render_table(reports))
    sys.exit(exit_code(reports))
