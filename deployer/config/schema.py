"""Validate a parsed inventory and build the model. Pure: no file is opened here.

Every problem is collected (never stop at the first) with the YAML line and key
path. Strings that reach a config file pass an allowlist, so a value cannot
smuggle a directive (newline, ';', '{', quotes, '$', backslash) into nginx,
apache or systemd. Files the inventory names are returned as ``FileNeed`` for
the loader to check, so this module stays free of I/O.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from deployer.errors import Problem
from deployer.config.model import (
    ConfigFile,
    HOOK_STAGES,
    HOOK_TIMEOUT,
    HOST_KEY_POLICIES,
    TLS,
    App,
    Hook,
    Hooks,
    Host,
    Inventory,
    PROCESS_STOP_TIMEOUT,
    TIMER_TIMEOUT,
    Process,
    Static,
    Timer,
    WsgiTarget,
)
from deployer.config.yamldoc import YamlDoc, key_path
from deployer.core.jobs import CALENDAR_RE
from deployer.stacks import PROXIES, SERVERS, combination_problem

TOP_KEYS = ("app", "defaults", "groups", "hosts", "templates", "verify")
APP_KEYS = (
    "name", "source", "wsgi", "requirements", "health", "env",
    "secrets", "shared", "files", "static", "keep_releases", "hooks", "processes", "timers", "server_config",
)
HOOK_KEYS = ("run", "shell", "run_once", "timeout")
PROCESS_KEYS = ("run", "stop_timeout")
TIMER_KEYS = ("run", "on_calendar", "timeout")
JOB_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,20}")
# The transient units of hooks and `deployer exec` are <app>-<purpose>-<12 hex>.service.
RESERVED_JOB_PREFIXES = ("exec-", "before-switch-", "after-switch-", "after-rollback-")
HOOK_FORMS = "an argument list like [flask, db, upgrade], or {shell: 'script'} to run it with sh -c"
GROUP_KEYS = ("vars", "hosts")
HOST_ONLY_KEYS = ("address",)

APP_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,30}")
HOST_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
GROUP_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
DNS_NAME_RE = re.compile(
    r"(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?",
    re.ASCII,
)
REL_PATH_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")
ABS_PATH_RE = re.compile(r"(/[A-Za-z0-9_][A-Za-z0-9._-]*)+")
URL_PATH_RE = re.compile(r"/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?")
WSGI_RE = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)(\(\))?", re.ASCII)
SIZE_RE = re.compile(r"[0-9]{1,6}[kKmMgG]?")

# An app name becomes a system user and group, /etc/<name>/, <name>.service and
# <name>.socket, and nginx/apache site names: none may be one the system has.
# Debian's base-passwd users and groups, users and units of the packages a web
# host runs, systemd's own names, and /etc directories /etc/<name>/ would land in.
RESERVED_APP_NAMES = frozenset("""
    root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats
    nobody nogroup sshd ssh messagebus syslog adm tty disk kmem dialout fax voice cdrom floppy
    tape sudo audio dip operator src shadow utmp video sasl plugdev staff users input kvm render
    netdev crontab ssl-cert polkitd tss uuidd tcpdump dnsmasq avahi statd postfix postdrop
    postgres mysql redis memcache memcached rabbitmq mongodb bind ntp ntpsec chrony systemd
    nginx apache apache2 httpd uwsgi gunicorn lighttpd haproxy varnish certbot letsencrypt
    cron anacron atd dbus udev rsyslog networking network ifupdown resolvconf getty console-setup
    keyboard-setup apparmor auditd ufw nftables iptables fail2ban unattended-upgrades apt dpkg
    docker containerd snapd multipath lvm2 mdadm kmod procps rsync logrotate exim4 dovecot
    emergency rescue reboot halt poweroff shutdown kexec default default-ssl multi-user graphical
    basic sysinit sockets timers paths slices local-fs remote-fs init user session login
    deployer security charset alternatives pam ssl sudoers skel profile modprobe sysctl ld python3
    python bash sh hosts hostname passwd group gshadow environment fstab machine-id localtime
    opt srv var tmp home usr etc proc dev run boot lib lib64 sbin media mnt ssh-agent cloud-init
    cloud-config cloud-final
