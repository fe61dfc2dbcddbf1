"""Day-two commands over the app's hosts: ``exec`` (a command in the release's environment) and ``logs``."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import click

from deployer.cli.common import inventory_option, limit_option, load, wiring
from deployer.console import echo
from deployer.core import journal
from deployer.errors import EXIT_FAILED, EXIT_OK
from deployer.run.logs import DEFAULT_LINES


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@inventory_option
@limit_option
@click.option("--timeout", type=click.IntRange(1, 86400), default=None, metavar="SECONDS",
              help="Stop the command on the host after SECONDS.")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD...")
def exec_(inventory_path: Path, limit: str | None, timeout: int | None, argv: tuple[str, ...]) -> None:
    """Run CMD on the selected hosts in the current release's environment.

    As the app user, in the current release directory, with the app's env and
    secrets loaded as its service gets them and the release's virtualenv first
    on PATH. Output lines carry the host name; secret values are masked.
    Exit 1 if the command failed on any host.

    Example: deployer exec -i inventories/prod.yml -- flask --app app routes
    """
    from deployer.run.exec_command import exec_all

    inventory, hosts = load(inventory_path, limit)
    lock = threading.Lock()

    def emit(host: str, line: str) -> None:
        with lock:
            echo(f"{host}: {line}")

    results = exec_all(inventory, hosts, tuple(argv), timeout, emit, wiring().connect)
    for result in results:
        echo(str(result), err=True)
    sys.exit(EXIT_OK if results and all(r.ok for r in results) else EXIT_FAILED)


@click.command("logs")
@inventory_option
@limit_option
@click.option("-n", "--lines", type=click.IntRange(0, 100_000), default=DEFAULT_LINES, show_default=True,
              help="Lines per log per host (with --follow: before the new ones).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines from every host until Ctrl-C.")
@click.option("--since", metavar="TIME", help="journalctl time: '2026-01-31 12:00', 'today', '1h ago'.")
@click.option("--proxy", is_flag=True, help="Also the nginx/apache error log.")
def logs(inventory_path: Path, limit: str | None, lines: int, follow: bool, since: str | None, proxy: bool) -> None:
    """The app's journal (and with --proxy the proxy's error log) from every host, merged by time."""
    from deployer.run.logs import fetch, show, stream
    from deployer.run.rollout import Session

    since = journal.check_since(since)
    inventory, hosts = load(inventory_path, limit)
    with Session(inventory, hosts, wiring().connect) as session:
        for name, error in session.errors.items():
            echo(f"{name}: error: {error}", err=True)
        if follow:
            ok = stream(session, inventory, hosts, lines, since, proxy)
            sys.exit(EXIT_FAILED if session.errors or not ok else EXIT_OK)
        collected = fetch(session, inventory, lines, since, proxy)
    show(collected, session, hosts)
    sys.exit(EXIT_FAILED if session.errors or collected.errors else EXIT_OK)
