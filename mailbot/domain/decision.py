"""From a parsed mail and what the shell looked up, to a decision and its mails.

Pure: the shell passes the branch directory, the UNIS lookup, the policy,
the thread found in the ledger and ``now``; nothing here reads a clock, a
database or the network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.checks import (
    CHECKS,
    REVIEW_CODES,
    UNIS_CODES,
    Check,
    NotChecked,
    Submission,
    build_submission,
    not_checked,
    run_checks,
)
from mailbot.domain.documents import customer_codes_in_text, is_signature
from mailbot.domain.japanese import normalize
from mailbot.domain.lifecycle import BRANCH_MAILS, MAIL_KINDS, STAGES, Actor, Event, Stage, step
from mailbot.domain.model import Attachment, CaseStatus, Defect, Disposition, ParsedMessage
from mailbot.domain.policy import Policy
from mailbot.domain.replies import own_text
from mailbot.domain.subject import parse_subject
from mailbot.domain.triage import Triage, TriageFacts, triage
from mailbot.domain.unis import UnisLookup
from mailbot.domain.unis_lines import pattern_of

__all__ = [
    "BRANCH_MAILS",
    "CaseOutcome",
    "CaseView",
    "Decision",
    "Evaluation",
    "MailIntent",
    "decide",
    "decide_unopened",
    "evaluate",
    "mails_for",
    "outcome_of",
    "redecide",
    "reply_recipients",
    "review",
    "unchanged",
    "unis_facts",
]


@dataclass(frozen=True)
class CaseView:
    """An existing case as the ledger knows it."""

    case_no: str
    status: CaseStatus
    messages: tuple[ParsedMessage, ...]  # oldest first
    waiting_since: datetime | None = None
    stage: Stage = Stage.RECEIVED
    defects: tuple[Defect, ...] = ()
    # The 顧客CD on the case (a UBD case may have none until its branch answers).
    customer_code: str | None = None


@dataclass(frozen=True)
class MailIntent:
    """A mail to send: which template, to whom, threaded under which message.

    ``suppressed`` names why an automatic mail to a branch is held back (the
    per-sender cap, the sender's X-Auto-Response-Suppress): it is kept in the
    outbox unsent, so a person can still send it.
    """

    kind: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    reply_to: ParsedMessage | None = None
    facts: dict[str, str] = field(default_factory=dict)
    suppressed: str | None = None
    # Files the mail carries (the UBD request's documents, for 事務センター).
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class CaseOutcome:
    """The state a case is in after the decision; ``case_no`` None means a new case."""

    case_no: str | None
    status: CaseStatus
    branch: str | None
    customer_code: str | None
    customer_name: str | None
    defects: tuple[Defect, ...]
    waiting_since: datetime | None
    changed: bool = True
    stage: Stage = Stage.RECEIVED
    event: Event = Event.RETURN
    sender: str | None = None
    # The request flow (manual §3) the checks judged it by; None leaves the case's as it is.
    flow: str | None = None
    # The UNIS line (契約No, 明細No) the request is bound to; None leaves the case's binding as it is.
    line: tuple[str, str] | None = None
    # The checks that could not run (None: unchanged, for events that are no review).
    unchecked: tuple[NotChecked, ...] | None = None
    # Words for the event's record (who answered what), when the bot has some.
    note: str | None = None


@dataclass(frozen=True)
class Decision:
    """Exactly one disposition per inbound message, and what follows from it."""

    disposition: Disposition
    reason: str
    case: CaseOutcome | None = None
    mails: tuple[MailIntent, ...] = ()


@dataclass(frozen=True)
class Evaluation:
    """The checks' verdict on a thread."""

    status: CaseStatus
    defects: tuple[Defect, ...]
    submission: Submission
    waiting_since: datetime | None
    unchecked: tuple[NotChecked, ...] = ()


def evaluate(
    messages: Sequence[ParsedMessage],
    *,
    directory: BranchDirectory,
    unis: UnisLookup,
    policy: Policy,
    received_at: datetime,
    now: datetime,
    checks: Sequence[Check] = CHECKS,
    case_no: str | None = None,
) -> Evaluation:
    """Run every check over the thread and say accepted, returned or waiting for UNIS.

    A request that fails only UNIS checks waits when the snapshot predates the
    mail (the branch may have registered the customer after the last export),
    until ``unis_max_wait_hours`` after the mail arrived. ``case_no`` is the
    thread's case, whose own UNIS line is not "another case's".
    """
    submission = build_submission(messages, directory, unis, policy, case_no=case_no, received_at=received_at)
    defects = tuple(run_checks(submission, policy, checks))
    unchecked = tuple(not_checked(submission, policy, checks))
    if not defects:
        return Evaluation(CaseStatus.ACCEPTED, defects, submission, None, unchecked)
    if all(d.code in REVIEW_CODES or d.code in UNIS_CODES for d in defects) and any(
        d.code in REVIEW_CODES for d in defects
    ):
        # Nothing the sender could fix, something the bot cannot tell: a clerk looks (要確認).
        return Evaluation(CaseStatus.NEEDS_REVIEW, defects, submission, None, unchecked)
    defects = tuple(d for d in defects if d.code not in REVIEW_CODES) or defects
    unis_defects = tuple(d for d in defects if d.code in UNIS_CODES)
    # A snapshot older than the mail (or none at all) cannot say the customer is
    # missing: the branch may have registered it since. Until the wait runs
    # out, UNIS defects are not told to the branch.
    snapshot_current = unis.as_of is not None and unis.as_of >= received_at
    waited_out = now >= received_at + timedelta(hours=policy.unis_max_wait_hours)
    if unis_defects and not snapshot_current and not waited_out:
        others = tuple(d for d in defects if d.code not in UNIS_CODES)
        if not others:
            return Evaluation(CaseStatus.WAITING_UNIS, defects, submission, received_at, unchecked)
        return Evaluation(CaseStatus.RETURNED, others, submission, None, unchecked)
    return Evaluation(CaseStatus.RETURNED, defects, submission, None, unchecked)


def reply_recipients(message: ParsedMessage, policy: Policy) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """To the sender, Cc the internal people the sender wrote to; never the desk, never outside (but UBD)."""
    to: list[str] = []
    if (
        message.sender is not None
        and policy.may_receive(message.sender.addr)
        and not policy.is_desk(message.sender.addr)
    ):
        to.append(message.sender.addr)
    cc = [
        a.addr
        for a in message.recipients
        if policy.may_receive(a.addr) and not policy.is_desk(a.addr) and a.addr not in to
    ]
    return tuple(to), tuple(dict.fromkeys(cc))


def _branch_of(evaluation: Evaluation | None) -> Branch | None:
    return evaluation.submission.branch if evaluation is not None else None


def mails_for(
    kinds: Sequence[str],
    message: ParsedMessage,
    policy: Policy,
    *,
    cap_reached: bool = False,
    evaluation: Evaluation | None = None,
    branch: Branch | None = None,
    facts: Mapping[str, str] | None = None,
    automatic: bool = True,
    defects: Sequence[Defect] | None = None,
    customer_code: str | None = None,
    documents: Sequence[Attachment] | None = None,
) -> tuple[MailIntent, ...]:
    """The mails of ``kinds`` (rows of ``MAIL_KINDS``) for a case whose latest branch mail is ``message``.

    Branch mail answers ``message`` in its thread; ops mail goes to the desk. An
    automatic branch mail is held back (kept, not sent) above the per-sender
    cap or when the sender asked robots not to answer; a person's action is
    not automatic and is sent. An accepted UBD request also asks 事務センター to
    register the order and, without a 顧客CD, the branch's managers for one
    (:data:`UBD_ACCEPTANCE_MAILS`).
    """
    branch = branch or _branch_of(evaluation)
    to, cc = reply_recipients(message, policy)
    if defects is None and evaluation is not None:
        defects = evaluation.defects
    cc = _with_missing_managers(cc, to, branch, defects or (), policy)
    shared = dict(facts or {})
    if evaluation is not None:
        shared.update(unis_facts(evaluation))
    if evaluation is not None:
        ubd, customer_code = evaluation.submission.ubd, evaluation.submission.customer_code
    else:
        ubd = message.sender is not None and policy.is_ubd(message.sender.addr)
    if ubd:
        # 事務センター registers the order (no UNIS checks); without a code, the branch is asked for one.
        shared["ubd"] = "1"
        if not customer_code:
            shared["ubd_no_code"] = "1"
        if "ops_accepted" in kinds:
            kinds = (*kinds, *UBD_ACCEPTANCE_MAILS[bool(customer_code)])
        if policy.jimu_recipients:
            shared["jimu_sent"] = "1"
        if branch is not None and any(policy.is_internal(m) for m in branch.managers):
            shared["code_request_sent"] = "1"
    limit = policy.limits.max_reply_recipients
    if len(to) + len(cc) > limit:
        # Reply-all to a crowd: the sender and the branch's managers are enough.
        shared["recipients_capped"] = str(len(to) + len(cc))
        managers = branch.managers if branch is not None else ()
        cc = tuple(m for m in managers if policy.is_internal(m) and m not in to)[: max(limit - len(to), 0)]
    why_not: str | None = None
    if automatic and cap_reached:
        why_not = "cap"
    elif automatic and asks_for_no_auto_reply(message):
        why_not = "suppress_header"
    elif not to:
        why_not = "no_recipient"
    ops = tuple(policy.ops_recipients)
    has_branch_mail = any(MAIL_KINDS[k].audience == "branch" for k in kinds)
    mails: list[MailIntent] = []
    for kind in kinds:
        audience = MAIL_KINDS[kind].audience
        if audience == "branch":
            if to:
                mails.append(MailIntent(kind, to, cc, reply_to=message, facts=dict(shared), suppressed=why_not))
        elif audience == "jimu":
            if policy.jimu_recipients:
                files = _documents_to_send(documents, evaluation, message)
                jimu_facts = {**shared, "documents_attached": "1"} if files else dict(shared)
                jimu = MailIntent(kind, tuple(policy.jimu_recipients), facts=jimu_facts, attachments=files)
                mails.append(jimu)
        elif audience == "managers":
            managers = tuple(m for m in (branch.managers if branch is not None else ()) if policy.is_internal(m))
            if managers:
                # A thread of its own (no reply_to): the branch's answer finds the case by this mail's Message-ID.
                mails.append(MailIntent(kind, managers, facts=dict(shared)))
        elif ops:
            ops_facts = dict(shared)
            if has_branch_mail and why_not:
                ops_facts["reply_suppressed"] = why_not
            mails.append(MailIntent(kind, ops, facts=ops_facts))
    return tuple(mails)


# 事務センター gets the request's documents with its registration request, up to this much (a mail
# server refuses larger mail); beyond it the mail lists them and the desk sends them by hand.
MAX_FORWARDED_BYTES = 10 * 1024 * 1024


def _documents_to_send(
    documents: Sequence[Attachment] | None, evaluation: Evaluation | None, message: ParsedMessage
) -> tuple[Attachment, ...]:
    if documents is None:
        documents = evaluation.submission.documents if evaluation is not None else message.attachments
    files = tuple(a for a in documents if not is_signature(a))
    return files if sum(len(a.payload) for a in files) <= MAX_FORWARDED_BYTES else ()


# The mails an accepted UBD request adds (manual §1), by whether it carries a 顧客CD.
UBD_ACCEPTANCE_MAILS: Mapping[bool, tuple[str, ...]] = {
    True: ("jimu_registration_request",),
    False: ("jimu_registration_request", "branch_code_request"),
}


def _with_missing_managers(
    cc: tuple[str, ...], to: tuple[str, ...], branch: Branch | None, defects: Sequence[Defect], policy: Policy
) -> tuple[str, ...]:
    """A return for a missing manager copies that manager: the branch's fix is to bring them in."""
    if branch is None or not any(d.code == "manager_cc_missing" for d in defects):
        return cc
    managers = [m for m in branch.managers if policy.is_internal(m) and m not in to and m not in cc]
    return (*cc, *managers)


def asks_for_no_auto_reply(message: ParsedMessage) -> bool:
    """Exchange's X-Auto-Response-Suppress asks robots not to answer this mail.

    It is set on ordinary mail too (transport rules, some Outlook sends), so it
    does not make the mail automatic: the request is still filed and ops is
    told, only our automatic reply to the branch is held back.
    """
    values = " ".join(message.header("x-auto-response-suppress")).lower().replace(",", " ").split()
    return "all" in values or "autoreply" in values


def unis_facts(evaluation: Evaluation) -> dict[str, str]:
    """What the mails say of the UNIS line: the bound line, the manual's pattern, what was not checked."""
    submission = evaluation.submission
    facts: dict[str, str] = {}
    if submission.line is not None and submission.customer is not None:
        facts["unis_line"] = submission.line.where
        facts["unis_pattern"] = pattern_of(submission.customer)
    if evaluation.unchecked:
        facts["unchecked"] = " / ".join(n.why for n in evaluation.unchecked)
    return facts


# The review's verdict -> the lifecycle event that records it.
VERDICT_EVENTS: Mapping[CaseStatus, Event] = {
    CaseStatus.ACCEPTED: Event.ACCEPT,
    CaseStatus.RETURNED: Event.RETURN,
    CaseStatus.WAITING_UNIS: Event.WAIT,
    CaseStatus.NEEDS_REVIEW: Event.HOLD,
}


def outcome_of(case_no: str | None, evaluation: Evaluation, *, stage: Stage, event: Event) -> CaseOutcome:
    """The case state an evaluation leads to."""
    submission = evaluation.submission
    first = submission.messages[0] if submission.messages else None
    return CaseOutcome(
        case_no=case_no,
        status=evaluation.status,
        branch=submission.branch.name if submission.branch else submission.claimed_branch,
        customer_code=submission.customer_code,
        customer_name=submission.customer.name if submission.customer else None,
        defects=evaluation.defects,
        waiting_since=evaluation.waiting_since,
        stage=stage,
        event=event,
        sender=first.sender.addr if first is not None and first.sender is not None else None,
        flow=submission.flow.name if submission.flow is not None else None,
        line=submission.line.key if submission.line is not None else None,
        unchecked=evaluation.unchecked,
    )


def review(
    case: CaseView | None, evaluation: Evaluation, actor: Actor = Actor.BOT
) -> tuple[CaseOutcome, tuple[str, ...]]:
    """Record the review's verdict through the transition table: the new state and the mail kinds."""
    event = VERDICT_EVENTS[evaluation.status]
    moved = step(case.stage if case else Stage.NEW, case.status if case else None, event, actor)
    return outcome_of(case.case_no if case else None, evaluation, stage=moved.stage, event=event), moved.mails


def is_question(message: ParsedMessage, case: CaseView, evaluation: Evaluation, policy: Policy) -> bool:
    """A branch's reply to a return (or a UNIS hold) that brings nothing new is a question for a person.

    Something new is what a return asks for: a document (an attachment), a
    customer code in the reply's own text, a branch named in the subject that
    the thread did not name yet, a branch manager copied when the return was
    for the missing one. Anything else is a question whatever checking the
    thread again would say: ops gets its text, the branch no automatic 返却.
    """
    return not _brings_something_new(message, case, evaluation, policy)


def _brings_something_new(message: ParsedMessage, case: CaseView, evaluation: Evaluation, policy: Policy) -> bool:
    if any(not is_signature(a) for a in message.attachments):
        return True
    if customer_codes_in_text(own_text(message.body_text), policy.customer_code_labels, policy.customer_code_digits):
        return True
    named = parse_subject(message.subject).branch_text
    if named and named not in {parse_subject(m.subject).branch_text for m in case.messages}:
        return True
    branch = evaluation.submission.branch
    if branch is not None and any(d.code == "manager_cc_missing" for d in case.defects):
        managers = {m.lower() for m in branch.managers}
        return any(a.addr in managers for a in message.recipients)
    return False


def decide(
    message: ParsedMessage,
    *,
    received_at: datetime,
    now: datetime,
    case: CaseView | None,
    duplicate: bool,
    directory: BranchDirectory,
    unis: UnisLookup,
    policy: Policy,
    replies_to_sender_last_hour: int = 0,
    checks: Sequence[Check] = CHECKS,
    answers_ops_notice: bool = False,
    released: bool = False,
    answers_code_request: bool = False,
) -> Decision:
    """Decide one inbound message.

    ``case`` is the case the message's thread (In-Reply-To, References, or the
    case number in the subject) belongs to, when the shell found one.
    """
    facts = TriageFacts(
        duplicate=duplicate,
        linked_case=case is not None,
        answers_ops_notice=answers_ops_notice,
        released=released,
        branch_names=tuple(b.name for b in directory.branches),
    )
    verdict: Triage = triage(message, facts, policy)
    if verdict.disposition is Disposition.IGNORED:
        return Decision(Disposition.IGNORED, verdict.reason)
    if verdict.disposition is Disposition.QUARANTINED:
        return quarantine(verdict.reason, policy)
    if verdict.disposition is Disposition.CASE and case is not None:
        return _in_thread(case, Event.STAFF_MESSAGE, verdict.reason, message, policy)

    if _over_limits(message, policy):
        return quarantine("too_many_attachments", policy)
    if case is not None and answers_code_request and not case.customer_code:
        # The branch answers the desk's 顧客CD request for a new UBD customer (manual §1).
        answered = answered_code(message, policy)
        if answered is not None:
            return code_answered(case, answered, message, policy, unis)
    if case is not None and STAGES[case.stage].on_reply == "followup":
        # Accepted or closed: a later mail is for the staff to read.
        return _in_thread(case, Event.FOLLOWUP, "followup", message, policy)

    thread = (*case.messages, message) if case is not None else (message,)
    evaluation = evaluate(
        thread,
        directory=directory,
        unis=unis,
        policy=policy,
        received_at=received_at,
        now=now,
        checks=checks,
        case_no=case.case_no if case is not None else None,
    )
    if case is not None and is_question(message, case, evaluation, policy):
        return _in_thread(case, Event.QUESTION, "question", message, policy, evaluation)
    outcome, kinds = review(case, evaluation)
    cap_reached = replies_to_sender_last_hour >= policy.max_replies_per_sender_per_hour
    reason = "resubmission" if case is not None else ("released" if released else "new_request")
    mail_facts = {"resubmission": "1"} if case is not None else {}
    mails = mails_for(kinds, message, policy, cap_reached=cap_reached, evaluation=evaluation, facts=mail_facts)
    return Decision(Disposition.CASE, reason, outcome, mails)


_BARE_CODE = r"(?<![0-9]){digits}(?![0-9])"


def answered_code(message: ParsedMessage, policy: Policy) -> str | None:
    """The one 顧客CD a reply gives: labelled (顧客CD: ...), else the only bare number of the right length."""
    text = own_text(message.body_text)
    labels, digits = policy.customer_code_labels, policy.customer_code_digits
    codes = customer_codes_in_text(text, labels, digits)
    if not codes:
        codes = list(dict.fromkeys(re.findall(_BARE_CODE.format(digits=f"[0-9]{{{digits}}}"), normalize(text))))
    return codes[0] if len(codes) == 1 else None


def code_answered(case: CaseView, code: str, message: ParsedMessage, policy: Policy, unis: UnisLookup) -> Decision:
    """Record the branch's 顧客CD on the case and pass it on to 事務センター."""
    moved = step(case.stage, case.status, Event.SET_CUSTOMER, Actor.BOT)
    sender = message.sender.addr if message.sender is not None else "(差出人不明)"
    note, customer_name, facts = set_customer_note(code, sender, unis)
    outcome = replace(
        unchanged(case, moved.stage, Event.SET_CUSTOMER), customer_code=code, customer_name=customer_name, note=note
    )
    facts = {**facts, **request_facts(case.messages), "case_no": case.case_no, "code_answered_by": sender}
    documents = [a for m in case.messages for a in m.attachments]
    mails = mails_for(
        ("jimu_registration_request",), message, policy, facts=facts, customer_code=code, documents=documents
    )
    return Decision(Disposition.CASE, "customer_code_reply", outcome, mails)


def request_facts(messages: Sequence[ParsedMessage]) -> dict[str, str]:
    """The request a later mail to 事務センター is about: its subject and the documents it brought."""
    if not messages:
        return {}
    documents = [a.filename for m in messages for a in m.attachments if not is_signature(a)]
    return {"request_subject": messages[0].subject, "documents": ", ".join(documents) or "(なし)"}


def set_customer_note(code: str, by: str, unis: UnisLookup) -> tuple[str, str | None, dict[str, str]]:
    """The event's note for a 顧客CD set on a case, the customer's name UNIS knows, and facts for the mails.

    The UNIS check that can run on a bare code: whether the latest export knows the customer.
    """
    customer = unis.customer(code)
    if customer is not None:
        return f"顧客CD {code}({customer.name})を登録: {by}", customer.name, {"unis_known": "1"}
    when = unis.as_of.isoformat() if unis.as_of is not None else ""
    return f"顧客CD {code} を登録: {by}(UNISの最新の取込にはまだありません)", None, {"unis_as_of_missing": when}


def _in_thread(
    case: CaseView,
    event: Event,
    reason: str,
    message: ParsedMessage,
    policy: Policy,
    evaluation: Evaluation | None = None,
) -> Decision:
    """Mail recorded on its case without a new verdict; the table says which mails (if any) follow."""
    moved = step(case.stage, case.status, event, Actor.BOT)
    facts = {"case_no": case.case_no, "stage": case.stage.value}
    mails = mails_for(moved.mails, message, policy, evaluation=evaluation, facts=facts)
    return Decision(Disposition.CASE, reason, unchanged(case, moved.stage, event), mails)


def unchanged(case: CaseView, stage: Stage, event: Event) -> CaseOutcome:
    """An event that keeps the verdict: only the stage (and the record of the event) may move."""
    return CaseOutcome(
        case_no=case.case_no,
        status=case.status,
        branch=None,
        customer_code=None,
        customer_name=None,
        defects=case.defects,
        waiting_since=case.waiting_since,
        changed=False,
        stage=stage,
        event=event,
    )


def _over_limits(message: ParsedMessage, policy: Policy) -> bool:
    limits = policy.limits
    return len(message.attachments) > limits.max_attachments or (
        sum(len(a.payload) for a in message.attachments) > limits.max_total_attachment_bytes
    )


def decide_unopened(
    headers: ParsedMessage, *, reason: str, duplicate: bool, linked_case: bool, policy: Policy
) -> Decision:
    """A message too large to open, judged by its headers: left alone unless it is a request.

    Non-requests (auto-replies, newsletters, staff mail with big photos) are
    ignored as usual; a request is quarantined with ``reason`` for a person.
    """
    verdict = triage(headers, TriageFacts(duplicate=duplicate, linked_case=linked_case), policy)
    if verdict.disposition is Disposition.IGNORED:
        return Decision(Disposition.IGNORED, verdict.reason)
    if verdict.disposition is Disposition.QUARANTINED:
        return quarantine(verdict.reason, policy)
    return quarantine(reason, policy)


def quarantine(reason: str, policy: Policy) -> Decision:
    """Set a message aside for a person, telling ops; never answering the sender."""
    ops = tuple(policy.ops_recipients)
    mails = (MailIntent("ops_quarantined", ops, facts={"reason": reason}),) if ops else ()
    return Decision(Disposition.QUARANTINED, reason, None, mails)


def redecide(
    case: CaseView,
    *,
    directory: BranchDirectory,
    unis: UnisLookup,
    policy: Policy,
    now: datetime,
    checks: Sequence[Check] = CHECKS,
) -> tuple[CaseOutcome, tuple[MailIntent, ...]] | None:
    """Check a waiting case again (after a UNIS import, or when its wait runs out).

    Returns None while it still waits.
    """
    if case.status is not CaseStatus.WAITING_UNIS or not case.messages or case.stage is not Stage.RECEIVED:
        return None
    received_at = case.waiting_since or now
    evaluation = evaluate(
        case.messages,
        directory=directory,
        unis=unis,
        policy=policy,
        received_at=received_at,
        now=now,
        checks=checks,
        case_no=case.case_no,
    )
    if evaluation.status is CaseStatus.WAITING_UNIS:
        return None
    outcome, kinds = review(case, evaluation)
    return outcome, mails_for(kinds, case.messages[-1], policy, evaluation=evaluation)
