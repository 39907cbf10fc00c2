"""Deciding again the cases waiting for UNIS: after each poll, a UNIS import, or new rules.

A part of :class:`mailbot.service.intake.Intake` (its ``recheck_waiting``),
kept apart because it is a job of its own: it reads no mailbox and files no
mail, it only moves waiting cases on when their answer has changed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import Case, JobRun
from mailbot.adapters.database.store import DbUnisLookup, Store
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import Check
from mailbot.domain.decision import redecide
from mailbot.domain.jobs import JobName
from mailbot.domain.model import CaseStatus
from mailbot.domain.policy import Policy
from mailbot.service.casefile import CaseChange, RecordContext, record
from mailbot.service.filing import case_view

__all__ = ["WaitingRecheck"]

log = logging.getLogger("mailbot.intake")


class WaitingRecheck:
    """The re-check of waiting cases, over the intake's sessions, rules and clock (set by ``Intake``)."""

    sessions: sessionmaker[Session]
    directory: BranchDirectory
    policy: Policy
    checks: Sequence[Check]
    clock: Callable[[], datetime]
    # The rules' digest and what it was made of (see _rules_digest).
    _rules_digested: tuple[tuple[object, object, tuple[str, ...]], str] | None = None

    def _uow(self, store: Store, now: datetime) -> RecordContext:
        raise NotImplementedError  # Intake's: the record context with its renderer and base URL

    def recheck_waiting(self) -> int:
        """Decide again the cases waiting for UNIS whose answer may have changed; returns how many changed.

        A waiting case's answer changes only with another UNIS snapshot (or
        other rules) or when its wait runs out (``redecide``). A ``JobRun``
        row names the snapshot and rules of the last pass and when it began;
        while they stay the same, a pass re-checks only the cases whose wait
        has run out and those changed since the last pass began, so an idle
        poll costs what is new, not one transaction per waiting case.
        """
        changed = 0
        started = self.clock()
        key = self._recheck_key()
        with self.sessions() as session:
            store = Store(session)
            done = session.scalar(select(JobRun.done_at).where(JobRun.job == JobName.UNIS_RECHECK, JobRun.key == key))
            if done is None:
                cases = store.waiting_cases()
            else:
                waited_out = started - timedelta(hours=self.policy.unis_max_wait_hours)
                cases = store.waiting_cases(waited_out_at=waited_out, changed_since=done)
            ids = [c.id for c in cases]
        for case_id in ids:
            with self.sessions.begin() as session:
                store = Store(session)
                case = session.get(Case, case_id)
                if case is None or case.status != CaseStatus.WAITING_UNIS.value:
                    continue
                thread = store.case_messages(case)
                now = self.clock()
                result = redecide(
                    case_view(case, thread),
                    directory=self.directory,
                    unis=DbUnisLookup(session),
                    policy=self.policy,
                    now=now,
                    checks=self.checks,
                )
                if result is None:
                    continue
                outcome, mails = result
                latest_row, latest = thread[-1] if thread else (None, None)
                change = CaseChange(
                    outcome=outcome,
                    event=outcome.event,
                    reason="unis_recheck",
                    mails=mails,
                    message=latest,
                    # The same arrival time as the first notice, not the sender's Date header.
                    received_at=latest_row.received_at if latest_row is not None else None,
                )
                record(self._uow(store, now), change, case)
                changed += 1
                log.info("case %s re-checked: %s", case.case_no, outcome.status.value)
        self._recheck_done(key, started)
        return changed

    def _recheck_key(self) -> str:
        """What a full re-check was made against: the latest snapshot and a digest of the rules."""
        with self.sessions() as session:
            snapshot = Store(session).latest_snapshot()
        return f"{snapshot.id if snapshot else 'none'} {self._rules_digest()}"

    def _rules_digest(self) -> str:
        """A digest of the policy, the branches and the checks' names, made again only when one is replaced.

        Policy and Branch are frozen, so the same objects are the same rules: every poll
        after the first compares three references and the names, not a digest of the config.
        """
        names = tuple(c.name for c in self.checks)
        made = self._rules_digested
        if made is not None:
            (policy, branches, made_names), digest = made
            if policy is self.policy and branches is self.directory.branches and made_names == names:
                return digest
        rules = repr((self.policy, self.directory.branches, list(names)))
        digest = hashlib.sha256(rules.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        self._rules_digested = ((self.policy, self.directory.branches, names), digest)
        return digest

    def _recheck_done(self, key: str, started: datetime) -> None:
        """Remember the pass; the cases changed since ``started`` are re-checked by the next one."""
        try:
            with self.sessions.begin() as session:
                row = session.scalars(
                    select(JobRun).where(JobRun.job == JobName.UNIS_RECHECK, JobRun.key == key)
                ).one_or_none()
                if row is None:
                    session.execute(delete(JobRun).where(JobRun.job == JobName.UNIS_RECHECK))
                    session.add(JobRun(job=JobName.UNIS_RECHECK, key=key, done_at=started))
                else:
                    row.done_at = started
        except IntegrityError:
            pass  # another process (a UNIS import) recorded a pass at the same moment; the next pass looks again
