"""``deployer exec``: run a command on the selected hosts as the app, in the current release's environment.

The same mechanism as release hooks (``deployer.core.release_env``): the app user,
the env file and secrets as systemd loads them for the app's unit, the
release's virtualenv first on PATH. Hosts run in parallel; every output line
is printed with its host in front and secret values masked, although the
command itself sees them.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from deployer.errors import EXIT_FAILED, EXIT_OK
from deployer.config.inventory import load_inventory
from deployer.console import echo
from deployer.core.layout import Layout
from deployer.config.model import Host, Inventory
from deployer.core.release_env import ReleaseEnv, in_release, paths_exist, run_in_release, unit_name
from deployer.core.render import sandbox_properties
from deployer.config.selection import select_hosts


@dataclass(frozen=True)
class HostExec:
    host: str
    code: int | None = None  # None: the command did not run
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == 0

    def __str__(self) -> str:
        return f"{self.host}: {'error: ' + self.error if self.error else f'exit {self.code}'}"


def exec_on(remote, inventory: Inventory, argv: tuple[str, ...], timeout: int | None,
            emit: Callable[[str, str], None]) -> HostExec:
    """One host: the current release must exist, then ``argv`` runs there as the app."""
    name = remote.host.name
    layout = Layout.of(inventory.app, remote.host)
    present = remote.run(paths_exist(layout.current, layout.env_file), check=False)
    if not present.ok:
        return HostExec(name, error=f"{present.stdout.strip() or present.stderr.strip()} (deploy first)")
    env = ReleaseEnv(layout.current, inventory.app.user, layout.env_file, sandbox_properties(inventory, remote.host))
    unit = unit_name(inventory.app.name, "exec")
    command = in_release(env, argv, unit=unit, timeout=timeout, description=f"{inventory.app.name} deployer exec")
    outcome = run_in_release(remote, command, timeout=timeout, on_line=lambda line: emit(name, line))
    if outcome.timed_out:
        return HostExec(name, outcome.code, error=f"timed out after {timeout}s")
    return HostExec(name, outcome.code)


def exec_all(inventory: Inventory, hosts: tuple[Host, ...], argv: tuple[str, ...], timeout: int | None,
             emit: Callable[[str, str], None]) -> list[HostExec]:
    """Every selected host in parallel; Ctrl-C closes the connections instead of waiting for the commands."""
    from deployer.run.rollout import Session, parallel

    results: dict[str, HostExec] = {}

    def one(remote) -> None:  # noqa: ANN001
        try:
            results[remote.host.name] = exec_on(remote, inventory, argv, timeout, emit)
        except Exception as exc:  # noqa: BLE001 - a lost connection is this host's result, not a crash
            results[remote.host.name] = HostExec(remote.host.name, error=f"{type(exc).__name__}: {exc}")

    with Session(inventory, hosts) as session:
        for name, error in session.errors.items():
            results[name] = HostExec(name, error=error)
        worker = threading.Thread(target=parallel, args=(one, session.connected()), daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    return [results[h.name] for h in hosts if h.name in results]


def exec_command(inventory_option, limit_option) -> click.Command:  # noqa: ANN001 - click decorators
    """The click command, given the CLI's shared -i/--limit options."""

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
        inventory = load_inventory(inventory_path)
        hosts = select_hosts(inventory, limit)
        lock = threading.Lock()

        def emit(host: str, line: str) -> None:
            with lock:
                echo(f"{host}: {line}")

        results = exec_all(inventory, hosts, tuple(argv), timeout, emit)
        for result in results:
            echo(str(result), err=True)
        sys.exit(EXIT_OK if results and all(r.ok for r in results) else EXIT_FAILED)

    return exec_
