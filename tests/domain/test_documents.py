"""What the bot makes of each attachment: opens, refused and why, the customer code in it."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from mailbot.domain.documents import (
    Readability,
    customer_codes_in_text,
    customer_codes_in_xlsx,
    inspect_attachment,
    is_signature,
    is_xlsx,
)
from mailbot.domain.model import Attachment
from mailbot.domain.policy import DEFAULT_CODE_LABELS, Limits
from tests.domain.builders import CODE, encrypted_zip, pdf, xlsx_form

LIMITS = Limits()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

CORRUPT = Readability(False, "ファイルが壊れていて開けません", "corrupt")
UNSAFE = Readability(False, "ファイルを開けません", "unsafe")
WRONG_IMAGE = Readability(False, "画像として開けません", "wrong_type")


def inspect(filename: str, payload: bytes, limits: Limits = LIMITS) -> Readability:
    return inspect_attachment(Attachment(filename, "application/octet-stream", payload), limits)


def office(members: dict[str, bytes] | None = None, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An Office Open XML container: [Content_Types].xml and the given parts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        for name, data in (members or {"word/document.xml": b"<w:document/>"}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def plain_zip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def with_flag_bits(payload: bytes, bits: int) -> bytes:
    """The ZIP with ``bits`` set in every entry's general-purpose flag (local and central headers)."""
    data = bytearray(payload)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start >= 0:
            (flags,) = struct.unpack_from("<H", data, start + offset)
            struct.pack_into("<H", data, start + offset, flags | bits)
            start = data.find(signature, start + 4)
    return bytes(data)


def total_size(payload: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return sum(m.file_size for m in archive.infolist())


# --- empty files -----------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x00" * 4096, b"\r\n", b"  \t \r\n\x00"],
    ids=["zero bytes", "preallocated zeros", "a blank line", "blanks and zeros"],
)
def test_an_attachment_with_nothing_in_it_is_refused_as_empty(payload: bytes) -> None:
    assert inspect("回線単品申込書.pdf", payload) == Readability(False, "ファイルが空です", "empty")


def test_an_attachment_of_one_real_byte_is_not_empty() -> None:
    assert inspect("メモ.txt", b"\x00 a\x00").ok


# --- PDF -------------------------------------------------------------------------


def test_a_pdf_form_opens() -> None:
    assert inspect("回線単品申込書_株式会社さくら.pdf", pdf()) == Readability(True)


def test_a_pdf_extension_in_capitals_is_still_checked_as_a_pdf() -> None:
    assert inspect("SCAN0001.PDF", b"\xff\xd8\xff\xe0 a photo renamed") == Readability(
        False, "PDFとして開けません", "wrong_type"
    )


def test_a_word_file_renamed_to_pdf_is_refused_as_the_wrong_type() -> None:
    assert inspect("申込書.pdf", office()) == Readability(False, "PDFとして開けません", "wrong_type")


def test_a_pdf_whose_header_follows_scanner_junk_within_the_first_kilobyte_opens() -> None:
    # Readers accept the %PDF- header anywhere in the first 1024 bytes.
    assert inspect("scan.pdf", b"\x00junk" * 203 + b"\n" * 4 + pdf()).ok  # header at byte 1019
    assert not inspect("scan.pdf", b"\x00junk" * 204 + pdf()).ok  # header at byte 1020


def test_only_the_pdf_header_of_a_pdf_is_looked_at_not_its_name() -> None:
    # A file called 申込書.v2.pdf is a PDF; the last dot decides the type.
    assert inspect("申込書.v2.pdf", b"not a pdf").kind == "wrong_type"
    assert inspect("申込書.pdf.txt", b"not a pdf").ok


# --- Office files and ZIP archives ---------------------------------------------------


def test_an_xlsx_form_opens() -> None:
    assert inspect("回線単品申込書.xlsx", xlsx_form()) == Readability(True)


@pytest.mark.parametrize("filename", ["申込書.xlsx", "申込書.xlsm", "申込書.docx", "提案書.pptx"])
def test_a_password_protected_office_file_is_refused_as_password_protected(filename: str) -> None:
    # Office wraps an encrypted .xlsx in an OLE compound file.
    assert inspect(filename, OLE + b"\x00" * 504) == Readability(
        False, "パスワードで保護されていて開けません", "password"
    )


def test_an_old_excel_file_renamed_to_zip_is_corrupt_not_password_protected() -> None:
    assert inspect("書類一式.zip", OLE + b"\x00" * 504) == CORRUPT


