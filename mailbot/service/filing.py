"""Filing a mail: what the ledger knows of its thread, the core's decision on it, and its records.

A mailbox item becomes an ``Inbound`` ledger row (:func:`new_inbound`); the
decision on it is recorded with :func:`file_decision` (the row's disposition,
the case change with its event, the mails) in the caller's transaction. The
poll (:mod:`mailbot.service.intake`), the desk's release of a quarantined mail
and the replay all file through here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mailbot.adapters.database.schema import Case, Inbound
from mailbot.adapters.database.store import (
    DbUnisLookup,
    Store,
    db_id,
    db_text,
    defects_from_json,
    defects_to_json,
)
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import Check
from mailbot.domain.decision import CaseView, Decision, decide
from mailbot.domain.lifecycle import BRANCH_MAILS, Stage
from mailbot.domain.model import CaseStatus, Disposition, ParsedMessage
from mailbot.domain.parsing import parse_message
from mailbot.domain.policy import Policy
from mailbot.domain.subject import parse_subject
from mailbot.service.casefile import BOT_ACTOR, CaseChange, RecordContext, record, write_mails

__all__ = [
    "BODY_TEXT_CHARS",
    "Filed",
    "case_view",
    "content_digest",
    "decide_message",
    "file_decision",
    "headers_only",
    "new_inbound",
    "thread_case",
    "thread_ids",
]

# How much decoded text the ledger keeps per message (for search and notices).
BODY_TEXT_CHARS = 20_000


@dataclass
class Filed:
    """What a mail was filed as: the poll marks the mailbox and logs by it."""

    disposition: str
    status: str | None
    case_no: str | None
    reason: str
    message_id: str


def decide_message(
    store: Store,
    message: ParsedMessage,
    now: datetime,
    received_at: datetime,
    *,
    directory: BranchDirectory,
    policy: Policy,
    checks: Sequence[Check],
    released: bool = False,
) -> tuple[Decision, bool]:
    """The core's decision on a parsed message, with what the ledger knows of its thread and sender.

    Returns the decision and whether the message reuses the Message-ID of
    a different earlier mail (then it is filed as new, not a duplicate).
    """
    case_row = thread_case(store, message)
    replies = 0
    if message.sender is not None:
        replies = store.branch_mails_to_since(message.sender.addr, BRANCH_MAILS, now - timedelta(hours=1))
    seen = store.identity_contents(message.identity)
    content = content_digest(message)
    duplicate = bool(seen) and not released and (content in seen or "" in seen)
    decision = decide(
        message,
        received_at=received_at,
        now=now,
        case=case_view(case_row, store.case_messages(case_row)) if case_row is not None else None,
        duplicate=duplicate,
        directory=directory,
        unis=DbUnisLookup(store.session),
        policy=policy,
        replies_to_sender_last_hour=replies,
        checks=checks,
        answers_ops_notice=store.answers_ops_notice(thread_ids(message)),
        released=released,
        answers_code_request=case_row is not None
        and not case_row.customer_code
        and store.answers_mail_kind(thread_ids(message), "branch_code_request"),
    )
    return decision, bool(seen) and not duplicate and not released


def case_view(case: Case, thread: Sequence[tuple[Inbound, ParsedMessage]]) -> CaseView:
    """The core's view of a case from its row and its thread as the store rebuilt it."""
    return CaseView(
        case_no=case.case_no,
        status=CaseStatus(case.status),
        messages=tuple(message for _, message in thread),
        waiting_since=case.waiting_since,
        stage=Stage(case.stage),
        defects=defects_from_json(case.defects or []),
        customer_code=case.customer_code,
    )


def thread_ids(message: ParsedMessage) -> list[str]:
    return [m for m in (message.in_reply_to, *message.references) if m]


def thread_case(store: Store, message: ParsedMessage) -> Case | None:
    """The case a message's thread belongs to: by the mails it answers, else by the number in its subject."""
    return store.case_for_thread(thread_ids(message), parse_subject(message.subject).case_no)


