"""The order line as the unit (manual §5): which line a request is bound to, and what its values must be.

Pure: the checks and the reconciliation call these with what the shell read
from UNIS; nothing here reads a clock or a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from mailbot.domain.unis import COLUMN_HEADERS, LineKey, OrderLine, UnisCustomer, code_of

__all__ = [
    "DESK_TZ",
    "FieldRule",
    "bind_line",
    "expected_values",
    "pattern_of",
]

# The desk's day: UNIS dates (受注登録日) are Japanese calendar days; Japan keeps no summer time.
DESK_TZ = timezone(timedelta(hours=9), "JST")

PATTERN_AB = "A/B"  # a BGM or equipment contract exists: the Z200214 line is added under it
PATTERN_C = "C"  # FLET'S only: customer, contract and line registered new


def pattern_of(customer: UnisCustomer) -> str:
    """The manual's registration pattern: A/B when a contract holds a line other than Z200214, else C."""
    return PATTERN_AB if customer.other_contracts() else PATTERN_C


def bind_line(
    customer: UnisCustomer, held: Mapping[LineKey, str], arrived: datetime | None, *, keep: LineKey | None = None
) -> OrderLine | None:
    """The customer's Z200214 line in 受注 that no other live case holds, for a request that arrived ``arrived``.

    ``keep``: the line the case is bound to already, taken again while it is
    still a free 受注 line (a person's acceptance does not move a binding).

    With several free lines: the newest 受注登録日 not after the mail's
    arrival day (the branch registers the line before it mails the desk);
    then lines without a 受注登録日 (the standard export has none), the last
    in the export first; then lines registered after the mail, the earliest
    first. None when every 受注 line is held (or there is none).
    """
    free = [(index, line) for index, line in enumerate(customer.open_brokerage_lines()) if line.key not in held]
    if not free:
        return None
    kept = next((line for _, line in free if line.key == keep), None)
    if kept is not None:
        return kept
    day = arrived.astimezone(DESK_TZ).date() if arrived is not None else None

    def rank(item: tuple[int, OrderLine]) -> tuple[int, int, int]:
        index, line = item
        registered = line.order_date
        if registered is None:
            return (1, 0, -index)
        if day is None or registered <= day:
            return (0, -registered.toordinal(), -index)
        return (2, registered.toordinal(), -index)

    return min(free, key=rank)[1]


@dataclass(frozen=True)
class FieldRule:
    """One value the manual sets: ``ok`` is None when it could not be checked (no column, no 受注登録日)."""

    field: str
    screen: str
    expected: str
    actual: str
    ok: bool | None

    @property
    def label(self) -> str:
        return COLUMN_HEADERS[self.field]


def _same_code(actual: str | None, expected: str) -> bool:
    code = code_of(actual)
    if code is None:
        return False
    if code.isdigit() and expected.isdigit():
        return int(code) == int(expected)
    return code == expected


def _zero_yen(value: str | None) -> bool:
    digits = "".join(c for c in (value or "") if c.isdigit() or c == ".")
    try:
        return bool(digits) and float(digits) == 0
    except ValueError:
        return False


def _ymd(value: date | None) -> str:
    return value.strftime("%Y/%m/%d") if value else ""


def expected_values(customer: UnisCustomer, line: OrderLine, columns: frozenset[str]) -> list[FieldRule]:
    """Each value the manual's pattern (§5① A/B, §5② C) sets for ``line``, compared with UNIS."""
    rules: list[FieldRule] = []

    def code(field: str, screen: str, actual: str | None, expected: str, label: str) -> None:
        ok = _same_code(actual, expected) if field in columns else None
        rules.append(FieldRule(field, screen, f"{expected} {label}".strip(), actual or "", ok))

    registered = line.order_date if "order_date" in columns else None
    if pattern_of(customer) == PATTERN_AB:
        code("line_process", "契約明細", line.line_process, "2", "契約変更")
        code("line_contract_kind", "契約明細", line.line_contract_kind, "11-99", "増設 その他")
    else:
        code("customer_process", "顧客", customer.customer_process, "0", "新設")
        code("customer_contract_kind", "顧客", customer.customer_contract_kind, "01-01", "新設 新設")
        code("product_class", "契約", line.product_class, "0", "通常")
        code("payment_method", "契約", line.payment_method, "9", "UNIS売上対象外")
        code("billing_period", "契約", line.billing_period, "1", "")
    running_ok = _zero_yen(line.running) if "running" in columns else None
    rules.append(FieldRule("running", "契約明細", "0円", line.running or "", running_ok))
    if pattern_of(customer) == PATTERN_AB:
        staff_ok = bool((line.staff or "").strip()) if "staff" in columns else None
        rules.append(FieldRule("staff", "契約明細", "回線単品申込書に記載の契約担当者", line.staff or "", staff_ok))
    if "start_month" in columns:
        month = f"{registered.year:04d}/{registered.month:02d}" if registered else ""
        ok = (line.start_month == month) if registered else None
        rules.append(FieldRule("start_month", "契約明細", f"{month}(受注登録日の月)", line.start_month or "", ok))
    else:
        rules.append(FieldRule("start_month", "契約明細", "受注登録日の月", "", None))
    due_ok = (line.due_date == registered) if registered else None
    rules.append(FieldRule("due_date", "契約明細", f"{_ymd(registered)}(受注登録日)", _ymd(line.due_date), due_ok))
    return rules