""".split())
# Families of units and users: systemd-networkd, dbus-broker, debian-exim, apt-daily,
# dpkg-db-backup, serial-getty, nginx-debug, apache-htcacheclean, postgresql@, redis-server.
RESERVED_APP_PREFIXES = ("systemd-", "dbus-", "debian-", "apt-", "dpkg-", "serial-getty", "nginx-",
                         "apache2-", "apache-", "php-", "postgresql", "mysql-", "mariadb", "redis-")

# deploy_root: the app's tree lives at <deploy_root>/<app>, managed by root. Refused:
# these trees and everything below them (system files, memory file systems, other
# users' homes: whoever can write a parent can swap the app's directory) ...
SYSTEM_TREES = tuple(PurePosixPath(p) for p in (
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/lost+found",
    "/media", "/proc", "/root", "/run", "/sbin", "/snap", "/sys", "/tmp", "/usr", "/var/tmp",
    "/var/run", "/var/lock", "/var/log", "/var/mail", "/var/spool", "/var/cache", "/var/backups",
    "/var/crash", "/var/lib/dpkg", "/var/lib/apt", "/var/lib/systemd", "/var/lib/private",
    "/dev/shm",
))
# ... and these exact directories (their children, like /var/www or /opt/apps, are fine).
SYSTEM_DIRS = tuple(PurePosixPath(p) for p in ("/", "/var", "/var/lib", "/mnt"))


class Invalid(ValueError):
    """Raised by a field converter: ``expected`` is what the field takes."""

    def __init__(self, expected: str, detail: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.detail = detail


def describe(value: Any) -> str:
    """How a found value reads in an error: got null, got 'x', got a list."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _bad_char(text: str, pattern: re.Pattern[str]) -> str:
    """Name the first character that keeps ``text`` out of an allowlist."""
    for ch in text:
        if ch in "\n\r\t\0":
            return f" ({ch!r} is not allowed)"
        if ch in ";{}'\"\\$ ":
            return f" ({ch!r} is not allowed: it could inject a directive)"
    return ""


# -- field converters: value -> clean value, or raise Invalid -------------------


