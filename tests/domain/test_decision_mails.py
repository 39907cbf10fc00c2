"""Who the bot's mails go to, and what ops is told about a reply held back (mails_for through decide)."""

from __future__ import annotations

from dataclasses import replace

from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.decision import CaseView, Decision, MailIntent, decide
from mailbot.domain.lifecycle import Stage
from mailbot.domain.model import CaseStatus, Disposition, ParsedMessage
from mailbot.domain.policy import Limits, Policy
from tests.domain.builders import DIRECTORY, MANAGER, NOW, POLICY, customer, request, unis

UBD_POLICY = replace(POLICY, ubd_domains=("ubd.example.jp",))
UBD_SENDER = "UBD 受付 <uketsuke@ubd.example.jp>"


def run(
    message: ParsedMessage,
    *,
    policy: Policy = POLICY,
    directory: BranchDirectory = DIRECTORY,
    case: CaseView | None = None,
    released: bool = False,
) -> Decision:
    return decide(
        message, received_at=NOW, now=NOW, case=case, duplicate=False, directory=directory,
        unis=unis(customer()), policy=policy, released=released,
    )  # fmt: skip


def mail(decision: Decision, kind: str) -> MailIntent:
    [found] = [m for m in decision.mails if m.kind == kind]
    return found


# --- the UBD partner -----------------------------------------------------------------------------


def test_ops_is_told_a_ubd_request_is_one_and_that_it_names_no_customer_code() -> None:
    decision = run(request(sender=UBD_SENDER, body="取次をお願いします。"), policy=UBD_POLICY)
    facts = mail(decision, "ops_accepted").facts
    assert (facts["ubd"], facts["ubd_no_code"]) == ("1", "1")


def test_a_ubd_request_with_a_customer_code_is_not_flagged_as_missing_one() -> None:
    decision = run(request(sender=UBD_SENDER), policy=UBD_POLICY)
    facts = mail(decision, "ops_accepted").facts
    assert facts["ubd"] == "1" and "ubd_no_code" not in facts


def test_a_branch_request_is_not_flagged_as_ubd() -> None:
    facts = mail(run(request()), "ops_accepted").facts
    assert "ubd" not in facts and "ubd_no_code" not in facts


# --- reply-all to many people -----------------------------------------------------------------


def test_a_request_copied_to_exactly_as_many_people_as_allowed_is_answered_to_all_of_them() -> None:
    policy = replace(POLICY, limits=Limits(max_reply_recipients=3))
    decision = run(request(cc=[MANAGER, "colleague@usen.co.jp"]), policy=policy)
    receipt = mail(decision, "receipt")
    assert receipt.cc == (MANAGER, "colleague@usen.co.jp")
    assert "recipients_capped" not in receipt.facts
    crowd = run(request(cc=[MANAGER, "colleague@usen.co.jp", "other@usen.co.jp"]), policy=policy)
    assert mail(crowd, "receipt").cc == (MANAGER,)
    assert mail(crowd, "receipt").facts["recipients_capped"] == "4"


def test_a_crowd_copied_on_a_request_for_an_unknown_branch_gets_no_copy() -> None:
    crowd = [f"person{i}@usen.co.jp" for i in range(30)]
    decision = run(request(subject="フレッツエスカ 名古屋支店", cc=crowd))
    reply = mail(decision, "defect_reply")
    assert (reply.to, reply.cc) == (("taro@usen.co.jp",), ())


def test_a_manager_sending_to_a_crowd_is_answered_once_not_copied_to_themselves() -> None:
    crowd = [f"person{i}@usen.co.jp" for i in range(30)]
    decision = run(request(sender=f"渋谷 支店長 <{MANAGER}>", cc=crowd))
    receipt = mail(decision, "receipt")
    assert (receipt.to, receipt.cc) == ((MANAGER,), ())


def test_when_the_recipient_cap_leaves_room_for_the_sender_alone_no_manager_is_copied() -> None:
    policy = replace(POLICY, limits=Limits(max_reply_recipients=1))
    receipt = mail(run(request(cc=[MANAGER, "colleague@usen.co.jp"]), policy=policy), "receipt")
    assert (receipt.to, receipt.cc) == (("taro@usen.co.jp",), ())


# --- managers copied on a return ----------------------------------------------------------------

TWO_MANAGERS = BranchDirectory(
    [Branch("渋谷支店", aliases=("渋谷",), managers=(MANAGER, "shibuya-vice@usen.co.jp", "boss@partner.example.com"))]
)


def test_a_request_copying_one_of_the_managers_is_answered_without_copying_the_others() -> None:
    decision = run(request(cc=[MANAGER]), directory=TWO_MANAGERS)
    assert mail(decision, "receipt").cc == (MANAGER,)


def test_a_return_for_a_missing_manager_copies_every_internal_manager_and_never_an_outside_one() -> None:
    decision = run(request(cc=["colleague@usen.co.jp"]), directory=TWO_MANAGERS)
    reply = mail(decision, "defect_reply")
    assert reply.cc == ("colleague@usen.co.jp", MANAGER, "shibuya-vice@usen.co.jp")


# --- replies held back, and what ops hears of it -------------------------------------------------


def test_a_released_mail_from_outside_gets_no_reply_and_ops_hears_there_was_no_one_to_answer() -> None:
    decision = run(request(sender="営業 <sales@example.com>", cc=[]), released=True)
    assert [m.kind for m in decision.mails] == ["ops_returned"]
    assert decision.mails[0].facts["reply_suppressed"] == "no_recipient"


def test_a_reply_sent_as_usual_leaves_ops_nothing_to_hear_about_it() -> None:
    ops = mail(run(request()), "ops_accepted")
    assert "reply_suppressed" not in ops.facts
    assert ops.reply_to is None and ops.to == POLICY.ops_recipients


def test_a_followup_asking_robots_not_to_answer_tells_ops_nothing_about_a_reply_it_never_had() -> None:
    case = CaseView("FE-2026-00001", CaseStatus.ACCEPTED, (request(),), stage=Stage.ACCEPTED)
    followup = request(subject="RE: [FE-2026-00001] 追加", extra_headers={"X-Auto-Response-Suppress": "All"})
    notice = mail(run(followup, case=case), "ops_followup")
    assert notice.facts == {"case_no": "FE-2026-00001", "stage": "accepted"}


def test_a_desk_allowing_one_reply_an_hour_answers_a_senders_first_request() -> None:
    policy = replace(POLICY, max_replies_per_sender_per_hour=1)
    decision = decide(
        request(), received_at=NOW, now=NOW, case=None, duplicate=False,
        directory=DIRECTORY, unis=unis(customer()), policy=policy,
    )  # fmt: skip
    assert mail(decision, "receipt").suppressed is None


def test_a_mail_from_outside_is_set_aside_telling_ops_why() -> None:
    decision = run(request(sender="営業 <sales@example.com>"))
    assert (decision.disposition, decision.reason) == (Disposition.QUARANTINED, "outside_domain")
    assert decision.mails == (MailIntent("ops_quarantined", POLICY.ops_recipients, facts={"reason": "outside_domain"}),)
