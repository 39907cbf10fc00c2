"""Mail in a case's thread and cases re-decided later: what the case records and who is written to."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from mailbot.domain.checks import BranchMissing, build_submission
from mailbot.domain.decision import CaseOutcome, CaseView, Decision, Evaluation, decide, redecide, review
from mailbot.domain.lifecycle import Event, Stage, TransitionNotAllowed
from mailbot.domain.model import CaseStatus, Defect, Disposition, ParsedMessage
from mailbot.domain.policy import Flow, Limits, Policy
from tests.domain.builders import CODE, DIRECTORY, MANAGER, NOW, POLICY, customer, request, unis

CASE_NO = "FE-2026-00001"
REPLY_SUBJECT = f"RE: [{CASE_NO}] フレッツエスカ 渋谷支店"


def run(message: ParsedMessage, *, case: CaseView | None = None, policy: Policy = POLICY, **kwargs: object) -> Decision:
    arguments: dict[str, object] = {
        "received_at": NOW,
        "now": NOW,
        "case": case,
        "duplicate": False,
        "directory": DIRECTORY,
        "unis": unis(customer()),
        "policy": policy,
    }
    arguments.update(kwargs)
    return decide(message, **arguments)  # type: ignore[arg-type]


def returned(message: ParsedMessage, *defects: str) -> CaseView:
    return CaseView(CASE_NO, CaseStatus.RETURNED, (message,), defects=tuple(Defect(c) for c in defects))


def waiting(*messages: ParsedMessage, stage: Stage = Stage.RECEIVED) -> CaseView:
    unis_defect = (Defect("unis_customer_missing", {"customer_code": CODE}),)
    return CaseView(CASE_NO, CaseStatus.WAITING_UNIS, messages, waiting_since=NOW, stage=stage, defects=unis_defect)


STALE = unis(as_of=NOW - timedelta(hours=1))
FRESH = unis(customer(), as_of=NOW + timedelta(hours=2))


# --- mail in an accepted or closed case -------------------------------------------------


@pytest.mark.parametrize("stage", [Stage.ACCEPTED, Stage.CLOSED, Stage.ENTERED])
def test_a_mail_in_a_case_past_review_tells_ops_which_case_and_stage_and_changes_no_verdict(stage: Stage) -> None:
    case = CaseView(CASE_NO, CaseStatus.ACCEPTED, (request(),), stage=stage)
    decision = run(request(subject=f"RE: [{CASE_NO}] 工事日の件", attachments=[]), case=case)
    assert decision.reason == "followup"
    # The ops template says 終了した案件 for a closed case, 受付済みの依頼 otherwise.
    [notice] = decision.mails
    assert (notice.kind, notice.to, notice.reply_to) == ("ops_followup", POLICY.ops_recipients, None)
    assert notice.facts == {"case_no": CASE_NO, "stage": stage.value}
    assert decision.case == CaseOutcome(
        case_no=CASE_NO,
        status=CaseStatus.ACCEPTED,
        branch=None,
        customer_code=None,
        customer_name=None,
        defects=(),
        waiting_since=None,
        changed=False,
        stage=stage,
        event=Event.FOLLOWUP,
    )


def test_a_question_in_a_returned_case_keeps_the_verdict_and_defects_the_branch_was_told() -> None:
    case = returned(request(attachments=[]), "attachment_missing")
    question = request(subject=REPLY_SUBJECT, body="申込書はどの様式ですか?", attachments=[])
    decision = run(question, case=case)
    assert decision.reason == "question"
    assert decision.case is not None
    assert (decision.case.case_no, decision.case.status, decision.case.changed) == (CASE_NO, CaseStatus.RETURNED, False)
    assert decision.case.defects == (Defect("attachment_missing"),)
    assert (decision.case.stage, decision.case.event) == (Stage.RECEIVED, Event.QUESTION)
    assert decision.mails[0].facts["case_no"] == CASE_NO
    assert decision.mails[0].facts["stage"] == "received"
    # The standard export of eleven columns: the line is named, the values the manual sets are not checked.
    assert decision.mails[0].facts["unis_line"] == "C0001/001"
    assert "確認していません" in decision.mails[0].facts["unchecked"]


def test_a_signed_question_is_still_a_question_the_signature_brings_nothing_new() -> None:
    case = returned(request(attachments=[]), "attachment_missing")
    question = request(subject=REPLY_SUBJECT, body="申込書はどの様式ですか?", attachments=[("smime.p7s", b"0\x82\x01")])
    assert question.attachments and question.attachments[0].filename == "smime.p7s"
    assert run(question, case=case).reason == "question"


def test_a_question_of_the_ubd_partner_tells_ops_it_is_a_ubd_case_without_a_code() -> None:
    policy = replace(POLICY, ubd_domains=("ubd.example.jp",))
    first = request(sender="UBD 担当 <tanto@ubd.example.jp>", body="取次をお願いします。", attachments=[])
    question = request(
        sender="UBD 担当 <tanto@ubd.example.jp>", subject=REPLY_SUBJECT, body="様式を教えてください", attachments=[]
    )
    decision = run(question, case=returned(first, "attachment_missing"), policy=policy)
    assert decision.reason == "question"
    [notice] = decision.mails
    assert notice.facts["ubd"] == "1" and notice.facts["ubd_no_code"] == "1"


# --- what a new case records ---------------------------------------------------------------


def test_a_request_naming_the_branch_by_its_alias_is_filed_under_the_branchs_full_name() -> None:
    decision = run(request(subject="フレッツエスカ 渋谷 株式会社さくら"))
    assert decision.case is not None and decision.case.branch == "渋谷支店"


def test_a_request_records_the_flow_it_was_judged_by() -> None:
    policy = replace(POLICY, flows=(Flow("即決", keywords=("即決",)), Flow("通常")))
    quick = run(request(body=f"即決でお願いします。\n顧客CD:{CODE}\n"), policy=policy)
    assert quick.case is not None and quick.case.flow == "即決"
    usual = run(request(), policy=policy)
    assert usual.case is not None and usual.case.flow == "通常"
    without_flows = run(request())
    assert without_flows.case is not None and without_flows.case.flow is None


def test_a_released_mail_without_a_from_header_is_filed_without_a_sender() -> None:
    anonymous = replace(request(), sender=None)
    decision = run(anonymous, released=True)
    assert decision.disposition is Disposition.CASE
    assert decision.case is not None and decision.case.sender is None


def test_a_request_waiting_for_unis_keeps_the_unis_defects_it_waits_on() -> None:
    decision = run(request(), unis=STALE)
    assert decision.case is not None and decision.case.status is CaseStatus.WAITING_UNIS
    assert [d.code for d in decision.case.defects] == ["unis_customer_missing"]


def test_a_desk_running_only_some_checks_returns_only_their_defects() -> None:
    decision = run(request(subject="フレッツエスカ", cc=[], attachments=[]), checks=(BranchMissing(),))
    assert decision.case is not None and [d.code for d in decision.case.defects] == ["branch_missing"]


def test_exactly_as_many_attachments_as_allowed_are_opened_one_more_is_not() -> None:
    forms = [(f"回線単品申込書_{i}.pdf", b"%PDF-1.4\n%%EOF\n") for i in range(3)]
    limits = Limits(max_attachments=3, max_total_attachment_bytes=10_000)
    policy = replace(POLICY, limits=limits)
    assert run(request(attachments=forms), policy=policy).disposition is Disposition.CASE
    more = [*forms, ("地図.png", b"\x89PNG")]
    assert run(request(attachments=more), policy=policy).reason == "too_many_attachments"


def test_attachments_of_exactly_the_allowed_total_size_are_opened_one_byte_more_is_not() -> None:
    form = ("回線単品申込書.pdf", b"%PDF-1.4\n" + b"0" * 991)  # 1,000 bytes
    exact = replace(POLICY, limits=Limits(max_total_attachment_bytes=1_000))
    assert run(request(attachments=[form]), policy=exact).disposition is Disposition.CASE
    tight = replace(POLICY, limits=Limits(max_total_attachment_bytes=999))
    assert run(request(attachments=[form]), policy=tight).reason == "too_many_attachments"


# --- the reply the branch gets, and when it is held back ----------------------------------------


def with_suppress_headers(*values: str) -> ParsedMessage:
    message = request(cc=[])
    return replace(message, headers={**message.headers, "x-auto-response-suppress": values})


@pytest.mark.parametrize(
    "values",
    [("All",), ("DR,RN,NRN,OOF,AutoReply",), ("OOF", "AutoReply"), ("autoreply",)],
    ids=["All", "comma without spaces", "two headers", "lower case"],
)
def test_a_request_asking_robots_not_to_answer_gets_its_reply_held_back(values: tuple[str, ...]) -> None:
    decision = run(with_suppress_headers(*values))
    assert [(m.kind, m.suppressed) for m in decision.mails] == [
        ("defect_reply", "suppress_header"),
        ("ops_returned", None),
    ]


@pytest.mark.parametrize("values", [("RN, NRN",), ("DR", "OOF"), ("None",)])
def test_suppressing_only_receipts_or_out_of_office_notices_lets_the_reply_go(values: tuple[str, ...]) -> None:
    decision = run(with_suppress_headers(*values))
    assert [(m.kind, m.suppressed) for m in decision.mails] == [("defect_reply", None), ("ops_returned", None)]


# --- review and re-deciding a waiting case ----------------------------------------------------


def evaluation_of(message: ParsedMessage, status: CaseStatus) -> Evaluation:
    return Evaluation(status, (), build_submission([message], DIRECTORY, unis(customer()), POLICY), None)


def test_the_bot_may_not_return_a_case_already_accepted_a_person_must() -> None:
    # Replay re-checks old cases; an accepted one it would now return is left to a person.
    accepted = CaseView(CASE_NO, CaseStatus.ACCEPTED, (request(),), stage=Stage.ACCEPTED)
    with pytest.raises(TransitionNotAllowed):
        review(accepted, evaluation_of(request(), CaseStatus.RETURNED))


def test_a_waiting_case_accepted_after_the_unis_import_stays_the_same_case_and_its_receipt_is_sent() -> None:
    result = redecide(waiting(request()), directory=DIRECTORY, unis=FRESH, policy=POLICY, now=NOW + timedelta(hours=3))
    assert result is not None
    outcome, mails = result
    assert (outcome.case_no, outcome.status, outcome.stage) == (CASE_NO, CaseStatus.ACCEPTED, Stage.ACCEPTED)
    assert [(m.kind, m.suppressed) for m in mails] == [("receipt", None), ("ops_accepted", None)]


def test_a_waiting_case_is_returned_at_the_very_hour_its_wait_runs_out() -> None:
    deadline = NOW + timedelta(hours=POLICY.unis_max_wait_hours)
    result = redecide(waiting(request()), directory=DIRECTORY, unis=STALE, policy=POLICY, now=deadline)
    assert result is not None and result[0].status is CaseStatus.RETURNED
    just_before = deadline - timedelta(seconds=1)
    assert redecide(waiting(request()), directory=DIRECTORY, unis=STALE, policy=POLICY, now=just_before) is None


def test_a_waiting_case_answered_after_the_import_goes_to_the_sender_and_managers_when_a_crowd_was_copied() -> None:
    crowd = [f"person{i}@usen.co.jp" for i in range(30)]
    case = waiting(request(cc=[MANAGER, *crowd]))
    result = redecide(case, directory=DIRECTORY, unis=FRESH, policy=POLICY, now=NOW + timedelta(hours=3))
    assert result is not None
    receipt = result[1][0]
    assert (receipt.kind, receipt.to, receipt.cc) == ("receipt", ("taro@usen.co.jp",), (MANAGER,))


def test_re_deciding_uses_the_desks_checks() -> None:
    incomplete = request(cc=[], attachments=[])
    result = redecide(
        waiting(incomplete), directory=DIRECTORY, unis=FRESH, policy=POLICY, now=NOW, checks=(BranchMissing(),)
    )
    assert result is not None and result[0].status is CaseStatus.ACCEPTED


@pytest.mark.parametrize(
    "case",
    [
        replace(waiting(request()), status=CaseStatus.RETURNED),
        waiting(request(), stage=Stage.CLOSED),
        waiting(),
    ],
    ids=["returned meanwhile", "closed by a person", "no mail kept"],
)
def test_only_a_waiting_case_still_in_review_with_its_mail_is_re_decided(case: CaseView) -> None:
    assert redecide(case, directory=DIRECTORY, unis=FRESH, policy=POLICY, now=NOW + timedelta(hours=3)) is None


def test_a_question_in_a_case_waiting_for_unis_keeps_it_waiting_since_the_request_came() -> None:
    question = request(subject=REPLY_SUBJECT, body="UNIS登録は済んでいますか?", attachments=[])
    decision = run(question, case=waiting(request()), unis=STALE)
    assert decision.reason == "question"
    assert decision.case is not None
    assert (decision.case.status, decision.case.waiting_since) == (CaseStatus.WAITING_UNIS, NOW)


# --- the subject of a reply (issue 22) ----------------------------------------------------


def test_a_reply_asking_where_to_write_the_branch_is_a_question_and_its_case_number_no_branch() -> None:
    first = request(subject="フレッツエスカ")
    case = replace(returned(first, "branch_missing"), case_no="FE-2026-00015")
    reply = request(
        subject="RE: RE: フレッツエスカ [FE-2026-00015]", body="支店名はどこに書けばよいですか?", attachments=[]
    )
    decision = run(reply, case=case)
    assert decision.reason == "question"
    assert [m.kind for m in decision.mails] == ["ops_question"]


@pytest.mark.parametrize("style", ["outlook", "gmail", "iphone"])
def test_a_reply_naming_no_branch_keeps_the_cases_branch(style: str) -> None:
    first = request(style=style, attachments=[])
    reply = request(style=style, subject=f"Re: フレッツエスカ [{CASE_NO}]", body="添付します。")
    decision = run(reply, case=returned(first, "attachment_missing"))
    assert decision.case is not None
    assert (decision.case.branch, decision.case.status) == ("渋谷支店", CaseStatus.ACCEPTED)


def test_a_reply_naming_another_known_branch_moves_the_case_to_it() -> None:
    first = request(attachments=[])
    reply = request(subject=f"RE: フレッツエスカ 大阪支店 [{CASE_NO}]", cc=["osaka-mgr@usen.co.jp"])
    decision = run(reply, case=returned(first, "attachment_missing"))
    assert decision.case is not None and decision.case.branch == "大阪支店"


def test_a_reply_naming_an_unknown_branch_keeps_the_cases_known_one() -> None:
    first = request(attachments=[])
    reply = request(subject=f"RE: フレッツエスカ 渋谷の件 [{CASE_NO}]")
    decision = run(reply, case=returned(first, "attachment_missing"))
    assert decision.case is not None and decision.case.branch == "渋谷支店"


# --- a reply to a return: a question unless it brings something new (issue 22) -----------


def test_a_reply_without_attachment_or_code_is_a_question_even_when_unis_now_accepts_it() -> None:
    first = request()
    case = returned(first, "unis_customer_missing")
    reply = request(subject=REPLY_SUBJECT, body="UNISに登録しました。ご確認ください。", attachments=[])
    decision = run(reply, case=case, unis=FRESH)
    assert decision.reason == "question"
    assert decision.case is not None and decision.case.status is CaseStatus.RETURNED
    assert [m.kind for m in decision.mails] == ["ops_question"]


def test_a_reply_whose_recheck_would_give_other_defects_is_still_a_question() -> None:
    first = request(body="取次をお願いします。", attachments=[])
    case = returned(first, "attachment_missing", "customer_code_missing")
    reply = request(subject=REPLY_SUBJECT, body="どの申込書を添付すればよいですか?", attachments=[], cc=[])
    assert run(reply, case=case).reason == "question"


@pytest.mark.parametrize("style", ["outlook", "gmail", "iphone"])
def test_a_reply_bringing_the_customer_code_is_a_resubmission(style: str) -> None:
    first = request(style=style, body="取次をお願いします。")
    reply = request(style=style, subject=REPLY_SUBJECT, body=f"顧客CD:{CODE}\nです。", attachments=[])
    decision = run(reply, case=returned(first, "customer_code_missing"))
    assert decision.reason == "resubmission"
    assert decision.case is not None and decision.case.status is CaseStatus.ACCEPTED


def test_a_reply_all_copying_the_missing_manager_is_a_resubmission() -> None:
    first = request(cc=[])
    reply = request(subject=REPLY_SUBJECT, body="支店長をCCに入れました。", attachments=[])
    decision = run(reply, case=returned(first, "manager_cc_missing"))
    assert decision.reason == "resubmission"
    assert decision.case is not None and decision.case.status is CaseStatus.ACCEPTED


def test_a_reply_naming_the_branch_the_request_lacked_is_a_resubmission() -> None:
    first = request(subject="フレッツエスカ")
    reply = request(subject="RE: フレッツエスカ 渋谷支店 [FE-2026-00001]", body="支店名を入れました。", attachments=[])
    decision = run(reply, case=returned(first, "branch_missing"))
    assert decision.reason == "resubmission"
    assert decision.case is not None and decision.case.status is CaseStatus.ACCEPTED
