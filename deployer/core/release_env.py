"""Run a command as the app, in a release's environment: what hooks and ``deployer exec`` share.

systemd itself starts the command as a transient service (``systemd-run``), so
the env file is parsed by the same code that parses it for the app's unit,
with the same user, group and working directory: nothing here re-implements
that quoting. ``--pipe --wait`` brings output and exit code back over SSH;
systemd-run reaches PID 1 through its private socket, so no D-Bus is needed.
``/usr/bin/env`` finds the program on the release's PATH (venv first) on the
host, since systemd-run would look it up on the caller's PATH. The unit gets
the app service's sandbox (``ReleaseEnv.sandbox``), so a hook can do no more
on the host than the app itself.

The builders are pure (``unit_name`` only draws a random id); ``run_in_release`` is
the one call that does I/O.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from deployer.core.commands import Command, sh

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
UTF8_LOCALE = "C.UTF-8"  # what render.UTF8_LOCALE gives the app's processes


@dataclass(frozen=True)
class ReleaseEnv:
    """Where and as whom: the release directory, the app user, the env file systemd loads, the sandbox."""

    release_dir: PurePosixPath  # a release, or the `current` link (as the app's unit uses it)
    user: str
    env_file: PurePosixPath
    sandbox: tuple[str, ...] = ()  # unit properties, as render.sandbox_properties gives them

    @property
    def venv(self) -> PurePosixPath:
        return self.release_dir / ".venv"


def in_release(env: ReleaseEnv, argv: tuple[str, ...], *, unit: str, timeout: int | None = None,
               description: str = "deployer command") -> Command:
    """``argv`` as the transient service ``unit`` of the app user, env file loaded by systemd.

    The service is stopped when the SSH session ends (Ctrl-C, a dropped
    connection), not left running without anyone reading its output.
    """
    properties = [
        f"User={env.user}",
        f"Group={env.user}",
        f"WorkingDirectory={env.release_dir}",
        f"EnvironmentFile={env.env_file}",
        *env.sandbox,
    ]
    if timeout is not None:
        properties.append(f"RuntimeMaxSec={timeout}")
    setenv = {
        "PATH": f"{env.venv}/bin:{SYSTEM_PATH}",
        "VIRTUAL_ENV": str(env.venv),
        "PYTHONUNBUFFERED": "1",  # output streams line by line, as the app's unit sets it
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": UTF8_LOCALE,  # as the app's unit: systemd loads the env file after, its LANG wins
    }
    return stop_on_hangup(unit, (
        "systemd-run", "--pipe", "--wait", "--collect", "--quiet", f"--unit={unit}", f"--description={description}",
        *(arg for prop in properties for arg in ("-p", prop)),
        *(f"--setenv={name}={value}" for name, value in setenv.items()),
        "--", "/usr/bin/env", "--", *map(systemd_literal, argv),
    ))


def systemd_literal(arg: str) -> str:
    """``arg`` as systemd passes it on: it expands ``$VAR``, ``${VAR}`` and ``$$`` in a unit's command line.

    Unescaped, a hook argument ``$APP_SECRET_KEY`` would reach the command as
    the secret itself, readable in /proc/<pid>/cmdline by every user of the host.
    systemd-run's ``--expand-environment=no`` (systemd 254) is not in Debian 12's 252.
    Specifiers (``%n``) are not expanded for transient units: ``%`` stays as is.
    """
    return arg.replace("$", "$$")


def unit_name(app: str, purpose: str) -> str:
    """A fresh transient unit name, e.g. hello-exec-1a2b3c4d5e6f.service: visible in the journal."""
    return f"{app}-{purpose}-{uuid.uuid4().hex[:12]}.service"


def stop_on_hangup(unit: str, command: Command) -> Command:
    """Run ``command``; if our stdin (the SSH channel) reaches EOF first, stop ``unit``.

    Nothing is ever sent on stdin, so EOF means the client went away. systemd-run
    itself gets no signal then; its service would otherwise run on unseen.
    """
    script = (
        'unit=$1; shift\n'
        'exec 3<&0\n'
        '"$@" < /dev/null &\n'
        'run=$!\n'
        '{ while read -r _ <&3; do :; done; systemctl stop "$unit" 2>/dev/null; } &\n'
        'watch=$!\n'
        'wait "$run"; status=$?\n'
        'kill "$watch" 2>/dev/null\n'
        'exit "$status"\n'
    )
    return sh(script, unit, *command)


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
