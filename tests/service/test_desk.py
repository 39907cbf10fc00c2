"""The desk in the loop: a clerk's actions, staff mail, branch questions, several customers in one mail.

Everything runs through a real bot (Maildir, the database of each backend,
the outbox directory): the mails a command produces are the .eml files
delivered, the history is what `cases show --json` reads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mailbot.domain.lifecycle import Event
from mailbot.service import views
from mailbot.service.errors import DeskError
from tests.domain.builders import FORM
from tests.fixtures.bot import CLERK, CUSTOMER, DESK, OPS, Harness, unis_row
from tests.service.test_intake import request


def detail(h: Harness, case_no: str) -> dict[str, Any]:
    with h.app.sessions() as session:
        return views.case_detail(
            session, case_no, directory=h.app.config.branches, policy=h.app.config.policy, checks=h.app.intake.checks
        )


def events(h: Harness, case_no: str) -> list[tuple[str, str, str, str | None]]:
    return [(e["event"], e["actor"], e["reason"], e["note"]) for e in detail(h, case_no)["events"]]


def returned_case(h: Harness, **overrides: Any) -> str:
    h.import_unis()
    h.deliver(request(cc=[], **overrides))
    h.poll()
    [case] = h.cases()
    assert case["status"] == "returned"
    return str(case["case_no"])


def reply_to(h: Harness, kind: str, index: int = -1) -> str:
    return str(h.outbox(kind)[index]["message_id"])


def answer(h: Harness, case_no: str, kind: str = "defect_reply", **overrides: Any) -> None:
    """Deliver a reply to the bot's last mail of ``kind``, with no attachment unless given."""
    arguments: dict[str, Any] = {
        "subject": f"RE: フレッツエスカ 渋谷支店 [{case_no}]",
        "in_reply_to": reply_to(h, kind),
        "attachments": [],
        "cc": [],
    }
    arguments.update(overrides)
    h.deliver(request(**arguments))


# -- desk actions ------------------------------------------------------------------------------
def test_a_clerk_accepts_a_returned_case_and_the_branch_gets_the_receipt_with_the_note(desk: Harness) -> None:
    case_no = returned_case(desk)
    result = desk.app.desk.accept(case_no, by="山田", note="副支店長がCCに入っていたため受付")
    desk.app.intake.deliver_outbox()
    assert result.mails == ("receipt", "ops_accepted")
    [case] = desk.cases()
    assert (case["status"], case["stage"], case["decided_by"]) == ("accepted", "accepted", "山田")
    [receipt] = desk.sent_mail("receipt")
    assert receipt["To"] == "taro@usen.co.jp"
    assert receipt["In-Reply-To"].strip() == desk.messages()[0]["message_id"]
    assert "納品デスクより: 副支店長がCCに入っていたため受付" in receipt.get_content()
    [notice] = desk.sent_mail("ops_accepted")
    assert "山田 さんの操作" in notice.get_content()
    assert events(desk, case_no)[-1] == ("accept", "山田", "desk", "副支店長がCCに入っていたため受付")


def test_a_clerk_returns_an_accepted_case_with_a_remark_and_the_defect_it_names(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request())
    desk.poll()
    [case] = desk.cases()
    assert case["status"] == "accepted"
    desk.app.desk.return_case(
        case["case_no"], by="佐藤", note="申込書の印鑑が不鮮明です", defects=["attachment_unreadable"]
    )
    desk.app.intake.deliver_outbox()
    [case] = desk.cases()
    assert (case["status"], case["stage"], case["defects"], case["return_count"]) == (
        "returned", "received", ["attachment_unreadable"], 1,
    )  # fmt: skip
    [reply] = desk.sent_mail("defect_reply")
    body = reply.get_content()
    assert "納品デスクより: 申込書の印鑑が不鮮明です" in body
    assert "添付ファイルが開けません" in body
    assert events(desk, case["case_no"])[-1] == ("return", "佐藤", "desk", "申込書の印鑑が不鮮明です")


def test_a_return_naming_an_unknown_defect_code_is_refused_with_the_codes_that_exist(desk: Harness) -> None:
    case_no = returned_case(desk)
    with pytest.raises(DeskError, match="manager_cc_missing"):
        desk.app.desk.return_case(case_no, by="佐藤", note="x", defects=["no_such_defect"])
    assert len(desk.outbox()) == 2  # only the bot's own defect reply and notice


