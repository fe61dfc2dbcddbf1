"""Parse a dotenv secrets file strictly, with line numbers for every error.

Accepts ``KEY=value``, ``export KEY=value``, ``#`` comments, blank lines and
single- or double-quoted values (double quotes allow ``\\"`` and ``\\\\``).
Anything else is an error rather than a guess: a secret silently mangled is
worse than a refused deploy. Lines end at ``\n`` (``\r\n`` too), never at the
other breaks ``str.splitlines`` knows (U+2028, U+0085, ``\x1c``...): one physical
line ``TOKEN=abc<U+2028>LD_PRELOAD=...`` must not become two variables. Control
characters other than tab, and U+2028/U+2029, are refused anywhere on a line.
"""

from __future__ import annotations

import re
import unicodedata

from deployer.errors import Problem
from deployer.secret import Secret

LINE_RE = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)", re.ASCII | re.DOTALL)
BLANKS = " \t"


def bad_character(line: str) -> str | None:
    """The first character a line may not hold, as U+XXXX: controls (not tab), line/paragraph separators."""
    for ch in line:
        if ch != "\t" and unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            return f"U+{ord(ch):04X}"
    return None


def parse_dotenv(text: str, file: str) -> tuple[dict[str, Secret], list[Problem]]:
    values: dict[str, Secret] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):  # a BOM is no key
        line = line[:-1] if line.endswith("\r") else line
        bad = bad_character(line)
        if bad:
            problems.append(Problem(file, number, "", f"character {bad} is not allowed (the value is not shown)"))
            continue
        stripped = line.strip(BLANKS)
        if not stripped or stripped.startswith("#"):
            continue
        match = LINE_RE.fullmatch(stripped)
        if not match:
            problems.append(Problem(file, number, "", "expected KEY=value (the value is not shown)"))
            continue
        key, raw = match.groups()
        value = _unquote(raw)
        if value is None:
            problems.append(Problem(file, number, key, "expected a value in matching quotes on one line (the value is not shown)"))
            continue
        if key in values:
            problems.append(Problem(file, number, key, "defined twice"))
        values[key] = Secret(value)
    return values, problems


def _unquote(raw: str) -> str | None:
    if raw[:1] == "'":
        end = raw.find("'", 1)
        if end == -1:
            return None
        rest = raw[end + 1 :].strip(BLANKS)
        return raw[1:end] if not rest or rest.startswith("#") else None
    if raw[:1] == '"':
        out, i = [], 1
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw) and raw[i + 1] in '"\\$`':
                out.append(raw[i + 1])
                i += 2
                continue
            if ch == '"':
                rest = raw[i + 1 :].strip(BLANKS)
                return "".join(out) if not rest or rest.startswith("#") else None
            out.append(ch)
            i += 1
        return None
    # unquoted: a trailing " #" starts a comment
    value = re.split(r"[ \t]+#", raw, maxsplit=1)[0].rstrip(BLANKS)
    return None if any(c in value for c in "'\"") else value
