"""Restart mod_wsgi's daemon processes without reloading Apache (see ``deployer.core.commands.restart_daemons``).

Sent as ``python3 -c <this file> SERVICE MARKER``: sends SIGUSR1 to every
child of SERVICE's main process whose argv[0] starts with MARKER (the
WSGIDaemonProcess display-name). Prints the pids it signalled; exits 1 with the
reason when the service is not running or runs no such process. Standard
library only, Python 3.9+.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import List, Optional


def main_pid(service: str) -> Optional[str]:
    """systemd's MainPID of ``service``; None when it is not running."""
    out = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", service],
                         capture_output=True, text=True).stdout.strip()
    return None if out in ("", "0") else out


def names_group(argv0: bytes, marker: bytes) -> bool:
    """Whether a process's argv[0] is the display-name ``marker``, maybe cut.

    mod_wsgi writes display-name over Apache's argv[0] in place, so it is cut to
    that length ("(wsgi:factory-pkg)" shows as "(wsgi:factory-pkg"): any prefix
    longer than "(wsgi:" names the group.
    """
    return len(argv0) > 6 and marker.startswith(argv0)


def children(parent: str, marker: bytes, proc: str = "/proc") -> List[str]:
    """Pids whose parent is ``parent`` and whose argv[0] is the display-name ``marker``, in /proc order."""
    found = []
    for pid in filter(str.isdigit, os.listdir(proc)):
        try:
            with open(os.path.join(proc, pid, "stat")) as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]  # comm, in parentheses, may hold spaces
            with open(os.path.join(proc, pid, "cmdline"), "rb") as f:
                argv0 = f.read().split(b"\0")[0].rstrip(b" ")  # a shorter display-name is padded with spaces
        except (OSError, IndexError):
            continue
        if ppid == parent and names_group(argv0, marker):
            found.append(pid)
    return found


def main(argv: List[str]) -> int:
    service, marker = argv[1], argv[2]
    main = main_pid(service)
    if main is None:
        print("%s is not running" % service)
        return 1
    signalled = []
    for pid in children(main, marker.encode()):
        try:
            os.kill(int(pid), signal.SIGUSR1)
        except OSError:
            continue  # it exited meanwhile
        signalled.append(pid)
    if not signalled:
        print("no %s process under %s (main pid %s)" % (marker, service, main))
        return 1
    print(" ".join(signalled))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
