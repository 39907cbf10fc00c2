"""Delivering the outbox: after the commit, in order per case, at least once.

Only the holder of the poller lock calls this, so two processes never send
the same row. A row is marked sent with one UPDATE right after the relay
accepts it; with a Sent folder, the copy is filed before that mark and a row
that was in flight when the bot died is looked up there before it is resent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
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

__all__ = ["Deliverer", "DeliveryReport"]

log = logging.getLogger("mailbot.delivery")


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


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
        for row_id, message_id, _ in due:
            if self.stopping:
                break
            outcome = self._deliver_one(row_id, message_id in proven)
            if outcome == "sent":
                report.sent += 1
            elif outcome == "failed":
                report.failed += 1
            elif outcome == "deferred":
                report.deferred += 1
                break  # the transport is down: keep the order, try again later
        return report

    def _deliver_one(self, row_id: int, proven_sent: bool) -> str:
        with self.sessions.begin() as session:
            row = session.get(Outbox, row_id)
            if row is None or row.status != "pending":
                return "skipped"
            if proven_sent:
                row.status, row.sent_at = "sent", self.clock()
                return "sent"
            # Recorded before sending: after a crash, attempts > 0 tells us to ask the
            # transport whether this Message-ID already went out.
            row.attempts += 1
            mail = OutgoingMail(
                message_id=row.message_id,
                sender=self.policy.desk_address,
                recipients=tuple(dict.fromkeys([*row.to_addrs, *row.cc_addrs])),
                raw=row.raw,
            )
            attempts = row.attempts
        try:
            self.delivery.send(mail)
        except TemporaryDeliveryError as exc:
            self._after_send(row_id, "pending", str(exc), backoff=min(2 ** (attempts - 1), 60))
            log.warning("delivery of %s deferred: %s", mail.message_id, exc)
            return "deferred"
        except PermanentDeliveryError as exc:
            self._after_send(row_id, "failed", str(exc))
            log.error("delivery of %s failed for good: %s", mail.message_id, exc)
            return "failed"
        # The copy first: if we die before the mark, already_sent() finds it.
        self.delivery.keep_copy(mail)
        self._after_send(row_id, "sent", None)
        return "sent"

    def _after_send(self, row_id: int, status: str, error: str | None, backoff: int = 0) -> None:
        now = self.clock()
        if status == "sent":
            # The window for a duplicate after a crash runs from the relay's
            # acceptance to this commit: one statement, no reads first.
            with self.sessions.begin() as session:
                session.execute(
                    update(Outbox)
                    .where(Outbox.id == row_id)
                    .values(status="sent", sent_at=now, last_error=None)
                    .execution_options(synchronize_session=False)
                )
            return
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
