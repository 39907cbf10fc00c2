"""UNIS, the company's customer system, as the core sees it: a read-only lookup."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

__all__ = [
    "BROKERAGE_ITEM",
    "CLASS_NON_SUBSCRIBER",
    "CLASS_SUBSCRIBER",
    "LINE_ORDERED",
    "OrderLine",
    "SnapshotLookup",
    "UnisCustomer",
    "UnisLookup",
]

BROKERAGE_ITEM = "Z200214"  # NTTフレッツ光取次
LINE_ORDERED = "受注"
CLASS_SUBSCRIBER = "1"  # 業務用
CLASS_NON_SUBSCRIBER = "9"  # 未加入店


@dataclass(frozen=True)
class OrderLine:
    """One 明細 of a UNIS contract."""

    contract_no: str
    line_no: str
    item_code: str
    item_name: str
    state: str
    due_date: date | None
    branch: str


@dataclass(frozen=True)
class UnisCustomer:
    """A customer in UNIS with its order lines."""

    code: str
    name: str
    customer_class: str
    status: str
    lines: tuple[OrderLine, ...]

    @property
    def class_code(self) -> str:
        # Exports write the class as "1", "1:業務用" or "業務用"; keep the code.
        text = self.customer_class.strip()
        if text.startswith("業務用"):
            return CLASS_SUBSCRIBER
        if text.startswith("未加入"):
            return CLASS_NON_SUBSCRIBER
        return text[:1]

    def open_brokerage_lines(self) -> tuple[OrderLine, ...]:
        return tuple(
            line
            for line in self.lines
            if line.item_code.strip().upper() == BROKERAGE_ITEM and line.state.strip() == LINE_ORDERED
        )


class UnisLookup(Protocol):
    """Customer lookup over the latest imported UNIS snapshot."""

    @property
    def as_of(self) -> datetime | None:
        """When the snapshot was taken; None when nothing was imported yet."""
        ...

    def customer(self, code: str) -> UnisCustomer | None: ...


@dataclass(frozen=True)
class SnapshotLookup:
    """A lookup over customers already in memory (tests, replays, small snapshots)."""

    customers: Mapping[str, UnisCustomer]
    taken_at: datetime | None

    @property
    def as_of(self) -> datetime | None:
        return self.taken_at

    def customer(self, code: str) -> UnisCustomer | None:
        return self.customers.get(code)
