"""What verify's built-in checks judge, read on the host in one run: prints one JSON object.

Sent by ``deployer.verify.probe.probe_command`` as ``python3 -c <this file>
QUERY`` (JSON, see ``deployer.verify.checks.probe_query``) and run as root or
through sudo. It reads states, modes, owners, status codes and headers, never
a file's or a response's contents, so no secret can reach a report. Slow steps
(the proxy's config test, ``systemd-analyze security``) start first and run
while the rest is gathered. Standard library only, Python 3.9+.
"""

from __future__ import annotations

import glob
import grp
import http.client
import json
import os
import pwd
import re
import socket
import ssl
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

Proc = Tuple[str, List[str], str]  # (user, cgroups, argv0) of one process
CERT = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def start(argv: List[str]) -> Union[subprocess.Popen, str]:
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        return str(exc)


def finish(proc: Union[subprocess.Popen, str]) -> Dict[str, Any]:
    """A started command's exit code and last 3 lines of output (127 when it could not start)."""
    if isinstance(proc, str):
        return {"code": 127, "output": proc}
    text = proc.communicate()[0]
    return {"code": proc.returncode, "output": "\n".join(text.strip().splitlines()[-3:])}


def name_of(uid: int, db: Callable) -> str:
    try:
        return db(uid)[0]
    except KeyError:
        return str(uid)


def user(name: str) -> Optional[Dict[str, Any]]:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    return {"uid": pw.pw_uid, "shell": pw.pw_shell}


def current(cur: str, releases: str, app_files: List[str]) -> Dict[str, Any]:
    """Where ``current`` points and whether that is a whole release."""
    link = os.readlink(cur) if os.path.islink(cur) else None
    target = os.path.realpath(cur) if link else None
    return {
        "link": link, "exists": bool(target) and os.path.isdir(target),
        "in_releases": bool(target) and os.path.dirname(target) == os.path.realpath(releases),
        # the app's module in the release, or (an app installed as a wheel) in its venv: app_files are globs
        "has_app": bool(target) and any(glob.glob(os.path.join(glob.escape(target), p)) for p in app_files),
        "has_venv": bool(target) and os.path.isfile(os.path.join(target, ".venv", "bin", "python")),
        "target": target,
    }


def processes(proc: str = "/proc") -> List[Proc]:
    """(user, cgroups, argv0) of every process, from one pass over /proc."""
    found = []
    for pid in filter(str.isdigit, os.listdir(proc)):
        try:
            with open(os.path.join(proc, pid, "cgroup")) as f:
                groups = [line.rstrip("\n").split(":", 2)[2] for line in f if line.count(":") >= 2]
            with open(os.path.join(proc, pid, "cmdline"), "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode("utf-8", "replace")
            found.append((name_of(os.stat(os.path.join(proc, pid)).st_uid, pwd.getpwuid), groups, argv0))
        except OSError:
            pass
    return found


def names_group(argv0: str, marker: str) -> bool:
    """Whether argv[0] is the display-name ``marker``, cut to Apache's argv[0] length or padded with spaces."""
    argv0 = argv0.rstrip(" ")
    return len(argv0) > 6 and marker.startswith(argv0)


def unit_state(show_output: str, procs: List[Proc], proc: str = "/proc") -> Dict[str, Any]:
    """From ``systemctl show -p ActiveState,SubState,UnitFileState,ControlGroup,MainPID``: state, who runs in it, where."""
    props = dict(line.split("=", 1) for line in show_output.splitlines() if "=" in line)
    cg = props.get("ControlGroup", "")
    users = [u for u, groups, _ in procs if cg and any(g == cg or g.startswith(cg + "/") for g in groups)]
    return {"active": props.get("ActiveState", ""), "sub": props.get("SubState", ""),
            "enabled": props.get("UnitFileState", ""), "users": sorted(set(users)), "processes": len(users),
            "cwd": main_cwd(props.get("MainPID", ""), proc)}


def main_cwd(pid: str, proc: str) -> Optional[str]:
    """The working directory of a unit's main process: the release it runs from."""
    if not pid.isdigit() or pid == "0":
        return None
    try:
        return os.readlink(os.path.join(proc, pid, "cwd"))
    except OSError:
        return None


def systemctl_show(unit: str) -> str:
    return subprocess.run(["systemctl", "show", unit, "-p", "ActiveState,SubState,UnitFileState,ControlGroup,MainPID"],
                          capture_output=True, text=True).stdout


def listening(proc: str = "/proc") -> Dict[str, List[Any]]:
    """Listening TCP ports (v4 and v6) and unix socket paths."""
    tcp = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc, "net", table)) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A":  # TCP_LISTEN
                        tcp.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    unix = set()
    try:
        with open(os.path.join(proc, "net", "unix")) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if len(fields) >= 8 and int(fields[3], 16) & 0x10000:  # __SO_ACCEPTCON
                    unix.add(fields[7])
    except OSError:
        pass
    return {"tcp": sorted(tcp), "unix": sorted(unix)}


