"""Reading a UNIS export CSV (CP932 or UTF-8, with or without BOM)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

from mailbot.domain.japanese import normalize

__all__ = ["HEADER", "UnisFileError", "UnisRecord", "read_unis_csv"]

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


class UnisFileError(Exception):
    """A UNIS export could not be read; the message names the line."""


@dataclass(frozen=True)
class UnisRecord:
    customer_code: str
    customer_name: str
    customer_class: str
    customer_status: str
    contract_no: str
    line_no: str
    item_code: str
    item_name: str
    line_state: str
    due_date: date | None
    branch: str


def _decode(data: bytes, name: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UnisFileError(f"{name}: line {line}: neither UTF-8 nor CP932 text") from None


_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def _parse_date(text: str, name: str, line: int) -> date | None:
    text = normalize(text)
    if not text:
        return None
    if text.isdigit() and len(text) == 8:
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    match = _DATE.match(text)
    try:
        if match is None:
            raise ValueError
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise UnisFileError(f"{name}: line {line}: 完成予定日 {text!r} is not a date (YYYY/MM/DD)") from None


def read_unis_csv(data: bytes, name: str = "UNIS export") -> list[UnisRecord]:
    """Every row, or :class:`UnisFileError` naming the first bad line; never a partial list."""
    text = _decode(data, name)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise UnisFileError(f"{name}: the file is empty") from None
    except csv.Error as exc:
        raise UnisFileError(f"{name}: line 1: {exc}") from None
    got = tuple(normalize(h).replace(" ", "") for h in header)
    expected = tuple(normalize(h) for h in HEADER)
    if got != expected:
        raise UnisFileError(f"{name}: line 1: header must be {','.join(HEADER)}; got {','.join(header)}")
    records: list[UnisRecord] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(HEADER):
                raise UnisFileError(f"{name}: line {line}: expected {len(HEADER)} columns, got {len(row)}")
            cells = [cell.replace("\x00", "").strip() for cell in row]
            code = normalize(cells[0]).replace("-", "")
            if not code.isdigit() or len(code) > 32:
                raise UnisFileError(f"{name}: line {line}: 顧客CD {cells[0]!r} is not a customer number")
            records.append(
                UnisRecord(
                    customer_code=code,
                    customer_name=cells[1],
                    customer_class=normalize(cells[2]),
                    customer_status=cells[3],
                    contract_no=normalize(cells[4]),
                    line_no=normalize(cells[5]),
                    item_code=normalize(cells[6]).upper(),
                    item_name=cells[7],
                    line_state=normalize(cells[8]),
                    due_date=_parse_date(cells[9], name, line),
                    branch=cells[10],
                )
            )
    except csv.Error as exc:
        raise UnisFileError(f"{name}: line {reader.line_num}: {exc}") from None
    if not records:
        # An export cut short would otherwise replace every customer with none.
        raise UnisFileError(f"{name}: no customer rows after the header; the snapshot was not replaced")
    return records
