"""Documents read by their content: a PDF's text layer, as Chromium (a real writer, embedded CJK fonts) prints it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailbot.domain.checks import build_submission, not_checked, run_checks
from mailbot.domain.documents import document_text, name_says_nothing, pdf_text
from mailbot.domain.model import Attachment
from mailbot.domain.policy import Limits
from tests.domain.builders import CODE, DIRECTORY, POLICY, customer, request, unis
from tests.fixtures.pdfs import bomb_pdf, encrypted_pdf, form_html, image_only_html, text_pdf, unmapped_pdf

LIMITS = Limits()
Printer = Callable[[str], bytes]


def flets_form(print_pdf: Printer, code: str | None = CODE, branch: str = "渋谷支店") -> bytes:
    fields = {"お客様名": "株式会社みどり", "管轄支店": branch}
    if code:
        fields = {"顧客CD": code, **fields}
    return print_pdf(form_html("回線単品申込書", fields))


def codes_of(message_attachments: list[tuple[str, bytes]], body: str = "取次をお願いします。\n") -> list[str]:
    submission = build_submission(
        [request(attachments=message_attachments, body=body)], DIRECTORY, unis(customer()), POLICY
    )
    return [d.code for d in run_checks(submission, POLICY)]


def test_the_japanese_text_of_a_chromium_pdf_is_read_through_its_embedded_fonts(print_pdf: Printer) -> None:
    read = pdf_text(flets_form(print_pdf), LIMITS)
    assert read.kind == "" and read.title.splitlines()[0] == "回線単品申込書"
    assert CODE in read.text


@pytest.mark.parametrize(
    "filename", ["scan0001.pdf", "SKM_C25826120709150.pdf", "IMG_2034.PDF", "無題.pdf", "document(1).pdf"]
)
def test_a_scanner_named_form_is_recognised_by_its_title_text(print_pdf: Printer, filename: str) -> None:
    assert name_says_nothing(filename)
    assert codes_of([(filename, flets_form(print_pdf))]) == []


def test_a_bgm_application_alone_is_not_the_flets_form_whatever_its_name(print_pdf: Printer) -> None:
    bgm = print_pdf(form_html("BGM 加入申込書", {"顧客CD": CODE, "ご契約プラン": "業務用BGM"}))
    assert codes_of([("加入申込書.pdf", bgm)]) == ["attachment_missing"]
    assert codes_of([("申込書.pdf", bgm)]) == ["attachment_missing"]


def test_a_customer_code_printed_in_the_form_counts_like_one_in_the_body(print_pdf: Printer) -> None:
    assert codes_of([("scan0001.pdf", flets_form(print_pdf))]) == []
    assert codes_of([("scan0001.pdf", flets_form(print_pdf, code=None))]) == ["customer_code_missing"]


def test_a_form_and_a_body_naming_different_codes_is_the_multiple_codes_defect(print_pdf: Printer) -> None:
    found = codes_of([("回線単品申込書.pdf", flets_form(print_pdf))], body="顧客CD:987654321\n")
    assert found == ["customer_code_multiple"]


def test_an_image_only_scan_with_a_name_saying_nothing_waits_for_the_desk(print_pdf: Printer) -> None:
    scan = print_pdf(image_only_html())
    read = pdf_text(scan, LIMITS)
    assert (read.kind, read.text) == ("no_text", "")
    assert codes_of([("scan0001.pdf", scan)], body=f"顧客CD:{CODE}\n") == ["document_unrecognised"]


def test_an_image_only_scan_named_as_the_form_is_the_form(print_pdf: Printer) -> None:
    assert codes_of([("回線単品申込書_スキャン.pdf", print_pdf(image_only_html()))], body=f"顧客CD:{CODE}\n") == []


def test_a_named_map_without_text_is_no_form_and_is_returned(print_pdf: Printer) -> None:
    assert codes_of([("地図.pdf", print_pdf(image_only_html()))], body=f"顧客CD:{CODE}\n") == ["attachment_missing"]


def test_the_jurisdiction_line_of_the_form_names_a_ubd_requests_branch(print_pdf: Printer) -> None:
    from dataclasses import replace

    policy = replace(POLICY, ubd_domains=("ubd-net.example.jp",))
    message = request(sender="order@ubd-net.example.jp", subject="フレッツ光取次", cc=[], body="よろしくお願いします。",
                      attachments=[("scan0001.pdf", flets_form(print_pdf, branch="大阪支店"))])  # fmt: skip
    submission = build_submission([message], DIRECTORY, unis(), policy)
    assert submission.branch is not None and submission.branch.name == "大阪支店"


# --- bad input stays safe -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (bomb_pdf(), "too_large"),
        (unmapped_pdf(), "encoding"),
        (encrypted_pdf(), "encrypted"),
        (b"%PDF-1.7\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n" + b"\x00garbage" * 50, "broken"),
        (b"%PDF-1.4\n" + b"(" * 200_000, "broken"),
    ],
)
def test_a_hostile_or_broken_pdf_gives_a_reason_never_an_exception(payload: bytes, kind: str) -> None:
    read = pdf_text(payload, LIMITS)
    assert (read.kind, read.text) == (kind, "") and read.problem


def test_only_the_first_pages_of_a_long_pdf_are_read() -> None:
    read = pdf_text(text_pdf("Kaisen", pages=500), LIMITS)
    assert read.text.count("Kaisen") == LIMITS.max_pdf_pages


def test_a_page_whose_content_is_too_large_is_not_read() -> None:
    read = pdf_text(text_pdf("x" * 1000, pages=1), Limits(max_pdf_page_content_bytes=100))
    assert read.kind == "too_large"


def test_a_pdf_that_needs_a_password_is_an_unreadable_attachment_the_branch_can_fix() -> None:
    submission = build_submission(
        [request(attachments=[("回線単品申込書.pdf", encrypted_pdf())])], DIRECTORY, unis(customer()), POLICY
    )
    [defect] = run_checks(submission, POLICY)
    assert (defect.code, defect.detail["kind"]) == ("attachment_unreadable", "password")


def test_a_broken_pdf_named_as_nothing_is_reported_as_not_read_on_the_case() -> None:
    broken = ("scan0001.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)
    submission = build_submission(
        [request(attachments=[broken], body=f"顧客CD:{CODE}\n")], DIRECTORY, unis(customer()), POLICY
    )
    assert [d.code for d in run_checks(submission, POLICY)] == ["document_unrecognised"]
    [note] = [n for n in not_checked(submission, POLICY) if n.check == "attachment_missing"]
    assert "scan0001.pdf" in note.why and "壊れて" in note.why


def test_an_xlsx_form_names_itself_in_its_first_cells() -> None:
    from tests.domain.builders import xlsx_form

    form = Attachment("Book1.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xlsx_form())
    assert "回線単品申込書" in document_text(form, LIMITS).title
    assert codes_of([("Book1.xlsx", form.payload)]) == []


@pytest.mark.parametrize("filename", ["回線単品申込書.pdf", "地図.pdf", "さくら商事様_申込.pdf", "bgm_form.pdf"])
def test_a_name_with_words_of_its_own_says_something(filename: str) -> None:
    assert not name_says_nothing(filename)
