"""A mail too large to open, judged by its headers alone (decide_unopened)."""

from __future__ import annotations

from dataclasses import replace

from mailbot.domain.decision import Decision, MailIntent, decide_unopened
from mailbot.domain.model import Disposition, ParsedMessage
from mailbot.domain.parsing import parse_message
from mailbot.domain.policy import Policy
from tests.domain.builders import DESK, POLICY, request
from tests.mailfactory import build_auto_reply

OPS = POLICY.ops_recipients


def unopened(
    headers: ParsedMessage, *, duplicate: bool = False, linked_case: bool = False, policy: Policy = POLICY
) -> Decision:
    return decide_unopened(headers, reason="too_large", duplicate=duplicate, linked_case=linked_case, policy=policy)


def test_a_request_too_large_to_open_is_set_aside_and_ops_is_told_why() -> None:
    decision = unopened(request())
    assert decision == Decision(
        Disposition.QUARANTINED, "too_large", None, (MailIntent("ops_quarantined", OPS, facts={"reason": "too_large"}),)
    )


def test_without_ops_recipients_a_large_request_is_set_aside_silently() -> None:
    decision = unopened(request(), policy=replace(POLICY, ops_recipients=()))
    assert (decision.disposition, decision.reason, decision.mails) == (Disposition.QUARANTINED, "too_large", ())


def test_a_large_out_of_office_reply_is_ignored_unanswered() -> None:
    # Not the null reverse-path: a bounce rule would catch that before the auto-reply rule.
    oof = build_auto_reply(
        original_subject="フレッツエスカ 渋谷支店", sender="taro@usen.co.jp", to=[DESK], return_path="<taro@usen.co.jp>"
    )
    auto = parse_message(oof)
    assert unopened(auto) == Decision(Disposition.IGNORED, "auto_reply")


def test_a_large_request_delivered_twice_is_set_aside_once() -> None:
    assert unopened(request(), duplicate=True) == Decision(Disposition.IGNORED, "duplicate")


def test_a_large_mail_from_outside_is_set_aside_as_from_outside_not_as_too_large() -> None:
    decision = unopened(request(sender="営業 <sales@example.com>"))
    assert (decision.disposition, decision.reason) == (Disposition.QUARANTINED, "outside_domain")
    assert decision.mails == (MailIntent("ops_quarantined", OPS, facts={"reason": "outside_domain"}),)


def test_a_large_reply_in_a_case_thread_is_set_aside_though_its_subject_is_no_request() -> None:
    # "RE: 写真です" alone is no request; in a case's thread it is the branch's answer.
    photos = request(subject="RE: [FE-2026-00001] 写真です")
    assert unopened(photos) == Decision(Disposition.IGNORED, "not_request")
    decision = unopened(photos, linked_case=True)
    assert (decision.disposition, decision.reason) == (Disposition.QUARANTINED, "too_large")


def test_a_large_mail_of_a_clerk_in_a_case_thread_is_set_aside_for_a_person_too() -> None:
    policy = replace(POLICY, staff=("clerk@usen.co.jp",))
    clerk = request(sender="事務 花子 <clerk@usen.co.jp>", subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店")
    decision = unopened(clerk, linked_case=True, policy=policy)
    assert (decision.disposition, decision.reason) == (Disposition.QUARANTINED, "too_large")
