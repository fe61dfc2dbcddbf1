"""What a host looks like now, read on the host in one run: prints one JSON object.

Sent by ``deployer.core.facts.facts_command`` as ``python3 -c <this file> QUERY``
and run as root (or through sudo). It only reads. QUERY is JSON: app_root,
user, packages, files, links, units, process_markers. Standard library only,
Python 3.9+: it runs on the host's own python3. ``deployer.core.facts.parse_facts``
reads what it prints.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import pwd
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional

Run = Callable[..., str]
MAX_FILE = 1 << 20  # bytes of a file hashed and returned
SYSTEMD_DIR = "/etc/systemd/system"  # where the app's process and timer units are


def run(*argv: str) -> str:
    """A command's stdout; "" when the command does not exist."""
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout
    except OSError:
        return ""


def disk_free_mb(root: str) -> int:
    """Free space where ``root`` is (or would be created): its first existing ancestor."""
    probe = root
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize // 2**20


def packages(names: List[str], dpkg_output: str) -> Dict[str, bool]:
    """Whether each package is installed, from ``dpkg-query -W -f='${Package} ${db:Status-Status}\\n'``."""
    installed = {line.split()[0] for line in dpkg_output.splitlines() if line.endswith(" installed")}
    return {name: name in installed for name in names}


def user(name: str) -> Optional[Dict[str, Any]]:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    return {"uid": pw.pw_uid, "shell": pw.pw_shell, "home": pw.pw_dir}


def link_name(path: str) -> Optional[str]:
    """The last part of a symlink's target; None when ``path`` is no symlink."""
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else None


def releases(root: str) -> List[Dict[str, Any]]:
    """Release dirs under ``root/releases`` that deployer made (they have .deployer/), sorted."""
    rdir = os.path.join(root, "releases")
    found = []
    for name in sorted(os.listdir(rdir)) if os.path.isdir(rdir) else []:
        meta = os.path.join(rdir, name, ".deployer")
        if name.startswith(".") or not os.path.isdir(meta):
            continue
        found.append({"id": name, "bad": os.path.exists(os.path.join(meta, "BAD")),
                      "venv": link_name(os.path.join(rdir, name, ".venv"))})
    return found


def venvs(root: str) -> List[str]:
    """Venvs whose build finished (a .complete marker); a half-built one is not reused."""
    vdir = os.path.join(root, "venvs")
    if not os.path.isdir(vdir):
        return []
    return sorted(v for v in os.listdir(vdir) if os.path.exists(os.path.join(vdir, v, ".complete")))


def lock(root: str) -> Optional[Dict[str, Any]]:
    """Who holds the deploy lock, or None; a lock dir without readable info still counts as held."""
    lock_dir = os.path.join(root, ".deployer", "lock")
    try:
        with open(os.path.join(lock_dir, "info")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"holder": "unknown (lock dir without info)"} if os.path.isdir(lock_dir) else None
    except ValueError:
        return {"holder": "unknown (unreadable lock info)"}


def file_state(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE)
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return {"sha256": hashlib.sha256(data).hexdigest(), "mode": st.st_mode & 0o7777,
            "content": data.decode("utf-8", "replace")}


def unit_state(show_output: str) -> Dict[str, Any]:
    """From ``systemctl show UNIT -p ActiveState,UnitFileState,MainPID``."""
    props = dict(line.split("=", 1) for line in show_output.splitlines() if "=" in line)
    return {"active": props.get("ActiveState", ""), "enabled": props.get("UnitFileState", ""),
            "pid": int(props.get("MainPID") or 0)}


def names_group(argv0: bytes, marker: bytes) -> bool:
    """Whether argv[0] is the display-name ``marker``, maybe cut: mod_wsgi cuts it to Apache's argv[0] length."""
    return len(argv0) > 6 and marker.startswith(argv0)


def cwds_of(marker: str, uid: int, proc: str = "/proc") -> List[str]:
    """The working dirs of every process of user ``uid`` whose argv[0] is the display-name ``marker``, sorted.

    A cut name may also start another group's name: the app user's uid tells them apart.
    """
    cwds = set()
    for pid in filter(str.isdigit, os.listdir(proc)):
        try:
            with open(os.path.join(proc, pid, "cmdline"), "rb") as f:
                argv0 = f.read().split(b"\0")[0].rstrip(b" ")  # a shorter display-name is padded with spaces
            if names_group(argv0, marker.encode()) and os.stat(os.path.join(proc, pid)).st_uid == uid:
                cwds.add(os.readlink(os.path.join(proc, pid, "cwd")))
        except OSError:
            pass
    return sorted(cwds)


def managed_units(app: str, systemd_dir: str) -> List[str]:
    """The app's process and timer units, found by the marker line deployer writes into them."""
    found = []
    for name in sorted(os.listdir(systemd_dir)) if os.path.isdir(systemd_dir) else []:
        if not (name.startswith(app + "-") and name.endswith((".service", ".timer"))):
            continue
        try:
            with open(os.path.join(systemd_dir, name), encoding="utf-8", errors="replace") as f:
                head = f.read(4096).splitlines()[:3]
        except OSError:
            continue
        if any(line.startswith("# deployer-unit: app=%s kind=" % app) for line in head):
            found.append(name)
    return found


def units_and_serving(query: Dict[str, Any], uid: Optional[int], run: Run, proc: str, managed: List[str]) -> tuple:
    """Each unit's state, and which dir each unit's main process and each marker's processes run in."""
    units, serving = {}, {}
    for unit in dict.fromkeys(list(query["units"]) + managed):
        units[unit] = unit_state(run("systemctl", "show", unit, "-p", "ActiveState,UnitFileState,MainPID"))
        if units[unit]["pid"]:
            try:
                serving[unit] = os.readlink(os.path.join(proc, str(units[unit]["pid"]), "cwd"))
            except OSError:
                pass
    for marker in query["process_markers"] if uid is not None else ():  # no app user: no daemons of it
        cwds = cwds_of(marker, uid, proc)
        if cwds:  # every process of the group: during a restart some may still run the old release
            serving[marker] = " and ".join(cwds)
    return units, serving


def gather(query: Dict[str, Any], run: Run = run, proc: str = "/proc") -> Dict[str, Any]:
    root = query["app_root"]
    app_user = user(query["user"])
    managed = managed_units(query["app"], SYSTEMD_DIR) if query.get("app") else []
    units, serving = units_and_serving(query, app_user["uid"] if app_user else None, run, proc, managed)
    dpkg = run("dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *query["packages"])
    return {
        "python": "%d.%d.%d" % sys.version_info[:3],
        # the interpreter's implementation, CPU and C library: wheels are resolved for them
        "platform": {"implementation": sys.implementation.name, "machine": platform.machine(),
                     "libc": list(platform.libc_ver())},
        "files": {path: file_state(path) for path in query["files"]},
        "links": {path: os.readlink(path) if os.path.islink(path) else None for path in query["links"]},
        "units": units,
        "serving": serving,
        "managed_units": managed,
        "disk_free_mb": disk_free_mb(root),
        "packages": packages(query["packages"], dpkg),
        "user": app_user,
        "current": link_name(os.path.join(root, "current")),
        "releases": releases(root),
        "venvs": venvs(root),
        "lock": lock(root),
    }


def main(argv: List[str]) -> None:
    print(json.dumps(gather(json.loads(argv[1]))))


if __name__ == "__main__":
    main(sys.argv)
