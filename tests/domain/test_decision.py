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
    assert [m.kind for m in decision.mails] == ["ops_waiting"]


def test_a_request_failing_unis_is_returned_when_the_snapshot_is_newer_than_the_mail() -> None:
    fresh = unis(as_of=NOW + timedelta(minutes=1))
    decision = run(request(), lookup=fresh)
    assert decision.case is not None and decision.case.status is CaseStatus.RETURNED


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
    case = CaseView("FE-2026-00001", CaseStatus.ACCEPTED, (request(),))
    decision = run(request(subject="RE: [FE-2026-00001] 追加"), case=case)
    assert decision.disposition is Disposition.CASE
    assert decision.reason == "followup"
    assert decision.case is not None and not decision.case.changed
    assert [m.kind for m in decision.mails] == ["ops_followup"]


def test_a_sender_over_the_reply_cap_gets_no_more_mail_but_ops_is_told() -> None:
    decision = run(request(cc=[]), replies=POLICY.max_replies_per_sender_per_hour)
    assert [m.kind for m in decision.mails] == ["ops_returned"]
    assert decision.mails[0].facts["reply_suppressed"] == "cap"


def test_quarantine_notifies_ops_and_never_the_sender() -> None:
    decision = run(request(sender="sales@example.com"))
    assert decision.disposition is Disposition.QUARANTINED
    assert [(m.kind, m.to) for m in decision.mails] == [("ops_quarantined", ("ops@usen.co.jp",))]


def test_a_request_asking_for_no_auto_reply_is_filed_and_only_ops_is_told() -> None:
    decision = run(request(cc=[], extra_headers={"X-Auto-Response-Suppress": "DR, OOF, AutoReply"}))
    assert decision.case is not None and decision.case.status is CaseStatus.RETURNED
    assert [m.kind for m in decision.mails] == ["ops_returned"]
    assert decision.mails[0].facts["reply_suppressed"] == "suppress_header"


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
