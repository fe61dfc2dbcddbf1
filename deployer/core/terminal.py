"""What a remote says, made fit for a terminal: control characters are shown, never obeyed. Pure.

Log lines, hook and exec output, facts errors and health response bodies come
from hosts and from the app, neither of which deployer trusts. An ESC in them can
retitle the window, move the cursor and rewrite what was printed before (a
forged ``deployed``), or, on some terminals, answer back as typed input.
``printable`` turns every control character but newline and tab (C0, DEL, C1
with its 8-bit CSI) and the characters that reorder or hide text (bidi
controls, line and paragraph separators) into a visible ``\\x1b`` /
``\\u202e``. Human output passes through it at the edge (``deployer.console``);
``--json`` does not: ``json.dumps`` keeps the text as data, escaped.
"""

from __future__ import annotations

import re

_SHOWN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 but tab and newline, DEL, C1 (0x9b is a CSI by itself)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\u2028\u2029]"  # line and paragraph separators
)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character written out as an escape (``\\x1b``), newlines and tabs kept."""
    return _SHOWN.sub(_visible, text)
