"""The fake host's interpreter: deployer's commands, recognized by shape, applied to a ``HostState``.

A command is known by its program (``systemctl``, ``ln``...) or, for ``sh -c`` scripts
and ``python3 -c`` host programs, by its text, taken from the same builders the
deploy uses (so a changed script is a changed shape, and the fake says so with
exit 127). Paths are read back from the arguments, not assumed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from deployer import hostside
from deployer.artifact.venv import VENV_SCRIPT
from deployer.core import commands as cmd
from deployer.core import journal
from deployer.core.layout import Layout
from deployer.core.release_env import logged, paths_exist, stop_on_hangup
from deployer.remote.connector import Command, CommandResult

if TYPE_CHECKING:
    from deployer.remote.fake import HostState

OK = CommandResult(0, "", "")
_L = Layout("x", PurePosixPath("/x"))
_P = PurePosixPath("/x")
SNAPSHOT_DIR = re.compile(r"^(?P<root>.*)/releases/(?P<id>[^/]+)/\.deployer/config(?P<path>/.*)?$")
RELEASE_DIR = re.compile(r"^(?P<root>.*)/releases/(?P<id>[^/.][^/]*)$")


@dataclass
class FakeFile:
    content: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"


@dataclass
class FakeRelease:
    venv: str | None = None
    bad: bool = False
    snapshot: dict[str, FakeFile] = field(default_factory=dict)  # the configs it was deployed with


def _script(command: Command) -> str:
    return command[2]


SCRIPTS: dict[str, str] = {
    _script(cmd.take_lock(_L, {})): "take_lock",
    _script(cmd.sh('mkdir -p "$1"', _P)): "ok",
    _script(cmd.prepare_dirs(_L, "u", "u", ())): "ok",
    _script(cmd.unpack_release(_L, "r", _P, "h", ())): "unpack_release",
    _script(cmd.install_files([])): "install_files",
    _script(cmd.backup_files([])): "backup_files",
    _script(cmd.restore_files([])): "restore_files",
    _script(cmd.drop_backups([])): "drop_backups",
    _script(cmd.switch_current(_L, "r")): "switch_current",
    _script(cmd.mark_bad(_L, "r", "why")): "mark_bad",
    _script(cmd.append_log(_L, {})): "append_log",
    _script(paths_exist(_P)): "paths_exist",
    _script(stop_on_hangup("u", ("true",))): "in_release",
    _script(logged(("true",), _P, "h")): "logged",
    _script(journal.read_command(journal.Source("f", file=_P), 1, None, follow=False)): "tail_file",
    _script(journal.stop_on_close(("true",))): "follow",
    VENV_SCRIPT: "venv",
}
# deployer.hostside's programs as ``hostside.command`` sends them: ``python3 -c TEXT ARG...``
PROGRAMS = {hostside.program(name): name for name in hostside.PROGRAMS}


class Programs:
    """The programs deployer runs directly (``systemctl``, ``rm``, ``ln``...), applied to the state."""

    state: HostState

    def run(self, argv: Command) -> CommandResult:
        raise NotImplementedError

    def systemctl(self, argv: Command) -> None:
        verb, units = argv[1], [a for a in argv[2:] if not a.startswith("-")]
        for unit in units:
            state = self.state.units.setdefault(unit, {"active": "inactive", "enabled": "disabled", "pid": 0})
            if verb in ("enable", "restart", "start", "reload-or-restart"):
                was_running = state["active"] == "active" and state["pid"]
                state.update(active="active", pid=state["pid"] or 4000 + len(self.state.calls))
                if verb != "enable" or not was_running:
                    self.state.running[unit] = self.state.current
                if verb == "enable":
                    state["enabled"] = "enabled"
            elif verb in ("disable", "stop"):
                state.update(active="inactive", pid=0)
                if verb == "disable":
                    state["enabled"] = "disabled"
        if verb in ("restart", "reload-or-restart"):  # a graceful reload of Apache renews mod_wsgi's daemons
            self.state.running["daemons"] = self.state.current

    def rm(self, argv: Command) -> None:
        for path in (a for a in argv[1:] if not a.startswith("-")):
            if path.endswith("/.deployer/lock"):
                self.state.lock = None
            elif path.endswith("/.deployer/BAD"):
                release = self.state.releases.get(PurePosixPath(path).parent.parent.name)
                if release:
                    release.bad = False
            elif path.endswith("/current"):
                self.state.current = None
            elif RELEASE_DIR.match(path):
                self.state.releases.pop(PurePosixPath(path).name, None)
            elif PurePosixPath(path).parent.name == "venvs":
                self.state.venvs.discard(PurePosixPath(path).name)
            else:
                self.state.files.pop(path, None)
                self.state.links.pop(path, None)

    def ln(self, argv: Command) -> None:
        target, link = argv[-2], argv[-1]
        if link.endswith("/.venv") and PurePosixPath(link).parent.name in self.state.releases:
            self.state.releases[PurePosixPath(link).parent.name].venv = PurePosixPath(target).name
        else:
            self.state.links[link] = target

    def a2en(self, argv: Command) -> None:
        kind, name = {"a2enmod": ("mods", ".load"), "a2enconf": ("conf", ".conf"), "a2ensite": ("sites", ".conf")}[argv[0]]
        arg = re.sub(f".{name[1:]}$", "", argv[-1])  # as Debian's scripts do: s/${sffx}$//, the dot unescaped
        self.state.links[f"/etc/apache2/{kind}-enabled/{arg}{name}"] = f"../{kind}-available/{arg}{name}"

    def cat(self, argv: Command) -> CommandResult:
        path = argv[-1]
        if path.endswith("/.deployer/lock/info"):
            content = self.state.lock
        else:
            content = self.state.files[path].content if path in self.state.files else None
        if content is None:
            return CommandResult(1, "", f"cat: {path}: No such file or directory")
        return CommandResult(0, content, "")

    def tail(self, argv: Command) -> CommandResult:
        if argv[-1].endswith("/.deployer/releases.log"):
            if not self.state.log:
                return CommandResult(1, "", f"tail: cannot open '{argv[-1]}' for reading: No such file or directory")
            return CommandResult(0, "".join(line + "\n" for line in self.state.log[-int(argv[2]):]), "")
        return self.sh_tail_file(list(argv))

    def journalctl(self, argv: Command) -> CommandResult:
        units = [a.split("=", 1)[1] for a in argv if a.startswith("--unit=")]
        return CommandResult(0, "".join(self.state.journal.get(u, "") for u in units), "")

    def apt(self, argv: Command) -> None:
        self.state.missing_packages -= {a for a in argv[argv.index("install") + 1:] if not a.startswith("-")}

    def useradd(self, argv: Command) -> None:
        self.state.user = {"uid": 998, "shell": "/usr/sbin/nologin", "home": argv[argv.index("--home-dir") + 1]}

    def exists(self, path: str) -> bool:
        if path.endswith("/current"):
            return self.state.current is not None
        return path in self.state.files or path in self.state.links

    def sh_tail_file(self, args: list[str]) -> CommandResult:
        path = args[-1]
        file = self.state.files.get(path)
        if file is None:
            return CommandResult(1, "+0000\n", f"tail: cannot open '{path}' for reading: No such file or directory")
        return CommandResult(0, "+0000\n" + file.content, "")


class Shell(Programs):
    """Runs one command against the state: scripts and host programs here, plain programs in ``Programs``;
    unknown commands exit 127."""

    def __init__(self, state: HostState) -> None:
        self.state = state
        self.backups: dict[str, FakeFile | None] = {}

    def run(self, argv: Command) -> CommandResult:
        handler = self.handler(argv)
        if handler is None:
            return CommandResult(127, "", f"fake host: no answer for {argv[:3]}")
        return handler(argv) or OK

    def handler(self, argv: Command) -> Callable[[Command], CommandResult | None] | None:
        if argv[:2] == ("sh", "-c") and argv[2] in SCRIPTS:
            name = SCRIPTS[argv[2]]
            return (lambda a: None) if name == "ok" else (lambda a: getattr(self, "sh_" + name)(list(a[4:])))
        if argv[:2] == ("python3", "-c") and argv[2] in PROGRAMS:
            return lambda a: getattr(self, "py_" + PROGRAMS[a[2]])(list(a[3:]))
        simple = {"systemctl": self.systemctl, "rm": self.rm, "ln": self.ln, "cat": self.cat, "tail": self.tail,
                  "journalctl": self.journalctl, "env": self.apt, "useradd": self.useradd,
                  "a2enmod": self.a2en, "a2enconf": self.a2en, "a2ensite": self.a2en,
                  "systemd-analyze": lambda a: None, "nginx": lambda a: None, "apache2ctl": lambda a: None}
        return simple.get(argv[0])

    # -- programs ------------------------------------------------------------

    def py_facts(self, args: list[str]) -> CommandResult:
        from deployer.remote.fake_facts import facts_of

        return CommandResult(0, json.dumps(facts_of(self.state, json.loads(args[0]))) + "\n", "")

    def py_snapshot(self, args: list[str]) -> CommandResult:
        match = SNAPSHOT_DIR.match(args[0])
        release = self.state.releases.get(match["id"]) if match else None
        files = [{"path": path, "mode": f.mode, "owner": f.owner, "group": f.group, "content": f.content}
                 for path, f in sorted((release.snapshot if release else {}).items())]
        return CommandResult(0, json.dumps(files) + "\n", "")

    def py_health(self, args: list[str]) -> CommandResult:
        return self.state.health

    def py_probe(self, args: list[str]) -> CommandResult:
        if self.state.probe is None:
            return CommandResult(1, "", "fake host: no probe scripted")
        return CommandResult(0, json.dumps(self.state.probe), "")

    def py_restart(self, args: list[str]) -> None:
        self.state.running["daemons"] = self.state.current

    # -- sh scripts ------------------------------------------------------------

    def sh_take_lock(self, args: list[str]) -> CommandResult | None:
        if self.state.lock is not None:
            return CommandResult(1, "", f"mkdir: cannot create directory '{args[0]}': File exists")
        self.state.lock = args[1] + "\n"
        return None

    def sh_unpack_release(self, args: list[str]) -> CommandResult | None:
        final, tarball, venv = args[:3]
        if tarball not in self.state.uploads:
            return CommandResult(2, "", f"tar: {tarball}: Cannot open: No such file or directory")
        self.state.releases[PurePosixPath(final).name] = FakeRelease(venv=venv)
        return None

    def sh_install_files(self, args: list[str]) -> CommandResult | None:
        for i in range(0, len(args), 5):
            mode, owner, group, source, target = args[i:i + 5]
            data = self.state.uploads.get(source)
            if not isinstance(data, bytes):
                return CommandResult(1, "", f"install: cannot stat '{source}': No such file or directory")
            file = FakeFile(data.decode("utf-8"), int(mode, 8), owner, group)
            match = SNAPSHOT_DIR.match(target)
            if match and match["id"] in self.state.releases:
                self.state.releases[match["id"]].snapshot[match["path"]] = file
            else:
                self.state.files[target] = file
        return None

    def sh_backup_files(self, args: list[str]) -> None:
        self.backups = {path: self.state.files.get(path) for path in args}

    def sh_restore_files(self, args: list[str]) -> None:
        for path in args:
            if path in self.backups:
                old = self.backups.pop(path)
                if old is None:
                    self.state.files.pop(path, None)
                else:
                    self.state.files[path] = old

    def sh_drop_backups(self, args: list[str]) -> None:
        for path in args:
            self.backups.pop(path, None)

    def sh_switch_current(self, args: list[str]) -> CommandResult | None:
        release = PurePosixPath(args[0]).name
        if release not in self.state.releases:
            return CommandResult(1, "", f"mv: cannot move: {args[0]} does not exist")
        self.state.current = release
        return None

    def sh_mark_bad(self, args: list[str]) -> None:
        release = self.state.releases.get(PurePosixPath(args[0]).name)
        if release is not None:
            release.bad = True

    def sh_append_log(self, args: list[str]) -> None:
        self.state.log.append(args[1])

    def sh_paths_exist(self, args: list[str]) -> CommandResult | None:
        for path in args:
            if not self.exists(path):
                return CommandResult(1, f"{path} does not exist\n", "")
        return None

    def sh_in_release(self, args: list[str]) -> CommandResult:
        """``stop_on_hangup(unit, systemd-run ... -- /usr/bin/env -- argv)``: the scripted answer to argv."""
        command = args[1:]
        start = next(i for i in range(len(command) - 1) if command[i:i + 2] == ["/usr/bin/env", "--"]) + 2
        code, output = self.state.in_release(tuple(a.replace("$$", "$") for a in command[start:]))
        return CommandResult(code, output, "")

    def sh_logged(self, args: list[str]) -> CommandResult:
        result = self.run(tuple(args[2:]))
        return CommandResult(result.code, result.stdout + result.stderr, "")  # 2>&1, as the script does

    def sh_follow(self, args: list[str]) -> CommandResult:
        return self.run(tuple(args))

    def sh_venv(self, args: list[str]) -> CommandResult | None:
        venv, tree = args[:2]
        if tree not in self.state.uploads:
            return CommandResult(1, "", f"sha256sum: {tree}: No such file or directory")
        self.state.venvs.add(PurePosixPath(venv).name)
        return None
