from __future__ import annotations

import pytest

from deployer.errors import UsageError
from deployer.config.model import App, Host, Inventory, WsgiTarget
from deployer.config.selection import select_hosts
from pathlib import Path


@pytest.fixture
def inventory() -> Inventory:
    hosts = tuple(Host(name=n, address=f"203.0.113.{i}") for i, n in enumerate(["web1", "web2", "db1", "lb1"], 1))
    return Inventory(
        path=Path("/inv.yml"),
        app=App(name="hello", source=Path("/app"), wsgi=WsgiTarget("app", "app")),
        hosts=hosts,
        groups={"web": ("web1", "web2"), "data": ("db1",)},
    )


@pytest.mark.parametrize(
    ("limit", "names"),
    [
        (None, ["web1", "web2", "db1", "lb1"]),
        ("web", ["web1", "web2"]),
        ("web1", ["web1"]),
        ("db1,web2", ["web2", "db1"]),
        ("web*", ["web1", "web2"]),
        ("all,!web", ["db1", "lb1"]),
        ("!data", ["web1", "web2", "lb1"]),
        ("d*", ["db1"]),  # group 'data' and host 'db1' both match
    ],
)
def test_limit(inventory: Inventory, limit: str | None, names: list[str]) -> None:
    assert [h.name for h in select_hosts(inventory, limit)] == names


def test_unknown_term_is_an_error_not_an_empty_or_full_fleet(inventory: Inventory) -> None:
    with pytest.raises(UsageError, match="'wbe1' matches no host or group"):
        select_hosts(inventory, "wbe1")
    with pytest.raises(UsageError, match="'!wbe1' matches no host or group"):
        select_hosts(inventory, "!wbe1")


def test_limit_that_excludes_everything_is_an_error(inventory: Inventory) -> None:
    with pytest.raises(UsageError, match="leaves no host selected"):
        select_hosts(inventory, "web,!web")