def content_digest(message: ParsedMessage) -> str:
    """What makes two deliveries the same mail: sender, subject, date, text and attachments, not transport headers."""
    digest = hashlib.sha256()
    parts = [
        message.sender.addr if message.sender else "",
        message.subject,
        message.date.isoformat() if message.date else "",
        message.body_text,
    ]
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    for attachment in message.attachments:
        digest.update(attachment.filename.encode("utf-8", "surrogatepass") + b"\x00")
        digest.update(hashlib.sha256(attachment.payload).digest())
    return digest.hexdigest()


def new_inbound(
    source: str,
    key: str,
    message: ParsedMessage | None,
    raw: bytes | None,
    store: Store,
    now: datetime,
    received_at: datetime,
) -> Inbound:
    """The ledger row for a mailbox item, not yet added: ``file_decision`` fills in its disposition."""
    raw_row = store.save_raw(raw) if raw is not None else None
    return Inbound(
        source=source,
        source_key=key,
        identity=db_id(message.identity if message else f"<{key}@{source}>"),
        message_id=db_id(message.message_id) if message and message.message_id else None,
        subject=db_text(message.subject) if message else "",
        sender=db_text(message.sender.addr, 320) if message and message.sender else None,
        raw_id=raw_row.id if raw_row else None,
        defects=[],
        problems=[db_text(p) for p in message.problems] if message else [],
        body_text=db_text(message.body_text)[:BODY_TEXT_CHARS] if message else "",
        content_sha=content_digest(message) if message else None,
        received_at=received_at,
        processed_at=now,
    )


def file_decision(
    uow: RecordContext,
    inbound: Inbound,
    decision: Decision,
    message: ParsedMessage | None,
    received_at: datetime,
    facts_extra: dict[str, str] | None = None,
    actor: str = BOT_ACTOR,
    note: str | None = None,
) -> Filed:
    """Record a decision: the ledger row's disposition, the case change with its event, the mails.

    ``note`` goes before the outcome's own note in the event (a release's reason).
    """
    store = uow.store
    inbound.disposition = decision.disposition.value
    inbound.reason = decision.reason
    outcome = decision.case
    inbound.defects = defects_to_json(outcome.defects) if outcome is not None and outcome.changed else []
    if inbound.id is None:
        store.session.add(inbound)
    store.session.flush()
    case_row: Case | None = None
    mails = decision.mails
    if facts_extra:
        mails = tuple(replace(m, facts={**m.facts, **facts_extra}) for m in mails)
    if outcome is not None:
        change = CaseChange(
            outcome=outcome,
            event=outcome.event,
            reason=decision.reason,
            mails=mails,
            message=message,
            received_at=received_at,
            inbound_id=inbound.id,
            actor=actor,
            note=" / ".join(n for n in (note, outcome.note) if n) or None,
        )
        case_row = record(uow, change)
        inbound.case_id = case_row.id
    else:
        # The notice names the ledger row, so the clerk can release or discard it by number.
        extra = {"quarantine_id": str(inbound.id)} if decision.disposition is Disposition.QUARANTINED else {}
        write_mails(uow, mails, None, message, inbound.id, received_at, facts_extra=extra)
    store.clear_failure(inbound.source, inbound.source_key)
    store.session.flush()
    return Filed(
        decision.disposition.value,
        case_row.status if case_row else None,
        case_row.case_no if case_row else None,
        decision.reason,
        inbound.message_id or inbound.identity,
    )


def headers_only(raw: bytes | None) -> ParsedMessage | None:
    """Sender, subject and Message-ID of a mail that cannot be processed, for the notice to ops."""
    if raw is None:
        return None
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    try:
        return parse_message(head + b"\r\n\r\n")
    except Exception:  # the notice must go out whatever the headers hold
        return None
