"""Reading what the branch attached: which documents, whether they open, the customer code."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree

from mailbot.domain.japanese import normalize
from mailbot.domain.model import Attachment
from mailbot.domain.policy import Limits

__all__ = [
    "DocumentText",
    "Readability",
    "customer_codes_in_text",
    "customer_codes_in_xlsx",
    "document_text",
    "inspect_attachment",
    "is_pdf",
    "is_xlsx",
    "name_says_nothing",
    "pdf_text",
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


def is_pdf(attachment: Attachment) -> bool:
    return _extension(attachment.filename) == ".pdf" or attachment.content_type.lower() == "application/pdf"


# -- what a document says of itself: a PDF's text layer, an .xlsx form's first cells ----------


@dataclass(frozen=True)
class DocumentText:
    """The text a document carries, and why none could be read (Japanese, for the case), if so.

    ``kind``: "" (read), ``no_text`` (a scan: pages without a text layer),
    ``encrypted`` (a password is needed to open it), ``broken`` (not a
    readable PDF), ``too_large`` (past a limit: a bomb), ``encoding`` (text
    in an encoding without a Unicode map), ``not_read`` (a kind never read).
    """

    text: str
    problem: str = ""
    kind: str = ""

    @property
    def title(self) -> str:
        """The first lines: where a form names itself (回線単品申込書, not a 加入申込書 mentioning it)."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        return "\n".join(lines[:_TITLE_LINES])


_TITLE_LINES = 6
# Characters a text layer without a Unicode map decodes to: the replacement character,
# private-use code points and control characters.
_UNMAPPED = re.compile(r"[\ufffd\ue000-\uf8ff\x00-\x08\x0b\x0c\x0e-\x1f]")


def _unmapped(text: str) -> bool:
    visible = [c for c in text if not c.isspace()]
    return len(visible) >= 4 and len(_UNMAPPED.findall(text)) * 3 > len(visible)


# Reading is pure (bytes in, text out), so each PDF of a thread is read once, not at every check and reply.
# Keyed by the payload's digest: the cache keeps texts, never the (up to 50 MB) payloads.
_READ: dict[tuple[bytes, int, int], DocumentText] = {}
_READ_MAX = 256


def _pdf_text_cached(payload: bytes, max_pages: int, max_content: int) -> DocumentText:
    key = (hashlib.sha256(payload).digest(), max_pages, max_content)
    found = _READ.get(key)
    if found is None:
        if len(_READ) >= _READ_MAX:
            _READ.clear()
        found = _READ[key] = _read_pdf(payload, max_pages, max_content)
    return found


def _read_pdf(payload: bytes, max_pages: int, max_content: int) -> DocumentText:
    """The text of a PDF's first pages, or why it cannot be read.

    pypdf 7's configuration (a context variable, so nothing else is touched) stops any
    stream inflating past a few times the page limit, so a bomb is given up within
    milliseconds, and keeps it from running an external JBIG2 decoder; older pypdf
    stops at its own 75 MB (about 0.2 s).
    """
    import contextlib

    import pypdf

    configure = getattr(pypdf, "apply_configuration", None)
    limits = (
        configure(zlib_maximum_output_length=max(4 * max_content, 1024 * 1024), jbig2dec_binary=None)
        if configure is not None
        else contextlib.nullcontext()
    )
    with limits:
        return _read_pdf_configured(payload, max_pages, max_content)