def file_owner(path: str) -> Optional[Dict[str, Any]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"mode": st.st_mode & 0o7777, "owner": name_of(st.st_uid, pwd.getpwuid),
            "group": name_of(st.st_gid, grp.getgrgid)}


def first_static_file(static_root: str) -> Optional[str]:
    """The first visible file under ``static_root`` (walked in sorted order), relative to it."""
    for dirpath, dirs, names in os.walk(static_root):
        dirs.sort()
        files = sorted(n for n in names if not n.startswith("."))
        if files:
            return os.path.relpath(os.path.join(dirpath, files[0]), static_root)
    return None


def connect(scheme: str, port: int) -> http.client.HTTPConnection:
    if scheme == "http":
        return http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # the served certificate is judged by tls-cert; these requests only look at answers
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ssl._create_unverified_context())


def fetch(scheme: str, port: int, path: str, server_name: str) -> Dict[str, Any]:
    try:
        conn = connect(scheme, port)
        conn.request("GET", path, headers={"Host": server_name, "User-Agent": "deployer-verify"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return {"status": resp.status, "headers": {k.lower(): v for k, v in resp.getheaders()}}
    except (OSError, http.client.HTTPException) as exc:
        return {"error": str(exc) or type(exc).__name__}


def answers(requests: Dict[str, List[Any]], static_file: Optional[str], server_name: str) -> Dict[str, Any]:
    """Each named request's answer; the static one asks for ``static_file``, and is not made without one."""
    out = {}
    for name, (scheme, port, path) in requests.items():
        if name == "static":
            if not static_file:
                continue
            path = path + "/" + static_file
        out[name] = fetch(scheme, port, path, server_name)
    return out


def tls(t: Dict[str, Any], server_name: str) -> Dict[str, Any]:
    """Whether cert and key match, and what the port serves: verified against the cert file itself."""
    out: Dict[str, Any] = {"key_error": None, "verify_error": None, "same_cert": False, "peer": None}
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(t["cert"], t["key"])
    except (OSError, ssl.SSLError) as exc:
        out["key_error"] = getattr(exc, "reason", None) or str(exc)
    try:
        ctx = ssl.create_default_context(cafile=t["cert"])
        ctx.check_hostname = False
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        with socket.create_connection(("127.0.0.1", t["port"]), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name) as conn:
                peer = conn.getpeercert()
                with open(t["cert"]) as f:
                    first = CERT.search(f.read())
                out["same_cert"] = bool(first) and ssl.PEM_cert_to_DER_cert(first.group(0)) == conn.getpeercert(True)
        out["peer"] = {"names": [v for k, v in peer.get("subjectAltName", ()) if k == "DNS"],
                       "not_after": ssl.cert_time_to_seconds(peer["notAfter"])}
    except (OSError, ssl.SSLError, ValueError) as exc:
        out["verify_error"] = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    return out


def gather(q: Dict[str, Any], proc: str = "/proc", show: Callable[[str], str] = systemctl_show) -> Dict[str, Any]:
    out: Dict[str, Any] = {"now": time.time()}
    slow = {"proxy_test": start(q["proxy_test"])}
    if q["security_unit"]:
        slow["security"] = start(["systemd-analyze", "security", "--no-pager", q["security_unit"]])
    out["user"] = user(q["user"])
    out["current"] = current(q["current"], q["releases"], q["app_files"])
    procs = processes(proc)
    out["units"] = {unit: unit_state(show(unit), procs, proc) for unit in q["units"]}
    marker = q["process_marker"]
    out["daemons"] = [u for u, _, argv0 in procs if marker and names_group(argv0, marker)]
    out["site"] = {"enabled": os.path.exists(q["site_link"]), "link": q["site_link"]}
    out["listening"] = listening(proc)
    out["env_file"] = file_owner(q["env_file"])
    out["static_file"] = first_static_file(os.path.join(q["current"], q["static_dir"])) if q["static_dir"] else None
    out["http"] = answers(q["requests"], out["static_file"], q["server_name"])
    out["tls"] = tls(q["tls"], q["server_name"]) if q["tls"] else None
    for name, started in slow.items():
        out[name] = finish(started)
    return out


def main(argv: List[str]) -> None:
    print(json.dumps(gather(json.loads(argv[1]))))


if __name__ == "__main__":
    main(sys.argv)