@pytest.mark.parametrize("filename", ["申込書.xlsx", "書類一式.zip", "提案書.PPTX"])
def test_an_office_file_or_zip_that_is_not_a_zip_is_corrupt(filename: str) -> None:
    assert inspect(filename, "<html>ダウンロードに失敗しました</html>".encode()) == CORRUPT


def test_a_zip_cut_short_in_transfer_is_corrupt() -> None:
    payload = office()
    assert inspect("申込書.docx", payload[: len(payload) // 2]) == CORRUPT


def test_a_zip_archive_of_documents_opens_without_office_parts() -> None:
    assert inspect("書類一式.zip", plain_zip({"申込書.pdf": pdf(), "地図.png": b"\x89PNG"})) == Readability(True)


def test_a_plain_zip_renamed_to_xlsx_is_refused_as_not_an_office_file() -> None:
    assert inspect("申込書.xlsx", plain_zip({"申込書.pdf": pdf()})) == Readability(
        False, "Officeファイルとして開けません", "wrong_type"
    )


def test_a_password_protected_zip_is_refused_as_an_encrypted_zip() -> None:
    assert inspect("書類一式.zip", encrypted_zip()) == Readability(
        False, "パスワード付きZIPのため開けません", "encrypted_zip"
    )


def test_zip_flags_other_than_encryption_do_not_refuse_a_file() -> None:
    # Bit 1 is deflate's "maximum compression" (7-Zip -mx9), bit 3 the data
    # descriptor streaming writers use; neither means a password.
    assert inspect("申込書.docx", with_flag_bits(office(), 0x2 | 0x8)) == Readability(True)
    assert inspect("申込書.docx", with_flag_bits(office(), 0x1)).kind == "encrypted_zip"


def test_a_zip_with_a_damaged_member_is_corrupt() -> None:
    document = b"<w:document>" + b"x" * 200 + b"</w:document>"
    payload = bytearray(office({"word/document.xml": document}, compression=zipfile.ZIP_STORED))
    body = payload.find(b"xxxx", payload.find(b"word/document.xml"))
    payload[body : body + 4] = b"yyyy"  # stored CRC no longer matches
    assert inspect("申込書.docx", bytes(payload)) == CORRUPT


def test_a_zip_whose_compressed_data_does_not_inflate_is_corrupt() -> None:
    payload = bytearray(office({"word/document.xml": bytes(range(256)) * 8}))
    name = payload.find(b"word/document.xml")
    start = name + len("word/document.xml")
    payload[start : start + 40] = b"\xff" * 40  # not a deflate stream
    assert inspect("申込書.docx", bytes(payload)) == CORRUPT


def test_a_zip_bomb_is_refused_as_unsafe() -> None:
    bomb = office({"xl/big.xml": b"0" * (2 * 1024 * 1024)})
    assert inspect("申込書.xlsx", bomb, Limits(max_zip_uncompressed_bytes=1024 * 1024)) == UNSAFE


def test_a_zip_expanding_to_exactly_the_size_limit_opens() -> None:
    payload = office({"word/document.xml": "<w:t>申込</w:t>".encode() * 100})
    size = total_size(payload)
    assert inspect("申込書.docx", payload, Limits(max_zip_uncompressed_bytes=size)).ok
    assert inspect("申込書.docx", payload, Limits(max_zip_uncompressed_bytes=size - 1)) == UNSAFE


def test_a_zip_with_more_members_than_allowed_is_refused_as_unsafe() -> None:
    payload = office({f"word/media/image{n}.png": b"\x89PNG" for n in range(3)})  # four members
    assert inspect("申込書.docx", payload, Limits(max_zip_members=4)).ok
    assert inspect("申込書.docx", payload, Limits(max_zip_members=3)) == UNSAFE


def test_a_zip_expanding_beyond_the_compression_ratio_is_refused_as_unsafe() -> None:
    payload = office({"word/document.xml": b"0" * 100_000})
    ratio = total_size(payload) / len(payload)
    assert inspect("申込書.docx", payload, Limits(max_zip_ratio=int(ratio) + 1)).ok
    assert inspect("申込書.docx", payload, Limits(max_zip_ratio=int(ratio))) == UNSAFE


def test_a_zip_expanding_to_exactly_the_compression_ratio_opens() -> None:
    # Find a member size whose archive expands exactly an integer number of times.
    for size in range(20_000, 60_000, 7):
        payload = plain_zip({"data.bin": b"0" * size}, compression=zipfile.ZIP_DEFLATED)
        total = total_size(payload)
        if total % len(payload) == 0:
            break
    else:
        pytest.fail("no archive with an integer ratio found")
    limits = Limits(max_zip_ratio=total // len(payload))
    assert inspect("書類一式.zip", payload, limits).ok


# --- images and everything else ---------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "payload"),
    [
        ("現場写真.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
        ("現場写真.JPEG", b"\xff\xd8\xff\xe1\x00\x10Exif"),
        ("地図.png", b"\x89PNG\r\n\x1a\n"),
    ],
)
def test_a_photo_that_is_what_its_name_says_opens(filename: str, payload: bytes) -> None:
    assert inspect(filename, payload) == Readability(True)


@pytest.mark.parametrize(
    ("filename", "payload"),
    [
        ("現場写真.jpg", b"\x89PNG\r\n\x1a\n"),
        ("現場写真.jpeg", b"<html>"),
        ("地図.png", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
    ],
)
def test_a_photo_that_is_not_what_its_name_says_is_refused_as_the_wrong_type(filename: str, payload: bytes) -> None:
    assert inspect(filename, payload) == WRONG_IMAGE


@pytest.mark.parametrize("filename", ["メモ.txt", "申込書.doc", "README", "地図.heic"])
def test_other_files_are_not_inspected(filename: str) -> None:
    assert inspect(filename, b"\x89PNG not looked at") == Readability(True)


# --- signatures and spreadsheets ----------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("smime.p7s", "application/pkcs7-signature"),
        ("smime.p7s", "Application/X-PKCS7-Signature"),
        ("signature", "application/pkcs7-signature"),
        ("署名.P7S", "application/octet-stream"),
        ("signature.asc", "application/octet-stream"),
        ("mail.sig", "application/octet-stream"),
    ],
)
def test_a_signature_part_is_not_a_document(filename: str, content_type: str) -> None:
    assert is_signature(Attachment(filename, content_type, b"0\x82"))


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("申込書.pdf", "application/pdf"), ("signature.pdf", "application/pdf"), ("asc", "text/plain")],
)
def test_a_document_is_not_a_signature(filename: str, content_type: str) -> None:
    assert not is_signature(Attachment(filename, content_type, b"%PDF-"))


