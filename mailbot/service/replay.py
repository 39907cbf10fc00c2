"""``mailbot replay``: run today's checks and config over stored cases again.

Each case's thread is rebuilt from the raw messages kept in the database and
checked again with today's rules and config; a case whose status or defects
would differ is listed. UNIS results are carried over from the case's last
decision, so only rule and config changes show, not UNIS data that has moved
on since. Applying a change updates the case
and queues the mails the intake would queue for that outcome (the branch's
receipt or defect reply, and the ops notice), one transaction per case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.store import DbUnisLookup, Store, defects_from_json
from mailbot.adapters.database.tables import Case
from mailbot.adapters.templates import Renderer
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import CHECKS, UNIS_CODES, Check
from mailbot.domain.decision import BRANCH_MAILS, Evaluation, evaluate, mails_for, outcome_of
from mailbot.domain.model import CaseStatus, Defect
from mailbot.domain.policy import Policy
from mailbot.service.mails import build_outbox_row, format_jst, mail_context

__all__ = ["ReplayChange", "replay_cases"]

log = logging.getLogger("mailbot.replay")


@dataclass(frozen=True)
class ReplayChange:
    case_no: str
    branch: str | None
    old_status: str
    new_status: str
    old_defects: tuple[Defect, ...]
    new_defects: tuple[Defect, ...]
    applied: bool = False
    mails: tuple[str, ...] = ()

    def describe(self, title: Callable[[str], str] = str) -> str:
        def codes(defects: Sequence[Defect]) -> str:
            return ", ".join(title(d.code) for d in defects) or "不備なし"

        verb = "changed" if self.applied else "would change"
        text = (
            f"{self.case_no} {self.branch or '(支店不明)'}: {verb} {self.old_status} → {self.new_status}; "
            f"defects: [{codes(self.old_defects)}] → [{codes(self.new_defects)}]"
        )
        if self.mails:
            text += f"; queued {', '.join(self.mails)}"
        return text


def _key(defects: Sequence[Defect]) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [(d.code, tuple(sorted(d.detail.items()))) for d in defects]


def replay_cases(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    *,
    directory: BranchDirectory,
    policy: Policy,
    since: datetime,
    now: datetime,
    apply: bool,
    checks: Sequence[Check] = CHECKS,
    case_no: str | None = None,
) -> list[ReplayChange]:
    """Every case created since ``since`` whose decision would change; applied when ``apply``."""
    with sessions() as session:
        query = select(Case.id).where(Case.created_at >= since).order_by(Case.id)
        if case_no:
            query = query.where(Case.case_no == case_no)
        ids = list(session.scalars(query))
    changes = []
    for case_id in ids:
        with sessions.begin() as session:
            change = _replay_one(
                session, case_id, renderer, directory=directory, policy=policy, now=now, apply=apply, checks=checks
            )
            if change is None:
                continue
            if not apply:
                session.rollback()
        changes.append(change)
        if apply:
            log.info("replay: %s", change.describe())
    return changes


def _replay_one(
    session: Session,
    case_id: int,
    renderer: Renderer,
    *,
    directory: BranchDirectory,
    policy: Policy,
    now: datetime,
    apply: bool,
    checks: Sequence[Check],
) -> ReplayChange | None:
    store = Store(session)
    case = session.get(Case, case_id)
    if case is None:
        return None
    thread = store.case_messages(case)
    if not thread:
        return None
    latest_row, latest = thread[-1]
    received_at = (
        case.waiting_since
        if case.status == CaseStatus.WAITING_UNIS.value and case.waiting_since
        else (latest_row.received_at)
    )
    old_defects = defects_from_json(case.defects or [])
    # Only the rules are replayed. UNIS keeps one snapshot, taken today; judging
    # an old case against it would report customers whose order has moved on
    # since as new defects. The UNIS results of the case's last decision stand.
    rules = [c for c in checks if c.name not in UNIS_CODES]
    by_rules: Evaluation = evaluate(
        [m for _, m in thread],
        directory=directory,
        unis=DbUnisLookup(session),
        policy=policy,
        received_at=received_at,
        now=now,
        checks=rules,
    )
    order = {c.name: i for i, c in enumerate(checks)}
    defects = tuple(
        sorted(
            (*by_rules.defects, *(d for d in old_defects if d.code in UNIS_CODES)),
            key=lambda d: order.get(d.code, len(order)),
        )
    )
    if not defects:
        status = CaseStatus.ACCEPTED
    elif case.status == CaseStatus.WAITING_UNIS.value and all(d.code in UNIS_CODES for d in defects):
        status = CaseStatus.WAITING_UNIS
    else:
        status = CaseStatus.RETURNED
    waiting_since = case.waiting_since if status is CaseStatus.WAITING_UNIS else None
    evaluation = Evaluation(status, defects, by_rules.submission, waiting_since)
    if evaluation.status.value == case.status and _key(evaluation.defects) == _key(old_defects):
        return None
    change = ReplayChange(
        case_no=case.case_no,
        branch=case.branch,
        old_status=case.status,
        new_status=evaluation.status.value,
        old_defects=old_defects,
        new_defects=evaluation.defects,
    )
    if not apply:
        return change
    store.set_case_state(case, outcome_of(case.case_no, evaluation), now=now, reason="replay")
    cap_reached = False
    if latest.sender is not None:
        sent = store.branch_mails_to_since(latest.sender.addr, BRANCH_MAILS, now - timedelta(hours=1))
        cap_reached = sent >= policy.max_replies_per_sender_per_hour
    # The same mails the intake sends for this outcome (decision's own rule).
    intents = mails_for(evaluation.status, latest, policy, cap_reached=cap_reached, evaluation=evaluation)
    snapshot = store.latest_snapshot()
    kinds = []
    for intent in intents:
        context: dict[str, Any] = mail_context(
            case_no=case.case_no,
            branch=case.branch,
            customer_code=case.customer_code,
            customer_name=case.customer_name,
            defects=evaluation.defects,
            message=latest,
            received_at=latest_row.received_at,
            policy=policy,
            facts=intent.facts,
            extra={"unis_as_of": format_jst(snapshot.as_of) if snapshot else ""},
        )
        store.add_outbox(
            build_outbox_row(
                intent,
                renderer=renderer,
                context=context,
                policy=policy,
                now=now,
                case_id=case.id,
                inbound_id=None,
            )
        )
        kinds.append(intent.kind)
    return ReplayChange(
        case_no=change.case_no,
        branch=case.branch,
        old_status=change.old_status,
        new_status=change.new_status,
        old_defects=change.old_defects,
        new_defects=change.new_defects,
        applied=True,
        mails=tuple(kinds),
    )
