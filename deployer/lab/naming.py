"""Names and addresses of lab hosts: pure, so the rules live in one place.

Host i is ``lab<i>`` on its own /30: the controller end of its veth is
198.18.i.1 and the host is 198.18.i.2. A /30 per host means a host can reach
the controller and nothing else, with no firewall rule to keep in sync.
"""

from __future__ import annotations

import re

PREFIX = "lab"
MAX_HOSTS = 255  # one /30 per third octet of 198.18.0.0/16
PREFIX_LEN = 30
VETH_PREFIX = "ve-"  # what systemd-nspawn --network-veth calls the controller end
CONTAINER_IFACE = "host0"  # and the container end

_NAME = re.compile(rf"^{PREFIX}([1-9][0-9]{{0,2}})$")


def check_count(n: int) -> int:
    if not 1 <= n <= MAX_HOSTS:
        raise ValueError(f"--hosts: expected 1-{MAX_HOSTS}, got {n}")
    return n


def host_name(index: int) -> str:
    if not 1 <= index <= MAX_HOSTS:
        raise ValueError(f"host index out of range 1-{MAX_HOSTS}: {index}")
    return f"{PREFIX}{index}"


def host_index(name: str) -> int:
    """Index of a lab host name; ValueError for anything else (e.g. 'lab01')."""
    m = _NAME.match(name)
    if not m or int(m.group(1)) > MAX_HOSTS:
        raise ValueError(f"not a lab host name: {name!r} (expected {PREFIX}1-{PREFIX}{MAX_HOSTS})")
    return int(m.group(1))


def is_host_name(name: str) -> bool:
    try:
        host_index(name)
    except ValueError:
        return False
    return True


def host_address(index: int) -> str:
    host_name(index)  # range check
    return f"198.18.{index}.2"


def gateway_address(index: int) -> str:
    """The controller's end of host ``index``'s veth."""
    host_name(index)
    return f"198.18.{index}.1"


def veth_name(name: str) -> str:
    return VETH_PREFIX + name


def names_for(n: int) -> list[str]:
    return [host_name(i) for i in range(1, check_count(n) + 1)]


def sort_names(names) -> list[str]:
    """Lab names in index order (lab2 before lab10)."""
    return sorted(names, key=host_index)
