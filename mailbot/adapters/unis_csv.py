"""Reading a UNIS export: CSV in CP932 or UTF-8 (with or without BOM), or
Excel's "Unicode text" (UTF-16 with BOM, tab-separated), streamed line by line.

Memory does not grow with the file: records are yielded one at a time and the
import writes them in batches. Two things an export may have lost on its way
through Excel are repaired and counted rather than refused: a 顧客CD whose
leading zeros Excel dropped (``012345678`` -> ``12345678``) is zero-padded to
``customer_code.digits``, and a malformed date (完成予定日, 受注登録日, 開始年月,
確定日, 解約日) is stored as NULL and counted: the checks that read it then
say the value is not set, and the import's report names the lines.

Columns are found by their header, so an export with the manual's full set of
fields (顧客処理区分, 明細処理区分, 開始年月, 契約担当者, ... 明細備考) and the
standard export of eleven columns are both read; which optional columns were
present is kept with the snapshot, so a check that needs an absent one says
"not checked" instead of passing.
"""

from __future__ import annotations

import csv
import io
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, BinaryIO

from mailbot.adapters.errors import UnisFileError
from mailbot.adapters.unis_encoding import text_lines
from mailbot.domain.japanese import normalize
from mailbot.domain.unis import BASE_COLUMNS, COLUMN_HEADERS, LINE_STATES, state_word

__all__ = [
    "DATE_FIELDS",
    "DB_COLUMNS",
    "FULL_HEADER",
    "HEADER",
    "UnisFileError",
    "UnisReader",
    "UnisRecord",
    "UnisReport",
    "read_unis_csv",
]

# The eleven columns every export has (the header of the standard export, in its order).
HEADER = (
    "顧客CD",
    "顧客名",
    "顧客区分",
    "顧客状態",
    "契約No",
    "明細No",
    "契約品目",
    "品目名",
    "明細状態",
    "完成予定日",
    "支店",
)
# The manual's full export (§5), in the order the screens fill it.
FULL_HEADER = tuple(COLUMN_HEADERS.values())
# Record field -> the unis_rows column it is stored in, in UnisRecord's order.
DB_COLUMNS: Mapping[str, str] = {f: ("line_state" if f == "state" else f) for f in COLUMN_HEADERS}
# The fields read as dates (the others are text, codes, or 開始年月 as YYYY/MM).
DATE_FIELDS = frozenset({"due_date", "order_date", "confirm_date", "cancel_date"})
# Cells compared by code (``2``, ``2 契約変更``): folded to NFKC and single spaces.
_CODE_FIELDS = frozenset(
    {
        "customer_class",
        "customer_process",
        "customer_contract_kind",
        "product_class",
        "payment_method",
        "billing_period",
        "line_process",
        "line_contract_kind",
        "cancel_reason",
        "contract_no",
        "line_no",
        "state",
        "running",
        "serial_no",
    }
)

# How many line numbers of repaired cells the report keeps (the counts are exact).
_KEEP_LINES = 5


@dataclass(frozen=True, slots=True)
class UnisRecord:
    """One row of the export; a field whose column the export lacks is None."""

    customer_code: str
    customer_name: str
    customer_class: str
    customer_status: str
    customer_process: str | None
    customer_contract_kind: str | None
    branch: str
    contract_no: str
    product_class: str | None
    payment_method: str | None
    billing_period: str | None
    line_no: str
    line_process: str | None
    line_contract_kind: str | None
    item_code: str
    item_name: str
    line_state: str
    order_date: date | None
    start_month: str | None
    due_date: date | None
    staff: str | None
    running: str | None
    serial_no: str | None
    confirm_date: date | None
    cancel_date: date | None
    cancel_reason: str | None
    remark: str | None

    def as_tuple(self) -> tuple[Any, ...]:
        """The values in :data:`DB_COLUMNS` order (the fields' own order)."""
        return _AS_TUPLE(self)


_AS_TUPLE = operator.attrgetter(*DB_COLUMNS.values())


