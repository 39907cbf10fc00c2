"""What each defect tells the reply template: the facts the branch reads in 返却 mail."""

from __future__ import annotations

from dataclasses import replace

from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.checks import build_submission, run_checks
from mailbot.domain.model import Defect, ParsedMessage
from mailbot.domain.policy import DocumentRule, Flow, Policy
from mailbot.domain.unis import SnapshotLookup
from tests.domain.builders import (
    CODE,
    DIRECTORY,
    FORM,
    MANAGER,
    NOW,
    POLICY,
    customer,
    line,
    pdf,
    request,
    unis,
    xlsx_form,
)

REPLY_SUBJECT = "RE: [FE-2026-00001] フレッツエスカ 渋谷支店"
UBD_POLICY = replace(POLICY, ubd_domains=("ubd.example.jp",))
UBD_SENDER = "UBD 受付 <uketsuke@ubd.example.jp>"


def defects(
    *messages: ParsedMessage,
    lookup: SnapshotLookup | None = None,
    policy: Policy = POLICY,
    directory: BranchDirectory = DIRECTORY,
) -> list[Defect]:
    submission = build_submission(list(messages), directory, lookup or unis(customer()), policy)
    return run_checks(submission, policy)


def only(found: list[Defect]) -> Defect:
    [defect] = found
    return defect


# --- the customer code ------------------------------------------------------------------------


def test_a_missing_code_with_a_pdf_form_tells_the_branch_to_write_the_code_in_the_mail() -> None:
    found = only(defects(request(body="よろしくお願いします。")))
    assert found == Defect("customer_code_missing", {"digits": "9", "pdf": "1"})


def test_a_pdf_named_in_capitals_counts_as_a_pdf_form() -> None:
    scan = request(body="よろしくお願いします。", attachments=[("回線単品申込書.PDF", pdf())])
    assert only(defects(scan)).detail["pdf"] == "1"


def test_a_missing_code_with_a_spreadsheet_form_does_not_mention_pdf() -> None:
    form = ("回線単品申込書.xlsx", xlsx_form(label="住所", value="東京都渋谷区"))
    found = only(defects(request(body="よろしくお願いします。", attachments=[form])))
    assert found == Defect("customer_code_missing", {"digits": "9", "pdf": ""})


def test_the_digits_of_the_code_come_from_the_policy() -> None:
    ten = replace(POLICY, customer_code_digits=10)
    found = only(defects(request(body="顧客CD:123456789"), policy=ten))
    assert found.detail["digits"] == "10"


def test_a_ubd_request_without_a_code_is_not_returned_for_it_ops_asks_instead() -> None:
    assert defects(request(sender=UBD_SENDER, body="取次をお願いします。"), policy=UBD_POLICY) == []


def test_a_ubd_request_is_not_checked_against_unis() -> None:
    # 事務センター registers the UBD partner's orders; UNIS may not know the customer yet.
    ubd = request(sender=UBD_SENDER)
    assert defects(ubd, lookup=unis(), policy=UBD_POLICY) == []
    no_line = unis(customer(lines=(), customer_class="9"))
    assert defects(ubd, lookup=no_line, policy=UBD_POLICY) == []


def test_only_the_first_mail_of_the_thread_says_whether_the_ubd_partner_sent_it() -> None:
    branch_first = request(body="よろしくお願いします。")
    ubd_reply = request(sender=UBD_SENDER, subject=REPLY_SUBJECT, body="確認します")
    assert [d.code for d in defects(branch_first, ubd_reply, policy=UBD_POLICY)] == ["customer_code_missing"]


def test_two_codes_in_one_mail_are_named_and_neither_is_looked_up_in_unis() -> None:
    found = defects(request(body=f"顧客CD:{CODE}\n顧客CD:987654321\n"), lookup=unis())
    assert found == [Defect("customer_code_multiple", {"codes": f"{CODE}, 987654321"})]


# --- UNIS ----------------------------------------------------------------------------------------