def test_a_note_is_recorded_with_its_author_and_sends_no_mail(desk: Harness) -> None:
    case_no = returned_case(desk)
    before = len(desk.outbox())
    desk.app.desk.note(case_no, "支店に電話済み、明日再送予定", by="山田")
    assert len(desk.outbox()) == before
    assert events(desk, case_no)[-1] == ("note", "山田", "desk", "支店に電話済み、明日再送予定")


def test_act_records_any_event_the_transition_table_allows_and_refuses_one_it_does_not(desk: Harness) -> None:
    # What a new desk action's handler calls: the table, not the caller, decides where the case goes.
    case_no = returned_case(desk)
    desk.app.desk.act(case_no, Event.CLOSE, by="山田", note="重複")
    assert desk.cases()[0]["stage"] == "closed"
    assert events(desk, case_no)[-1] == ("close", "山田", "desk", "重複")
    with pytest.raises(DeskError):
        desk.app.desk.act(case_no, Event.CLOSE, by="山田", note="二度目")


def test_a_closed_case_no_longer_waits_and_later_mail_in_its_thread_goes_to_ops(desk: Harness) -> None:
    case_no = returned_case(desk)
    desk.app.desk.close(case_no, by="山田", reason="別の依頼で再送されたため")
    assert desk.cases()[0]["stage"] == "closed"
    answer(desk, case_no, attachments=[FORM])
    desk.poll()
    assert [m["reason"] for m in desk.messages()] == ["new_request", "followup"]
    assert [o["kind"] for o in desk.outbox()] == ["defect_reply", "ops_returned", "ops_followup"]
    [notice] = desk.sent_mail("ops_followup")
    assert "終了した案件" in notice.get_content()
    with pytest.raises(DeskError, match="終了"):
        desk.app.desk.accept(case_no, by="山田")
    desk.app.desk.reopen(case_no, by="山田", reason="誤って終了")
    assert (desk.cases()[0]["stage"], desk.cases()[0]["status"]) == ("received", "returned")
    assert [e[0] for e in events(desk, case_no)] == ["return", "close", "followup", "reopen"]


def test_an_outside_mail_released_from_quarantine_is_filed_and_no_outsider_gets_mail(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request(sender="営業 <sales@partner.example.com>"))
    desk.poll()
    [item] = [m for m in desk.messages() if m["disposition"] == "quarantined"]
    with desk.app.sessions() as session:
        [row] = views.quarantine_rows(session)
    assert set(row) >= {"id", "message_id", "sender", "subject", "reason", "received_at"}
    assert (row["sender"], row["reason"]) == ("sales@partner.example.com", "outside_domain")
    result = desk.app.desk.release(row["id"], by="山田", reason="UBDからの正式な依頼")
    desk.app.intake.deliver_outbox()
    assert result.case_no == "FE-2026-00001"
    [case] = desk.cases()
    assert case["status"] == "accepted" and case["decided_by"] == "山田"
    for mail in desk.outbox():
        assert all(a.endswith("@usen.co.jp") for a in (*mail["to"], *mail["cc"])), mail
    # No receipt: its only addressee would be the outsider. Ops hears why.
    assert desk.outbox("receipt") == []
    [notice] = desk.sent_mail("ops_accepted")
    assert "社内の宛先がないため" in notice.get_content()
    with desk.app.sessions() as session:
        assert views.quarantine_rows(session) == []
    with pytest.raises(DeskError, match="処理済み"):
        desk.app.desk.release(row["id"], by="佐藤")
    assert item["message_id"] == row["message_id"]
    assert events(desk, "FE-2026-00001")[0][1] == "山田"


def test_a_discarded_quarantined_mail_is_recorded_with_who_and_why(desk: Harness) -> None:
    desk.deliver(request(sender="spam@example.com"))
    desk.poll()
    with desk.app.sessions() as session:
        [row] = views.quarantine_rows(session)
    desk.app.desk.discard(row["id"], by="山田", reason="迷惑メール")
    with desk.app.sessions() as session:
        assert views.quarantine_rows(session) == []
        [done] = views.quarantine_rows(session, include_resolved=True)
    assert (done["resolution"], done["resolved_by"], done["resolution_note"]) == ("discarded", "山田", "迷惑メール")
    assert desk.cases() == []


