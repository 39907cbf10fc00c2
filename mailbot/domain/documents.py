"""Reading what the branch attached: which documents, whether they open, the customer code."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mailbot.domain.japanese import normalize
from mailbot.domain.model import Attachment
from mailbot.domain.policy import Limits

__all__ = [
    "Readability",
    "customer_codes_in_text",
    "customer_codes_in_xlsx",
    "inspect_attachment",
    "is_xlsx",
]

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # also what a password-protected .xlsx is
_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_EXTENSIONS = (".xlsx", ".xlsm", ".docx", ".pptx", ".zip")
_SIGNATURE_PARTS = ("application/pkcs7-signature", "application/x-pkcs7-signature")
# What a damaged or hostile ZIP makes the standard library raise.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class Readability:
    """Whether an attachment can be opened, and if not, why (Japanese, for the reply)."""

    ok: bool
    problem: str = ""
    # A stable code for the reply's wording: empty, corrupt, encrypted_zip,
    # password, unsafe (too many files, too large, abnormal ratio), wrong_type.
    kind: str = ""


def _extension(filename: str) -> str:
    name = filename.lower()
    dot = name.rfind(".")
    return name[dot:] if dot >= 0 else ""


def is_xlsx(attachment: Attachment) -> bool:
    return _extension(attachment.filename) in (".xlsx", ".xlsm")


def _zip_guard(payload: bytes, limits: Limits) -> Readability | zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = archive.infolist()
    except _ZIP_ERRORS:
        return Readability(False, "ファイルが壊れていて開けません", "corrupt")
    if len(members) > limits.max_zip_members:
        return Readability(False, "ファイルを開けません", "unsafe")
    if any(m.flag_bits & 0x1 for m in members):
        return Readability(False, "パスワード付きZIPのため開けません", "encrypted_zip")
    total = sum(m.file_size for m in members)
    if total > limits.max_zip_uncompressed_bytes:
        return Readability(False, "ファイルを開けません", "unsafe")
    # The archive opened, so the payload holds at least its 22-byte end record: never 0.
    if total > limits.max_zip_ratio * len(payload):
        return Readability(False, "ファイルを開けません", "unsafe")
    return archive


def inspect_attachment(attachment: Attachment, limits: Limits) -> Readability:
    """Cheap structural checks: never executes or renders the file."""
    payload = attachment.payload
    if not payload.strip(b"\x00 \r\n\t"):
        return Readability(False, "ファイルが空です", "empty")
    ext = _extension(attachment.filename)
    if ext == ".pdf":
        if b"%PDF-" not in payload[:1024]:
            return Readability(False, "PDFとして開けません", "wrong_type")
        return Readability(True)
    if ext in _ZIP_EXTENSIONS:
        if payload.startswith(_OLE_MAGIC) and ext != ".zip":
            return Readability(False, "パスワードで保護されていて開けません", "password")
        if not payload.startswith(_ZIP_MAGIC):
            return Readability(False, "ファイルが壊れていて開けません", "corrupt")
        guarded = _zip_guard(payload, limits)
        if isinstance(guarded, Readability):
            return guarded
        with guarded:
            if ext != ".zip" and "[Content_Types].xml" not in guarded.namelist():
                return Readability(False, "Officeファイルとして開けません", "wrong_type")
            try:
                broken = guarded.testzip()
            except _ZIP_ERRORS:
                return Readability(False, "ファイルが壊れていて開けません", "corrupt")
            if broken is not None:
                return Readability(False, "ファイルが壊れていて開けません", "corrupt")
        return Readability(True)
    if ext in (".jpg", ".jpeg") and not payload.startswith(b"\xff\xd8"):
        return Readability(False, "画像として開けません", "wrong_type")
    if ext == ".png" and not payload.startswith(b"\x89PNG"):
        return Readability(False, "画像として開けません", "wrong_type")
    return Readability(True)


def is_signature(attachment: Attachment) -> bool:
    """S/MIME signatures and similar parts are not documents."""
    return attachment.content_type.lower() in _SIGNATURE_PARTS or _extension(attachment.filename) in (
        ".p7s",
        ".asc",
        ".sig",
    )


_SEPARATOR = "-‐‑−–ー"  # hyphens people type inside a code, after NFKC
_CODE_RUN = rf"[0-9](?:[0-9]|[{_SEPARATOR} ](?=[0-9]))*"


def _label_pattern(labels: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(normalize(label)) for label in labels)
    # A label, optional punctuation or brackets, then digits in groups split by one - or space.
    return re.compile(rf"(?:{alternatives})\s*[:=】」』)\]]*\s*(?:は\s*)?({_CODE_RUN})?", re.IGNORECASE)


def _code_from_run(run: str, digits: int) -> str | None:
    """The first ``digits`` digits of a run, if they end at a group boundary.

    "123456789 03-1234-5678" is the code and then a phone number; the groups
    are added up until they make exactly one code.
    """
    total = ""
    for group in re.split(rf"[{_SEPARATOR} ]", run):
        total += group
        if len(total) == digits:
            return total
        if len(total) > digits:
            return None
    return None


def _codes_from_matches(found: Iterable[str], digits: int) -> Iterator[str]:
    for run in found:
        code = _code_from_run(run, digits) if run else None
        if code is not None:
            yield code


def customer_codes_in_text(text: str, labels: Iterable[str], digits: int) -> list[str]:
    """Customer codes written next to one of ``labels`` in ``text``, in order.

    Line by line, so the code never runs on into the next line; a label alone
    on its line takes the code at the start of the next non-empty line.
    """
    pattern = _label_pattern(labels)
    lines = [normalize(line) for line in text.splitlines()]
    found: list[str] = []
    for index, line in enumerate(lines):
        for match in pattern.finditer(line):
            run = match.group(1)
            if run is None and not line[match.end() :].strip():
                following = next((later for later in lines[index + 1 :] if later), "")
                lead = re.match(_CODE_RUN, following)
                run = lead.group(0) if lead else None
            found.extend(_codes_from_matches([run] if run else [], digits))
    return list(dict.fromkeys(found))


def customer_codes_in_xlsx(attachment: Attachment, labels: Iterable[str], digits: int, limits: Limits) -> list[str]:
    """Customer codes in an .xlsx form: in a labelled cell or right of / below the label."""
    guarded = _zip_guard(attachment.payload, limits)
    if isinstance(guarded, Readability):
        return []
    guarded.close()
    # openpyxl is imported lazily: most mails carry no spreadsheet.
    from openpyxl import load_workbook

    labels = tuple(labels)
    folded_labels = tuple(normalize(label).casefold() for label in labels)
    pattern = _label_pattern(labels)
    found: list[str] = []
    try:
        book = load_workbook(io.BytesIO(attachment.payload), read_only=False, data_only=True)
    except Exception:
        return []
    try:
        for sheet in book.worksheets:
            for row in sheet.iter_rows(max_row=min(sheet.max_row, 500), max_col=min(sheet.max_column, 60)):
                for cell in row:
                    if not isinstance(cell.value, str):
                        continue
                    text = normalize(cell.value)
                    if not any(label in text.casefold() for label in folded_labels):
                        continue
                    found.extend(_codes_from_matches(pattern.findall(text), digits))
                    for r, c in ((cell.row, cell.column + 1), (cell.row, cell.column + 2), (cell.row + 1, cell.column)):
                        neighbour = sheet.cell(row=r, column=c).value
                        if neighbour is None:
                            continue
                        value = normalize(str(neighbour)).strip()
                        if isinstance(neighbour, float) and neighbour.is_integer():
                            value = str(int(neighbour))
                        found.extend(_codes_from_matches([value], digits))
                        break
    finally:
        book.close()
    return list(dict.fromkeys(found))
