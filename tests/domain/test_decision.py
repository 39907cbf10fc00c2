from datetime import timedelta

from mailbot.domain.decision import CaseView, decide, redecide, reply_recipients
from mailbot.domain.model import CaseStatus, Disposition
from tests.domain.builders import (
    CODE,
    DIRECTORY,
    MANAGER,
    NOW,
    POLICY,
    customer,
    request,
    unis,
)


def run(message, *, lookup=None, case=None, duplicate=False, received_at=NOW, now=NOW, replies=0):
    return decide(
        message,
        received_at=received_at,
        now=now,
        case=case,
        duplicate=duplicate,
        directory=DIRECTORY,
        unis=lookup if lookup is not None else unis(customer()),
        policy=POLICY,
        replies_to_sender_last_hour=replies,
    )


def test_a_complete_request_is_accepted_with_a_receipt_and_an_ops_notice() -> None:
    decision = run(request())
    assert decision.disposition is Disposition.CASE
    assert decision.case is not None and decision.case.status is CaseStatus.ACCEPTED
    assert decision.case.customer_code == CODE
    assert [m.kind for m in decision.mails] == ["receipt", "ops_accepted"]


def test_a_defective_request_is_returned_into_the_thread() -> None:
    message = request(cc=[f"支店長 <{MANAGER}>", "colleague@usen.co.jp", "f-desk@mxb.usen.co.jp"], attachments=[])
    decision = run(message)
    assert decision.case is not None and decision.case.status is CaseStatus.RETURNED
    reply = decision.mails[0]
    assert reply.kind == "defect_reply"
    assert reply.reply_to is message
    assert reply.to == ("taro@usen.co.jp",)
    assert reply.cc == (MANAGER, "colleague@usen.co.jp")


def test_replies_never_go_outside_or_to_the_desk() -> None:
    message = request(cc=["partner@example.com", "f-desk@mxb.usen.co.jp", MANAGER])
    to, cc = reply_recipients(message, POLICY)
    assert to == ("taro@usen.co.jp",)
    assert cc == (MANAGER,)


def test_a_request_failing_only_unis_waits_when_the_snapshot_is_older_than_the_mail() -> None:
    stale = unis(as_of=NOW - timedelta(hours=5))
    decision = run(request(), lookup=stale)
    assert decision.case is not None and decision.case.status is CaseStatus.WAITING_UNIS
    assert decision.case.waiting_since == NOW
    # The branch hears that its request is on hold, and until when; ops too.
    assert [m.kind for m in decision.mails] == ["waiting_notice", "ops_waiting"]


def test_a_request_failing_unis_is_returned_when_the_snapshot_is_newer_than_the_mail() -> None:
    fresh = unis(as_of=NOW + timedelta(minutes=1))
    decision = run(request(), lookup=fresh)
    assert decision.case is not None and decision.case.status is CaseStatus.RETURNED


def test_a_snapshot_taken_at_the_very_moment_the_mail_arrived_is_current() -> None:
    # The export ran when the mail came in: it can say the customer is missing, so no wait.
    decision = run(request(), lookup=unis(as_of=NOW))
    assert decision.case is not None and decision.case.status is CaseStatus.RETURNED
    assert [d.code for d in decision.case.defects] == ["unis_customer_missing"]
    just_before = run(request(), lookup=unis(as_of=NOW - timedelta(seconds=1)))
    assert just_before.case is not None and just_before.case.status is CaseStatus.WAITING_UNIS


def test_without_any_snapshot_a_request_failing_only_unis_waits() -> None:
    decision = run(request(), lookup=unis(as_of=None))
    assert decision.case is not None and decision.case.status is CaseStatus.WAITING_UNIS


def test_a_thread_reply_delivered_twice_is_ignored_and_answered_once() -> None:
    reply = request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店", body=f"顧客CD:{CODE} 再送します")
    case = _returned_case(request(cc=[]), defects=("manager_cc_missing",))
    assert run(reply, case=case).reason == "resubmission"
    again = run(reply, case=case, duplicate=True)
    assert (again.disposition, again.reason, again.mails) == (Disposition.IGNORED, "duplicate", ())


def test_a_request_sent_by_the_branch_manager_without_any_cc_is_accepted() -> None:
    decision = run(request(sender=f"渋谷 支店長 <{MANAGER}>", cc=[]))
    assert decision.case is not None and decision.case.status is CaseStatus.ACCEPTED