@pytest.mark.parametrize(
    ("filename", "expected"), [("申込書.xlsx", True), ("申込書.XLSM", True), ("申込書.xls", False)]
)
def test_only_office_open_xml_workbooks_are_read_as_spreadsheets(filename: str, expected: bool) -> None:
    assert is_xlsx(Attachment(filename, XLSX, b"")) is expected


# --- customer codes -----------------------------------------------------------------


def codes_in_text(text: str) -> list[str]:
    return customer_codes_in_text(text, DEFAULT_CODE_LABELS, 9)


def codes_in_form(payload: bytes, limits: Limits = LIMITS) -> list[str]:
    return customer_codes_in_xlsx(Attachment("回線単品申込書.xlsx", XLSX, payload), DEFAULT_CODE_LABELS, 9, limits)


@pytest.mark.parametrize(
    "text",
    [
        "顧客CD:123456789",
        "顧客コード：１２３４５６７８９",
        "【顧客番号】123-456-789",
        "お客様コードは 123 456 789 です",
        "顧客cd=123456789",
    ],
)
def test_a_customer_code_is_read_next_to_any_label_in_any_width(text: str) -> None:
    assert codes_in_text(text) == [CODE]


def test_a_code_followed_by_a_phone_number_is_only_the_code() -> None:
    assert codes_in_text("顧客CD 123456789 03-1234-5678") == [CODE]


def test_a_run_of_digits_that_does_not_split_into_a_code_is_no_code() -> None:
    assert codes_in_text("顧客CD:12345-6789012") == []
    assert codes_in_text("顧客CD:1234567") == []


def test_a_label_alone_on_its_line_takes_the_code_on_the_next_non_empty_line() -> None:
    assert codes_in_text("顧客CD\n\n123456789\n") == [CODE]


def test_a_label_alone_followed_by_text_takes_no_code() -> None:
    assert codes_in_text("顧客CD\nよろしくお願いします 123456789\n") == []


def test_the_same_code_written_twice_is_one_code_and_two_codes_keep_their_order() -> None:
    assert codes_in_text("顧客CD:987654321\n顧客CD:123456789\n顧客コード:987654321") == ["987654321", CODE]


def test_a_code_to_the_right_of_the_label_in_a_form_is_read() -> None:
    assert codes_in_form(xlsx_form()) == [CODE]


def test_a_code_typed_as_a_number_in_a_form_is_read_without_a_decimal_point() -> None:
    assert codes_in_form(xlsx_form(value=123456789.0)) == [CODE]
    assert codes_in_form(xlsx_form(value=123456789)) == [CODE]


def test_a_code_below_the_label_in_a_form_is_read() -> None:
    assert codes_in_form(xlsx_form(below=True)) == [CODE]


