"""Run a command as the app, in a release's environment: what hooks and ``deployer exec`` share.

systemd itself starts the command as a transient service (``systemd-run``), so
the env file is parsed by the same code that parses it for the app's unit,
with the same user, group and working directory: nothing here re-implements
that quoting. ``--pipe --wait`` brings output and exit code back over SSH;
systemd-run reaches PID 1 through its private socket, so no D-Bus is needed.
``/usr/bin/env`` finds the program on the release's PATH (venv first) on the
host, since systemd-run would look it up on the caller's PATH.

The builders are pure; ``run_in_release`` is the one call that does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from deployer.commands import Command, sh

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class ReleaseEnv:
    """Where and as whom: the release directory, the app user, the env file systemd loads."""

    release_dir: PurePosixPath  # a release, or the `current` link (as the app's unit uses it)
    user: str
    env_file: PurePosixPath

    @property
    def venv(self) -> PurePosixPath:
        return self.release_dir / ".venv"


def in_release(env: ReleaseEnv, argv: tuple[str, ...], *, timeout: int | None = None,
               description: str = "deployer command") -> Command:
    """``argv`` as a transient service of the app user, env file loaded by systemd."""
    properties = [
        f"User={env.user}",
        f"Group={env.user}",
        f"WorkingDirectory={env.release_dir}",
        f"EnvironmentFile={env.env_file}",
    ]
    if timeout is not None:
        properties.append(f"RuntimeMaxSec={timeout}")
    setenv = {
        "PATH": f"{env.venv}/bin:{SYSTEM_PATH}",
        "VIRTUAL_ENV": str(env.venv),
        "PYTHONUNBUFFERED": "1",  # output streams line by line, as the app's unit sets it
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return (
        "systemd-run", "--pipe", "--wait", "--collect", "--quiet", f"--description={description}",
        *(arg for prop in properties for arg in ("-p", prop)),
        *(f"--setenv={name}={value}" for name, value in setenv.items()),
        "--", "/usr/bin/env", "--", *argv,
    )


def logged(command: Command, log: PurePosixPath, header: str) -> Command:
    """Run ``command`` with stderr merged into stdout, copied to ``log`` (root only), exit code kept.

    ``tee`` would hide the command's status behind its own; the status travels
    out on fd 4 instead. fds 3 and 4 are closed for the command itself so a
    process it leaves behind cannot hold the pipe open.
    """
    script = (
        'log=$1; shift; umask 077\n'
        'printf "%s\\n" "$1" >> "$log"; shift\n'
        'exec 3>&1\n'
        'status=$( { { "$@" 2>&1 3>&- 4>&-; echo $? >&4; } | tee -a "$log" >&3; } 4>&1 )\n'
        'printf "== exit %s\\n" "$status" >> "$log"\n'
        'exit "$status"\n'
    )
    return sh(script, log, header, *command)


def paths_exist(*paths: PurePosixPath) -> Command:
    """Fails naming the first missing path: a clearer error than systemd-run's exit 200."""
    return sh('for p in "$@"; do [ -e "$p" ] || { echo "$p does not exist"; exit 1; }; done', *paths)


@dataclass(frozen=True)
class Outcome:
    code: int
    output: str  # masked
    seconds: float
    timed_out: bool


def run_in_release(remote, command: Command, *, timeout: int | None, on_line: Callable[[str], None]) -> Outcome:
    """Run a command built above on ``remote`` (a ``connection.Remote``), streaming masked lines."""
    started = time.monotonic()
    result = remote.run(command, check=False, timeout=None if timeout is None else timeout + 30, on_line=on_line)
    seconds = time.monotonic() - started
    timed_out = timeout is not None and result.code != 0 and seconds >= timeout
    return Outcome(result.code, result.stdout + result.stderr, seconds, timed_out)
