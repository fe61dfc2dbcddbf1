"""A value that never prints itself: secrets are masked in every output and log."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


class Secret:
    """Wraps a secret string; ``str``/``repr``/format all give ``***``.

    Only ``reveal()`` returns the value, so leaking one takes a deliberate call.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def mask_text(text: str, secrets: Iterable[Secret]) -> str:
    """Replace every secret value that appears in ``text`` (logs, remote output)."""
    for secret in sorted(secrets, key=lambda s: len(s.reveal()), reverse=True):
        value = secret.reveal()
        if value:
            text = text.replace(value, MASK)
    return text