def test_a_customer_unis_does_not_know_is_named_with_the_snapshot_time() -> None:
    found = only(defects(request(), lookup=unis(as_of=NOW)))
    assert found == Defect("unis_customer_missing", {"customer_code": CODE, "unis_as_of": NOW.isoformat()})


def test_without_a_snapshot_time_the_defect_names_none() -> None:
    found = only(defects(request(), lookup=unis(as_of=None)))
    assert found.detail["unis_as_of"] == ""


def test_a_customer_without_an_open_brokerage_line_is_named_with_its_name() -> None:
    found = only(defects(request(), lookup=unis(customer(lines=(line(state="確定"),)))))
    detail = {"customer_code": CODE, "customer_name": "株式会社さくら商事", "unis_as_of": NOW.isoformat()}
    assert found == Defect("unis_order_missing", detail)


def test_a_non_subscriber_customer_is_named_with_its_name() -> None:
    found = only(defects(request(), lookup=unis(customer(customer_class="9"))))
    detail = {
        "customer_code": CODE,
        "customer_name": "株式会社さくら商事",
        "customer_class": "9",
        "non_subscriber": "1",
        "unis_as_of": NOW.isoformat(),
    }
    assert found == Defect("unis_customer_class", detail)


# --- the branch and its managers --------------------------------------------------------------


def test_an_unknown_branch_is_named_as_the_subject_wrote_it() -> None:
    assert only(defects(request(subject="フレッツエスカ 名古屋"))) == Defect("branch_unknown", {"branch": "名古屋"})
    assert only(defects(request(subject="フレッツエスカ 名古屋支店営業課"))).detail == {"branch": "名古屋支店"}


def test_a_missing_manager_names_the_branch_and_every_manager() -> None:
    two = BranchDirectory([Branch("渋谷支店", managers=(MANAGER, "shibuya-vice@usen.co.jp"))])
    found = only(defects(request(cc=[]), directory=two))
    assert found == Defect(
        "manager_cc_missing", {"branch": "渋谷支店", "managers": f"{MANAGER}, shibuya-vice@usen.co.jp"}
    )


def test_a_manager_configured_in_capitals_is_recognised_in_the_cc() -> None:
    capitals = BranchDirectory([Branch("渋谷支店", managers=("Shibuya-Mgr@USEN.co.jp",))])
    assert defects(request(cc=[f"支店長 <{MANAGER}>"]), directory=capitals) == []


def test_a_branch_without_configured_managers_needs_no_manager_copy() -> None:
    assert defects(request(cc=[]), directory=BranchDirectory([Branch("渋谷支店")])) == []


# --- documents ----------------------------------------------------------------------------------


def test_a_missing_form_names_the_document_and_what_was_received() -> None:
    found = only(defects(request(attachments=[("地図.pdf", pdf()), ("現場写真.jpg", b"\xff\xd8\xff")])))
    assert found == Defect("attachment_missing", {"document": "回線単品申込書", "received": "地図.pdf, 現場写真.jpg"})


def test_a_missing_form_of_a_flow_names_the_flow() -> None:
    quick = Flow("即決", keywords=("即決",), documents=(DocumentRule("即決申込書", ("即決申込書",)),))
    policy = replace(POLICY, flows=(quick,))
    found = only(defects(request(body=f"即決でお願いします。\n顧客CD:{CODE}"), policy=policy))
    assert found == Defect("attachment_missing", {"document": "即決申込書", "received": FORM[0], "flow": "即決"})


def test_a_flow_without_its_own_documents_is_not_named() -> None:
    usual = replace(POLICY, flows=(Flow("通常"),))
    found = only(defects(request(attachments=[]), policy=usual))
    assert found == Defect("attachment_missing", {"document": "回線単品申込書", "received": ""})


def test_an_optional_document_may_be_left_out() -> None:
    optional = replace(POLICY, documents=(*POLICY.documents, DocumentRule("地図", ("地図",), required=False)))
    assert defects(request(), policy=optional) == []


