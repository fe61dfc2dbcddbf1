"""``--limit``: pick hosts by name, group, glob, comma list and ``!`` exclusion."""

from __future__ import annotations

from fnmatch import fnmatchcase

from deployer.errors import UsageError
from deployer.config.model import Host, Inventory


def select_hosts(inventory: Inventory, limit: str | None) -> tuple[Host, ...]:
    """Hosts matching ``limit`` (``web,db1``, ``web*``, ``all,!web2``), in inventory order.

    A term that matches nothing is an error: a typo must not deploy to nobody
    (or, with exclusions, to everybody) in silence.
    """
    if not limit or limit.strip() in ("all", "*"):
        return inventory.hosts
    included: set[str] = set()
    excluded: set[str] = set()
    any_include = False
    for term in (t.strip() for t in limit.split(",")):
        if not term:
            continue
        negate = term.startswith("!")
        pattern = term[1:] if negate else term
        names = _matching(inventory, pattern)
        if not names:
            raise UsageError(f"--limit {term!r} matches no host or group (hosts: {', '.join(h.name for h in inventory.hosts)}; groups: {', '.join(inventory.groups) or 'none'})")
        if negate:
            excluded |= names
        else:
            any_include = True
            included |= names
    selected = tuple(
        h for h in inventory.hosts if (h.name in included or not any_include) and h.name not in excluded
    )
    if not selected:
        raise UsageError(f"--limit {limit!r} leaves no host selected")
    return selected


def _matching(inventory: Inventory, pattern: str) -> set[str]:
    if pattern in ("all", "*"):
        return {h.name for h in inventory.hosts}
    names = {h.name for h in inventory.hosts if fnmatchcase(h.name, pattern)}
    for group, members in inventory.groups.items():
        if fnmatchcase(group, pattern):
            names |= set(members)
    return names