def test_a_receipt_the_reply_cap_held_back_is_sent_when_a_clerk_resends_it(desk: Harness) -> None:
    cap = desk.app.config.policy.max_replies_per_sender_per_hour
    desk.import_unis([unis_row(line=f"{n:03d}") for n in range(cap + 1)])  # a line for each request
    for i in range(cap + 1):
        desk.deliver(request(subject=f"フレッツエスカ 渋谷支店 {i}"))
    desk.poll()
    [held] = [o for o in desk.outbox("receipt") if o["status"] == "suppressed"]
    assert held["last_error"] == "held back: cap"
    desk.app.desk.resend(held["id"], by="山田")
    desk.app.intake.deliver_outbox()
    [again] = [o for o in desk.outbox("receipt") if o["id"] == held["id"]]
    assert again["status"] == "sent"
    assert len(desk.sent_mail("receipt")) == cap + 1
    assert events(desk, held["case_no"])[-1][:2] == ("mail_resent", "山田")
    with pytest.raises(DeskError, match="送信済み"):
        desk.app.desk.resend(held["id"], by="山田")


def test_a_pending_mail_cancelled_by_a_clerk_is_never_sent(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request())
    desk.app.intake.poll_once(deliver=False)
    [receipt] = desk.outbox("receipt")
    desk.app.desk.cancel(receipt["id"], by="山田")
    desk.app.intake.deliver_outbox()
    assert desk.outbox("receipt")[0]["status"] == "cancelled"
    assert desk.sent_mail("receipt") == []
    assert events(desk, receipt["case_no"])[-1][:2] == ("mail_cancelled", "山田")


# -- staff and questions -------------------------------------------------------------------------
def test_a_clerks_reply_in_a_case_thread_is_recorded_and_gets_no_automatic_answer(desk: Harness) -> None:
    case_no = returned_case(desk)
    before = len(desk.outbox())
    answer(desk, case_no, sender=f"納品デスク 山田 <{CLERK}>", to=["taro@usen.co.jp", DESK], body="電話で確認します")
    desk.poll()
    assert [m["reason"] for m in desk.messages()] == ["new_request", "staff_message"]
    assert len(desk.outbox()) == before
    assert desk.cases()[0]["return_count"] == 1
    assert events(desk, case_no)[-1][:3] == ("staff_message", "mailbot", "staff_message")


def test_a_reply_to_a_notice_sent_to_ops_is_never_a_resubmission(desk: Harness) -> None:
    case_no = returned_case(desk)
    before = len(desk.outbox())
    answer(desk, case_no, "ops_returned", sender="課長 <kacho@usen.co.jp>", body="了解です",
           subject=f"RE: [mailbot] 返却 {case_no} 渋谷支店")  # fmt: skip
    desk.poll()
    assert desk.messages()[-1]["reason"] == "staff_message"
    assert len(desk.outbox()) == before


def test_a_branch_question_in_reply_to_a_return_is_forwarded_to_ops_with_its_text(desk: Harness) -> None:
    case_no = returned_case(desk)
    answer(desk, case_no, body="顧客CDはどこで確認できますか?\n\n-----Original Message-----\n顧客CD 123456789 は…")
    desk.poll()
    assert desk.messages()[-1]["reason"] == "question"
    assert [o["kind"] for o in desk.outbox()] == ["defect_reply", "ops_returned", "ops_question"]
    [question] = desk.sent_mail("ops_question")
    text = question.get_content()
    assert "顧客CDはどこで確認できますか?" in text and "Original Message" not in text
    assert f"mailbot cases accept {case_no}" in text
    assert desk.cases()[0]["return_count"] == 1


# -- customers ------------------------------------------------------------------------------------------
def test_one_mail_naming_two_customers_is_returned_asking_for_one_mail_each_and_nothing_is_dropped(
    desk: Harness,
) -> None:
    desk.import_unis()
    desk.deliver(request(body="顧客CD:100000001\n顧客CD:100000008\n"))
    desk.poll()
    [case] = desk.cases()
    assert case["status"] == "returned" and case["defects"] == ["customer_code_multiple"]
    [reply] = desk.sent_mail("defect_reply")
    assert "100000001, 100000008" in reply.get_content()
    assert "お客様ごとに1通ずつ" in reply.get_content()


def test_the_same_customer_twice_is_flagged_in_the_notice_and_in_cases_show(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request())
    desk.deliver(request(subject="フレッツエスカ 渋谷支店 再送"))
    desk.poll()
    notices = desk.sent_mail("ops_accepted")
    assert "同じ顧客CDの案件がほかにもあります: FE-2026-00001" in notices[1].get_content()
    assert detail(desk, "FE-2026-00002")["same_customer"] == ["FE-2026-00001"]


