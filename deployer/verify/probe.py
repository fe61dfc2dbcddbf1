"""What the built-in checks look at, gathered in ONE round trip per host.

Like ``deployer.core.facts``: a read-only Python program runs on the host (as root,
or through sudo) and prints JSON. It records states, modes, owners, status
codes and headers, never a file's or a response's contents, so no secret can
reach a report. Slow steps (the proxy's config test, ``systemd-analyze
security``) start first and run while the rest is gathered.
"""

from __future__ import annotations

import json

Command = tuple[str, ...]

PROBE_PROGRAM = r"""
import glob, grp, http.client, json, os, pwd, re, socket, ssl, subprocess, sys, time
q = json.loads(sys.argv[1])
out = {"now": time.time()}

def start(argv):
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        return str(exc)

def finish(proc):
    if isinstance(proc, str):
        return {"code": 127, "output": proc}
    text = proc.communicate()[0]
    return {"code": proc.returncode, "output": "\n".join(text.strip().splitlines()[-3:])}

def name_of(uid, db):
    try:
        return db(uid)[0]
    except KeyError:
        return str(uid)

slow = {"proxy_test": start(q["proxy_test"])}
if q["security_unit"]:
    slow["security"] = start(["systemd-analyze", "security", "--no-pager", q["security_unit"]])

try:
    pw = pwd.getpwnam(q["user"])
    out["user"] = {"uid": pw.pw_uid, "shell": pw.pw_shell}
except KeyError:
    out["user"] = None

cur = q["current"]
link = os.readlink(cur) if os.path.islink(cur) else None
target = os.path.realpath(cur) if link else None
out["current"] = {
    "link": link, "exists": bool(target) and os.path.isdir(target),
    "in_releases": bool(target) and os.path.dirname(target) == os.path.realpath(q["releases"]),
    # the app's module in the release, or (an app installed as a wheel) in its venv: app_files are globs
    "has_app": bool(target) and any(glob.glob(os.path.join(glob.escape(target), p)) for p in q["app_files"]),
    "has_venv": bool(target) and os.path.isfile(os.path.join(target, ".venv", "bin", "python")),
}

procs = []  # (user, cgroups, argv0) of every process, from one pass over /proc
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open("/proc/%s/cgroup" % pid) as f:
            groups = [line.rstrip("\n").split(":", 2)[2] for line in f if line.count(":") >= 2]
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode("utf-8", "replace")
        procs.append((name_of(os.stat("/proc/" + pid).st_uid, pwd.getpwuid), groups, argv0))
    except OSError:
        pass

out["units"] = {}
for unit in q["units"]:
    show = subprocess.run(["systemctl", "show", unit, "-p", "ActiveState,SubState,UnitFileState,ControlGroup"],
                          capture_output=True, text=True).stdout
    props = dict(l.split("=", 1) for l in show.splitlines() if "=" in l)
    cg = props.get("ControlGroup", "")
    users = [u for u, groups, _ in procs if cg and any(g == cg or g.startswith(cg + "/") for g in groups)]
    out["units"][unit] = {"active": props.get("ActiveState", ""), "sub": props.get("SubState", ""),
                          "enabled": props.get("UnitFileState", ""), "users": sorted(set(users)), "processes": len(users)}

marker = q["process_marker"]
out["daemons"] = [u for u, _, argv0 in procs if marker and len(argv0.rstrip(" ")) > 6 and marker.startswith(argv0.rstrip(" "))]  # cut display-name

out["site"] = {"enabled": os.path.exists(q["site_link"]), "link": q["site_link"]}

tcp = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":
                    tcp.add(int(fields[1].rsplit(":", 1)[1], 16))
    except OSError:
        pass
unix = set()
try:
    with open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and int(fields[3], 16) & 0x10000:
                unix.add(fields[7])
except OSError:
    pass
out["listening"] = {"tcp": sorted(tcp), "unix": sorted(unix)}

try:
    st = os.stat(q["env_file"])
    out["env_file"] = {"mode": st.st_mode & 0o7777, "owner": name_of(st.st_uid, pwd.getpwuid),
                       "group": name_of(st.st_gid, grp.getgrgid)}
except OSError:
    out["env_file"] = None

out["static_file"] = None
if q["static_dir"]:
    for dirpath, dirs, names in os.walk(os.path.join(cur, q["static_dir"])):
        dirs.sort()
        files = sorted(n for n in names if not n.startswith("."))
        if files:
            rel = os.path.relpath(os.path.join(dirpath, files[0]), os.path.join(cur, q["static_dir"]))
            out["static_file"] = rel
            break

def connect(scheme, port):
    if scheme == "http":
        return http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # the served certificate is judged by tls-cert; these requests only look at answers
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ssl._create_unverified_context())

def fetch(scheme, port, path):
    try:
        conn = connect(scheme, port)
        conn.request("GET", path, headers={"Host": q["server_name"], "User-Agent": "deployer-verify"})
        resp = conn.getresponse(); resp.read(); conn.close()
        return {"status": resp.status, "headers": {k.lower(): v for k, v in resp.getheaders()}}
    except (OSError, http.client.HTTPException) as exc:
        return {"error": str(exc) or type(exc).__name__}

out["http"] = {}
for name, (scheme, port, path) in q["requests"].items():
    if name == "static":
        if not out["static_file"]:
            continue
        path = path + "/" + out["static_file"]
    out["http"][name] = fetch(scheme, port, path)

out["tls"] = None
if q["tls"]:
    t = q["tls"]
    tls = {"key_error": None, "verify_error": None, "same_cert": False, "peer": None}
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(t["cert"], t["key"])
    except (OSError, ssl.SSLError) as exc:
        tls["key_error"] = getattr(exc, "reason", None) or str(exc)
    try:
        ctx = ssl.create_default_context(cafile=t["cert"])
        ctx.check_hostname = False
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        with socket.create_connection(("127.0.0.1", t["port"]), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=q["server_name"]) as conn:
                peer = conn.getpeercert()
                with open(t["cert"]) as f:
                    first = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", f.read(), re.S)
                tls["same_cert"] = bool(first) and ssl.PEM_cert_to_DER_cert(first.group(0)) == conn.getpeercert(True)
        tls["peer"] = {"names": [v for k, v in peer.get("subjectAltName", ()) if k == "DNS"],
                       "not_after": ssl.cert_time_to_seconds(peer["notAfter"])}
    except (OSError, ssl.SSLError, ValueError) as exc:
        tls["verify_error"] = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    out["tls"] = tls

for name, proc in slow.items():
    out[name] = finish(proc)
print(json.dumps(out))
"""


def probe_command(query: dict) -> Command:
    return ("python3", "-c", PROBE_PROGRAM, json.dumps(query, separators=(",", ":")))
