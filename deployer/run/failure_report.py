"""Why a unit or the health gate failed, the I/O part: read the app's log tail from the host.

What to read and which line names the cause is ``deployer.core.failure_log``; this reads it
over the host's connection (output masked, as every command's) and never raises: a log
that cannot be read must not hide the failure it was read for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployer.config.model import App
from deployer.core.failure_log import FailureLog, explain, log_command, log_source

if TYPE_CHECKING:
    from deployer.remote.ssh import Remote

READ_TIMEOUT = 30


def read_failure_log(remote: Remote, app: App) -> FailureLog:
    """The tail of ``app``'s own log on ``remote`` and its cause line."""
    source = log_source(app, remote.host)
    try:
        result = remote.run(log_command(app, remote.host), check=False, timeout=READ_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - best effort: the original failure matters more
        return FailureLog(source, (f"cannot read {source}: {type(exc).__name__}: {exc}",))
    if not result.ok and not result.stdout.strip():
        return FailureLog(source, (f"cannot read {source}: {result.stderr.strip()[-300:]}",))
    return explain(source, result.stdout)
