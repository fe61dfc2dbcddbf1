"""Parsers for what the kernel and apt tell us: text in, data out, no I/O.

Kept apart so each can be tested with a captured sample instead of a machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

DEFAULT_MIRROR = "http://deb.debian.org/debian"

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape_mount_path(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \ooo
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class Mount:
    target: str
    fstype: str
    source: str
    super_options: str


def parse_mountinfo(text: str) -> list[Mount]:
    """Lines of /proc/self/mountinfo (see proc(5))."""
    mounts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rest = right.split()
        if len(fields) < 5 or len(rest) < 2:
            continue
        mounts.append(
            Mount(
                target=_unescape_mount_path(fields[4]),
                fstype=rest[0],
                source=_unescape_mount_path(rest[1]),
                super_options=rest[2] if len(rest) > 2 else "",
            )
        )
    return mounts


def mounts_under(mounts: list[Mount], path: str) -> list[str]:
    """Mount points at or below ``path``, deepest first (the order to unmount)."""
    root = PurePosixPath(path)
    found = {
        m.target
        for m in mounts
        if PurePosixPath(m.target) == root or root in PurePosixPath(m.target).parents
    }
    return sorted(found, key=lambda p: (-len(PurePosixPath(p).parts), p))


def cgroup_hierarchies(mounts: list[Mount], base: str = "/sys/fs/cgroup") -> list[str]:
    """Mount points of every cgroup v1 and v2 hierarchy under ``base``."""
    root = PurePosixPath(base)
    out = []
    for m in mounts:
        p = PurePosixPath(m.target)
        if m.fstype in ("cgroup", "cgroup2") and (p == root or root in p.parents):
            if m.target not in out:
                out.append(m.target)
    return out


def parse_stat(text: str) -> tuple[str, int, int]:
    """(state, ppid, starttime) from /proc/PID/stat.

    comm may hold spaces and parentheses, so split after the last ')'.
    """
    after = text[text.rindex(")") + 2 :].split()
    # fields from 3 on: state ppid pgrp session tty_nr tpgid flags minflt cminflt
    # majflt cmajflt utime stime cutime cstime priority nice num_threads
    # itrealvalue starttime
    return after[0], int(after[1]), int(after[19])


def parse_pids(text: str) -> list[int]:
    """Whitespace-separated pids, as in cgroup.procs and task/*/children."""
    return [int(tok) for tok in text.split()]


def parse_pidfile(text: str) -> tuple[int, int] | None:
    """``PID STARTTIME`` as written by the lab; None if unreadable."""
    parts = text.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _deb822_stanzas(text: str):
    stanza: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, None
            continue
        if line[0] in " \t" and key:
            stanza[key] += " " + line.strip()
            continue
        k, sep, v = line.partition(":")
        if sep:
            key = k.strip().lower()
            stanza[key] = v.strip()
    if stanza:
        yield stanza


def _is_debian_main(uri: str, suites: list[str], components: list[str], suite: str) -> bool:
    return suite in suites and "main" in components and "security" not in uri


def mirror_from_sources(texts: list[tuple[str, str]], suite: str = "bookworm") -> str:
    """The Debian mirror apt already uses for ``suite`` main.

    ``texts`` are (filename, content) pairs: ``*.sources`` in deb822 form,
    anything else in one-line form. Falls back to deb.debian.org.
    """
    for name, text in texts:
        if name.endswith(".sources"):
            for st in _deb822_stanzas(text):
                if "deb" not in st.get("types", "").split():
                    continue
                if st.get("enabled", "yes").lower() == "no":
                    continue
                suites = st.get("suites", "").split()
                comps = st.get("components", "").split()
                for uri in st.get("uris", "").split():
                    if _is_debian_main(uri, suites, comps, suite):
                        return uri.rstrip("/")
        else:
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if not words or words[0] != "deb":
                    continue
                words = words[1:]
                if words and words[0].startswith("["):
                    while words and not words[0].endswith("]"):
                        words = words[1:]
                    words = words[1:]
                if len(words) >= 3 and _is_debian_main(words[0], [words[1]], words[2:], suite):
                    return words[0].rstrip("/")
    return DEFAULT_MIRROR


def parse_sysctl_int(text: str) -> int:
    return int(text.split()[0])


def known_hosts_text(entries: list[tuple[str, str]]) -> str:
    """known_hosts lines for (address, public key line) pairs.

    The key line is ``ssh-ed25519 AAAA... comment``; the comment is dropped.
    """
    lines = []
    for address, pub in entries:
        kind, blob = pub.split()[:2]
        lines.append(f"{address} {kind} {blob}\n")
    return "".join(lines)


def route_dev(text: str) -> str | None:
    """The device in ``ip -o route get ADDRESS`` output (None if there is none)."""
    words = text.split()
    for i, w in enumerate(words[:-1]):
        if w == "dev":
            return words[i + 1]
    return None


def is_ssh_banner(data: bytes) -> bool:
    return data.startswith(b"SSH-2.0-")
