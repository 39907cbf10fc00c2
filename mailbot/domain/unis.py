"""UNIS, the company's customer system, as the core sees it: a read-only lookup.

The manual (§5) works at the grain of one order line (契約明細): the branch
registers one ``Z200214 NTTフレッツ光取次`` line with given values under a given
contract, and 事務センター confirms that line. An export row is one line with
its contract's and customer's values repeated; :class:`UnisCustomer` gathers
them. Which optional columns an export had is :attr:`UnisLookup.columns`: a
value the export did not carry is unknown, never "empty".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

__all__ = [
    "BASE_COLUMNS",
    "BROKERAGE_ITEM",
    "CLASS_NON_SUBSCRIBER",
    "CLASS_SUBSCRIBER",
    "COLUMN_HEADERS",
    "CUSTOMER_CANCELLED",
    "LINE_CANCELLED",
    "LINE_CONFIRMED",
    "LINE_ORDERED",
    "LINE_STATES",
    "LINE_VOIDED",
    "LineKey",
    "OrderLine",
    "SnapshotLookup",
    "UnisCustomer",
    "UnisLookup",
    "code_of",
    "previous_customer",
    "state_word",
]

BROKERAGE_ITEM = "Z200214"  # NTTフレッツ光取次
LINE_ORDERED = "受注"
LINE_CONFIRMED = "確定"
LINE_CANCELLED = "解約"
LINE_VOIDED = "キャンセル"  # the order withdrawn before completion (manual §6)
CUSTOMER_CANCELLED = "解約"
CLASS_SUBSCRIBER = "1"  # 業務用
CLASS_NON_SUBSCRIBER = "9"  # 未加入店

# The export's columns: field name -> the header UNIS writes (the default of [unis.columns]).
COLUMN_HEADERS: Mapping[str, str] = {
    "customer_code": "顧客CD",
    "customer_name": "顧客名",
    "customer_class": "顧客区分",
    "customer_status": "顧客状態",
    "customer_process": "顧客処理区分",
    "customer_contract_kind": "顧客契約種類",
    "branch": "支店",
    "contract_no": "契約No",
    "product_class": "商品区分",
    "payment_method": "支払方法",
    "billing_period": "請求期間",
    "line_no": "明細No",
    "line_process": "明細処理区分",
    "line_contract_kind": "明細契約種類",
    "item_code": "契約品目",
    "item_name": "品目名",
    "state": "明細状態",
    "order_date": "受注登録日",
    "start_month": "開始年月",
    "due_date": "完成予定日",
    "staff": "契約担当者",
    "running": "ランニング",
    "serial_no": "シリアルNO",
    "confirm_date": "確定日",
    "cancel_date": "解約日",
    "cancel_reason": "解約事由",
    "remark": "明細備考",
}
# The eleven columns every export has had; the others are optional.
BASE_COLUMNS = frozenset(
    {
        "customer_code",
        "customer_name",
        "customer_class",
        "customer_status",
        "contract_no",
        "line_no",
        "item_code",
        "item_name",
        "state",
        "due_date",
        "branch",
    }
)

# (契約No, 明細No): one order line of a customer.
LineKey = tuple[str, str]

_CODE = re.compile(r"^\s*(\d+(?:-\d+)?)")


def code_of(value: str | None) -> str | None:
    """The code of a code column: ``9``, ``9 UNIS売上対象外``, ``11-99 増設 その他``, ``9:未加入店`` -> ``9``/``11-99``.

    None when the cell holds no code (empty, or a label alone).
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value)
    match = _CODE.match(text)
    return match[1] if match else None


LINE_STATES = frozenset({LINE_ORDERED, LINE_CONFIRMED, LINE_CANCELLED, LINE_VOIDED})
_STATE_CODE = re.compile(r"^\s*\d+\s*[:：.]?\s*")


def state_word(value: str) -> str:
    """A 明細状態 cell as the word compared: NFKC, no code in front, no spaces.

    Compared exactly: ``受注済み`` or ``確定取消`` is none of the four states
    (the import counts such cells), never taken for the state it starts with.
    """
    text = unicodedata.normalize("NFKC", value)
    return "".join(_STATE_CODE.sub("", text).split())


_PREVIOUS = re.compile(r"加入前顧客(?:コード|CD|ｺｰﾄﾞ)\s*[:：]?\s*(\d[\d-]*)")


def previous_customer(remark: str | None) -> str | None:
    """The old customer code a 明細備考 names (``加入前顧客コード:XXXXXXXXX``, manual §5④), or None."""
    if not remark:
        return None
    match = _PREVIOUS.search(unicodedata.normalize("NFKC", remark))
    return match[1].replace("-", "") if match else None


