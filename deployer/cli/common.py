"""What every command of the CLI shares: the -i/--limit options, loading, the wiring, rollout printing.

``Wiring`` is how a command reaches hosts: ``connect`` makes one host's connection
(SSH by default) and ``verify_hosts`` runs ``deployer verify``'s checks. Tests pass
their own as click's ``obj`` (``CliRunner().invoke(main, args, obj=Wiring(...))``)
to run every command in-process against ``deployer.remote.fake``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from deployer.config.inventory import load_inventory
from deployer.config.model import Host, Inventory
from deployer.config.selection import select_hosts
from deployer.console import echo
from deployer.core.outcomes import DEPLOY_FAILURES, DeployStatus
from deployer.errors import EXIT_FAILED, EXIT_LOCKED, EXIT_OK
from deployer.remote.connector import ConnectorFactory, ssh_connector


def _verify_over_ssh(inventory: Inventory, hosts: tuple[Host, ...], tests_dir: Path | None, keyword: str | None) -> list:
    from deployer.verify.runner import verify_all

    return verify_all(inventory, hosts, tests_dir=tests_dir, keyword=keyword)


@dataclass(frozen=True)
class Wiring:
    connect: ConnectorFactory = ssh_connector
    verify_hosts: Callable[[Inventory, tuple[Host, ...], Path | None, str | None], list] = field(
        default=_verify_over_ssh)


def wiring() -> Wiring:
    """The wiring of the running command (click's ``obj``; the real one unless a test gave another)."""
    return click.get_current_context().find_object(Wiring) or Wiring()


inventory_option = click.option(
    "-i", "--inventory", "inventory_path", envvar="DEPLOYER_INVENTORY", required=True,
    type=click.Path(dir_okay=False, path_type=Path), help="Inventory YAML file (or $DEPLOYER_INVENTORY).",
)
limit_option = click.option(
    "-l", "--limit", default=None, metavar="PATTERN",
    help="Hosts or groups: names, globs, comma lists, !exclusions.",
)


def load(inventory_path: Path, limit: str | None) -> tuple[Inventory, tuple[Host, ...]]:
    inventory = load_inventory(inventory_path)
    return inventory, select_hosts(inventory, limit)


def progress(quiet: bool) -> Callable[[str, str], None]:
    lock = threading.Lock()

    def report(host: str, message: str) -> None:
        if not quiet:
            with lock:
                echo(f"{host}: {message}", err=True)

    return report


def summary(results: list) -> None:
    width = max([len(r.host) for r in results] + [4])
    click.echo(f"{'HOST':<{width}}  {'STATUS':<12} {'RELEASE':<28} {'SECONDS':>7}  ERROR")
    for r in results:
        echo(f"{r.host:<{width}}  {r.status:<12} {r.release or '-':<28} {r.seconds:>7.1f}  {r.error or ''}")
    for r in results:
        log = getattr(r, "log", None)
        if log is not None and log.lines:
            echo(f"\n{r.host}: {log.source}, last {len(log.lines)} lines" + (f" (cause: {log.cause})" if log.cause else ""))
            for line in log.lines:
                echo(f"  | {line}")


def exit_code_for(results: list) -> int:
    statuses = {r.status for r in results}
    if statuses & DEPLOY_FAILURES:
        return EXIT_FAILED
    if DeployStatus.LOCKED in statuses:
        return EXIT_LOCKED
    return EXIT_OK


@contextlib.contextmanager
def cancellable():
    """Turn SIGTERM (a cancelled CI job) into the same path as Ctrl-C: workers stop, roll back, unlock."""
    cancel = threading.Event()

    def on_term(signum, frame):  # noqa: ANN001
        cancel.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_cancellable(func, cancel: threading.Event):  # noqa: ANN001, ANN201
    """Run ``func`` in a worker thread so Ctrl-C/SIGTERM reach us; on either, ask it to stop and wait."""
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    while worker.is_alive():
        try:
            worker.join(0.2)
        except KeyboardInterrupt:
            cancel.set()
            click.echo("cancelling: finishing the current step on each host, rolling back and unlocking", err=True)
    if "error" in box:
        raise box["error"]
    return box["result"]


def run_rollout(func: Callable[[threading.Event], list], as_json: bool) -> tuple[list, bool]:
    """Run a deploy or rollback so that Ctrl-C/SIGTERM unwind it, then print the results."""
    with cancellable() as cancel:
        results = run_cancellable(lambda: func(cancel), cancel)
    if as_json:
        click.echo(json.dumps({"results": [r.as_dict() for r in results]}, indent=2))
    else:
        summary(results)
    return results, cancel.is_set()