def _read_pdf_configured(payload: bytes, max_pages: int, max_content: int) -> DocumentText:
    import pypdf
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, WrongPasswordError

    try:
        reader = pypdf.PdfReader(io.BytesIO(payload), strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty password only to restrict printing: they open.
            try:
                opened = bool(reader.decrypt(""))
            except (WrongPasswordError, FileNotDecryptedError, NotImplementedError):
                opened = False
            except Exception:  # a cipher pypdf cannot run here: a PDF that cannot be opened
                opened = False
            if not opened:
                return DocumentText("", "パスワードで保護されていて開けません", "encrypted")
        parts: list[str] = []
        for index, page in enumerate(reader.pages):
            if index >= max_pages:
                break
            contents = page.get_contents()
            if contents is not None and len(contents.get_data()) > max_content:
                problem = "ページの内容が大きすぎるため読み取りを打ち切りました"
                return DocumentText("\n".join(parts), problem, "too_large")
            parts.append(page.extract_text() or "")
    except LimitReachedError:
        return DocumentText("", "内容が大きすぎるため読み取りを打ち切りました", "too_large")
    except RecursionError:
        return DocumentText("", "PDFの構造が深すぎるため読み取れません", "broken")
    except Exception:  # whatever a damaged or hostile PDF makes pypdf raise: never a traceback
        return DocumentText("", "PDFの構造が壊れていて文字を読み取れません", "broken")
    text = "\n".join(parts)
    if _unmapped(text):
        return DocumentText("", "文字コードを判別できない文字で書かれていて読み取れません", "encoding")
    if not text.strip():
        return DocumentText("", "文字情報のないPDF(スキャン画像)です", "no_text")
    return DocumentText(text)


def pdf_text(payload: bytes, limits: Limits) -> DocumentText:
    """A PDF's text layer (CJK too, through the fonts' ToUnicode maps), within the limits' pages and sizes."""
    if b"%PDF-" not in payload[:1024]:
        return DocumentText("", "PDFとして開けません", "broken")
    return _pdf_text_cached(payload, limits.max_pdf_pages, limits.max_pdf_page_content_bytes)


def document_text(attachment: Attachment, limits: Limits) -> DocumentText:
    """What a document says of itself: a PDF's text layer, an .xlsx form's sheet names and first cells."""
    if is_pdf(attachment):
        return pdf_text(attachment.payload, limits)
    if is_xlsx(attachment):
        return DocumentText(xlsx_title_text(attachment, limits))
    return DocumentText("", "", "not_read")


# Words a scanner, a phone or an office suite names a file with: they say nothing of the document.
_NAMELESS_WORDS = frozenset(
    {
        "scan", "scans", "scanned", "scanner", "img", "image", "images", "photo", "doc", "docs", "document",
        "documents", "file", "pdf", "untitled", "skm", "mfp", "ricoh", "canon", "xerox", "fujixerox", "fujifilm",
        "apeos", "docucentre", "sharp", "kyocera", "konica", "minolta", "bizhub", "epson", "brother", "toshiba",
        "無題", "名称未設定", "ドキュメント", "スキャン", "新規", "文書", "画像", "複合機", "新しいドキュメント",
    }
)  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+")


def name_says_nothing(filename: str) -> bool:
    """``scan0001.pdf``, ``SKM_C25826120709150.pdf``, ``IMG_2034.pdf``, ``無題.pdf``: a name that names no document."""
    stem = normalize(filename).casefold()
    dot = stem.rfind(".")
    stem = stem[:dot] if dot > 0 else stem
    return all(word in _NAMELESS_WORDS or (word.isascii() and len(word) <= 2) for word in _WORD.findall(stem))


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
        if b"/Encrypt" in payload and pdf_text(payload, limits).kind == "encrypted":
            return Readability(False, "パスワードで保護されていて開けません", "password")
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


# A form's customer code sits near its top: the labels are looked for in this corner only.
_FORM_ROWS = 500
_FORM_COLUMNS = 60
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL_REF = re.compile(r"([A-Z]{1,3})([0-9]+)$")


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _text_of(element: ElementTree.Element) -> str:
    """The text of a string item: its runs, without the phonetic guide (ふりがな, ``rPh``)."""
    if element.tag == _MAIN + "t":
        return element.text or ""
    parts: list[str] = []
    for child in element:
        if child.tag == _MAIN + "t":
            parts.append(child.text or "")
        elif child.tag == _MAIN + "r":
            parts.extend(t.text or "" for t in child.iter(_MAIN + "t"))
    return "".join(parts)


def _shared_strings(archive: zipfile.ZipFile) -> list[str]:
    try:
        data = archive.read("xl/sharedStrings.xml")
    except KeyError:
        return []
    return [_text_of(item) for item in ElementTree.fromstring(data).iter(_MAIN + "si")]


def _sheet_parts(archive: zipfile.ZipFile) -> list[str]:
    """The worksheets' part names in the workbook's order (charts and macros left out)."""
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels.iter(_PACKAGE_REL + "Relationship")}
    parts: list[str] = []
    for sheet in workbook.iter(_MAIN + "sheet"):
        target = targets.get(sheet.get(_REL + "id"), "")
        part = target.lstrip("/") if target.startswith("/") else "xl/" + target
        if "worksheets/" in part:
            parts.append(part)
    return parts