@dataclass(frozen=True)
class OrderLine:
    """One 明細 of a UNIS contract, with its contract's values (repeated on every row of the export).

    Fields after ``branch`` are None when the export has no such column.
    """

    contract_no: str
    line_no: str
    item_code: str
    item_name: str
    state: str
    due_date: date | None
    branch: str
    line_process: str | None = None
    line_contract_kind: str | None = None
    order_date: date | None = None
    # 開始年月 as "YYYY/MM".
    start_month: str | None = None
    staff: str | None = None
    running: str | None = None
    serial_no: str | None = None
    confirm_date: date | None = None
    cancel_date: date | None = None
    cancel_reason: str | None = None
    remark: str | None = None
    product_class: str | None = None
    payment_method: str | None = None
    billing_period: str | None = None

    @property
    def key(self) -> LineKey:
        return (self.contract_no, self.line_no)

    @property
    def where(self) -> str:
        """How the desk names the line: 契約No/明細No."""
        return f"{self.contract_no}/{self.line_no}"

    @property
    def is_brokerage(self) -> bool:
        return self.item_code.strip().upper() == BROKERAGE_ITEM

    @property
    def state_word(self) -> str:
        """明細状態 without a code in front (``1 受注``, ``1:受注`` -> ``受注``)."""
        return state_word(self.state)

    @property
    def ordered(self) -> bool:
        return self.state_word == LINE_ORDERED

    @property
    def confirmed(self) -> bool:
        return self.state_word == LINE_CONFIRMED

    @property
    def ended(self) -> bool:
        """解約 or キャンセル: the line no longer counts as active."""
        return self.state_word in (LINE_CANCELLED, LINE_VOIDED)


@dataclass(frozen=True)
class UnisCustomer:
    """A customer in UNIS with its order lines."""

    code: str
    name: str
    customer_class: str
    status: str
    lines: tuple[OrderLine, ...]
    customer_process: str | None = None
    customer_contract_kind: str | None = None
    branch: str = ""

    @property
    def class_code(self) -> str:
        # Exports write the class as "1", "1:業務用", "1 業務用" or "業務用"; keep the code.
        text = unicodedata.normalize("NFKC", self.customer_class).strip()
        if text.startswith("業務用"):
            return CLASS_SUBSCRIBER
        if text.startswith("未加入"):
            return CLASS_NON_SUBSCRIBER
        return code_of(text) or ""

    @property
    def cancelled(self) -> bool:
        return CUSTOMER_CANCELLED in self.status

    def brokerage_lines(self) -> tuple[OrderLine, ...]:
        return tuple(line for line in self.lines if line.is_brokerage)

    def open_brokerage_lines(self) -> tuple[OrderLine, ...]:
        return tuple(line for line in self.brokerage_lines() if line.ordered)

    def line(self, key: LineKey) -> OrderLine | None:
        return next((line for line in self.lines if line.key == key), None)

    def other_lines(self) -> tuple[OrderLine, ...]:
        """Lines of anything but the brokerage: BGM, equipment."""
        return tuple(line for line in self.lines if not line.is_brokerage)

    def other_contracts(self) -> frozenset[str]:
        """Contracts that hold a line other than Z200214 (a BGM or equipment contract: patterns A/B)."""
        return frozenset(line.contract_no for line in self.other_lines())


class UnisLookup(Protocol):
    """Customer lookup over the latest imported UNIS snapshot."""

    @property
    def as_of(self) -> datetime | None:
        """When the snapshot was taken; None when nothing was imported yet."""
        ...

    @property
    def columns(self) -> frozenset[str]:
        """The fields (keys of :data:`COLUMN_HEADERS`) the snapshot's export carried."""
        ...

    def customer(self, code: str) -> UnisCustomer | None: ...

    def held_lines(self, code: str) -> Mapping[LineKey, str]:
        """The customer's lines bound to a live case: (契約No, 明細No) -> case number."""
        ...


@dataclass(frozen=True)
class SnapshotLookup:
    """A lookup over customers already in memory (tests, replays, small snapshots)."""

    customers: Mapping[str, UnisCustomer]
    taken_at: datetime | None
    fields: frozenset[str] = BASE_COLUMNS
    held: Mapping[str, Mapping[LineKey, str]] = field(default_factory=dict)

    @property
    def as_of(self) -> datetime | None:
        return self.taken_at

    @property
    def columns(self) -> frozenset[str]:
        return self.fields

    def customer(self, code: str) -> UnisCustomer | None:
        return self.customers.get(code)

    def held_lines(self, code: str) -> Mapping[LineKey, str]:
        return self.held.get(code, {})