@dataclass
class UnisReport:
    """What reading the export found besides its records."""

    encoding: str = ""
    delimiter: str = ","
    rows: int = 0
    # The optional columns the export had (keys of COLUMN_HEADERS), besides the eleven.
    columns: frozenset[str] = BASE_COLUMNS
    # 顧客CD shorter than customer_code.digits, zero-padded (Excel drops leading zeros).
    padded_codes: int = 0
    padded_lines: list[int] = field(default_factory=list)
    # 完成予定日 that is not a date: stored as NULL (no check uses it).
    bad_due_dates: int = 0
    bad_due_date_lines: list[int] = field(default_factory=list)
    # Other dates and 開始年月 that are not dates: header -> (count, first lines).
    bad_dates: dict[str, tuple[int, list[int]]] = field(default_factory=dict)
    # 明細状態 that is none of 受注, 確定, 解約, キャンセル: kept as written, counted, no rule acts on it.
    unknown_states: int = 0
    unknown_state_lines: list[int] = field(default_factory=list)
    unknown_state_values: list[str] = field(default_factory=list)

    @property
    def missing_columns(self) -> tuple[str, ...]:
        """The optional columns (their default headers) the export lacked: what could not be checked."""
        return tuple(COLUMN_HEADERS[f] for f in COLUMN_HEADERS if f not in self.columns)

    def notes(self) -> list[str]:
        """One line per repair, for the import's output and the ops notice."""
        found = []
        if self.padded_codes:
            found.append(
                f"{self.padded_codes} 顧客CD zero-padded to the configured digits "
                f"(leading zeros lost, e.g. in Excel; lines {_lines(self.padded_lines, self.padded_codes)})"
            )
        if self.bad_due_dates:
            found.append(
                f"{self.bad_due_dates} 完成予定日 not a date, stored empty "
                f"(lines {_lines(self.bad_due_date_lines, self.bad_due_dates)})"
            )
        for header, (count, lines) in self.bad_dates.items():
            found.append(f"{count} {header} not a date, stored empty (lines {_lines(lines, count)})")
        if self.unknown_states:
            values = ", ".join(self.unknown_state_values)
            found.append(
                f"{self.unknown_states} 明細状態 not 受注/確定/解約/キャンセル ({values}), no rule acts on them "
                f"(lines {_lines(self.unknown_state_lines, self.unknown_states)})"
            )
        return found


def _lines(lines: list[int], count: int) -> str:
    shown = ", ".join(str(n) for n in lines)
    return shown + (", ..." if count > len(lines) else "")


def _note(lines: list[int], line: int) -> None:
    if len(lines) < _KEEP_LINES:
        lines.append(line)


# -- cells ---------------------------------------------------------------------------

_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def _norm(text: str) -> str:
    # Most cells are ASCII, for which NFKC changes nothing: skip it (2,000,000 rows).
    return " ".join(text.split()) if text.isascii() else normalize(text)


def _parse_date(text: str) -> date | None:
    """The date, None for an empty cell; ValueError for anything else."""
    text = _norm(text)
    if not text:
        return None
    if text.isdigit() and len(text) == 8:
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    match = _DATE.match(text)
    if match is None:
        raise ValueError(text)
    return date(int(match[1]), int(match[2]), int(match[3]))


_MONTH = re.compile(r"^(\d{4})[-/.年]?(\d{1,2})(?:[-/.月](?:\d{1,2}日?)?|月)?$")


def _parse_month(text: str) -> str | None:
    """開始年月 as ``YYYY/MM`` (from ``2026/12``, ``202612``, ``2026年12月``, ``2026/12/01``); ValueError else."""
    text = _norm(text)
    if not text:
        return None
    match = _MONTH.match(text)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(text)
    return f"{int(match[1]):04d}/{int(match[2]):02d}"


def _header_key(text: str) -> str:
    return normalize(text).replace(" ", "").replace("\u3000", "").upper()


