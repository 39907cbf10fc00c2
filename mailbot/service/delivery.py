"""Delivering the outbox: after the commit, in order per case, at least once.

Only the holder of the poller lock calls this, so two processes never send
the same row. Mails go a run at a time (:data:`RUN`): their attempts are
counted in one UPDATE before the first is sent, each is marked sent with one
UPDATE right after the relay accepts it, and then the copies of the whole
run are filed in the Sent folder in one APPEND. So the one window for a
duplicate, a crash between the relay's acceptance and that mark, holds no
round trip to the mailbox. A row is marked sent with ``copy_pending`` set
when a copy is still to be filed; a crash before the copies leaves it set,
and the next delivery files what the Sent folder does not have yet. A row
that was in flight (attempts > 0, still pending) is looked up in the Sent
folder before it is resent: Gmail files sent mail there itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.store import Store
from mailbot.adapters.database.tables import Case, Outbox
from mailbot.adapters.templates import Renderer
from mailbot.domain.decision import MailIntent
from mailbot.domain.policy import Policy
from mailbot.service.casefile import UnitOfWork, write_mails
from mailbot.service.ports import (
    Delivery,
    DeliveryError,
    OutgoingMail,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)

__all__ = ["RUN", "Deliverer", "DeliveryReport"]

log = logging.getLogger("mailbot.delivery")

# Mails sent between two filings of copies: one APPEND (MULTIAPPEND) for each run.
RUN = 25
# Written as the partial index's own predicate, so both databases use that index.
_COPY_PENDING = text("outbox.copy_pending")


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


@dataclass(frozen=True)
class _Due:
    row_id: int
    mail: OutgoingMail
    attempts: int  # counting this one


class Deliverer:
    """Sends due outbox rows through the configured transport."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        delivery: Delivery,
        renderer: Renderer,
        policy: Policy,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.delivery = delivery
        self.renderer = renderer
        self.policy = policy
        self.clock = clock
        self.stopping = False

    def deliver(self) -> DeliveryReport:
        report = DeliveryReport()
        self._file_missing_copies()
        now = self.clock()
        with self.sessions() as session:
            due = [(r.id, r.message_id, r.attempts) for r in Store(session).due_outbox(now, limit=10_000)]
        retried = [mid for _, mid, attempts in due if attempts > 0]
        try:
            proven = self.delivery.already_sent(retried) if retried else set()
        except DeliveryError as exc:
            # Without knowing what already went out, resending could double a reply: wait.
            log.warning("cannot tell which mails were already sent, delivery deferred: %s", exc)
            report.deferred += len(due)
            return report
        ids = [row_id for row_id, _, _ in due]
        keeps = self.delivery.keeps_copies()
        # A run's copies are filed on a thread of their own while the next run is sent:
        # its own IMAP connection, and no part of any mail's duplicate window.
        copier = ThreadPoolExecutor(1, thread_name_prefix="sent-copies") if keeps and len(ids) > RUN else None
        filing: Future[None] | None = None
        try:
            for start in range(0, len(ids), RUN):
                if self.stopping:
                    break
                sent: list[_Due] = []
                try:
                    more = self._deliver_run(ids[start : start + RUN], proven, report, keeps, sent)
                finally:
                    if sent:
                        if filing is not None:
                            filing.result()  # one run's copies at a time, in order
                        if copier is None:
                            self._file_copies(sent)
                        else:
                            filing = copier.submit(self._file_copies, sent)
                if not more:
                    break
        finally:
            if copier is not None:
                copier.shutdown(wait=True)
        if filing is not None:
            filing.result()  # a database error while clearing the flags is the caller's, as before
        return report

    def _deliver_run(
        self, ids: Sequence[int], proven: set[str], report: DeliveryReport, keeps: bool, sent: list[_Due]
    ) -> bool:
        """Send these rows in order, adding each one sent to ``sent``; False when the rest must wait."""
        runs = self._start_run(ids, proven, report)
        for position, due in enumerate(runs):
            if self.stopping:
                self._not_tried(runs[position:])
                return False
            outcome = self._deliver_one(due, keeps)
            if outcome == "sent":
                report.sent += 1
                sent.append(due)
            elif outcome == "failed":
                report.failed += 1
            else:
                report.deferred += 1
                self._not_tried(runs[position + 1 :])
                return False  # the transport is down: keep the order, try again later
        return True

    def _start_run(self, ids: Sequence[int], proven: set[str], report: DeliveryReport) -> list[_Due]:
        """Load the run's rows and count an attempt for each, in one transaction, before any is sent."""
        with self.sessions.begin() as session:
            rows = {
                row.id: row
                for row in session.scalars(select(Outbox).where(Outbox.id.in_(ids), Outbox.status == "pending"))
            }
            now = self.clock()
            runs: list[_Due] = []
            for row_id in ids:
                row = rows.get(row_id)
                if row is None:
                    continue
                if row.message_id in proven:
                    row.status, row.sent_at = "sent", now
                    report.sent += 1
                    continue
                runs.append(_Due(row_id, self._mail(row), row.attempts + 1))
            if runs:
                # Recorded before sending: after a crash, attempts > 0 tells us to ask the
                # transport whether this Message-ID already went out.
                session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_([due.row_id for due in runs]))
                    .values(attempts=Outbox.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
        return runs

    def _mail(self, row: Outbox) -> OutgoingMail:
        return OutgoingMail(
            message_id=row.message_id,
            sender=self.policy.desk_address,
            recipients=tuple(dict.fromkeys([*row.to_addrs, *row.cc_addrs])),
            raw=row.raw,
        )

    def _not_tried(self, runs: Sequence[_Due]) -> None:
        """Take back the attempt counted for mails the run stopped before (SIGTERM, transport down)."""
        if runs:
            untried = Outbox.id.in_([due.row_id for due in runs])
            self._update(untried, Outbox.status == "pending", attempts=Outbox.attempts - 1)

    def _deliver_one(self, due: _Due, keeps_copies: bool) -> str:
        mail = due.mail
        try:
            self.delivery.send(mail)
        except TemporaryDeliveryError as exc:
            self._after_send(due.row_id, "pending", str(exc), backoff=min(2 ** (due.attempts - 1), 60))
            log.warning("delivery of %s deferred: %s", mail.message_id, exc)
            return "deferred"
        except PermanentDeliveryError as exc:
            self._after_send(due.row_id, "failed", str(exc))
            log.error("delivery of %s failed for good: %s", mail.message_id, exc)
            return "failed"
        # The window for a duplicate after a crash runs from the relay's acceptance
        # to this commit: one statement, no reads first, no mailbox in between.
        marked = {"status": "sent", "sent_at": self.clock(), "last_error": None, "copy_pending": keeps_copies}
        self._update(Outbox.id == due.row_id, **marked)
        return "sent"

    def _file_copies(self, sent: Sequence[_Due]) -> None:
        """File the run's copies in the Sent folder at once, then clear their flags."""
        if not sent:
            return
        self.delivery.keep_copies([due.mail for due in sent])
        self._copies_filed([due.row_id for due in sent])

    def _copies_filed(self, ids: Sequence[int]) -> None:
        self._update(Outbox.id.in_(ids), copy_pending=False)

    def _update(self, *where: ColumnElement[bool], **values: Any) -> None:
        """One UPDATE of outbox rows, committed on its own: no reads first."""
        with self.sessions.begin() as session:
            session.execute(update(Outbox).where(*where).values(**values).execution_options(synchronize_session=False))

    def _file_missing_copies(self) -> None:
        """After a crash between a run's marks and its copies: file what the Sent folder lacks."""
        with self.sessions() as session:
            rows = list(session.scalars(select(Outbox).where(_COPY_PENDING).order_by(Outbox.id)))
        if not rows:
            return
        if self.delivery.keeps_copies():
            try:
                there = self.delivery.already_sent([row.message_id for row in rows])
            except DeliveryError as exc:
                # Appending blind could file a copy twice; the flags wait for the next round.
                log.warning("cannot tell which copies the Sent folder has, filing them later: %s", exc)
                return
            missing = [self._mail(row) for row in rows if row.message_id not in there]
            if missing:
                log.info("filing %d copy(ies) in the Sent folder that a stop left out", len(missing))
                self.delivery.keep_copies(missing)
        self._copies_filed([row.id for row in rows])

    def _after_send(self, row_id: int, status: str, error: str | None, backoff: int = 0) -> None:
        """A mail the relay did not take: wait and retry (``pending``), or ``failed`` with ops told."""
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.get(Outbox, row_id)
            if row is None:
                return
            row.status = status
            row.last_error = error
            if status == "pending":
                row.next_attempt_at = now + timedelta(minutes=backoff)
            elif status == "failed" and not row.kind.startswith("ops_"):
                # Tell ops, but never about a failed ops mail: that would loop.
                ops = tuple(self.policy.ops_recipients)
                if ops:
                    case = session.get(Case, row.case_id) if row.case_id else None
                    facts = {
                        "to": ", ".join([*row.to_addrs, *row.cc_addrs]),
                        "subject": row.subject,
                        "error": error or "",
                        "mail_id": str(row.id),
                    }
                    intent = MailIntent("ops_delivery_failed", ops, facts=facts)
                    uow = UnitOfWork(Store(session), self.renderer, self.policy, now)
                    write_mails(uow, [intent], case, None, None, None)