def _cell_value(cell: ElementTree.Element, strings: Sequence[str]) -> object:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find(_MAIN + "is")
        return _text_of(inline) if inline is not None else None
    value = cell.findtext(_MAIN + "v")
    if value is None:
        return None
    if kind == "s":
        index = int(value)
        return strings[index] if 0 <= index < len(strings) else None
    if kind == "n":
        number = float(value)
        return int(number) if number.is_integer() and "." not in value and "E" not in value.upper() else number
    return value  # str (a formula's text), b, e: as written


def _form_cells(archive: zipfile.ZipFile, part: str, strings: Sequence[str]) -> dict[tuple[int, int], object]:
    """The non-empty values of a sheet's top-left corner, by (row, column), 1-based.

    The sheet is streamed and left as soon as the rows pass the corner, so a
    long sheet costs no more than a short one.
    """
    cells: dict[tuple[int, int], object] = {}
    row_number = 0
    with archive.open(part) as stream:
        for _event, element in ElementTree.iterparse(stream, events=("end",)):
            if element.tag == _MAIN + "row":
                row_number = int(element.get("r", row_number + 1))
                if row_number > _FORM_ROWS:
                    break
                column_number = 0
                for cell in element.iter(_MAIN + "c"):
                    match = _CELL_REF.match(cell.get("r", ""))
                    column_number = _column_number(match.group(1)) if match else column_number + 1
                    if column_number > _FORM_COLUMNS:
                        break
                    value = _cell_value(cell, strings)
                    if value is not None:
                        cells[(row_number, column_number)] = value
                element.clear()
    return cells


def customer_codes_in_xlsx(attachment: Attachment, labels: Iterable[str], digits: int, limits: Limits) -> list[str]:
    """Customer codes in an .xlsx form: in a labelled cell or right of / below the label.

    The workbook's XML is read directly, only the shared strings and the cells
    of each sheet's top-left corner: a spreadsheet library would also build the
    styles, themes and drawings of every form, ten times the work.
    """
    guarded = _zip_guard(attachment.payload, limits)
    if isinstance(guarded, Readability):
        return []
    labels = tuple(labels)
    folded_labels = tuple(normalize(label).casefold() for label in labels)
    pattern = _label_pattern(labels)
    found: list[str] = []
    with guarded as archive:
        try:
            strings = _shared_strings(archive)
            sheets = [_form_cells(archive, part, strings) for part in _sheet_parts(archive)]
        except (*_ZIP_ERRORS, KeyError, ElementTree.ParseError):
            # Not a workbook after all, or a damaged part: it names no code.
            return []
    for cells in sheets:
        for (row, column), cell_value in cells.items():
            if not isinstance(cell_value, str):
                continue
            text = normalize(cell_value)
            if not any(label in text.casefold() for label in folded_labels):
                continue
            found.extend(_codes_from_matches(pattern.findall(text), digits))
            for r, c in ((row, column + 1), (row, column + 2), (row + 1, column)):
                neighbour = cells.get((r, c))
                if neighbour is None:
                    continue
                value = normalize(str(neighbour)).strip()
                if isinstance(neighbour, float) and neighbour.is_integer():
                    value = str(int(neighbour))
                found.extend(_codes_from_matches([value], digits))
                break
    return list(dict.fromkeys(found))


# An .xlsx form names itself in its sheet names and its first rows.
_TITLE_ROWS = 6


def xlsx_title_text(attachment: Attachment, limits: Limits) -> str:
    """The sheet names and the text of the first rows' cells, one line each (empty when it does not open)."""
    guarded = _zip_guard(attachment.payload, limits)
    if isinstance(guarded, Readability):
        return ""
    lines: list[str] = []
    with guarded as archive:
        try:
            workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            lines += [sheet.get("name", "") for sheet in workbook.iter(_MAIN + "sheet")]
            strings = _shared_strings(archive)
            for part in _sheet_parts(archive)[:1]:
                cells = _form_cells(archive, part, strings)
                for row in range(1, _TITLE_ROWS + 1):
                    values = [str(v) for (r, _c), v in sorted(cells.items()) if r == row and isinstance(v, str)]
                    if values:
                        lines.append(" ".join(values))
        except (*_ZIP_ERRORS, KeyError, ElementTree.ParseError):
            return ""
    return "\n".join(line for line in lines if line)
