"""One function over many hosts at once, with every host's outcome typed: a value or an error.

Each host runs in its own thread (as Fabric's ThreadingGroup); one host's failure
never stops the others and never goes unreported. What counts as a host's own
failure (rather than a bug that should crash) is the caller's ``catch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from deployer.errors import DeployerError

T = TypeVar("T")
V = TypeVar("V")

MAX_PARALLEL = 32


@dataclass(frozen=True)
class Ok(Generic[T, V]):
    item: T
    value: V

    ok = True


@dataclass(frozen=True)
class Failed(Generic[T]):
    item: T
    error: BaseException

    ok = False

    @property
    def message(self) -> str:
        """What a user sees: a DeployerError's own words, anything else with its type."""
        return str(self.error) if isinstance(self.error, DeployerError) else f"{type(self.error).__name__}: {self.error}"


Outcome = Ok[T, V] | Failed[T]


def fan_out(items: Iterable[T], fn: Callable[[T], V], parallel: int = MAX_PARALLEL,
            catch: tuple[type[BaseException], ...] = (DeployerError,)) -> list[Outcome]:
    """``fn(item)`` for every item, ``parallel`` at a time; outcomes in the items' order.

    An exception of a ``catch`` type becomes that item's ``Failed``; any other propagates
    (after the other items finished).
    """
    items = list(items)
    if not items:
        return []

    def one(item: T) -> Outcome:
        try:
            return Ok(item, fn(item))
        except catch as exc:
            return Failed(item, exc)

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(items)))) as pool:
        return list(pool.map(one, items))