def test_other_defects_are_returned_at_once_without_unis_claims_a_stale_snapshot_cannot_back() -> None:
    for lookup in (unis(as_of=None), unis(as_of=NOW - timedelta(hours=1))):
        decision = run(request(cc=[]), lookup=lookup)
        assert decision.case is not None and decision.case.status is CaseStatus.RETURNED
        assert [d.code for d in decision.case.defects] == ["manager_cc_missing"]


def test_unis_defects_join_the_others_once_the_snapshot_is_newer_than_the_mail() -> None:
    decision = run(request(cc=[]), lookup=unis(as_of=NOW + timedelta(minutes=1)))
    assert decision.case is not None
    assert [d.code for d in decision.case.defects] == ["manager_cc_missing", "unis_customer_missing"]


def test_a_waiting_case_is_accepted_after_the_customer_appears_in_unis() -> None:
    case = CaseView("FE-2026-00001", CaseStatus.WAITING_UNIS, (request(),), waiting_since=NOW)
    assert (
        redecide(case, directory=DIRECTORY, unis=unis(as_of=NOW - timedelta(hours=1)), policy=POLICY, now=NOW) is None
    )
    result = redecide(
        case,
        directory=DIRECTORY,
        unis=unis(customer(), as_of=NOW + timedelta(hours=2)),
        policy=POLICY,
        now=NOW + timedelta(hours=3),
    )
    assert result is not None
    outcome, mails = result
    assert outcome.status is CaseStatus.ACCEPTED
    assert [m.kind for m in mails] == ["receipt", "ops_accepted"]


def test_a_waiting_case_is_returned_when_the_wait_runs_out() -> None:
    case = CaseView("FE-2026-00001", CaseStatus.WAITING_UNIS, (request(),), waiting_since=NOW)
    later = NOW + timedelta(hours=POLICY.unis_max_wait_hours, minutes=1)
    result = redecide(case, directory=DIRECTORY, unis=unis(as_of=NOW - timedelta(hours=1)), policy=POLICY, now=later)
    assert result is not None
    assert result[0].status is CaseStatus.RETURNED
    assert [m.kind for m in result[1]] == ["defect_reply", "ops_returned"]


def test_a_reply_in_a_returned_case_is_checked_over_the_whole_thread() -> None:
    first = request(attachments=[])
    case = CaseView("FE-2026-00001", CaseStatus.RETURNED, (first,))
    from tests.domain.builders import FORM

    reply = request(
        subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店", body="添付漏れ失礼しました。", attachments=[FORM]
    )
    decision = run(reply, case=case)
    assert decision.reason == "resubmission"
    assert decision.case is not None
    assert decision.case.case_no == "FE-2026-00001"
    assert decision.case.status is CaseStatus.ACCEPTED


def test_a_mail_in_an_accepted_case_is_a_followup_for_ops() -> None:
    from mailbot.domain.lifecycle import Stage

    case = CaseView("FE-2026-00001", CaseStatus.ACCEPTED, (request(),), stage=Stage.ACCEPTED)
    decision = run(request(subject="RE: [FE-2026-00001] 追加"), case=case)
    assert decision.disposition is Disposition.CASE
    assert decision.reason == "followup"
    assert decision.case is not None and not decision.case.changed
    assert [m.kind for m in decision.mails] == ["ops_followup"]


def test_a_sender_over_the_reply_cap_gets_no_more_mail_but_ops_is_told() -> None:
    decision = run(request(cc=[]), replies=POLICY.max_replies_per_sender_per_hour)
    assert [(m.kind, m.suppressed) for m in decision.mails] == [("defect_reply", "cap"), ("ops_returned", None)]
    assert decision.mails[1].facts["reply_suppressed"] == "cap"


def test_quarantine_notifies_ops_and_never_the_sender() -> None:
    decision = run(request(sender="sales@example.com"))
    assert decision.disposition is Disposition.QUARANTINED
    assert [(m.kind, m.to) for m in decision.mails] == [("ops_quarantined", ("ops@usen.co.jp",))]


def test_a_request_asking_for_no_auto_reply_is_filed_and_only_ops_is_told() -> None:
    decision = run(request(cc=[], extra_headers={"X-Auto-Response-Suppress": "DR, OOF, AutoReply"}))
    assert decision.case is not None and decision.case.status is CaseStatus.RETURNED
    kinds = [(m.kind, m.suppressed) for m in decision.mails]
    assert kinds == [("defect_reply", "suppress_header"), ("ops_returned", None)]
    assert decision.mails[1].facts["reply_suppressed"] == "suppress_header"