def regex(pattern: re.Pattern[str], expected: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            detail = _bad_char(value, pattern) if isinstance(value, str) else ""
            raise Invalid(expected, detail)
        return value

    return convert


def integer(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Invalid(f"an integer {low}-{high}")
        return value

    return convert


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("true or false")
    return value


def choice(options: Collection[str]) -> Callable[[Any], str]:
    """One of ``options``; a registry's dict is read at each call, so a stack registered later counts."""

    def convert(value: Any) -> str:
        if value not in options:
            raise Invalid("one of " + ", ".join(options))
        return value

    return convert


def ip_literal(value: str) -> str | None:
    """The normalized IP address, or None; Invalid for an IPv6 zone id.

    ``ipaddress`` accepts ``::1%<anything but % and />`` (newlines, ';', '{'
    and quotes included): a zone id reached nginx's and Apache's configs as
    directives. deployer never needs one, so '%' is refused outright.
    """
    if "%" in value:
        raise Invalid("an IP address without a zone id", " ('%' is not allowed)")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def dns_name(value: str, *, wildcard: bool) -> str | None:
    """A hostname per RFC 1123 (labels of 1-63 letters, digits, '-', 253 in all), lowercased.

    The last label may not be all digits, so ``10.0.0.256`` is no name either.
    ``*.`` in front only where ``wildcard`` (nginx and Apache server names).
    """
    if not DNS_NAME_RE.fullmatch(value) or (value.startswith("*") and not wildcard):
        return None
    bare = value.removeprefix("*.").rstrip(".")
    if len(bare) > 253 or bare.rsplit(".", 1)[-1].isdigit():
        return None
    return value.lower()


def address(value: Any) -> str:
    if isinstance(value, str):
        normalized = ip_literal(value) or dns_name(value, wildcard=False)
        if normalized:
            return normalized
    detail = _bad_char(value, DNS_NAME_RE) if isinstance(value, str) else ""
    raise Invalid("an IP address or a DNS name", detail)


def server_names(value: Any) -> tuple[str, ...]:
    expected = "a hostname or a list of hostnames"
    items = value if isinstance(value, list) else [value]
    if not items:
        raise Invalid(expected)
    names = []
    for item in items:
        if not isinstance(item, str):
            raise Invalid(expected)
        normalized = ip_literal(item) or dns_name(item, wildcard=True)
        if not normalized:
            raise Invalid(expected, _bad_char(item, DNS_NAME_RE))
        names.append(normalized)
    return tuple(names)


def app_name(value: Any) -> str:
    """A name no system user, group, unit or /etc directory has (see RESERVED_APP_NAMES)."""
    name = regex(APP_NAME_RE, "a name matching ^[a-z][a-z0-9-]{0,30}$")(value)
    if name in RESERVED_APP_NAMES or name.startswith(RESERVED_APP_PREFIXES):
        raise Invalid("a name of the app's own",
                      " (a system user, unit or directory has it: the app would run as,"
                      " or overwrite, what the system has under that name)")
    return name


def tls_file(resolve: Callable[[str], Path], dirs: tuple[Path, ...]) -> Callable[[Any], Path]:
    """A tls file, resolved (links followed) into one of ``dirs``: render prints it, a deploy uploads it."""
    def convert(value: Any) -> Path:
        resolved = resolve(value)
        if not any(resolved.is_relative_to(d) for d in dirs):
            raise Invalid("a file in the inventory's directory (or in $DEPLOYER_TLS_DIRS)",
                          " (deployer uploads it and render prints the certificate)")
        return resolved

    return convert


def control_character(text: str, allowed: str = "\t") -> str | None:
    """The first control character, line or paragraph separator in ``text`` not in ``allowed``."""
    for ch in text:
        if ch not in allowed and unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            return f"U+{ord(ch):04X}"
    return None


def local_path(value: Any) -> str:
    """A file on the controller: any printable path, resolved by the loader."""
    if not isinstance(value, str) or not value or control_character(value, ""):
        raise Invalid("a file path")
    return value


def abs_path(value: Any) -> PurePosixPath:
    if (
        not isinstance(value, str)
        or not ABS_PATH_RE.fullmatch(value.rstrip("/") or "/")
        or ".." in value.split("/")
    ):
        detail = _bad_char(value, ABS_PATH_RE) if isinstance(value, str) else ""
        raise Invalid("an absolute path like /srv (letters, digits, '.', '_', '-')", detail)
    return PurePosixPath(value)


def deploy_root(value: Any) -> PurePosixPath:
    """A directory of deployer's own: not /, not a system tree, not a home (SYSTEM_TREES)."""
    path = PurePosixPath("/") if isinstance(value, str) and value and not value.strip("/") else abs_path(value)
    if path in SYSTEM_DIRS:
        raise Invalid("a dedicated directory like /srv or /opt/apps", f" ({path} is shared by the whole system)")
    for tree in SYSTEM_TREES:
        if path == tree or path.is_relative_to(tree):
            raise Invalid("a dedicated directory like /srv or /opt/apps",
                          f" ({tree} is the system's or a user's: root would manage the app's files there)")
    return path


def rel_path(value: Any) -> str:
    expected = "a relative path inside the app (letters, digits, '.', '_', '-', no '..')"
    if isinstance(value, str) and (".." in value.split("/") or value.startswith("/")):
        raise Invalid(expected, " (it leaves the app)")
    if not isinstance(value, str) or not REL_PATH_RE.fullmatch(value.rstrip("/")):
        raise Invalid(expected, _bad_char(value, REL_PATH_RE) if isinstance(value, str) else "")
    return value.rstrip("/")


DOTTED_PATH_RE = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9._-]*(/[A-Za-z0-9_.][A-Za-z0-9._-]*)*")


def app_path(value: Any) -> str:
    """``shared`` and ``files`` paths: like ``rel_path``, and a part may start with '.' (``static/.webassets-cache``)."""
    expected = "a relative path inside the app (letters, digits, '.', '_', '-', no '..')"
    if isinstance(value, str) and any(part in ("", ".", "..") for part in value.rstrip("/").split("/")):
        if ".." in value.split("/") or value.startswith("/"):
            raise Invalid(expected, " (it leaves the app)")
        raise Invalid(expected, " (no empty or '.' parts)")
    if not isinstance(value, str) or not DOTTED_PATH_RE.fullmatch(value.rstrip("/")):
        raise Invalid(expected, _bad_char(value, DOTTED_PATH_RE) if isinstance(value, str) else "")
    return value.rstrip("/")


def inside(path: str, parent: str) -> bool:
    """``path`` is ``parent`` or lies under it (both app-relative, normalised)."""
    return path == parent or path.startswith(parent + "/")


def reserved(path: str) -> bool:
    return any(inside(path, name) for name in (".venv", ".deployer"))


def config_file_conflict(target: str, shared: tuple[str, ...], static: Static | None, seen: list[str]) -> str | None:
    """Why ``app.files`` cannot put a file at ``target``, or None."""
    if reserved(target):
        return "is reserved by deployer"
    if any(inside(s, target) for s in shared):
        return "is a shared path (or holds one): a config file must be a file"
    if static is not None and inside(target, static.dir):
        return f"is inside the static folder '{static.dir}': the proxy would serve it to anyone"
    clash = next((s for s in seen if inside(target, s) or inside(s, target)), None)
    return f"overlaps '{clash}'" if clash else None


def url_path(value: Any) -> str:
    if not isinstance(value, str) or not URL_PATH_RE.fullmatch(value.rstrip("/") or "/"):
        detail = _bad_char(value, URL_PATH_RE) if isinstance(value, str) else ""
        raise Invalid("a URL path like /healthz", detail)
    return value


def size(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not SIZE_RE.fullmatch(value):
        raise Invalid("a size like 10m (digits, then k, m or g)")
    return value.lower()


def env_value(value: Any) -> str:
    """Env values are quoted by the renderer; line breaks and control characters cannot be kept.

    Numbers and bools arrive as the text the file has (``YamlDoc.text``): the
    value is exactly what the file says (yamldoc refused what YAML 1.1 changes).
    """
    if not isinstance(value, str):
        raise Invalid("a single-line string")
    if any(c in value for c in "\n\r"):
        raise Invalid("a single-line string", " (line breaks are not allowed)")
    bad = control_character(value)
    if bad:
        raise Invalid("a single-line string", f" ({bad} is not allowed: no control characters but tab)")
    return value


def argument(value: Any) -> str:
    """One argv item, as the file has it: passed as is (never through a shell)."""
    if not isinstance(value, str):
        raise Invalid("a string argument")
    bad = control_character(value, "\t\n")
    if bad:
        raise Invalid("a string argument", f" ({bad} is not allowed)")
    return value


def shell_script(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a non-empty script for sh -c")
    bad = control_character(value, "\t\n")
    if bad:
        raise Invalid("a non-empty script for sh -c", f" ({bad} is not allowed)")
    return value


HOST_NAME = regex(HOST_NAME_RE, "a host name (lowercase letters, digits, '.', '_', '-')")


def job_name(value: Any) -> str:
    """A process or timer name: part of the unit name ``<app>-<name>.service``."""
    name = regex(JOB_NAME_RE, "a name matching ^[a-z][a-z0-9-]{0,20}$")(value)
    if name.startswith(RESERVED_JOB_PREFIXES):
        raise Invalid("a name of the process's own", " (deployer's hook and exec units start so)")
    return name


def calendar_spec(value: Any) -> str:
    """An OnCalendar= value in systemd.time(7) syntax; `systemd-analyze calendar` checks it on the host too."""
    if not isinstance(value, str):
        raise Invalid("a calendar event like daily or '*-*-* 03:00:00'")
    if not CALENDAR_RE.fullmatch(value):
        raise Invalid("a calendar event like daily or '*-*-* 03:00:00'",
                      " (letters, digits, * , . : / ~ - + and single spaces)")
    return value


HOST_FIELDS: dict[str, Callable[[Any], Any]] = {
    "address": address,
    "ssh_user": regex(USER_RE, "a user name like 'deploy'"),
    "ssh_port": integer(1, 65535),
    "ssh_key": local_path,
    "become": boolean,
    "known_hosts": local_path,
    "host_key_policy": choice(HOST_KEY_POLICIES),
    "server": choice(SERVERS),  # names from the stack registry
    "proxy": choice(PROXIES),
    "server_name": server_names,
    "http_port": integer(1, 65535),
    "https_port": integer(1, 65535),
    "tls": lambda v: v,  # a mapping, checked field by field in _tls
    "workers": integer(1, 256),
    "threads": integer(1, 256),
    "timeout": integer(1, 3600),
    "deploy_root": deploy_root,
    "client_max_body_size": size,
    "trust_proxy_headers": boolean,
}


@dataclass(frozen=True)
class FileNeed:
    """A controller file the inventory names; the loader checks it exists."""

    key: tuple[str | int, ...]
    path: Path
    kind: str  # "dir" or "file"


@dataclass
class Result:
    inventory: Inventory | None
    problems: list[Problem]
    needs: list[FileNeed]


class _Validator:
    def __init__(self, doc: YamlDoc, file: str, base_dir: Path, tls_dirs: tuple[Path, ...] = ()) -> None:
        self.doc = doc
        self.file = file
        self.base_dir = base_dir
        self.tls_dirs = (base_dir.resolve(), *(d.resolve() for d in tls_dirs))
        self.problems: list[Problem] = []
        self.needs: list[FileNeed] = []

    # -- reporting ---------------------------------------------------------

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(Problem(self.file, self.doc.line(path), key_path(path), message))

    def field(self, path: tuple[str | int, ...], value: Any, convert: Callable[[Any], Any]) -> Any:
        try:
            return convert(value)
        except Invalid as exc:
            self.problem(path, f"expected {exc.expected}, got {describe(value)}{exc.detail}")
            return None

    def mapping(
        self, path: tuple[str | int, ...], value: Any, allowed: tuple[str, ...], what: str
    ) -> dict[str, Any]:
        """Check ``value`` is a mapping and name unknown keys with a did-you-mean."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping of {what}, got {describe(value)}")
            return {}
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(allowed)})"
                self.problem(path + (key,), f"unknown key{hint}")
        return {k: v for k, v in value.items() if k in allowed}

    def local(self, raw: str) -> Path:
        return (self.base_dir / os.path.expanduser(raw)).resolve()

    # -- sections ----------------------------------------------------------

    def host_settings(self, path: tuple[str | int, ...], value: Any, *, on_host: bool) -> dict[str, Any]:
        raw = self.mapping(path, value, tuple(HOST_FIELDS), "host settings")
        settings: dict[str, Any] = {}
        for key, item in raw.items():
            if key in HOST_ONLY_KEYS and not on_host:
                self.problem(path + (key,), f"'{key}' belongs on a host, not in shared settings")
                continue
            if key == "tls":
                converted = self.tls(path + (key,), item)
            else:
                converted = self.field(path + (key,), item, HOST_FIELDS[key])
            if converted is not None and key in ("ssh_key", "known_hosts"):
                converted = self.local(converted)
            if converted is not None:
                settings[key] = converted
        return settings

    def tls(self, path: tuple[str | int, ...], value: Any) -> TLS | None:
        raw = self.mapping(path, value, ("cert", "key"), "tls files")
        if not isinstance(value, dict):
            return None
        files = {}
        for key in ("cert", "key"):
            if key not in raw:
                self.problem(path, f"missing required key '{key}'")
                continue
            text = self.field(path + (key,), raw[key], local_path)
            resolved = self.field(path + (key,), text, tls_file(self.local, self.tls_dirs)) if text else None
            if resolved is not None:
                files[key] = resolved
                self.needs.append(FileNeed(path + (key,), files[key], "file"))
        return TLS(files["cert"], files["key"]) if len(files) == 2 else None

    def app(self, value: Any) -> App | None:
        path: tuple[str | int, ...] = ("app",)
        if value is None:
            self.problem(path, "missing required section 'app'")
            return None
        raw = self.mapping(path, value, APP_KEYS, "app settings")
        if not isinstance(value, dict):
            return None
        for key in ("name", "source", "wsgi"):
            if key not in raw:
                self.problem(path, f"missing required key '{key}'")
        name = self.field(path + ("name",), raw["name"], app_name) if "name" in raw else None
        source = None
        if "source" in raw and self.field(path + ("source",), raw["source"], local_path):
            source = self.local(raw["source"])
            self.needs.append(FileNeed(path + ("source",), source, "dir"))
        wsgi = None
        if "wsgi" in raw:
            text = self.field(path + ("wsgi",), raw["wsgi"], regex(WSGI_RE, "'module:attr' or 'module:factory()'"))
            if text:
                module, attr, call = WSGI_RE.fullmatch(text).groups()
                wsgi = WsgiTarget(module, attr, bool(call))
        # unset: detected at build time (uv.lock, requirements.txt, pyproject.toml; see artifact.dependencies)
        requirements = None
        if raw.get("requirements") is not None:
            requirements = self.field(path + ("requirements",), raw["requirements"], rel_path)
        if source and requirements:
            self.needs.append(FileNeed(path + ("requirements",), source / requirements, "file"))
        health = self.field(path + ("health",), raw.get("health", "/healthz"), url_path)
        env = self.env(path + ("env",), raw.get("env"))
        secrets_file = None
        if raw.get("secrets") is not None and self.field(path + ("secrets",), raw["secrets"], local_path):
            secrets_file = self.local(raw["secrets"])
            self.needs.append(FileNeed(path + ("secrets",), secrets_file, "file"))
        shared = self.shared(path + ("shared",), raw.get("shared", []))
        static = self.static(path + ("static",), raw.get("static"), source)
        files = self.config_files(path + ("files",), raw.get("files"), shared, static)
        keep = self.field(path + ("keep_releases",), raw.get("keep_releases", 5), integer(2, 100))
        hooks = self.hooks(path + ("hooks",), raw.get("hooks"))
        processes = self.processes(path + ("processes",), raw.get("processes"))
        timers = self.timers(path + ("timers",), raw.get("timers"), {p.name for p in processes})
        server_config = self.server_config(path + ("server_config",), raw.get("server_config"), source)
        if None in (name, source, wsgi, health, keep) or raw.get("requirements") is not None and requirements is None:
            return None
        return App(
            name=name, source=source, wsgi=wsgi, requirements=requirements, health=health,
            env=env, secrets_file=secrets_file, shared=shared, files=files, static=static, keep_releases=keep,
            hooks=hooks, processes=processes, timers=timers, server_config=server_config,
        )

    def server_config(self, path: tuple[str | int, ...], value: Any, source: Path | None) -> str | None:
        """``app.server_config``: the app's own server config, in a format one of the servers reads."""
        if value is None:
            return None
        rel = self.field(path, value, rel_path)
        if rel is None:
            return None
        suffixes = sorted({s.config_suffix for s in SERVERS.values() if s.config_suffix})
        if not rel.endswith(tuple(suffixes)):
            self.problem(path, f"expected a {' or '.join(suffixes)} file (only gunicorn reads an app's own config: "
                               f"a gunicorn.conf.py), got {rel!r}")
            return None
        if source:
            self.needs.append(FileNeed(path, source / rel, "file"))
        return rel

    def hooks(self, path: tuple[str | int, ...], value: Any) -> Hooks:
        raw = self.mapping(path, value, HOOK_STAGES, "hook stages")
        stages: dict[str, tuple[Hook, ...]] = {}
        for stage, items in raw.items():
            if not isinstance(items, list):
                self.problem(path + (stage,), f"expected a list of hooks, got {describe(items)}")
                continue
            hooks = [self.hook(path + (stage, index), item, stage) for index, item in enumerate(items)]
            stages[stage] = tuple(h for h in hooks if h is not None)
        return Hooks(**stages)

    def hook(self, path: tuple[str | int, ...], value: Any, stage: str) -> Hook | None:
        """``[argv...]`` or ``{run: [argv...] | shell: script, run_once: bool, timeout: seconds}``."""
        if isinstance(value, list):
            argv = self.argv(path, value)
            return Hook(argv) if argv else None
        if not isinstance(value, dict):
            hint = " (a string runs through a shell only when written as shell: ...)" if isinstance(value, str) else ""
            self.problem(path, f"expected {HOOK_FORMS}, got {describe(value)}{hint}")
            return None
        raw = self.mapping(path, value, HOOK_KEYS, "hook settings")
        if ("run" in raw) == ("shell" in raw):
            self.problem(path, "expected exactly one of 'run' (an argument list) or 'shell' (a script for sh -c)")
            return None
        if "run" in raw:
            argv = self.argv(path + ("run",), raw["run"])
        else:
            script = self.field(path + ("shell",), raw["shell"], shell_script)
            argv = ("/bin/sh", "-c", script) if script is not None else None
        run_once = self.field(path + ("run_once",), raw.get("run_once", False), boolean)
        if run_once and stage != "before_switch":
            self.problem(path + ("run_once",), "run_once is only for before_switch hooks (they run on one host before any host switches)")
            run_once = None
        timeout = self.field(path + ("timeout",), raw.get("timeout", HOOK_TIMEOUT), integer(1, 86400))
        if argv is None or run_once is None or timeout is None:
            return None
        return Hook(argv, shell="shell" in raw, run_once=run_once, timeout=timeout)

    def named(self, path: tuple[str | int, ...], value: Any, what: str,
              convert: Callable[[Any], Any]) -> list[tuple[str, Any]]:
        """(name, value) of a mapping keyed by names (hosts, processes, timers) whose name ``convert`` accepts."""
        if value is None:
            return []
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping of {what}, got {describe(value)}")
            return []
        return [(key, item) for key, item in value.items() if self.field(path + (key,), key, convert) is not None]

    def processes(self, path: tuple[str | int, ...], value: Any) -> tuple[Process, ...]:
        """``name: [argv...]`` or ``name: {run: [argv...], stop_timeout: seconds}``."""
        out = []
        for name, item in self.named(path, value, "processes by name", job_name):
            if isinstance(item, dict):
                raw = self.mapping(path + (name,), item, PROCESS_KEYS, "process settings")
                if "run" not in raw:
                    self.problem(path + (name,), "missing required key 'run' (an argument list)")
                    continue
                argv = self.job_argv(path + (name, "run"), raw["run"])
            else:
                raw, argv = {}, self.job_argv(path + (name,), item)
            stop = self.field(path + (name, "stop_timeout"), raw.get("stop_timeout", PROCESS_STOP_TIMEOUT), integer(1, 3600))
            if argv is not None and stop is not None:
                out.append(Process(name, argv, stop))
        return tuple(out)

    def timers(self, path: tuple[str | int, ...], value: Any, taken: set[str]) -> tuple[Timer, ...]:
        """``name: {run: [argv...], on_calendar: daily, timeout: seconds}``."""
        out = []
        for name, item in self.named(path, value, "timers by name", job_name):
            if name in taken:
                self.problem(path + (name,), f"'{name}' is also a process: both would be {name}.service")
                continue
            if not isinstance(item, dict):
                self.problem(path + (name,), f"expected {{run: [argv...], on_calendar: ...}}, got {describe(item)}")
                continue
            raw = self.mapping(path + (name,), item, TIMER_KEYS, "timer settings")
            missing = [k for k in ("run", "on_calendar") if k not in raw]
            if missing:
                self.problem(path + (name,), f"missing required key '{missing[0]}'")
                continue
            argv = self.job_argv(path + (name, "run"), raw["run"])
            spec = self.field(path + (name, "on_calendar"), self.doc.text(path + (name, "on_calendar"), raw["on_calendar"]), calendar_spec)
            timeout = self.field(path + (name, "timeout"), raw.get("timeout", TIMER_TIMEOUT), integer(1, 86400))
            if argv is not None and spec is not None and timeout is not None:
                out.append(Timer(name, argv, spec, timeout))
        return tuple(out)

    def job_argv(self, path: tuple[str | int, ...], value: Any) -> tuple[str, ...] | None:
        """As a hook's argv; a lone ';' is refused (systemd reads it as a command separator)."""
        argv = self.argv(path, value)
        if argv and ";" in argv:
            self.problem(path + (argv.index(";"),), "expected an argument other than ';' (systemd separates commands with it)")
            return None
        return argv

    def argv(self, path: tuple[str | int, ...], value: Any) -> tuple[str, ...] | None:
        if not isinstance(value, list) or not value:
            self.problem(path, f"expected a non-empty argument list like [flask, db, upgrade], got {describe(value)}")
            return None
        items = [self.field(path + (index,), self.doc.text(path + (index,), item), argument)
                 for index, item in enumerate(value)]
        return None if None in items else tuple(items)

    def env(self, path: tuple[str | int, ...], value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping of NAME: value, got {describe(value)}")
            return {}
        env = {}
        for key, item in value.items():
            if self.field(path + (key,), key, regex(ENV_NAME_RE, "an environment name like APP_MODE")) is None:
                continue
            converted = self.field(path + (key,), self.doc.text(path + (key,), item), env_value)
            if converted is not None:
                env[key] = converted
        return env

    def shared(self, path: tuple[str | int, ...], value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.problem(path, f"expected a list of app-relative paths, got {describe(value)}")
            return ()
        seen: list[str] = []
        for index, item in enumerate(value):
            converted = self.field(path + (index,), item, app_path)
            if converted is None:
                continue
            if converted in seen:
                self.problem(path + (index,), f"'{converted}' is listed twice")
            elif reserved(converted):
                self.problem(path + (index,), f"'{converted}' is reserved by deployer")
            elif any(inside(converted, other) or inside(other, converted) for other in seen):
                # deployer links each shared path into the release; one inside another would have
                # root make a link through a directory the app owns
                other = next(o for o in seen if inside(converted, o) or inside(o, converted))
                self.problem(path + (index,), f"'{converted}' overlaps '{other}': list the outer one only")
            else:
                seen.append(converted)
        return tuple(seen)

    def config_files(self, path: tuple[str | int, ...], value: Any, shared: tuple[str, ...],
                     static: Static | None) -> tuple[ConfigFile, ...]:
        """``files: {instance/config.py: templates/config.py.j2}``: where the app reads it, its template."""
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping of app-relative path: template file, got {describe(value)}")
            return ()
        found: list[ConfigFile] = []
        for key, template in value.items():
            target = self.field(path + (key,), key, app_path)
            source = self.field(path + (key,), template, local_path)
            if target is None or source is None:
                continue
            why = config_file_conflict(target, shared, static, [f.path for f in found])
            if why:
                self.problem(path + (key,), f"'{target}' {why}")
                continue
            found.append(ConfigFile(target, self.local(source)))
            self.needs.append(FileNeed(path + (key,), found[-1].template, "file"))
        return tuple(found)

    def static(self, path: tuple[str | int, ...], value: Any, source: Path | None) -> Static | None:
        if value is None:
            return None
        raw = self.mapping(path, value, ("url", "dir"), "static settings")
        if not isinstance(value, dict):
            return None
        for key in ("url", "dir"):
            if key not in raw:
                self.problem(path, f"missing required key '{key}'")
        url = self.field(path + ("url",), raw["url"], url_path) if "url" in raw else None
        if url is not None and url.rstrip("/") == "":
            self.problem(path + ("url",), "expected a URL prefix like /static, got '/' (it would hide the app)")
            url = None
        directory = self.field(path + ("dir",), raw["dir"], rel_path) if "dir" in raw else None
        if directory and source:
            self.needs.append(FileNeed(path + ("dir",), source / directory, "dir"))
        if url is None or directory is None:
            return None
        return Static(url.rstrip("/"), directory)


def validate(doc: YamlDoc, file: str, path: Path, tls_dirs: tuple[Path, ...] = ()) -> Result:
    """Check a parsed inventory at ``path``; ``file`` is how messages name it.

    ``tls_dirs``: controller directories besides the inventory's own that
    ``tls.cert`` and ``tls.key`` may name (the controller's choice, never the inventory's).
    """
    v = _Validator(doc, file, path.parent, tls_dirs)
    for path, line in doc.duplicates:
        v.problems.append(Problem(file, line, key_path(path), "duplicate key (the earlier value would be ignored)"))
    data = doc.data
    if not isinstance(data, dict):
        v.problem((), f"expected a mapping with an 'app' section, got {describe(data)}")
        return Result(None, v.problems, v.needs)
    top = v.mapping((), data, TOP_KEYS, "sections")
    app = v.app(top.get("app"))
    defaults = v.host_settings(("defaults",), top.get("defaults"), on_host=False)

    entries, groups = _host_entries(v, top)
    hosts = _resolve_hosts(v, defaults, entries, groups)
    host_problems = any(p.path.startswith(("groups", "hosts")) for p in v.problems)
    if not hosts and not entries and isinstance(data.get("app"), dict) and not host_problems:
        v.problem((), "no hosts: list them under groups/<group>/hosts or hosts")

    templates_dir = None
    if top.get("templates") is not None and v.field(("templates",), top["templates"], local_path):
        templates_dir = v.local(top["templates"])
        v.needs.append(FileNeed(("templates",), templates_dir, "dir"))
    verify_tests = None
    verify = v.mapping(("verify",), top.get("verify"), ("tests",), "verify settings")
    if verify.get("tests") is not None and v.field(("verify", "tests"), verify["tests"], local_path):
        verify_tests = v.local(verify["tests"])
        v.needs.append(FileNeed(("verify", "tests"), verify_tests, "dir"))

    if v.problems or app is None:
        return Result(None, v.problems, v.needs)
    inventory = Inventory(
        path=path, app=app, hosts=tuple(hosts),
        groups={name: group.members for name, group in groups.items()},
        templates_dir=templates_dir, verify_tests=verify_tests,
    )
    return Result(inventory, v.problems, v.needs)


@dataclass
class _Entry:
    name: str
    path: tuple[str | int, ...]
    settings: dict[str, Any]
    names_address: bool  # the entry has an address key, valid or not


@dataclass
class _Group:
    members: tuple[str, ...]
    settings: dict[str, Any]


def _host_entries(v: _Validator, top: dict[str, Any]) -> tuple[list[_Entry], dict[str, _Group]]:
    """Every place a host is listed (a host may sit in several groups)."""
    entries: list[_Entry] = []
    groups: dict[str, _Group] = {}

    def host_block(path: tuple[str | int, ...], value: Any) -> list[str]:
        names = []
        for name, settings in v.named(path, value, "host name to settings", HOST_NAME):
            has_address = isinstance(settings, dict) and "address" in settings
            entries.append(_Entry(name, path + (name,), v.host_settings(path + (name,), settings, on_host=True), has_address))
            names.append(name)
        return names

    raw_groups = top.get("groups")
    if raw_groups is not None and not isinstance(raw_groups, dict):
        v.problem(("groups",), f"expected a mapping of group name to group, got {describe(raw_groups)}")
        raw_groups = {}
    for group, body in (raw_groups or {}).items():
        path = ("groups", group)
        if v.field(path, group, regex(GROUP_NAME_RE, "a group name (letters, digits, '_', '-')")) is None:
            continue
        raw = v.mapping(path, body, GROUP_KEYS, "group settings ('vars', 'hosts')")
        settings = v.host_settings(path + ("vars",), raw.get("vars"), on_host=False)
        members = tuple(dict.fromkeys(host_block(path + ("hosts",), raw.get("hosts"))))
        groups[group] = _Group(members, settings)
    host_block(("hosts",), top.get("hosts"))
    return entries, groups


def _resolve_hosts(
    v: _Validator,
    defaults: dict[str, Any],
    entries: list[_Entry],
    groups: dict[str, _Group],
) -> list[Host]:
    """Effective settings: defaults, then each group's vars in file order, then the host's own."""
    by_name: dict[str, list[_Entry]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    for name in sorted(set(by_name) & set(groups)):
        v.problem(by_name[name][0].path, f"'{name}' names both a host and a group (--limit would be ambiguous)")

    hosts: list[Host] = []
    seen_addresses: dict[tuple[str, int], str] = {}
    for name, listed in by_name.items():
        settings = dict(defaults)
        member_of = tuple(g for g, group in groups.items() if name in group.members)
        for group in member_of:
            settings.update(groups[group].settings)
        own: dict[str, Any] = {}
        for entry in listed:
            for key, value in entry.settings.items():
                if key in own and own[key] != value:
                    v.problem(entry.path + (key,), f"conflicts with the value given where '{name}' is listed before")
                own[key] = value
        settings.update(own)
        where = listed[0].path
        if "address" not in settings:
            if not any(entry.names_address for entry in listed):
                v.problem(where, "missing required key 'address'")
            continue
        host = _build_host(name, member_of, settings)
        combination = combination_problem(host.server, host.proxy)
        if combination:
            v.problem(where, combination)
        if host.tls and host.http_port == host.https_port:
            v.problem(where, f"http_port and https_port are both {host.http_port}: with tls they must differ")
        key = (host.address, host.ssh_port)
        if key in seen_addresses:
            v.problem(where, f"address {host.address} is also used by host '{seen_addresses[key]}'")
        else:
            seen_addresses[key] = name
        hosts.append(host)
    return hosts


def _build_host(name: str, groups: tuple[str, ...], s: dict[str, Any]) -> Host:
    ssh_user = s.get("ssh_user", "root")
    kwargs: dict[str, Any] = {
        k: s[k]
        for k in (
            "ssh_port", "host_key_policy", "server", "proxy", "http_port", "https_port",
            "tls", "workers", "threads", "timeout", "deploy_root", "client_max_body_size",
            "trust_proxy_headers",
        )
        if k in s
    }
    return Host(
        name=name,
        address=s["address"],
        groups=groups,
        ssh_user=ssh_user,
        ssh_key=s.get("ssh_key"),
        known_hosts=s.get("known_hosts"),
        become=s.get("become", ssh_user != "root"),
        server_names=s.get("server_name", (s["address"],)),
        **kwargs,
    )
