"""What the built-in checks look at, gathered in ONE round trip per host.

Like ``deployer.core.facts``: a read-only program (``deployer/hostside/probe.py``)
runs on the host (as root, or through sudo) and prints JSON. It records states,
modes, owners, status codes and headers, never a file's or a response's
contents, so no secret can reach a report.
"""

from __future__ import annotations

import json

from deployer import hostside

Command = tuple[str, ...]


def probe_command(query: dict) -> Command:
    return hostside.command("probe", json.dumps(query, separators=(",", ":")))
