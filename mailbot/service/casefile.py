"""The one place that writes a case change: the case row, its event, its outbox rows.

Every command of the application service (an inbound mail, a UNIS re-check,
a replay, a desk action) ends here, inside the command's transaction, so a
case never changes without its event and never sends a mail the database
does not hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailbot.adapters.database.schema import Case, CaseEvent
from mailbot.adapters.database.store import Store, db_text, defects_from_json, defects_to_json
from mailbot.adapters.templates import Renderer
from mailbot.domain.clock import format_ja
from mailbot.domain.decision import CaseOutcome, MailIntent
from mailbot.domain.japanese import normalize
from mailbot.domain.lifecycle import ACTIVE_STAGES, Event
from mailbot.domain.model import CaseStatus, ParsedMessage
from mailbot.domain.policy import Policy
from mailbot.service.mails import build_outbox_row, mail_context

__all__ = ["BOT_ACTOR", "CaseChange", "RecordContext", "record", "write_mails"]

# How the bot signs the events it records.
BOT_ACTOR = "mailbot"


@dataclass
class RecordContext:
    """What :func:`record` writes a case change with, inside the caller's transaction.

    The store over the command's session, how to render mail, the policy and the
    command's moment. It neither commits nor rolls back: the caller's
    ``sessions.begin()`` block does (it was called ``UnitOfWork``, which it is not).
    """

    store: Store
    renderer: Renderer
    policy: Policy
    now: datetime
    base_url: str = ""
    # Extra template variables for every mail of this command (e.g. the web's links).
    context_extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseChange:
    """What a command does to one case.

    ``outcome`` carries the stage and, when ``outcome.changed``, a new verdict
    (status, defects, customer ...). ``actor`` is ``BOT_ACTOR`` or a person's
    name; ``reason`` what set it off; ``note`` the person's own words.
    """

    outcome: CaseOutcome
    event: Event
    actor: str = BOT_ACTOR
    reason: str = ""
    note: str | None = None
    mails: tuple[MailIntent, ...] = ()
    message: ParsedMessage | None = None  # the branch mail the mails answer or report
    received_at: datetime | None = None
    inbound_id: int | None = None

    @property
    def by_person(self) -> bool:
        return self.actor != BOT_ACTOR


def record(uow: RecordContext, change: CaseChange, case: Case | None = None) -> Case:
    """Apply ``change`` to ``case`` (a new case when None) and write its event and mails."""
    store, now, outcome = uow.store, uow.now, change.outcome
    if case is None:
        if outcome.case_no is None:
            case = store.new_case(now.astimezone(uow.policy.tz).year, now)
        else:
            found = store.case_by_no(outcome.case_no)
            if found is None:
                raise LookupError(f"no case {outcome.case_no}")
            case = found
    if outcome.changed:
        defects_json = defects_to_json(outcome.defects)
        case.status = outcome.status.value
        case.branch = db_text(outcome.branch) if outcome.branch else None
        case.customer_code = outcome.customer_code
        case.customer_name = db_text(outcome.customer_name) if outcome.customer_name else None
        case.customer_key = search_key(outcome.customer_name) if outcome.customer_name else None
        case.defects = defects_json
        case.waiting_since = outcome.waiting_since
        if outcome.status is CaseStatus.RETURNED:
            case.return_count += 1
        # A person's verdict stands until a person (or a new mail of the branch) changes it.
        case.decided_by = change.actor if change.by_person else None
        if case.sender is None and outcome.sender:
            case.sender = db_text(outcome.sender, 320)
        if outcome.flow is not None:
            case.flow = db_text(outcome.flow, 60)
    if change.event is Event.SET_CUSTOMER and outcome.customer_code:
        # Only the customer moves: the verdict, its defects and the return count stay as they are.
        case.customer_code = outcome.customer_code
        case.customer_name = db_text(outcome.customer_name) if outcome.customer_name else case.customer_name
        case.customer_key = search_key(case.customer_name) if case.customer_name else None
    bound = _bind(case, outcome)
    case.stage = outcome.stage.value
    case.updated_at = now
    if case.id is None:
        store.session.flush()  # a new case: its one INSERT, with every field set
    store.session.add(
        CaseEvent(
            case_id=case.id,
            at=now,
            status=case.status,
            defects=list(case.defects or []),
            reason=change.reason or change.event.value,
            event=change.event.value,
            stage=case.stage,
            actor=db_text(change.actor, 120),
            note=db_text(" / ".join(n for n in (change.note, bound) if n)) or None,
        )
    )
    store.session.flush()
    write_mails(uow, change.mails, case, change.message, change.inbound_id, change.received_at)
    return case


def _bind(case: Case, outcome: CaseOutcome) -> str | None:
    """Bind the case to the UNIS line its review found (manual §5: the line is the unit).

    A review (an outcome with the checks' ``unchecked``) sets the binding: an
    accepted or waiting request holds its line, a returned one keeps the line
    it would take (it holds none: see ``HOLDING_STAGES``), and a review that
    found none clears it. Other events leave it. Returns the event's note on
    a change, so the binding is in the case's history.
    """
    if outcome.unchecked is not None:
        case.unchecked = [{"check": n.check, "why": n.why} for n in outcome.unchecked]
    if not outcome.changed or outcome.unchecked is None:
        return None
    before = (case.contract_no, case.line_no) if case.contract_no is not None else None
    if outcome.line == before:
        return None
    case.contract_no, case.line_no = outcome.line if outcome.line is not None else (None, None)
    if outcome.line is None:
        return f"UNIS明細の紐付けを解除({before[0]}/{before[1]})" if before else None
    return f"UNIS明細 {outcome.line[0]}/{outcome.line[1]} に紐付け"


def search_key(text: str) -> str:
    """How names are compared in searches: NFKC, case-folded, no spaces."""
    return "".join(normalize(text).casefold().split())


def write_mails(
    uow: RecordContext,
    intents: Sequence[MailIntent],
    case: Case | None,
    message: ParsedMessage | None,
    inbound_id: int | None,
    received_at: datetime | None,
    facts_extra: dict[str, str] | None = None,
) -> None:
    """Render each intent and add it to the outbox, in the caller's transaction."""
    if not intents:
        return
    store = uow.store
    snapshot = store.latest_snapshot()
    same_customer: list[str] = []
    if case is not None and case.customer_code:
        active = ACTIVE_STAGES
        same_customer = store.other_cases_for_customer(case.customer_code, case.id, active)
    for intent in intents:
        context = mail_context(
            case_no=case.case_no if case else None,
            branch=case.branch if case else None,
            customer_code=case.customer_code if case else None,
            customer_name=case.customer_name if case else None,
            defects=defects_from_json(case.defects) if case else (),
            message=message,
            received_at=received_at,
            policy=uow.policy,
            facts={**intent.facts, **(facts_extra or {})},
            extra={
                "unis_as_of": format_ja(snapshot.as_of, uow.policy.tz) if snapshot else "",
                "same_customer": same_customer,
                "case_url": f"{uow.base_url.rstrip('/')}/cases/{case.case_no}" if uow.base_url and case else "",
                **uow.context_extra,
            },
        )
        store.add_outbox(
            build_outbox_row(
                intent,
                renderer=uow.renderer,
                context=context,
                policy=uow.policy,
                now=uow.now,
                case_id=case.id if case else None,
                inbound_id=inbound_id,
            )
        )
