"""``deployer exec``: run a command on the selected hosts as the app, in the current release's environment.

The same mechanism as release hooks (``deployer.core.release_env``): the app user,
the env file and secrets as systemd loads them for the app's unit, the
release's virtualenv first on PATH. Hosts run in parallel; every output line
is printed with its host in front and secret values masked, although the
command itself sees them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from deployer.core.layout import Layout
from deployer.config.model import Host, Inventory
from deployer.core.release_env import ReleaseEnv, in_release, paths_exist, run_in_release, unit_name
from deployer.core.render import sandbox_properties
from deployer.remote.connector import ConnectorFactory, ssh_connector


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
             emit: Callable[[str, str], None], connect: ConnectorFactory = ssh_connector) -> list[HostExec]:
    """Every selected host in parallel; Ctrl-C closes the connections instead of waiting for the commands."""
    from deployer.run.rollout import Session

    results: dict[str, HostExec] = {}

    def run_all(session: Session) -> None:
        # any exception is this host's result (a lost connection), not a crash
        for name, outcome in session.each(lambda r: exec_on(r, inventory, argv, timeout, emit), catch=(Exception,)).items():
            results[name] = outcome.value if outcome.ok else HostExec(name, error=f"{type(outcome.error).__name__}: {outcome.error}")

    with Session(inventory, hosts, connect) as session:
        for name, error in session.errors.items():
            results[name] = HostExec(name, error=error)
        worker = threading.Thread(target=run_all, args=(session,), daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    return [results[h.name] for h in hosts if h.name in results]
