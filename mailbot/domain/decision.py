"""From a parsed mail and what the shell looked up, to a decision and its mails.

Pure: the shell passes the branch directory, the UNIS lookup, the policy,
the thread found in the ledger and ``now``; nothing here reads a clock, a
database or the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import CHECKS, UNIS_CODES, Check, Submission, build_submission, run_checks
from mailbot.domain.model import CaseStatus, Defect, Disposition, ParsedMessage
from mailbot.domain.policy import Policy
from mailbot.domain.triage import Triage, TriageFacts, triage
from mailbot.domain.unis import UnisLookup

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
]

# Mails that go to the branch (and so count against the per-sender cap).
BRANCH_MAILS = frozenset({"defect_reply", "receipt"})


@dataclass(frozen=True)
class CaseView:
    """An existing case as the ledger knows it."""

    case_no: str
    status: CaseStatus
    messages: tuple[ParsedMessage, ...]  # oldest first
    waiting_since: datetime | None = None


@dataclass(frozen=True)
class MailIntent:
    """A mail to send: which template, to whom, threaded under which message."""

    kind: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    reply_to: ParsedMessage | None = None
    facts: dict[str, str] = field(default_factory=dict)


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


def evaluate(
    messages: Sequence[ParsedMessage],
    *,
    directory: BranchDirectory,
    unis: UnisLookup,
    policy: Policy,
    received_at: datetime,
    now: datetime,
    checks: Sequence[Check] = CHECKS,
) -> Evaluation:
    """Run every check over the thread and say accepted, returned or waiting for UNIS.

    A request that fails only UNIS checks waits when the snapshot predates the
    mail (the branch may have registered the customer after the last export),
    until ``unis_max_wait_hours`` after the mail arrived.
    """
    submission = build_submission(messages, directory, unis, policy)
    defects = tuple(run_checks(submission, policy, checks))
    if not defects:
        return Evaluation(CaseStatus.ACCEPTED, defects, submission, None)
    unis_defects = tuple(d for d in defects if d.code in UNIS_CODES)
    # A snapshot older than the mail (or none at all) cannot say the customer is
    # missing: the branch may have registered it since. Until the wait runs
    # out, UNIS defects are not told to the branch.
    snapshot_current = unis.as_of is not None and unis.as_of >= received_at
    waited_out = now >= received_at + timedelta(hours=policy.unis_max_wait_hours)
    if unis_defects and not snapshot_current and not waited_out:
        others = tuple(d for d in defects if d.code not in UNIS_CODES)
        if not others:
            return Evaluation(CaseStatus.WAITING_UNIS, defects, submission, received_at)
        return Evaluation(CaseStatus.RETURNED, others, submission, None)
    return Evaluation(CaseStatus.RETURNED, defects, submission, None)


def reply_recipients(message: ParsedMessage, policy: Policy) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """To the sender, Cc the internal people the sender wrote to; never the desk, never outside."""
    to: list[str] = []
    if (
        message.sender is not None
        and policy.is_internal(message.sender.addr)
        and not policy.is_desk(message.sender.addr)
    ):
        to.append(message.sender.addr)
    cc = [
        a.addr
        for a in message.recipients
        if policy.is_internal(a.addr) and not policy.is_desk(a.addr) and a.addr not in to
    ]
    return tuple(to), tuple(dict.fromkeys(cc))


def mails_for(
    status: CaseStatus,
    message: ParsedMessage,
    policy: Policy,
    *,
    cap_reached: bool,
    evaluation: Evaluation | None = None,
) -> tuple[MailIntent, ...]:
    to, cc = reply_recipients(message, policy)
    if evaluation is not None:
        cc = _with_missing_managers(cc, to, evaluation, policy)
    ops = tuple(policy.ops_recipients)
    branch_kind, ops_kind = {
        CaseStatus.ACCEPTED: ("receipt", "ops_accepted"),
        CaseStatus.RETURNED: ("defect_reply", "ops_returned"),
        CaseStatus.WAITING_UNIS: (None, "ops_waiting"),
    }[status]
    why_not = None
    if cap_reached:
        why_not = "cap"
    elif asks_for_no_auto_reply(message):
        why_not = "suppress_header"
    elif not to:
        why_not = "no_recipient"
    mails: list[MailIntent] = []
    if branch_kind and why_not is None:
        mails.append(MailIntent(branch_kind, to, cc, reply_to=message))
    if ops:
        facts = {"reply_suppressed": why_not} if branch_kind and why_not else {}
        mails.append(MailIntent(ops_kind, ops, reply_to=None, facts=facts))
    return tuple(mails)


def _with_missing_managers(
    cc: tuple[str, ...], to: tuple[str, ...], evaluation: Evaluation, policy: Policy
) -> tuple[str, ...]:
    """A return for a missing manager copies that manager: the branch's fix is to bring them in."""
    branch = evaluation.submission.branch
    if branch is None or not any(d.code == "manager_cc_missing" for d in evaluation.defects):
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