def test_suppressing_only_read_receipts_still_gets_the_reply() -> None:
    decision = run(request(cc=[], extra_headers={"X-Auto-Response-Suppress": "RN, NRN"}))
    assert [m.kind for m in decision.mails] == ["defect_reply", "ops_returned"]


def test_a_return_for_a_missing_manager_copies_that_manager() -> None:
    decision = run(request(cc=["colleague@usen.co.jp"]))
    [reply] = [m for m in decision.mails if m.kind == "defect_reply"]
    assert reply.cc == ("colleague@usen.co.jp", MANAGER)


def test_other_returns_copy_only_the_people_on_the_request() -> None:
    decision = run(request(cc=[MANAGER], attachments=[]))
    [reply] = [m for m in decision.mails if m.kind == "defect_reply"]
    assert reply.cc == (MANAGER,)


# -- the desk in the loop ---------------------------------------------------------------------
def _returned_case(message, defects=("attachment_missing",)):
    from mailbot.domain.lifecycle import Stage
    from mailbot.domain.model import Defect

    return CaseView(
        case_no="FE-2026-00001",
        status=CaseStatus.RETURNED,
        messages=(message,),
        stage=Stage.RECEIVED,
        defects=tuple(Defect(code) for code in defects),
    )


def test_a_branch_reply_that_brings_nothing_new_is_a_question_for_ops_not_a_second_return() -> None:
    first = request(attachments=[])
    question = request(
        subject="RE: フレッツエスカ 渋谷支店 [FE-2026-00001]", body="申込書はどこにありますか?", attachments=[]
    )
    decision = run(question, case=_returned_case(first))
    assert decision.reason == "question"
    assert decision.case is not None and not decision.case.changed
    assert [m.kind for m in decision.mails] == ["ops_question"]


def test_a_reply_that_fixes_a_defect_without_an_attachment_is_still_a_resubmission() -> None:
    first = request(cc=[])
    fixed = request(subject="RE: フレッツエスカ 渋谷支店", body="支店長をCCに入れました", attachments=[])
    decision = run(fixed, case=_returned_case(first, defects=("manager_cc_missing",)))
    assert decision.reason == "resubmission"
    assert decision.case is not None and decision.case.status is CaseStatus.ACCEPTED


def test_a_reply_bringing_a_new_customer_code_is_a_resubmission_even_when_it_fails_again() -> None:
    first = request(body="よろしく", attachments=[])
    second = request(body="顧客CD:999999999", attachments=[])
    decision = run(second, case=_returned_case(first, defects=("attachment_missing", "customer_code_missing")))
    assert decision.reason == "resubmission"
    assert decision.mails[0].kind == "defect_reply"


def test_a_clerk_answering_in_a_case_thread_is_recorded_and_gets_no_reply() -> None:
    from dataclasses import replace

    policy = replace(POLICY, staff=("clerk@usen.co.jp",))
    clerk = request(sender="事務 花子 <clerk@usen.co.jp>", body="電話で確認します", attachments=[])
    decision = decide(
        clerk, received_at=NOW, now=NOW, case=_returned_case(request()), duplicate=False,
        directory=DIRECTORY, unis=unis(customer()), policy=policy,
    )  # fmt: skip
    assert decision.disposition is Disposition.CASE and decision.reason == "staff_message"
    assert decision.mails == ()


def test_staff_mail_outside_any_case_thread_is_ignored_not_answered() -> None:
    from dataclasses import replace

    policy = replace(POLICY, staff_domains=("desk.usen.co.jp",))
    decision = decide(
        request(sender="clerk@desk.usen.co.jp"), received_at=NOW, now=NOW, case=None, duplicate=False,
        directory=DIRECTORY, unis=unis(customer()), policy=policy,
    )  # fmt: skip
    assert decision.disposition is Disposition.IGNORED and decision.reason == "staff_mail"


def test_a_reply_to_a_notice_sent_to_ops_is_never_a_resubmission() -> None:
    reply = request(subject="RE: [mailbot] 返却 FE-2026-00001 渋谷支店", body="了解", attachments=[])
    decision = decide(
        reply, received_at=NOW, now=NOW, case=_returned_case(request()), duplicate=False,
        directory=DIRECTORY, unis=unis(customer()), policy=POLICY, answers_ops_notice=True,
    )  # fmt: skip
    assert decision.reason == "staff_message" and decision.mails == ()


