"""Moving a case after acceptance: the one helper every after-acceptance command uses.

NTT entry (the desk), the progress list (NTT), the UNIS reconciliation (UNIS):
each asks the lifecycle table for the step, writes the dates and the P番号 on
the case and ends in :func:`mailbot.service.casefile.record`, with the mails
the table names answering the branch's request in its thread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date

from sqlalchemy import select

from mailbot.adapters.database.schema import Case, Inbound, JobRun
from mailbot.adapters.database.store import Store
from mailbot.config_after import AfterConfig
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.decision import MailIntent, mails_for, unchanged
from mailbot.domain.japanese import normalize
from mailbot.domain.jobs import JobName
from mailbot.domain.lifecycle import MAIL_KINDS, Actor, Event, Stage, step
from mailbot.domain.model import CaseStatus, ParsedMessage
from mailbot.domain.policy import Policy
from mailbot.service.casefile import BOT_ACTOR, CaseChange, RecordContext, record
from mailbot.service.filing import case_view

__all__ = ["P_NUMBER", "advance", "clean_p_number", "once"]

P_NUMBER = re.compile(r"^P\d{13}$")
# Mail in a case that is not the branch's request (see desk.py).
_NOT_FROM_BRANCH = frozenset({"staff_message"})


def clean_p_number(text: str) -> str | None:
    """The NTT order number as stored (P + 13 digits; any width, hyphens dropped), or None."""
    value = normalize(text).upper().replace("-", "").replace(" ", "")
    return value if P_NUMBER.match(value) else None


def latest_branch_mail(store: Store, case: Case) -> tuple[Inbound, ParsedMessage] | None:
    thread = [(row, m) for row, m in store.case_messages(case) if row.reason not in _NOT_FROM_BRANCH]
    return thread[-1] if thread else None


def once(uow: RecordContext, job: JobName, key: str, detail: str = "") -> bool:
    """True the first time (job, key) is claimed, in this transaction; False ever after, across restarts."""
    session = uow.store.session
    found = session.scalar(select(JobRun.id).where(JobRun.job == job, JobRun.key == key))
    if found is not None:
        return False
    session.add(JobRun(job=job, key=key[:200], done_at=uow.now, detail=detail or None))
    session.flush()
    return True


def advance(
    uow: RecordContext,
    case: Case,
    event: Event,
    *,
    actor: str = BOT_ACTOR,
    directory: BranchDirectory,
    settings: AfterConfig,
    note: str | None = None,
    facts: Mapping[str, str] | None = None,
    reason: str = "",
    cc_ops: bool = False,
) -> tuple[str, ...]:
    """One after-acceptance step of ``case`` (raises TransitionNotAllowed); returns the mail kinds written.

    ``cc_ops``: the branch's mails copy ops too (the reminders the manual gives ops a hand in, §5④⑤).
    """
    who = Actor.BOT if actor == BOT_ACTOR else Actor.PERSON
    moved = step(Stage(case.stage), CaseStatus(case.status), event, who)
    kinds = tuple(k for k in moved.mails if k != "completed_notice" or settings.notify_completed)
    latest = latest_branch_mail(uow.store, case)
    intents: tuple[MailIntent, ...] = ()
    all_facts = {
        "p_number": case.p_number or "",
        "completed_date": _ja(case.completed_date),
        "cancelled_date": _ja(case.cancelled_date),
        "construction_date": _ja(case.construction_date),
        "cancel_days": str(settings.cancel_days),
        **(facts or {}),
    }
    if latest is not None and kinds:
        branch = directory.get(case.branch) if case.branch else None
        intents = mails_for(kinds, latest[1], uow.policy, branch=branch, facts=all_facts, automatic=False)
        managers = branch.managers if branch else ()
        intents = tuple(_with_managers(i, managers, uow.policy) for i in intents)
        if cc_ops:
            intents = tuple(_with_managers(i, tuple(uow.policy.ops_recipients), uow.policy) for i in intents)
    elif kinds:
        # No branch mail to answer (should not happen for an accepted case): ops at least hears of it.
        intents = tuple(
            MailIntent(k, tuple(uow.policy.ops_recipients), facts=dict(all_facts))
            for k in kinds
            if MAIL_KINDS[k].audience == "ops" and uow.policy.ops_recipients
        )
    change = CaseChange(
        unchanged(case_view(case, ()), moved.stage, event),
        event,
        actor=actor,
        reason=reason or event.value,
        note=note,
        mails=intents,
        message=latest[1] if latest else None,
        received_at=latest[0].received_at if latest else None,
    )
    record(uow, change, case)
    return tuple(i.kind for i in intents)


def _with_managers(intent: MailIntent, managers: tuple[str, ...], policy: Policy) -> MailIntent:
    """A notice after acceptance goes to the request's sender and the branch's managers."""
    if MAIL_KINDS[intent.kind].audience != "branch":
        return intent
    extra = tuple(m for m in managers if policy.is_internal(m) and m not in intent.to and m not in intent.cc)
    return replace(intent, cc=(*intent.cc, *extra))


def _ja(value: date | None) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if value else ""