def outcome_of(case_no: str | None, evaluation: Evaluation, *, changed: bool = True) -> CaseOutcome:
    """The case state an evaluation leads to."""
    submission = evaluation.submission
    return CaseOutcome(
        case_no=case_no,
        status=evaluation.status,
        branch=submission.branch.name if submission.branch else submission.claimed_branch,
        customer_code=submission.customer_code,
        customer_name=submission.customer.name if submission.customer else None,
        defects=evaluation.defects,
        waiting_since=evaluation.waiting_since,
        changed=changed,
    )


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
) -> Decision:
    """Decide one inbound message.

    ``case`` is the case the message's thread (In-Reply-To, References, or the
    case number in the subject) belongs to, when the shell found one.
    """
    verdict: Triage = triage(message, TriageFacts(duplicate=duplicate, linked_case=case is not None), policy)
    if verdict.disposition is Disposition.IGNORED:
        return Decision(Disposition.IGNORED, verdict.reason)
    if verdict.disposition is Disposition.QUARANTINED:
        return quarantine(verdict.reason, policy)

    if _over_limits(message, policy):
        return quarantine("too_many_attachments", policy)
    cap_reached = replies_to_sender_last_hour >= policy.max_replies_per_sender_per_hour
    if case is not None and case.status is CaseStatus.ACCEPTED:
        # The request was already taken: a later mail is for the staff to read.
        ops = tuple(policy.ops_recipients)
        mails = (MailIntent("ops_followup", ops, facts={"case_no": case.case_no}),) if ops else ()
        view = _unchanged(case)
        return Decision(Disposition.CASE, "followup", view, mails)

    thread = (*case.messages, message) if case is not None else (message,)
    evaluation = evaluate(
        thread, directory=directory, unis=unis, policy=policy, received_at=received_at, now=now, checks=checks
    )
    outcome = outcome_of(case.case_no if case else None, evaluation)
    reason = "resubmission" if case is not None else "new_request"
    return Decision(
        Disposition.CASE,
        reason,
        outcome,
        mails_for(evaluation.status, message, policy, cap_reached=cap_reached, evaluation=evaluation),
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


def _unchanged(case: CaseView) -> CaseOutcome:
    return CaseOutcome(
        case_no=case.case_no,
        status=case.status,
        branch=None,
        customer_code=None,
        customer_name=None,
        defects=(),
        waiting_since=case.waiting_since,
        changed=False,
    )


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
    if case.status is not CaseStatus.WAITING_UNIS or not case.messages:
        return None
    received_at = case.waiting_since or now
    evaluation = evaluate(
        case.messages, directory=directory, unis=unis, policy=policy, received_at=received_at, now=now, checks=checks
    )
    if evaluation.status is CaseStatus.WAITING_UNIS:
        return None
    outcome = outcome_of(case.case_no, evaluation)
    return outcome, mails_for(evaluation.status, case.messages[-1], policy, cap_reached=False, evaluation=evaluation)
