"""Parse a dotenv secrets file strictly, with line numbers for every error.

Accepts ``KEY=value``, ``export KEY=value``, ``#`` comments, blank lines and
single- or double-quoted values (double quotes allow ``\\"`` and ``\\\\``).
Anything else is an error rather than a guess: a secret silently mangled is
worse than a refused deploy.
"""

from __future__ import annotations

import re

from deployer.errors import Problem
from deployer.secret import Secret

LINE_RE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")


def parse_dotenv(text: str, file: str) -> tuple[dict[str, Secret], list[Problem]]:
    values: dict[str, Secret] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
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
        rest = raw[end + 1 :].strip()
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
                rest = raw[i + 1 :].strip()
                return "".join(out) if not rest or rest.startswith("#") else None
            out.append(ch)
            i += 1
        return None
    # unquoted: a trailing " #" starts a comment
    value = re.split(r"\s+#", raw, maxsplit=1)[0].rstrip()
    return None if any(c in value for c in "'\"") else value
