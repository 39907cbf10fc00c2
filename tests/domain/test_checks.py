import pytest

from mailbot.domain.checks import CHECKS, UNIS_CODES, build_submission, run_checks
from mailbot.domain.model import Defect, ParsedMessage
from mailbot.domain.unis import SnapshotLookup
from tests.domain.builders import (
    CODE,
    DESK,
    DIRECTORY,
    FORM,
    MANAGER,
    POLICY,
    customer,
    encrypted_zip,
    line,
    request,
    unis,
    xlsx_form,
    zip_bomb,
)


def codes(message: ParsedMessage | list[ParsedMessage], lookup: SnapshotLookup | None = None) -> list[str]:
    messages = message if isinstance(message, list) else [message]
    submission = build_submission(messages, DIRECTORY, lookup or unis(customer()), POLICY)
    return [d.code for d in run_checks(submission, POLICY)]


def defects(message: ParsedMessage, lookup: SnapshotLookup | None = None) -> list[Defect]:
    submission = build_submission([message], DIRECTORY, lookup or unis(customer()), POLICY)
    return run_checks(submission, POLICY)


def test_the_check_table_has_one_unit_per_defect_code_with_a_description() -> None:
    names = [c.name for c in CHECKS]
    assert names == [
        "subject_form",
        "branch_missing",
        "branch_unknown",
        "manager_cc_missing",
        "ubd_branch_unknown",
        "attachment_missing",
        "attachment_unreadable",
        "customer_code_missing",
        "customer_code_multiple",
        "unis_customer_missing",
        "unis_order_missing",
        "unis_order_taken",
        "unis_customer_class",
        "unis_customer_cancelled",
        "unis_line_contract",
        "unis_line_values",
    ]
    assert all(c.description for c in CHECKS)
    assert set(names) >= UNIS_CODES


@pytest.mark.parametrize("style", ["outlook", "gmail", "iphone"])
def test_a_complete_request_has_no_defects(style: str) -> None:
    assert codes(request(style=style)) == []


def test_a_subject_without_a_branch_is_branch_missing() -> None:
    assert codes(request(subject="フレッツエスカ")) == ["branch_missing"]


def test_an_unknown_branch_is_named_in_the_defect() -> None:
    found = defects(request(subject="フレッツエスカ 名古屋支店 (株式会社さくら)"))
    assert [d.code for d in found] == ["branch_unknown"]
    assert found[0].detail["branch"] == "名古屋支店"


def test_a_branch_alias_in_half_width_katakana_subject_is_recognised() -> None:
    assert codes(request(subject="ﾌﾚｯﾂｴｽｶ 渋谷")) == []


def test_the_manager_must_be_in_to_or_cc() -> None:
    assert codes(request(cc=[])) == ["manager_cc_missing"]
    assert codes(request(cc=[], to=["f-desk@mxb.usen.co.jp", "shibuya-mgr@usen.co.jp"])) == []


def test_a_manager_who_sends_the_request_needs_no_cc() -> None:
    assert codes(request(sender="Shibuya Manager <shibuya-mgr@usen.co.jp>", cc=[])) == []


def test_another_branchs_manager_does_not_count() -> None:
    assert codes(request(cc=["osaka-mgr@usen.co.jp"])) == ["manager_cc_missing"]


def test_no_application_form_is_attachment_missing_and_names_the_document() -> None:
    found = defects(request(attachments=[("地図.pdf", b"%PDF-1.4 map")]))
    assert [d.code for d in found] == ["attachment_missing"]
    assert found[0].detail["document"] == "回線単品申込書"


