"""Reading NTT's progress list (進捗リスト): CSV (CP932 or UTF-8, with or without BOM) or .xlsx.

Its layout is not published, so the columns are found by their header text,
as configured in ``[progress.columns]``. The whole file is read before
anything is applied: a bad cell is refused with its line.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from mailbot.adapters.errors import ProgressFileError
from mailbot.domain.japanese import normalize

__all__ = ["ProgressFileError", "ProgressRow", "read_progress"]

_P_NUMBER = re.compile(r"^P\d{13}$")
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?$")
_REQUIRED = ("p_number", "status")


@dataclass(frozen=True)
class ProgressRow:
    line: int
    p_number: str | None
    customer_code: str | None
    customer_name: str
    status: str
    construction_date: date | None
    completed_date: date | None
    cancelled_date: date | None


def _decode(data: bytes, name: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = _line_of(data, exc.start)
            raise ProgressFileError(
                f"{name}: line {line}: not UTF-8 text", f"{name} の{line}行目: UTF-8の文字として読めません"
            ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
        raise ProgressFileError(
            f"{name}: line {line}: neither UTF-8 nor CP932 text",
            f"{name} の{line}行目: 文字コードがUTF-8でもShift_JIS(CP932)でもないため読めません",
        ) from None


def _line_of(data: bytes, position: int) -> int:
    return data[:position].count(b"\n") + 1


def _csv_rows(data: bytes, name: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(_decode(data, name), newline=""))
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise ProgressFileError(
            f"{name}: line {reader.line_num}: {exc}", f"{name} の{reader.line_num}行目: CSVの形式が崩れていて読めません"
        ) from None


def _xlsx_rows(data: bytes, name: str) -> Iterator[tuple[int, list[object]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ProgressFileError(
            f"{name}: not a readable .xlsx workbook: {exc}", f"{name}: Excelファイル(.xlsx)として読めません"
        ) from None
    try:
        sheet = book.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), 1):
            yield number, list(row)
    finally:
        book.close()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return normalize(str(value)).strip()


def _date(value: object, name: str, line: int, header: str) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if not text:
        return None
    if text.isdigit() and len(text) == 8:
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    match = _DATE.match(text)
    try:
        if match is None:
            raise ValueError(text)
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ProgressFileError(
            f"{name}: line {line}: {header} {text!r} is not a date (YYYY/MM/DD)",
            f"{name} の{line}行目: {header}「{text}」は日付(例: 2026/12/01)として読めません",
        ) from None


def read_progress(
    data: bytes, name: str, columns: Mapping[str, str], statuses: Mapping[str, object]
) -> list[ProgressRow]:
    """Every row of the list, or :class:`ProgressFileError` naming the first bad line; never a partial list."""
    is_xlsx = data[:4] == b"PK\x03\x04" or name.lower().endswith((".xlsx", ".xlsm"))
    rows: Iterator[tuple[int, list[object]]] = (
        _xlsx_rows(data, name) if is_xlsx else ((n, list(r)) for n, r in _csv_rows(data, name))
    )
    header_line, header = 0, []
    for number, cells in rows:
        if any(_text(c) for c in cells):
            header_line, header = number, [_text(c).replace(" ", "") for c in cells]
            break
    if not header:
        raise ProgressFileError(f"{name}: the file is empty", f"{name}: ファイルが空です")
    index: dict[str, int] = {}
    for key, title in columns.items():
        wanted = normalize(title).replace(" ", "")
        if wanted in header:
            index[key] = header.index(wanted)
        elif key in _REQUIRED:
            raise ProgressFileError(
                f"{name}: line {header_line}: no column {title!r} ([progress.columns] {key}); "
                f"the header has {', '.join(h for h in header if h)}",
                f"{name} の{header_line}行目(見出し): 「{title}」の列がありません"
                f"(見出し: {'、'.join(h for h in header if h)})",
            )
    if "customer_code" not in index and "p_number" not in index:
        raise ProgressFileError(
            f"{name}: line {header_line}: neither a P番号 nor a 顧客CD column",
            f"{name} の{header_line}行目(見出し): P番号の列も顧客CDの列もありません",
        )
    known = {normalize(k).replace(" ", ""): k for k in statuses}
    result: list[ProgressRow] = []
    for number, cells in rows:
        if not any(_text(c) for c in cells):
            continue

        def cell(key: str, cells: list[object] = cells) -> object:
            at = index.get(key)
            return cells[at] if at is not None and at < len(cells) else None

        p_text = _text(cell("p_number")).upper().replace("-", "")
        if p_text and not _P_NUMBER.match(p_text):
            raise ProgressFileError(
                f"{name}: line {number}: {columns['p_number']} {p_text!r} is not P + 13 digits",
                f"{name} の{number}行目: {columns['p_number']}「{p_text}」は「P+13桁の数字」ではありません",
            )
        code = _text(cell("customer_code")).replace("-", "")
        if code and not code.isdigit():
            raise ProgressFileError(
                f"{name}: line {number}: {columns['customer_code']} {code!r} is not a number",
                f"{name} の{number}行目: {columns['customer_code']}「{code}」は数字ではありません",
            )
        if not p_text and not code:
            raise ProgressFileError(
                f"{name}: line {number}: neither {columns['p_number']} nor {columns['customer_code']} is filled in",
                f"{name} の{number}行目: {columns['p_number']}も{columns['customer_code']}も空欄です",
            )
        status = _text(cell("status")).replace(" ", "")
        if status not in known:
            raise ProgressFileError(
                f"{name}: line {number}: {columns['status']} {status!r} is not mapped in [progress.status] "
                f"(known: {', '.join(statuses)})",
                f"{name} の{number}行目: {columns['status']}「{status}」は取り込める進捗ではありません"
                f"(取り込める進捗: {'、'.join(statuses)})",
            )
        result.append(
            ProgressRow(
                line=number,
                p_number=p_text or None,
                customer_code=code or None,
                customer_name=_text(cell("customer_name")),
                status=known[status],
                construction_date=_date(cell("construction_date"), name, number, columns["construction_date"]),
                completed_date=_date(cell("completed_date"), name, number, columns["completed_date"]),
                cancelled_date=_date(cell("cancelled_date"), name, number, columns["cancelled_date"]),
            )
        )
    if not result:
        raise ProgressFileError(f"{name}: no rows after the header", f"{name}: 見出しの後に行がありません")
    return result