class UnisReader:
    """Iterates the records of one export; :attr:`report` is complete once it is exhausted.

    Columns are found by their header (``columns``: field -> header text, the
    ``[unis.columns]`` setting over :data:`COLUMN_HEADERS`), in any order; the
    eleven of :data:`BASE_COLUMNS` are required, the others read when present,
    and columns nobody asked for are ignored.

    Raises :class:`UnisFileError` naming the first bad line. A caller that
    writes records as they come must treat that as "nothing happened"
    (the import does it in one transaction).
    """

    def __init__(
        self,
        stream: BinaryIO,
        name: str = "UNIS export",
        *,
        digits: int = 9,
        columns: Mapping[str, str] | None = None,
    ) -> None:
        self.stream = stream
        self.name = name
        self.digits = digits
        self.headers = {**COLUMN_HEADERS, **(columns or {})}
        self.report = UnisReport()
        self._at: dict[str, int] = {}
        self._width = 0
        self._steps: list[tuple[int, int, str, str]] = []
        self._memo: dict[tuple[str, str], Any] = {}
        self._known_states: dict[str, bool] = {}

    def __iter__(self) -> Iterator[UnisRecord]:
        name = self.name
        lines = text_lines(self.stream, name, self.report)
        try:
            header_line = next(lines)
        except StopIteration:
            raise UnisFileError(f"{name}: the file is empty") from None
        delimiter = "\t" if header_line.count("\t") >= len(HEADER) - 1 else ","
        self.report.delimiter = delimiter
        reader = csv.reader(_chain(header_line, lines), delimiter=delimiter)
        try:
            header = next(reader)
        except csv.Error as exc:
            raise UnisFileError(f"{name}: line 1: {exc}") from None
        self._find_columns(header)
        try:
            for row in reader:
                record = self._record(row, reader.line_num)
                if record is not None:
                    self.report.rows += 1
                    yield record
        except csv.Error as exc:
            raise UnisFileError(f"{name}: line {reader.line_num}: {exc}") from None
        if not self.report.rows:
            # An export cut short would otherwise replace every customer with none.
            raise UnisFileError(f"{name}: no customer rows after the header; the snapshot was not replaced")

    def _find_columns(self, header: list[str]) -> None:
        got = {_header_key(h): i for i, h in reversed(list(enumerate(header)))}
        at = {f: got[_header_key(text)] for f, text in self.headers.items() if _header_key(text) in got}
        missing = [f for f in COLUMN_HEADERS if f in BASE_COLUMNS and f not in at]
        if missing:
            wanted = ", ".join(self.headers[f] for f in missing)
            keys = ", ".join(missing)
            raise UnisFileError(
                f"{self.name}: line 1: the header lacks {wanted} (named otherwise? set {keys} in [unis.columns]); "
                f"got {','.join(header)}{_header_hint(header)}"
            )
        self._at = at
        self._width = len(header)
        self.report.columns = frozenset(at)
        self._steps = self._plan()

    def _bad(self, name: str, line: int) -> None:
        if name == "due_date":
            self.report.bad_due_dates += 1
            _note(self.report.bad_due_date_lines, line)
            return
        header = self.headers[name]
        count, lines = self.report.bad_dates.get(header, (0, []))
        _note(lines, line)
        self.report.bad_dates[header] = (count + 1, lines)

    def _plan(self) -> list[tuple[int, int, str, str]]:
        """(position in the record, column, field, how to read it) for each column the export has."""
        plan = []
        for position, name in enumerate(COLUMN_HEADERS):
            if name not in self._at or name == "customer_code":
                continue
            if name in DATE_FIELDS:
                kind = "date"
            elif name == "start_month":
                kind = "month"
            elif name == "item_code":
                kind = "upper"
            elif name == "state":
                kind = "state"
            elif name in _CODE_FIELDS or name == "customer_class":
                kind = "code"
            else:
                kind = "text"
            plan.append((position, self._at[name], name, kind))
        return plan

    def _record(self, row: list[str], line: int) -> UnisRecord | None:
        name = self.name
        if not any(cell.strip() for cell in row):
            return None
        if len(row) != self._width:
            raise UnisFileError(f"{name}: line {line}: expected {self._width} columns, got {len(row)}")
        raw_code = row[self._at["customer_code"]].replace("\x00", "").strip()
        code = _norm(raw_code).replace("-", "")
        if not code.isdigit() or len(code) > 32:
            raise UnisFileError(f"{name}: line {line}: 顧客CD {raw_code!r} is not a customer number")
        if len(code) < self.digits:
            code = code.zfill(self.digits)
            self.report.padded_codes += 1
            _note(self.report.padded_lines, line)
        values: list[Any] = [None] * len(COLUMN_HEADERS)
        values[0] = code
        # Code, date and month cells repeat across millions of rows: each distinct text is read once.
        memo = self._memo
        for position, column, field_name, kind in self._steps:
            cell = row[column]
            if "\x00" in cell:
                cell = cell.replace("\x00", "")
            cell = cell.strip()
            if kind == "text":
                values[position] = cell
                continue
            key = (kind, cell)
            found = memo.get(key, _MISSING)
            if found is _MISSING:
                found = self._read(kind, cell)
                if len(memo) > _MEMO_SIZE:
                    memo.clear()
                memo[key] = found
            if found is _BAD:
                self._bad(field_name, line)
                found = None
            elif kind == "state" and not self._known_state(found):
                self._unknown_state(found, line)
            values[position] = found
        return UnisRecord(*values)

    def _known_state(self, value: str) -> bool:
        known = self._known_states.get(value)
        if known is None:
            known = self._known_states[value] = state_word(value) in LINE_STATES
        return known

    def _unknown_state(self, value: str, line: int) -> None:
        self.report.unknown_states += 1
        _note(self.report.unknown_state_lines, line)
        if value not in self.report.unknown_state_values and len(self.report.unknown_state_values) < _KEEP_LINES:
            self.report.unknown_state_values.append(value or "(空欄)")

    @staticmethod
    def _read(kind: str, cell: str) -> Any:
        try:
            if kind == "date":
                return _parse_date(cell)
            if kind == "month":
                return _parse_month(cell)
        except ValueError:
            return _BAD
        if kind == "upper":
            return _norm(cell).upper()
        return _norm(cell)


_MISSING = object()
_BAD = object()
_MEMO_SIZE = 50_000


def _chain(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


def _header_hint(header: list[str]) -> str:
    if len(header) == 1 and "\t" not in header[0] and ";" in header[0]:
        return " (semicolon-separated: save from Excel as CSV, or as Unicode text)"
    return ""


def read_unis_csv(
    data: bytes, name: str = "UNIS export", *, digits: int = 9, columns: Mapping[str, str] | None = None
) -> list[UnisRecord]:
    """Every row, or :class:`UnisFileError` naming the first bad line; never a partial list."""
    return list(UnisReader(io.BytesIO(data), name, digits=digits, columns=columns))
