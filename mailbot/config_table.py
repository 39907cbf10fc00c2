"""What the config readers beside config.py ask of a TOML table.

config.py's ``_Table`` is the one implementation; config_alerts and config_mailbox
type their tables with this Protocol, so they need not import config.py (which
imports them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

__all__ = ["Table"]

T = TypeVar("T")


class Table(Protocol):
    """A TOML table that remembers where it is, to name keys in errors."""

    data: Mapping[str, Any]
    used: set[str]

    def fail(self, key: str, message: str) -> Exception:
        """The error naming ``key`` (a ConfigError)."""
        ...

    def get(self, key: str, kind: type[T], default: T | None = None, *, required: bool = False, what: str = "") -> T:
        """The value of ``key`` if of ``kind``, else ``default`` (or an error if required)."""
        ...

    def number(self, key: str, kind: type[T], default: T, low: float, high: float, unit: str = "") -> T:
        """A whole or decimal number between ``low`` and ``high``, both included."""
        ...

    def table(self, key: str) -> Table:
        """The sub-table under ``key`` (empty if absent)."""
        ...

    def check_unknown(self, allowed: set[str] | None = None) -> None:
        """An error for the first key that is neither used nor in ``allowed``."""
        ...
