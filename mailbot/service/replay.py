"""``mailbot replay``: run today's checks and config over stored cases again.

Each case's thread is rebuilt from the raw messages kept in the database and
checked again with today's rules and config; a case whose status or defects
would differ is listed. UNIS results are carried over from the case's last
decision, so only rule and config changes show, not UNIS data that has moved
on since.

Nothing is changed unless asked (``apply``). Applying a change updates the
case through the lifecycle table and queues the mails the intake would queue
for that outcome (the branch's receipt or defect reply, and the ops notice),
one transaction per case. A case a person decided, or closed, is never
touched; one the rules would take back from accepted is only listed, since
only a person may return an accepted case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import Case
from mailbot.adapters.database.store import DbUnisLookup, Store, defects_from_json
from mailbot.adapters.templates import Renderer
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import CHECKS, UNIS_CODES, Check
from mailbot.domain.decision import Evaluation, evaluate, mails_for, review
from mailbot.domain.lifecycle import BRANCH_MAILS, Stage, TransitionNotAllowed
from mailbot.domain.model import CaseStatus, Defect
from mailbot.domain.policy import Policy
from mailbot.service.casefile import CaseChange, RecordContext, record
from mailbot.service.filing import case_view
from mailbot.service.retention import removed_text

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
    # Why it was not applied although asked: "person" (decided by a person),
    # "closed", or "needs_person" (only a person may make this change).
    left_alone: str | None = None
    note: str = ""

    def describe(self, title: Callable[[str], str] = str) -> str:
        if self.left_alone == "retention":
            return f"{self.case_no} {self.branch or '(支店不明)'}: 再確認できません。{self.note}"

        def codes(defects: Sequence[Defect]) -> str:
            return ", ".join(title(d.code) for d in defects) or "不備なし"

        verb = "changed" if self.applied else "would change"
        text = (
            f"{self.case_no} {self.branch or '(支店不明)'}: {verb} {self.old_status} → {self.new_status}; "
            f"defects: [{codes(self.old_defects)}] → [{codes(self.new_defects)}]"
        )
        if self.mails:
            text += f"; queued {', '.join(self.mails)}"
        if self.left_alone:
            text += "; " + _LEFT_ALONE.get(self.left_alone, self.left_alone)
        return text


_LEFT_ALONE = {
    "person": "left alone: a person decided this case",
    "closed": "left alone: the case is closed",
    "needs_person": "left alone: only a person may return an accepted case (mailbot cases return)",
}


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
            if not change.applied:
                session.rollback()
        changes.append(change)
        if change.applied:
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
    removal = next((r for r in map(store.raw_removal, store.case_inbound(case)) if r is not None), None)
    if removal is not None:
        # Checked without what retention removed, the case would look changed for want of it.
        status = case.status
        old = defects_from_json(case.defects or [])
        gone = ReplayChange(case.case_no, case.branch, status, status, old, old, left_alone="retention")
        return replace(gone, note=removed_text(removal))
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
    if case.decided_by:
        return replace(change, left_alone="person")
    if case.stage == Stage.CLOSED.value:
        return replace(change, left_alone="closed")
    view = case_view(case, thread)
    try:
        outcome, kinds = review(view, evaluation)
    except TransitionNotAllowed:
        return replace(change, left_alone="needs_person")
    if not apply:
        return change
    cap_reached = False
    if latest.sender is not None:
        sent = store.branch_mails_to_since(latest.sender.addr, BRANCH_MAILS, now - timedelta(hours=1))
        cap_reached = sent >= policy.max_replies_per_sender_per_hour
    # The same mails the intake sends for this outcome (the lifecycle table's row).
    intents = mails_for(kinds, latest, policy, cap_reached=cap_reached, evaluation=evaluation)
    uow = RecordContext(store, renderer, policy, now)
    record(
        uow,
        CaseChange(
            outcome=outcome,
            event=outcome.event,
            reason="replay",
            mails=intents,
            message=latest,
            received_at=latest_row.received_at,
        ),
        case,
    )
    return replace(change, applied=True, mails=tuple(i.kind for i in intents))
