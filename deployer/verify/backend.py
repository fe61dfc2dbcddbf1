"""A testinfra backend that runs commands over deployer's own SSH connection.

testinfra's paramiko backend accepts unknown host keys with a warning. This
one hands every command to ``deployer.remote.ssh.Remote``, so verify connects
exactly as deploy does: same user, port, key, known_hosts file and host-key
policy (strict refuses an unknown or changed key, accept-new refuses a
changed one), ``sudo -n`` when the host says ``become``, and one connection
per host for the whole run.
"""

from __future__ import annotations

from typing import Any

from testinfra.backend.base import BaseBackend, CommandResult

from deployer.remote.ssh import Remote


class RemoteBackend(BaseBackend):
    NAME = "deployer"

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        super().__init__(remote.host.name)  # sudo stays off here: Remote wraps with sudo -n itself

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        line = self.quote(command, *args)
        result = self.remote.run(("sh", "-c", line), check=False, mask=False)
        return self.result(result.code, self.encode(line), result.stdout, result.stderr)
