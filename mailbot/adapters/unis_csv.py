"""Reading a UNIS export: CSV in CP932 or UTF-8 (with or without BOM), or
Excel's "Unicode text" (UTF-16 with BOM, tab-separated), streamed line by line.

Memory does not grow with the file: records are yielded one at a time and the
import writes them in batches. Two things an export may have lost on its way
through Excel are repaired and counted rather than refused: a 顧客CD whose
leading zeros Excel dropped (``012345678`` -> ``12345678``) is zero-padded to
``customer_code.digits``, and a malformed 完成予定日 (no check reads it) is
stored as NULL.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO

from mailbot.domain.japanese import normalize

__all__ = ["HEADER", "UnisFileError", "UnisReader", "UnisRecord", "UnisReport", "read_unis_csv"]

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

_CHUNK = 1 << 20
# How many line numbers of repaired cells the report keeps (the counts are exact).
_KEEP_LINES = 5


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


@dataclass
class UnisReport:
    """What reading the export found besides its records."""

    encoding: str = ""
    delimiter: str = ","
    rows: int = 0
    # 顧客CD shorter than customer_code.digits, zero-padded (Excel drops leading zeros).
    padded_codes: int = 0
    padded_lines: list[int] = field(default_factory=list)
    # 完成予定日 that is not a date: stored as NULL (no check uses it).
    bad_due_dates: int = 0
    bad_due_date_lines: list[int] = field(default_factory=list)

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
        return found


def _lines(lines: list[int], count: int) -> str:
    shown = ", ".join(str(n) for n in lines)
    return shown + (", ..." if count > len(lines) else "")


def _note(lines: list[int], line: int) -> None:
    if len(lines) < _KEEP_LINES:
        lines.append(line)


# -- bytes to text lines -------------------------------------------------------------


def _byte_lines(stream: BinaryIO, first: bytes) -> Iterator[bytes]:
    """Physical lines with their endings (\\r\\n, \\n or \\r). CP932 and UTF-8
    never have CR or LF inside a character, so bytes can be split first."""
    pending = first
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        pending += chunk
        lines = pending.splitlines(keepends=True)
        # The last piece may be incomplete, or a CR whose LF is in the next chunk.
        pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        yield from lines
    yield from pending.splitlines(keepends=True)


class _Decoder:
    """Decides between UTF-8 and CP932 on the first non-ASCII line, then holds
    every later line to that choice, so a bad byte is reported where it is."""

    def __init__(self, name: str, encoding: str | None) -> None:
        self.name = name
        self.encoding = encoding

    def decode(self, raw: bytes, line: int) -> str:
        if raw.isascii():
            return raw.decode("ascii")
        if self.encoding is None:
            for candidate in ("utf-8", "cp932"):
                try:
                    text = raw.decode(candidate)
                except UnicodeDecodeError:
                    continue
                self.encoding = candidate
                return text
            raise UnisFileError(f"{self.name}: line {line}: neither UTF-8 nor CP932 text")
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            label = "UTF-8" if self.encoding == "utf-8" else "CP932"
            raise UnisFileError(
                f"{self.name}: line {line}: byte 0x{raw[exc.start]:02x} is not {label} text "
                f"(the lines before it are {label})"
            ) from None


def _text_lines(stream: BinaryIO, name: str, report: UnisReport) -> Iterator[str]:
    first = stream.read(64)
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _looks_utf16(first):
        # Excel's "Unicode text". Undecodable units become U+FFFD and are
        # reported at their line (a strict decoder would fail a chunk ahead).
        report.encoding = "UTF-16"
        if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            codec = "utf-16"  # the BOM says which byte order
        else:
            codec = "utf-16-le" if first[1::2].count(0) >= first[0::2].count(0) else "utf-16-be"
        buffered = io.BufferedReader(_Prefixed(first, stream))
        wrapper = io.TextIOWrapper(buffered, encoding=codec, errors="replace", newline="")
        for number, text in enumerate(wrapper, 1):
            if "\ufffd" in text:
                raise UnisFileError(f"{name}: line {number}: not valid UTF-16 text")
            yield text
        return
    decoder = _Decoder(name, None)
    if first.startswith(codecs.BOM_UTF8):
        first, decoder.encoding = first[3:], "utf-8"
    for number, raw in enumerate(_byte_lines(stream, first), 1):
        yield decoder.decode(raw, number)
        report.encoding = {"utf-8": "UTF-8", "cp932": "CP932"}.get(decoder.encoding or "", "ASCII")


def _looks_utf16(first: bytes) -> bool:
    # UTF-16 without a BOM: the ASCII in the header ("CD", "No", commas or
    # tabs) puts NULs on one side; CP932 and UTF-8 text has no NUL at all.
    return len(first) >= 16 and max(first[1::2].count(0), first[0::2].count(0)) >= len(first) // 8


class _Prefixed(io.RawIOBase):
    """``stream`` with the bytes already read from it put back in front."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


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


class UnisReader:
    """Iterates the records of one export; :attr:`report` is complete once it is exhausted.

    Raises :class:`UnisFileError` naming the first bad line. A caller that
    writes records as they come must treat that as "nothing happened"
    (the import does it in one transaction).
    """

    def __init__(self, stream: BinaryIO, name: str = "UNIS export", *, digits: int = 9) -> None:
        self.stream = stream
        self.name = name
        self.digits = digits
        self.report = UnisReport()

    def __iter__(self) -> Iterator[UnisRecord]:
        name = self.name
        lines = _text_lines(self.stream, name, self.report)
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
        got = tuple(normalize(h).replace(" ", "") for h in header)
        if got != tuple(normalize(h) for h in HEADER):
            raise UnisFileError(
                f"{name}: line 1: header must be {','.join(HEADER)}; got {','.join(header)}{_header_hint(header)}"
            )
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

    def _record(self, row: list[str], line: int) -> UnisRecord | None:
        name = self.name
        if not any(cell.strip() for cell in row):
            return None
        if len(row) != len(HEADER):
            raise UnisFileError(f"{name}: line {line}: expected {len(HEADER)} columns, got {len(row)}")
        cells = [cell.replace("\x00", "").strip() for cell in row]
        code = _norm(cells[0]).replace("-", "")
        if not code.isdigit() or len(code) > 32:
            raise UnisFileError(f"{name}: line {line}: 顧客CD {cells[0]!r} is not a customer number")
        if len(code) < self.digits:
            code = code.zfill(self.digits)
            self.report.padded_codes += 1
            _note(self.report.padded_lines, line)
        try:
            due = _parse_date(cells[9])
        except ValueError:
            due = None
            self.report.bad_due_dates += 1
            _note(self.report.bad_due_date_lines, line)
        return UnisRecord(
            customer_code=code,
            customer_name=cells[1],
            customer_class=_norm(cells[2]),
            customer_status=cells[3],
            contract_no=_norm(cells[4]),
            line_no=_norm(cells[5]),
            item_code=_norm(cells[6]).upper(),
            item_name=cells[7],
            line_state=_norm(cells[8]),
            due_date=due,
            branch=cells[10],
        )


def _chain(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


def _header_hint(header: list[str]) -> str:
    if len(header) == 1 and "\t" not in header[0] and ";" in header[0]:
        return " (semicolon-separated: save from Excel as CSV, or as Unicode text)"
    return ""


def read_unis_csv(data: bytes, name: str = "UNIS export", *, digits: int = 9) -> list[UnisRecord]:
    """Every row, or :class:`UnisFileError` naming the first bad line; never a partial list."""
    return list(UnisReader(io.BytesIO(data), name, digits=digits))