def test_a_code_inside_the_label_cell_of_a_form_is_read() -> None:
    assert codes_in_form(xlsx_form(label="顧客CD: 123-456-789", value=None)) == [CODE]


def test_a_form_without_the_label_has_no_code() -> None:
    assert codes_in_form(xlsx_form(label="電話番号", value="031234567")) == []


def test_a_spreadsheet_the_bot_may_not_open_yields_no_code() -> None:
    assert codes_in_form(xlsx_form(), Limits(max_zip_members=1)) == []
    assert codes_in_form(b"PK\x03\x04 cut short") == []


def workbook(*sheets: dict[str, object]) -> bytes:
    """A workbook whose sheets hold the given cells (``{"A3": "顧客CD", ...}``)."""
    from openpyxl import Workbook

    book = Workbook()
    first = book.active
    assert first is not None
    for index, cells in enumerate(sheets):
        sheet = first if index == 0 else book.create_sheet(f"Sheet{index + 1}")
        for ref, value in cells.items():
            sheet[ref] = value  # type: ignore[assignment]
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_code_two_cells_right_of_the_label_is_read_when_the_cell_between_is_empty() -> None:
    # Forms merge the label over two columns; the value then sits in the third.
    assert codes_in_form(workbook({"A3": "顧客CD", "C3": CODE})) == [CODE]


def test_the_nearest_filled_cell_right_of_the_label_is_the_code_not_the_one_below() -> None:
    form = workbook({"A3": "顧客コード", "B3": CODE, "A4": "987654321"})
    assert codes_in_form(form) == [CODE]


def test_a_code_below_the_label_is_read_when_nothing_is_right_of_it() -> None:
    assert codes_in_form(workbook({"B5": "お客様コード", "B6": "123-456-789"})) == [CODE]


def test_a_code_typed_in_full_width_digits_with_spaces_is_read() -> None:
    assert codes_in_form(workbook({"A3": "顧客番号", "B3": " １２３４５６７８９ "})) == [CODE]


def test_a_label_in_lower_case_or_half_width_is_still_the_label() -> None:
    assert codes_in_form(workbook({"A3": "顧客cd", "B3": CODE})) == [CODE]
    assert codes_in_form(workbook({"A3": "顧客ｺｰﾄﾞ", "B3": CODE})) == [CODE]


def test_a_code_on_a_later_sheet_of_the_form_is_read() -> None:
    assert codes_in_form(workbook({"A1": "表紙"}, {"D10": "顧客CD", "E10": CODE})) == [CODE]


def test_a_code_written_on_two_sheets_is_one_code_and_two_codes_keep_their_order() -> None:
    same = workbook({"A3": "顧客CD", "B3": CODE}, {"A3": "顧客CD", "B3": int(CODE)})
    assert codes_in_form(same) == [CODE]
    two = workbook({"A3": "顧客CD", "B3": "987654321"}, {"A3": "顧客CD", "B3": CODE})
    assert codes_in_form(two) == ["987654321", CODE]


def test_numbers_and_dates_in_the_form_are_not_taken_for_labels() -> None:
    assert codes_in_form(workbook({"A3": 123456789, "B3": CODE})) == []


def test_a_zip_that_is_not_a_workbook_yields_no_code() -> None:
    assert codes_in_form(plain_zip({"顧客CD.txt": f"顧客CD:{CODE}".encode()})) == []


def test_a_code_stored_in_scientific_notation_is_read_as_the_whole_number() -> None:
    # Some generators write numbers as 1.23456789E8; openpyxl reads that back as a float.
    form = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx_form(value=int(CODE)))) as source, zipfile.ZipFile(form, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b"<v>123456789</v>" in data
                data = data.replace(b"<v>123456789</v>", b"<v>1.23456789E8</v>")
            target.writestr(item, data)
    assert codes_in_form(form.getvalue()) == [CODE]


def test_a_row_numbered_before_its_label_still_gives_the_code() -> None:
    assert codes_in_form(workbook({"A3": 1, "B3": "顧客CD", "C3": CODE})) == [CODE]


def test_a_label_alone_on_the_last_line_takes_no_code() -> None:
    assert codes_in_text(f"お疲れ様です。{CODE}件\n顧客CD") == []


def test_a_label_alone_takes_the_code_on_the_very_next_line() -> None:
    assert codes_in_text(f"顧客CD\n{CODE}\n987654321") == [CODE]


def test_an_attachment_named_only_by_its_extension_is_checked_by_that_extension() -> None:
    # Mailers that lose a Japanese filename sometimes leave just ".pdf".
    assert inspect(".pdf", b"not a pdf").kind == "wrong_type"