def test_a_second_request_for_a_customer_whose_only_line_is_taken_names_the_case_holding_it(desk: Harness) -> None:
    desk.import_unis([unis_row()], as_of=desk.clock() + timedelta(minutes=5))
    desk.deliver(request())
    desk.poll()
    desk.deliver(request(subject="フレッツエスカ 渋谷支店 再送"))
    desk.clock.advance(minutes=1)
    desk.poll()
    first, second = desk.cases()
    assert (first["status"], first["unis_line"]) == ("accepted", "C0001/001")
    assert (second["status"], second["defects"], second["unis_line"]) == ("returned", ["unis_order_taken"], None)
    reply = desk.sent_mail("defect_reply")[0].get_content()
    assert "C0001/001(FE-2026-00001)" in reply and "取次明細を1件、受注登録して" in reply


def test_a_clerk_binds_a_case_to_another_line_of_its_customer_with_who_and_why(desk: Harness) -> None:
    desk.import_unis([unis_row(), unis_row(line="002"), unis_row(line="003", state="確定")])
    desk.deliver(request())
    desk.poll()
    # Neither line has a 受注登録日 (the standard export): the last exported is taken.
    assert detail(desk, "FE-2026-00001")["unis_line"] == "C0001/002"
    result = desk.app.desk.bind("FE-2026-00001", "Ｃ0001/001", by="山田", reason="支店に確認済み")
    assert "C0001/001 に紐付けました" in result.summary
    shown = detail(desk, "FE-2026-00001")
    assert shown["unis_line"] == "C0001/001"
    assert shown["events"][-1]["event"] == "bind" and "変更前: C0001/002" in shown["events"][-1]["note"]
    with pytest.raises(DeskError, match="Z200214の明細 C0001/009 がありません"):
        desk.app.desk.bind("FE-2026-00001", "C0001/009", by="山田", reason="x")
    with pytest.raises(DeskError, match="契約No/明細No"):
        desk.app.desk.bind("FE-2026-00001", "C0001", by="山田", reason="x")


def test_a_reused_message_id_with_other_content_is_a_new_request_and_ops_is_told(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request(message_id="<same@usen.co.jp>"))
    desk.deliver(request(message_id="<same@usen.co.jp>"))  # a redelivery: the same mail
    desk.deliver(request(message_id="<same@usen.co.jp>", subject="フレッツエスカ 新宿支店", sender="hana@usen.co.jp"))
    desk.poll()
    assert [m["reason"] for m in desk.messages()] == ["new_request", "duplicate", "new_request"]
    assert len(desk.cases()) == 2
    assert "以前に受信した別の内容のメールと同じです" in desk.sent_mail("ops_returned")[0].get_content()


def test_cases_are_found_by_customer_name_in_any_width_by_sender_and_by_text(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request(body=f"顧客CD:{CUSTOMER}\n光回線の新設です"))
    desk.poll()
    assert [c["case_no"] for c in desk.cases(customer="さくら")] == ["FE-2026-00001"]
    assert [c["case_no"] for c in desk.cases(customer="ｻｸﾗ")] == []  # katakana is not hiragana
    assert [c["case_no"] for c in desk.cases(customer="株式会社 さくら")] == ["FE-2026-00001"]
    assert [c["case_no"] for c in desk.cases(customer="１２３４５")] == ["FE-2026-00001"]
    assert [c["case_no"] for c in desk.cases(sender="taro@")] == ["FE-2026-00001"]
    assert [c["case_no"] for c in desk.cases(text="光回線")] == ["FE-2026-00001"]
    assert desk.cases(text="存在しない語") == []
    [row] = desk.cases()
    assert (row["customer_name"], row["sender"]) == ("株式会社さくら商事", "taro@usen.co.jp")


def test_ops_notices_carry_the_mail_text_its_attachments_and_the_contact_goes_to_the_branch(desk: Harness) -> None:
    returned_case(desk)
    [notice] = desk.sent_mail("ops_returned")
    text = notice.get_content()
    assert f"顧客CD:{CUSTOMER}" in text and FORM[0] in text
    assert "mailbot cases return FE-2026-00001" in text
    [reply] = desk.sent_mail("defect_reply")
    body = reply.get_content()
    assert "納品デスク(内線 2345)" in body and DESK not in body
    assert "返信が再送として自動で確認されます" in body
    assert OPS not in body