def test_an_unreadable_file_is_named_with_its_problem_and_kind() -> None:
    found = only(defects(request(attachments=[FORM, ("地図.pdf", b"not a pdf")])))
    detail = {"filename": "地図.pdf", "problem": "PDFとして開けません", "kind": "wrong_type"}
    assert found == Defect("attachment_unreadable", detail)


def test_a_damaged_signature_part_is_not_an_unreadable_document() -> None:
    signed = request(attachments=[FORM, ("smime.p7s", b"")])
    assert defects(signed) == []


def test_a_broken_form_is_replaced_by_a_readable_form_of_the_same_name() -> None:
    first = request(attachments=[("回線単品申込書.xlsx", b"PK\x03\x04 broken")])
    reply = request(subject=REPLY_SUBJECT, attachments=[("回線単品申込書.xlsx", xlsx_form())])
    assert defects(first, reply) == []


def test_a_broken_file_is_not_replaced_by_some_other_readable_file() -> None:
    first = request(attachments=[FORM, ("地図.pdf", b"not a pdf")])
    reply = request(subject=REPLY_SUBJECT, attachments=[("現場写真.jpg", b"\xff\xd8\xff")])
    assert [d.code for d in defects(first, reply)] == ["attachment_unreadable"]


def test_a_broken_file_is_not_replaced_by_another_broken_copy() -> None:
    first = request(attachments=[FORM, ("地図.pdf", b"not a pdf")])
    reply = request(subject=REPLY_SUBJECT, attachments=[("地図.pdf", b"still not a pdf")])
    assert [d.detail["filename"] for d in defects(first, reply)] == ["地図.pdf", "地図.pdf"]


# --- reading the thread -----------------------------------------------------------------------


def test_a_subject_naming_the_branch_with_a_department_finds_the_branch() -> None:
    assert defects(request(subject="フレッツエスカ 渋谷支店営業課 株式会社さくら")) == []


def test_a_code_in_the_text_and_another_in_the_form_are_two_customers() -> None:
    form = ("回線単品申込書.xlsx", xlsx_form(value="987654321"))
    found = defects(request(body=f"顧客CD:{CODE}", attachments=[form]))
    assert found == [Defect("customer_code_multiple", {"codes": f"{CODE}, 987654321"})]


def test_a_forwarded_request_whose_code_is_only_in_the_forwarded_part_takes_the_first_code_there() -> None:
    body = f"転送します。\n\n-----Original Message-----\n顧客CD:{CODE}\n顧客CD:987654321\n"
    submission = build_submission([request(body=body)], DIRECTORY, unis(customer()), POLICY)
    assert submission.customer_codes == (CODE,)
    assert defects(request(body=body)) == []


def test_two_codes_are_not_looked_up_so_no_unis_defect_is_claimed_for_either() -> None:
    no_line = unis(customer(lines=(), customer_class="9"))
    found = defects(request(body=f"顧客CD:{CODE}\n顧客CD:987654321\n"), lookup=no_line)
    assert [d.code for d in found] == ["customer_code_multiple"]


def test_a_flow_for_a_region_is_chosen_by_the_branch_the_subject_names() -> None:
    osaka_form = DocumentRule("大阪申込書", ("大阪申込書",))
    policy = replace(POLICY, flows=(Flow("大阪", regions=("大阪",), documents=(osaka_form,)),))
    found = defects(request(subject="フレッツエスカ 大阪支店", cc=["osaka-mgr@usen.co.jp"]), policy=policy)
    assert [(d.code, d.detail.get("flow")) for d in found] == [("attachment_missing", "大阪")]


def test_a_broken_form_sent_after_a_readable_one_still_counts() -> None:
    first = request(attachments=[FORM])
    reply = request(subject=REPLY_SUBJECT, attachments=[("回線単品申込書.pdf", b"not a pdf")])
    assert [d.code for d in defects(first, reply)] == ["attachment_unreadable"]


def test_a_broken_file_after_a_signature_part_is_still_reported() -> None:
    signed = request(attachments=[("smime.p7s", b"0\x82"), FORM, ("地図.pdf", b"not a pdf")])
    assert [d.detail["filename"] for d in defects(signed)] == ["地図.pdf"]