def test_one_mail_naming_two_customers_is_returned_asking_for_one_mail_per_customer() -> None:
    decision = run(request(body="顧客CD:100000001\n顧客CD:100000008\n"))
    assert decision.case is not None and decision.case.status is CaseStatus.RETURNED
    [defect] = [d for d in decision.case.defects if d.code == "customer_code_multiple"]
    assert defect.detail["codes"] == "100000001, 100000008"
    assert not any(d.code.startswith("unis_") for d in decision.case.defects)


def test_a_code_quoted_from_the_defect_reply_does_not_count_as_a_second_customer() -> None:
    body = "顧客CD:123456789 で再送します\n\n-----Original Message-----\n顧客CD 987654321 はUNISに見つかりません"
    decision = run(request(body=body))
    assert decision.case is not None and decision.case.customer_code == CODE
    assert decision.case.status is CaseStatus.ACCEPTED


def test_above_the_per_sender_cap_the_receipt_is_kept_unsent_for_a_person_to_release() -> None:
    decision = run(request(), replies=POLICY.max_replies_per_sender_per_hour)
    receipt, ops = decision.mails
    assert receipt.kind == "receipt" and receipt.suppressed == "cap"
    assert ops.facts["reply_suppressed"] == "cap"


def test_a_reply_all_to_a_crowd_goes_to_the_sender_and_the_branch_managers_only() -> None:
    crowd = [f"person{i}@usen.co.jp" for i in range(40)]
    decision = run(request(cc=[MANAGER, *crowd]))
    receipt, ops = decision.mails
    assert receipt.to == ("taro@usen.co.jp",)
    assert receipt.cc == (MANAGER,)
    assert ops.facts["recipients_capped"] == "42"  # the sender, the manager and 40 colleagues


def test_a_released_outside_mail_is_filed_but_answers_no_outsider() -> None:
    outsider = request(sender="partner@example.com", cc=[MANAGER])
    decision = decide(
        outsider, received_at=NOW, now=NOW, case=None, duplicate=False,
        directory=DIRECTORY, unis=unis(customer()), policy=POLICY, released=True,
    )  # fmt: skip
    assert decision.disposition is Disposition.CASE and decision.reason == "released"
    for mail in decision.mails:
        assert all(a.endswith("@usen.co.jp") for a in (*mail.to, *mail.cc))


def test_an_accepted_request_records_its_branch_customer_sender_stage_and_event() -> None:
    # The case row is written from these: a missing field would file a case without its branch.
    from mailbot.domain.lifecycle import Event, Stage

    decision = run(request())
    assert decision.reason == "new_request"
    outcome = decision.case
    assert outcome is not None and outcome.changed
    assert (outcome.branch, outcome.customer_code, outcome.customer_name) == ("渋谷支店", CODE, "株式会社さくら商事")
    assert outcome.sender == "taro@usen.co.jp"
    assert (outcome.stage, outcome.event) == (Stage.ACCEPTED, Event.ACCEPT)
    assert outcome.defects == () and outcome.waiting_since is None


def test_a_returned_request_for_an_unknown_branch_keeps_the_branch_it_claimed() -> None:
    from mailbot.domain.lifecycle import Event

    outcome = run(request(subject="フレッツエスカ 名古屋支店")).case
    assert outcome is not None and outcome.status is CaseStatus.RETURNED and outcome.event is Event.RETURN
    assert outcome.branch is not None and "名古屋" in outcome.branch


def test_a_resubmission_tells_the_templates_it_is_one() -> None:
    case = _returned_case(request(cc=[]), defects=("manager_cc_missing",))
    decision = run(request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店"), case=case)
    assert decision.reason == "resubmission"
    assert all(m.facts.get("resubmission") == "1" for m in decision.mails)
    assert all("resubmission" not in m.facts for m in run(request()).mails)


def test_a_mail_with_too_many_attachments_is_quarantined_unopened_with_that_reason() -> None:
    many = [(f"page{i}.pdf", b"%PDF-1.4\n") for i in range(POLICY.limits.max_attachments + 1)]
    decision = run(request(attachments=many))
    assert (decision.disposition, decision.reason) == (Disposition.QUARANTINED, "too_many_attachments")
    assert [m.kind for m in decision.mails] and all(m.to == POLICY.ops_recipients for m in decision.mails)
