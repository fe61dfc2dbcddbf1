"""The one place lab commands are executed, and the error they raise."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from deployer.lab.commands import Cmd


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LabError(Exception):
    """A failure to show as one line; ``exit_code`` is what the CLI exits with."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run(cmd: Cmd, *, check: bool = True, timeout: float | None = 60,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` and capture its output; LabError names the command on failure."""
    try:
        res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                             input=input, stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise LabError(f"{cmd[0]}: command not found (is it installed?)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{shlex.join(cmd)}: timed out after {timeout:g} s") from None
    if check and res.returncode != 0:
        why = _last_line(res.stderr) or _last_line(res.stdout) or f"exit {res.returncode}"
        raise LabError(f"{shlex.join(cmd)}: {why}")
    return res


def run_logged(cmd: Cmd, log: Path, *, timeout: float | None = None) -> None:
    """Run a long command with its output appended to ``log``; the tail names a failure."""
    with open(log, "ab") as out:
        out.write(f"+ {shlex.join(cmd)}\n".encode())
        out.flush()
        try:
            res = subprocess.run(list(cmd), stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, timeout=timeout)
        except FileNotFoundError:
            raise LabError(f"{cmd[0]}: command not found (is it installed?)") from None
        except subprocess.TimeoutExpired:
            raise LabError(f"{cmd[0]}: timed out after {timeout:g} s (log: {log})") from None
    if res.returncode != 0:
        raise LabError(f"{cmd[0]} failed with exit {res.returncode}: "
                       f"{tail(log, 1) or '(no output)'} (log: {log})")


def tail(path: Path, lines: int = 5) -> str:
    """The last ``lines`` non-empty lines of a log, joined with ' | ' to stay one line."""
    try:
        data = Path(path).read_bytes()[-16384:].decode(errors="replace")
    except OSError:
        return ""
    data = _ANSI.sub("", data)  # the boot log is coloured
    kept = [ln.strip() for ln in data.splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)
