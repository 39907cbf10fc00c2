"""Documents read by their content, through the whole bot, in mails as Outlook, Gmail and iPhone Mail send them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.bot import CUSTOMER, DESK, SHIBUYA_MGR, Harness
from tests.fixtures.pdfs import bomb_pdf, form_html, image_only_html, unmapped_pdf
from tests.mailfactory import build_mail

STYLES = ["outlook", "gmail", "iphone"]
Printer = Callable[[str], bytes]


def mail(style: str, attachments: list[tuple[str, bytes]], body: str = "取次をお願いします。\n") -> bytes:
    return build_mail(
        style=style,  # type: ignore[arg-type]
        subject="フレッツエスカ 渋谷支店",
        sender="渋谷 太郎 <taro@usen.co.jp>",
        to=[DESK],
        cc=[SHIBUYA_MGR],
        body=body,
        attachments=attachments,
    )


def form(print_pdf: Printer) -> bytes:
    return print_pdf(form_html("回線単品申込書", {"顧客CD": CUSTOMER, "お客様名": "株式会社さくら商事"}))


@pytest.mark.parametrize("style", STYLES)
def test_a_scanner_named_form_with_its_code_in_the_pdf_is_accepted(
    harness: Harness, print_pdf: Printer, style: str
) -> None:
    harness.import_unis()
    harness.deliver(mail(style, [("scan0001.pdf", form(print_pdf))]))
    harness.poll()
    [case] = harness.cases()
    assert (case["status"], case["customer_code"]) == ("accepted", CUSTOMER)


@pytest.mark.parametrize("style", STYLES)
def test_an_image_only_scan_waits_for_the_desk_who_accepts_it(harness: Harness, print_pdf: Printer, style: str) -> None:
    harness.import_unis()
    harness.deliver(mail(style, [("scan0001.pdf", print_pdf(image_only_html()))], body=f"顧客CD:{CUSTOMER}\n"))
    harness.poll()
    [case] = harness.cases()
    assert (case["status"], case["defects"]) == ("needs_review", ["document_unrecognised"])
    assert [o["kind"] for o in harness.outbox()] == ["ops_review"]
    [notice] = harness.sent_mail("ops_review")
    text = notice.get_content()
    assert "scan0001.pdf" in text and "要確認" in str(notice["Subject"])
    harness.app.desk.accept(case["case_no"], by="山田", note="スキャンを確認しました")
    assert harness.cases()[0]["status"] == "accepted"
    assert len(harness.outbox("receipt")) == 1


@pytest.mark.parametrize("payload", [bomb_pdf(), unmapped_pdf(), b"%PDF-1.7\n" + b"\x00broken" * 100])
def test_a_hostile_pdf_is_filed_with_a_reason_not_a_failure(harness: Harness, payload: bytes) -> None:
    harness.import_unis()
    harness.deliver(mail("outlook", [("scan0001.pdf", payload)], body=f"顧客CD:{CUSTOMER}\n"))
    report = harness.poll()
    assert report.failed == 0
    [case] = harness.cases()
    assert case["status"] == "needs_review"
    [notice] = harness.sent_mail("ops_review")
    assert "scan0001.pdf" in notice.get_content()


def test_a_clerk_returning_an_unrecognised_scan_tells_the_branch_how_to_name_it(harness: Harness) -> None:
    harness.import_unis()
    scan = ("scan0001.pdf", b"%PDF-1.7\n" + b"\x00scan" * 100)
    harness.deliver(mail("gmail", [scan], body=f"顧客CD:{CUSTOMER}\n"))
    harness.poll()
    [case] = harness.cases()
    harness.app.desk.return_case(case["case_no"], by="山田", note="申込書ではありませんでした")
    harness.app.intake.deliver_outbox()
    [reply] = harness.sent_mail("defect_reply")
    text = reply.get_content()
    assert "ファイル名に「回線単品申込書」を含めて" in text and "申込書ではありませんでした" in text