@pytest.mark.parametrize(
    ("filename", "payload", "problem"),
    [
        ("回線単品申込書.pdf", b"", "空"),
        ("回線単品申込書.pdf", b"this is not a pdf", "PDF"),
        ("回線単品申込書.zip", encrypted_zip(), "パスワード"),
        ("回線単品申込書.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "パスワード"),
        ("回線単品申込書.xlsx", b"PK\x03\x04 truncated", "壊れ"),
        # Sales staff are told it cannot be opened, not why a ZIP looks hostile.
        ("回線単品申込書.xlsx", zip_bomb(), "開けません"),
    ],
)
def test_an_attachment_that_cannot_be_opened_is_unreadable(filename: str, payload: bytes, problem: str) -> None:
    found = defects(request(attachments=[(filename, payload)]))
    assert [d.code for d in found] == ["attachment_unreadable"]
    assert found[0].detail["filename"] == filename
    assert problem in found[0].detail["problem"]


def test_a_request_without_customer_code_is_customer_code_missing() -> None:
    assert codes(request(body="よろしくお願いします。")) == ["customer_code_missing"]


@pytest.mark.parametrize(
    "body",
    [
        f"顧客CD：{CODE}",
        "顧客コード １２３４５６７８９",
        "お客様コード:123-456-789",
        "ｺｷｬｸCDではなく 顧客ｺｰﾄﾞ: 123456789",
    ],
)
def test_the_customer_code_is_read_from_the_body_in_any_width(body: str) -> None:
    assert codes(request(body=body)) == []


def test_a_code_with_the_wrong_number_of_digits_does_not_count() -> None:
    assert codes(request(body="顧客CD:12345678")) == ["customer_code_missing"]


@pytest.mark.parametrize(("label", "value", "below"), [("顧客CD", CODE, False), ("顧客コード", int(CODE), True)])
def test_the_customer_code_is_read_from_an_attached_xlsx_form(label: str, value: object, below: bool) -> None:
    form = ("回線単品申込書.xlsx", xlsx_form(label, value, below=below))
    assert codes(request(body="申込書を添付します。", attachments=[form])) == []


def test_an_unknown_customer_is_unis_customer_missing() -> None:
    found = defects(request(), unis())
    assert [d.code for d in found] == ["unis_customer_missing"]
    assert found[0].detail["customer_code"] == CODE


@pytest.mark.parametrize("lines", [(), (line(state="確定"),), (line(item="U100001"),)])
def test_a_customer_without_an_open_brokerage_line_is_unis_order_missing(lines: tuple) -> None:
    assert codes(request(), unis(customer(lines=lines))) == ["unis_order_missing"]


@pytest.mark.parametrize("klass", ["9", "9:未加入店", "未加入店"])
def test_a_non_subscriber_customer_class_is_unis_customer_class(klass: str) -> None:
    assert codes(request(), unis(customer(customer_class=klass))) == ["unis_customer_class"]


def test_documents_from_every_message_of_the_thread_count() -> None:
    first = request(attachments=[])
    reply = request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店", attachments=[FORM], body="添付します")
    assert codes([first]) == ["attachment_missing"]
    assert codes([first, reply]) == []


def test_defects_come_in_the_order_of_the_check_table() -> None:
    found = codes(request(subject="フレッツエスカ", body="", attachments=[]))
    assert found == ["branch_missing", "attachment_missing", "customer_code_missing"]


def test_a_zip_whose_compressed_data_is_damaged_is_unreadable_not_a_crash() -> None:
    # Found by the fuzz test: testzip() raises zlib.error on a damaged deflate stream.
    import io
    import zipfile

    form = bytearray(xlsx_form())
    info = zipfile.ZipFile(io.BytesIO(bytes(form))).getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start, start + info.compress_size):
        form[i] ^= 0x5A
    found = defects(request(attachments=[("回線単品申込書.xlsx", bytes(form))]))
    assert [d.code for d in found] == ["attachment_unreadable"]
    assert "壊れ" in found[0].detail["problem"]


def test_a_resubmission_can_correct_the_branch_in_its_subject() -> None:
    first = request(subject="フレッツエスカ 名古屋支店")
    reply = request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店", body=f"顧客CD:{CODE} 件名を直しました")
    assert codes([first]) == ["branch_unknown"]
    assert codes([first, reply]) == []


def test_a_reply_without_the_keyword_keeps_the_branch_of_the_request() -> None:
    first = request(cc=[])
    reply = request(subject="RE: 支店長をCCしました", cc=["shibuya-mgr@usen.co.jp"])
    assert codes([first, reply]) == []


@pytest.mark.parametrize(
    "body",
    [
        f"顧客CD：{CODE}\n2026年12月開通希望",
        f"顧客CD:{CODE}\n03-1234-5678 (渋谷 太郎)",
        f"顧客CD:{CODE} 03-1234-5678",
        "顧客CD:123-456-789 TEL 03-1234-5678",
        f"【顧客CD】\n\n{CODE}\n以上",
        f"顧客コードは {CODE} です",
    ],
)
def test_the_customer_code_is_found_beside_other_numbers_and_across_a_line_break(body: str) -> None:
    from mailbot.domain.documents import customer_codes_in_text

    assert customer_codes_in_text(body, POLICY.customer_code_labels, 9) == [CODE]


@pytest.mark.parametrize("body", ["顧客CD:1234567890", "顧客CD:12345678 90", "顧客CD:\n\n本文のみ 123456789"])
def test_a_run_that_is_not_exactly_one_code_is_not_taken(body: str) -> None:
    from mailbot.domain.documents import customer_codes_in_text

    assert customer_codes_in_text(body, POLICY.customer_code_labels, 9) == []


def test_a_broken_form_replaced_by_a_readable_one_in_a_later_mail_no_longer_counts() -> None:
    first = request(attachments=[("回線単品申込書.xlsx", b"PK\x03\x04 broken")])
    reply = request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店", attachments=[FORM])
    assert codes([first]) == ["attachment_unreadable"]
    assert codes([first, reply]) == []


def test_a_broken_file_that_nothing_replaced_still_counts_in_a_resubmission() -> None:
    first = request(attachments=[FORM, ("地図.pdf", b"not a pdf")])
    reply = request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店", attachments=[])
    assert codes([first, reply]) == ["attachment_unreadable"]


def test_a_resubmission_naming_another_customer_code_replaces_the_code_of_the_request() -> None:
    # The branch corrects a mistyped code in its reply: the newest code in the thread is the customer.
    first = request(body="顧客CD:987654321")
    reply = request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店", body=f"顧客CDを訂正します。顧客CD:{CODE}")
    submission = build_submission([first, reply], DIRECTORY, unis(customer()), POLICY)
    assert submission.customer_code == CODE
    assert submission.customer is not None and submission.customer.code == CODE
    assert codes([first, reply]) == []
    assert codes([reply, first]) == ["unis_customer_missing"]


def test_the_branch_manager_sending_a_resubmission_counts_as_the_managers_copy() -> None:
    # Only the manager's own reply in the thread brings the manager in: sender, not To/Cc.
    first = request(cc=[])
    by_manager = request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店", sender=MANAGER, to=[DESK], cc=[])
    assert codes([first]) == ["manager_cc_missing"]
    assert codes([first, by_manager]) == []
