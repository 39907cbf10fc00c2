"""Delivering the outbox: after the commit, in order per case, at least once.

Normally only the holder of the poller lock calls this; but a lock can be
lost without its holder noticing at once (a PostgreSQL restart ends the
session that held it), so each row is also *claimed* before it is handed to
the relay: one UPDATE sets ``claimed_by``/``claimed_until`` (a lease of
:data:`LEASE`) where the row is pending and no one else holds a live claim,
and only the rows it returns are sent. Two processes never send the same row,
whatever the locks say. A claim is cleared with the row's mark; a claimer that
died leaves it until the lease runs out, or at once when it ran on this host
and its process is gone (so a restart after a crash resumes at once).

Mails go a run at a time (:data:`RUN`): their claims and attempts are
counted in one transaction before the first is sent, each is marked sent with one
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
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, TextClause, false, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import Case, Outbox
from mailbot.adapters.database.store import Store
from mailbot.adapters.templates import Renderer
from mailbot.domain.decision import MailIntent
from mailbot.domain.policy import Policy
from mailbot.service.casefile import RecordContext, write_mails
from mailbot.service.outages import RELAY, SENT_FOLDER, Outages
from mailbot.service.ports import (
    Delivery,
    DeliveryError,
    OutgoingMail,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)

__all__ = ["LEASE", "RUN", "Deliverer", "DeliveryReport", "claimer_name"]

log = logging.getLogger("mailbot.delivery")

# Mails sent between two filings of copies: one APPEND (MULTIAPPEND) for each run.
RUN = 25
# Written as the partial index's own predicate, so both databases use that index.
_COPY_PENDING = text("outbox.copy_pending")
# How long a claim holds a row against every other deliverer: longer than a run
# takes (25 mails at the relay's timeout), renewed half-way through a slow run.
LEASE = timedelta(minutes=15)
_HOST = socket.gethostname()


def claimer_name() -> str:
    """Who claims: this host and process, and a token of its own for each deliverer."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _gone(claimer: str) -> bool:
    """A claimer that ran on this host and whose process no longer exists."""
    host, _, rest = claimer.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # another deliverer of this process: alive as long as we are
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


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
        outages: Outages | None = None,
    ) -> None:
        self.sessions = sessions
        self.delivery = delivery
        self.renderer = renderer
        self.policy = policy
        self.clock = clock
        self.stopping = False
        self.name = claimer_name()
        # Asked before each run of mails (the scheduler: is the poller lock still ours?).
        self.may_send: Callable[[], bool] = lambda: True
        self.outages = outages or Outages(clock)

    def deliver(self) -> DeliveryReport:
        report = DeliveryReport()
        if self.outages.waiting(RELAY) is not None:
            return report  # the relay is backing off: nothing is tried before its next try
        self._file_missing_copies()
        now = self.clock()
        with self.sessions() as session:
            rows = Store(session).due_outbox(now, limit=10_000)
            due = [(r.id, r.message_id, r.attempts) for r in rows]
            threads = {r.id: r.case_id if r.case_id is not None else -r.id for r in rows}
        retried = [mid for _, mid, attempts in due if attempts > 0]
        try:
            proven = self.delivery.already_sent(retried) if retried else set()
        except DeliveryError as exc:
            # Without knowing what already went out, resending could double a reply: wait.
            self.outages.failed(SENT_FOLDER, f"cannot tell which mails were already sent, delivery deferred: {exc}")
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
                if self.stopping or not self.may_send():
                    break
                sent: list[_Due] = []
                try:
                    more = self._deliver_run(ids[start : start + RUN], threads, proven, report, keeps, sent)
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
        self,
        ids: Sequence[int],
        threads: dict[int, int],
        proven: set[str],
        report: DeliveryReport,
        keeps: bool,
        sent: list[_Due],
    ) -> bool:
        """Send these rows in order, adding each one sent to ``sent``; False when the rest must wait."""
        runs = self._start_run(ids, threads, proven, report)
        claimed_at = self.clock()
        for position, due in enumerate(runs):
            if self.stopping:
                self._not_tried(runs[position:])
                return False
            if self.clock() - claimed_at > LEASE / 2:
                # A slow relay: renew the claims still to be sent before they could lapse.
                claimed_at = self.clock()
                rest = Outbox.id.in_([d.row_id for d in runs[position:]])
                self._update(rest, Outbox.claimed_by == self.name, claimed_until=claimed_at + LEASE)
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

    def _claimable(self, session: Session, ids: Sequence[int], now: datetime) -> ColumnElement[bool]:
        """Rows no one else holds: unclaimed, ours, lapsed, or claimed by a process gone from this host."""
        claimers = session.scalars(
            select(Outbox.claimed_by)
            .where(Outbox.id.in_(ids), Outbox.claimed_by.is_not(None), Outbox.claimed_by != self.name)
            .distinct()
        )
        gone = [claimer for claimer in claimers if claimer is not None and _gone(claimer)]
        return or_(
            Outbox.claimed_by.is_(None),
            Outbox.claimed_by == self.name,
            Outbox.claimed_until < now,
            Outbox.claimed_by.in_(gone) if gone else false(),
        )

    def _claim(self, session: Session, ids: Sequence[int], *where: ColumnElement[bool] | TextClause) -> set[int]:
        """Claim those of ``ids`` that no one else holds, in one UPDATE: the ids it returned are ours."""
        if not ids:
            return set()
        now = self.clock()
        claim = (
            update(Outbox)
            .where(Outbox.id.in_(ids), *where, self._claimable(session, ids, now))
            .values(claimed_by=self.name, claimed_until=now + LEASE)
            .returning(Outbox.id)
            .execution_options(synchronize_session=False)
        )
        return set(session.scalars(claim))

    def _start_run(
        self, ids: Sequence[int], threads: dict[int, int], proven: set[str], report: DeliveryReport
    ) -> list[_Due]:
        """Claim the run's rows and count an attempt for each, in one transaction, before any is sent."""
        with self.sessions.begin() as session:
            claimed = self._claim(session, ids, Outbox.status == "pending")
            # A row someone else is sending holds back the later mails of its case, as a retry does.
            held = {threads[row_id] for row_id in ids if row_id not in claimed and row_id in threads}
            held_back = [row_id for row_id in ids if row_id in claimed and threads.get(row_id) in held]
            if held_back:
                session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_(held_back))
                    .values(claimed_by=None, claimed_until=None)
                    .execution_options(synchronize_session=False)
                )
                claimed.difference_update(held_back)
            rows = {row.id: row for row in session.scalars(select(Outbox).where(Outbox.id.in_(claimed)))}
            now = self.clock()
            runs: list[_Due] = []
            for row_id in ids:
                row = rows.get(row_id)
                if row is None:
                    continue
                if row.message_id in proven:
                    row.status, row.sent_at = "sent", now
                    row.claimed_by = row.claimed_until = None
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
            self._update(
                untried, Outbox.status == "pending", attempts=Outbox.attempts - 1, claimed_by=None, claimed_until=None
            )

    def _deliver_one(self, due: _Due, keeps_copies: bool) -> str:
        mail = due.mail
        try:
            self.delivery.send(mail)
        except TemporaryDeliveryError as exc:
            self._after_send(due.row_id, "pending", str(exc), backoff=min(2 ** (due.attempts - 1), 60))
            log.info("delivery of %s deferred: %s", mail.message_id, exc)
            self.outages.failed(RELAY, str(exc))
            return "deferred"
        except PermanentDeliveryError as exc:
            self._after_send(due.row_id, "failed", str(exc))
            log.error("delivery of %s failed for good: %s", mail.message_id, exc)
            return "failed"
        # The window for a duplicate after a crash runs from the relay's acceptance
        # to this commit: one statement, no reads first, no mailbox in between.
        # A copy still to be filed keeps the claim, so no one else files it meanwhile.
        marked: dict[str, Any] = {"status": "sent", "sent_at": self.clock(), "last_error": None}
        marked["copy_pending"] = keeps_copies
        if not keeps_copies:
            marked["claimed_by"] = marked["claimed_until"] = None
        self._update(Outbox.id == due.row_id, **marked)
        self.outages.recovered(RELAY)
        return "sent"

    def _file_copies(self, sent: Sequence[_Due]) -> None:
        """File the run's copies in the Sent folder at once, then clear their flags."""
        if not sent:
            return
        ids = [due.row_id for due in sent]
        try:
            self.delivery.keep_copies([due.mail for due in sent])
        except DeliveryError as exc:
            # The flags stay: a later delivery looks for them by Message-ID and files what is missing.
            self._release(ids)
            self.outages.failed(SENT_FOLDER, f"copies of sent mail wait: {exc}")
            return
        self._copies_filed(ids)
        self.outages.recovered(SENT_FOLDER)

    def _copies_filed(self, ids: Sequence[int]) -> None:
        self._update(Outbox.id.in_(ids), copy_pending=False, claimed_by=None, claimed_until=None)

    def _release(self, ids: Sequence[int]) -> None:
        if ids:
            self._update(Outbox.id.in_(ids), Outbox.claimed_by == self.name, claimed_by=None, claimed_until=None)

    def _update(self, *where: ColumnElement[bool], **values: Any) -> None:
        """One UPDATE of outbox rows, committed on its own: no reads first."""
        with self.sessions.begin() as session:
            session.execute(update(Outbox).where(*where).values(**values).execution_options(synchronize_session=False))

    def _file_missing_copies(self) -> None:
        """After a crash or a mailbox outage between a run's marks and its copies: file what the Sent folder lacks."""
        with self.sessions() as session:
            flagged = list(session.scalars(select(Outbox.id).where(_COPY_PENDING).order_by(Outbox.id)))
        if not flagged:
            return
        # Claimed like a send, so two deliverers never file the same copy.
        with self.sessions.begin() as session:
            claimed = self._claim(session, flagged, _COPY_PENDING)
        if not claimed:
            return
        with self.sessions() as session:
            rows = list(session.scalars(select(Outbox).where(Outbox.id.in_(claimed)).order_by(Outbox.id)))
        ids = [row.id for row in rows]
        if self.delivery.keeps_copies():
            try:
                there = self.delivery.already_sent([row.message_id for row in rows])
                missing = [self._mail(row) for row in rows if row.message_id not in there]
                if missing:
                    log.info("filing %d copy(ies) in the Sent folder that a stop or an outage left out", len(missing))
                    self.delivery.keep_copies(missing)
            except DeliveryError as exc:
                # Appending blind could file a copy twice; the flags wait for the next round.
                self._release(ids)
                self.outages.failed(SENT_FOLDER, f"copies of sent mail wait: {exc}")
                return
            self.outages.recovered(SENT_FOLDER)
        self._copies_filed(ids)

    def _after_send(self, row_id: int, status: str, error: str | None, backoff: int = 0) -> None:
        """A mail the relay did not take: wait and retry (``pending``), or ``failed`` with ops told."""
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.get(Outbox, row_id)
            if row is None:
                return
            row.status = status
            row.last_error = error
            row.claimed_by = row.claimed_until = None
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
                    uow = RecordContext(Store(session), self.renderer, self.policy, now)
                    write_mails(uow, [intent], case, None, None, None)
