"""What a host looks like now, gathered in ONE round trip, and parsed purely.

A fact is a command plus a parser (as in pyinfra). All facts a deploy needs
come from one small Python program run on the host, so a no-change deploy
costs a single SSH command per host. The parser is pure and tested with
recorded outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from deployer.core.layout import Layout

Command = tuple[str, ...]

# Runs on the host as root (or via sudo). Reads only. argv[1] is a JSON query.
FACTS_PROGRAM = r"""
import hashlib, json, os, platform, pwd, shutil, subprocess, sys
q = json.loads(sys.argv[1])
out = {"python": "%d.%d.%d" % sys.version_info[:3], "files": {}, "links": {}, "units": {}, "serving": {}}
out["platform"] = {"implementation": sys.implementation.name, "machine": platform.machine(),
                   "libc": list(platform.libc_ver())}
root = q["app_root"]
def run(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout
    except OSError:
        return ""
probe = root
while not os.path.exists(probe):
    probe = os.path.dirname(probe)
st = os.statvfs(probe)
out["disk_free_mb"] = st.f_bavail * st.f_frsize // 2**20
pkgs = run("dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *q["packages"])
installed = {l.split()[0] for l in pkgs.splitlines() if l.endswith(" installed")}
out["packages"] = {p: p in installed for p in q["packages"]}
try:
    pw = pwd.getpwnam(q["user"])
    out["user"] = {"uid": pw.pw_uid, "shell": pw.pw_shell, "home": pw.pw_dir}
except KeyError:
    out["user"] = None
cur = os.path.join(root, "current")
out["current"] = os.path.basename(os.readlink(cur)) if os.path.islink(cur) else None
rels = []
rdir = os.path.join(root, "releases")
for name in sorted(os.listdir(rdir)) if os.path.isdir(rdir) else []:
    meta = os.path.join(rdir, name, ".deployer")
    if name.startswith(".") or not os.path.isdir(meta):
        continue
    rels.append({"id": name, "bad": os.path.exists(os.path.join(meta, "BAD")),
                 "venv": os.path.basename(os.readlink(os.path.join(rdir, name, ".venv"))) if os.path.islink(os.path.join(rdir, name, ".venv")) else None})
out["releases"] = rels
vdir = os.path.join(root, "venvs")
out["venvs"] = sorted(v for v in os.listdir(vdir) if os.path.exists(os.path.join(vdir, v, ".complete"))) if os.path.isdir(vdir) else []
try:
    with open(os.path.join(root, ".deployer", "lock", "info")) as f:
        out["lock"] = json.load(f)
except FileNotFoundError:
    out["lock"] = {"holder": "unknown (lock dir without info)"} if os.path.isdir(os.path.join(root, ".deployer", "lock")) else None
except ValueError:
    out["lock"] = {"holder": "unknown (unreadable lock info)"}
for path in q["files"]:
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
        st = os.stat(path)
        out["files"][path] = {"sha256": hashlib.sha256(data).hexdigest(), "mode": st.st_mode & 0o7777,
                              "content": data.decode("utf-8", "replace")}
    except FileNotFoundError:
        out["files"][path] = None
for path in q["links"]:
    out["links"][path] = os.readlink(path) if os.path.islink(path) else None
for unit in q["units"]:
    show = run("systemctl", "show", unit, "-p", "ActiveState,UnitFileState,MainPID")
    props = dict(l.split("=", 1) for l in show.splitlines() if "=" in l)
    out["units"][unit] = {"active": props.get("ActiveState", ""), "enabled": props.get("UnitFileState", ""),
                          "pid": int(props.get("MainPID") or 0)}
    pid = out["units"][unit]["pid"]
    if pid:
        try:
            out["serving"][unit] = os.readlink("/proc/%d/cwd" % pid)
        except OSError:
            pass
for marker in q["process_markers"]:
    cwds = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv0 = f.read().split(b"\0")[0].rstrip(b" ")  # a shorter display-name is padded with spaces
            # mod_wsgi cuts display-name to the length of Apache's argv[0]: a prefix names the group,
            # and the app user's uid tells apart two groups whose names start alike.
            if len(argv0) > 6 and marker.encode().startswith(argv0) and out["user"] and os.stat("/proc/" + pid).st_uid == out["user"]["uid"]:
                cwds.add(os.readlink("/proc/%s/cwd" % pid))
        except OSError:
            pass
    if cwds:  # every process of the group: during a restart some may still run the old release
        out["serving"][marker] = " and ".join(sorted(cwds))
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Release:
    id: str
    bad: bool = False
    venv: str | None = None


@dataclass(frozen=True)
class LiveFile:
    sha256: str
    mode: int
    content: str


@dataclass(frozen=True)
class Unit:
    active: str
    enabled: str
    pid: int = 0


@dataclass(frozen=True)
class Facts:
    python: str
    disk_free_mb: int
    packages: dict[str, bool]
    user: dict | None
    current: str | None
    releases: tuple[Release, ...]
    venvs: tuple[str, ...]
    lock: dict | None
    files: dict[str, LiveFile | None] = field(default_factory=dict)
    links: dict[str, str | None] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)
    serving: dict[str, str] = field(default_factory=dict)
    # the interpreter's implementation, CPU and C library: wheels are resolved for them
    platform: dict = field(default_factory=dict)

    @property
    def python_version(self) -> tuple[int, int]:
        major, minor = self.python.split(".")[:2]
        return int(major), int(minor)

    def release(self, release_id: str | None) -> Release | None:
        return next((r for r in self.releases if r.id == release_id), None)

    def missing_packages(self) -> tuple[str, ...]:
        return tuple(name for name, ok in self.packages.items() if not ok)


# What a plan is made from. Free space, pids, what serves and the lock itself change on
# their own (a crash-looping app flips its unit's active state): comparing them would
# refuse the very deploy that fixes it.
PLANNED_ON = ("python", "platform", "packages", "user", "current", "releases", "venvs", "files", "links")


def drift(planned: Facts, now: Facts) -> tuple[str, ...]:
    """The facts a plan depends on that differ now: another deploy ran between the plan and the lock."""
    changed = [name for name in PLANNED_ON if getattr(planned, name) != getattr(now, name)]
    enabled = lambda facts: {name: unit.enabled for name, unit in facts.units.items()}  # noqa: E731
    if enabled(planned) != enabled(now):
        changed.append("units")
    return tuple(changed)


def facts_command(
    layout: Layout,
    *,
    user: str,
    packages: tuple[str, ...],
    files: tuple[PurePosixPath, ...],
    links: tuple[PurePosixPath, ...],
    units: tuple[str, ...],
    process_markers: tuple[str, ...] = (),
) -> Command:
    query = {
        "app_root": str(layout.app_root),
        "user": user,
        "packages": list(packages),
        "files": [str(p) for p in files],
        "links": [str(p) for p in links],
        "units": list(units),
        "process_markers": list(process_markers),
    }
    return ("python3", "-c", FACTS_PROGRAM, json.dumps(query, separators=(",", ":")))


def parse_facts(stdout: str) -> Facts:
    data = json.loads(stdout)
    return Facts(
        python=data["python"],
        disk_free_mb=int(data["disk_free_mb"]),
        packages=dict(data["packages"]),
        user=data["user"],
        current=data["current"],
        releases=tuple(Release(**r) for r in data["releases"]),
        venvs=tuple(data["venvs"]),
        lock=data["lock"],
        files={k: LiveFile(**v) if v else None for k, v in data["files"].items()},
        links=dict(data["links"]),
        units={k: Unit(**v) for k, v in data["units"].items()},
        serving=dict(data["serving"]),
        platform=dict(data.get("platform") or {}),
    )


def facts_failure(code: int, stderr: str) -> str:
    """Why the facts program failed, for an error message: its exit code and last line on stderr.

    Never its stdout: that carries the live config files, the env file's old secrets among them.
    """
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    return f"exit {code}" + (f": {last[-200:]}" if last else "")


# Reads a release's config snapshot (what a rollback reinstalls) and the release log tail.
SNAPSHOT_PROGRAM = r"""
import grp, json, os, pwd, sys
base = sys.argv[1]
files = []
for dirpath, dirs, names in os.walk(base):
    dirs.sort()
    for name in sorted(names):
        full = os.path.join(dirpath, name)
        st = os.stat(full)
        with open(full, encoding="utf-8", errors="replace") as f:
            files.append({"path": "/" + os.path.relpath(full, base), "mode": st.st_mode & 0o7777,
                          "owner": pwd.getpwuid(st.st_uid).pw_name, "group": grp.getgrgid(st.st_gid).gr_name,
                          "content": f.read()})
print(json.dumps(files))
"""


def snapshot_command(layout: Layout, release_id: str) -> Command:
    return ("python3", "-c", SNAPSHOT_PROGRAM, str(layout.release(release_id) / ".deployer" / "config"))


def log_command(layout: Layout, lines: int = 200) -> Command:
    return ("tail", "-n", str(lines), str(layout.state_dir / "releases.log"))


def parse_log(stdout: str) -> list[dict]:
    records = []
    for line in stdout.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
