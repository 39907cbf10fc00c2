"""The imperative shell around the decision core: read, decide, file, mark, deliver.

One inbound message is one database transaction covering its ledger row, the
case change and the outbox rows; the mailbox is marked only after the commit
and the outbox is delivered after that, so a crash at any point is recovered
by the next poll without losing or doubling anything.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.store import (
    DbUnisLookup,
    Store,
    db_id,
    db_text,
    defects_from_json,
    defects_to_json,
)
from mailbot.adapters.database.tables import Case, Inbound, JobRun, Outbox
from mailbot.adapters.templates import Renderer
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import CHECKS, Check
from mailbot.domain.decision import (
    BRANCH_MAILS,
    CaseOutcome,
    CaseView,
    Decision,
    MailIntent,
    decide,
    decide_unopened,
    quarantine,
    redecide,
)
from mailbot.domain.model import CaseStatus, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.domain.policy import Policy
from mailbot.domain.subject import parse_subject
from mailbot.service import marks
from mailbot.service.mails import JST, build_outbox_row, format_jst, mail_context
from mailbot.service.ports import (
    AuthenticationFailed,
    Delivery,
    DeliveryError,
    MailSource,
    OutgoingMail,
    PermanentDeliveryError,
    SourceError,
    SourceItem,
    TemporaryDeliveryError,
)

__all__ = ["LOGIN_FAILED", "DeliveryReport", "Intake", "PollReport", "StoreUnavailable"]

LOGIN_FAILED = "mailbox_login_failed"  # health mark while the mailbox refuses our login

# The database itself is failing (down, locked, disk full): no message is to
# blame, so the poll stops with nothing marked and the next one starts over.
_STORE_ERRORS = (OperationalError, InterfaceError)


class StoreUnavailable(Exception):
    """The database cannot be used right now; the poll stopped without marking anything."""


log = logging.getLogger("mailbot.intake")


@dataclass
class PollReport:
    """What one poll did."""

    dispositions: Counter[str] = field(default_factory=Counter)
    marked_again: int = 0
    failed: int = 0
    source_error: str | None = None
    store_error: str | None = None
    delivered: int = 0
    delivery_failed: int = 0

    @property
    def processed(self) -> int:
        return sum(self.dispositions.values())


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


@dataclass
class _Filed:
    disposition: str
    status: str | None
    case_no: str | None
    reason: str
    message_id: str


class Intake:
    """Runs polls, re-checks and deliveries over the configured adapters."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        source: MailSource,
        delivery: Delivery,
        renderer: Renderer,
        directory: BranchDirectory,
        policy: Policy,
        clock: Callable[[], datetime],
        checks: Sequence[Check] = CHECKS,
        max_attempts: int = 3,
    ) -> None:
        self.sessions = sessions
        self.source = source
        self.delivery = delivery
        self.renderer = renderer
        self.directory = directory
        self.policy = policy
        self.clock = clock
        self.checks = checks
        self.max_attempts = max_attempts
        self.stopping = False
        # Mailbox back-off: after a failure, wait longer each time before asking again.
        self._source_failures = 0
        self._source_retry_at: datetime | None = None

    # -- polling ------------------------------------------------------------
    def poll_once(self, deliver: bool = True) -> PollReport:
        report = PollReport()
        try:
            if self._source_retry_at is not None and self.clock() < self._source_retry_at:
                report.source_error = f"mailbox skipped until {self._source_retry_at.isoformat()} (backing off)"
            else:
                for item in self.source.fetch_new(self._known):
                    if self.stopping:
                        break
                    self._handle(item, report)
                self._retry_marks()
                self._source_failures, self._source_retry_at = 0, None
        except AuthenticationFailed as exc:
            report.source_error = str(exc)
            self._back_off(exc, "mailbox login refused")
            self._record_health(LOGIN_FAILED, detail=str(exc), keep_since=True)
        except SourceError as exc:
            report.source_error = str(exc)
            self._back_off(exc, "mailbox unavailable")
        except StoreUnavailable as exc:
            report.store_error = str(exc)
            log.error("database unavailable, poll stopped: %s", exc)
            return report
        try:
            self.recheck_waiting()
            if deliver:
                delivery = self.deliver_outbox()
                report.delivered, report.delivery_failed = delivery.sent, delivery.failed
            if report.source_error is None:
                self._record_health("last_successful_poll")
                self._clear_health(LOGIN_FAILED)
        except _STORE_ERRORS as exc:
            report.store_error = _short(exc)
            log.error("database unavailable: %s", report.store_error)
        return report

    def _back_off(self, exc: SourceError, what: str) -> None:
        """Retry a failing mailbox after 30 s, then 1, 2, 4 ... minutes, at most every 15."""
        self._source_failures += 1
        delay = timedelta(seconds=min(30 * 2 ** (self._source_failures - 1), 900))
        self._source_retry_at = self.clock() + delay
        log.error("%s (failure %d, next try in %d s): %s", what, self._source_failures, delay.total_seconds(), exc)

    def _record_health(self, key: str, detail: str | None = None, keep_since: bool = False) -> None:
        """Remember how the bot is doing (last good poll, a refused login), for `mailbot status`."""
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.scalars(select(JobRun).where(JobRun.job == "health", JobRun.key == key)).one_or_none()
            if row is None:
                session.add(JobRun(job="health", key=key, done_at=now, detail=detail))
            else:
                row.done_at = row.done_at if keep_since else now
                row.detail = detail

    def _clear_health(self, key: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(JobRun).where(JobRun.job == "health", JobRun.key == key))

    def _known(self, keys: Sequence[str]) -> set[str]:
        with self.sessions() as session:
            return Store(session).known_keys(self.source.name, keys)

    def _handle(self, item: SourceItem, report: PollReport) -> None:
        started = time.monotonic()
        filed: _Filed | None
        try:
            filed, fresh = self.file_item(item)
        except SourceError:
            raise
        except _STORE_ERRORS as exc:
            raise StoreUnavailable(_short(exc)) from exc
        except Exception as exc:  # one bad message must not stop the poll
            report.failed += 1
            try:
                filed = self._record_failure(item, exc)
            except _STORE_ERRORS as store_exc:
                raise StoreUnavailable(_short(store_exc)) from store_exc
            if filed is None:
                return
            fresh = True
        if fresh:
            report.dispositions[filed.disposition] += 1
        else:
            report.marked_again += 1
        try:
            self.source.mark(item, filed.disposition, filed.status)
        except SourceError as exc:
            self._mark_failed(item, exc)
        else:
            if not fresh:
                marks.clear_mark(self.sessions, self.source.name, item.key)
        log.info(
            "message %s key=%s disposition=%s reason=%s case=%s duration_ms=%d",
            filed.message_id,
            item.key,
            filed.disposition,
            filed.reason,
            filed.case_no or "-",
            (time.monotonic() - started) * 1000,
            extra={
                "message_id": filed.message_id,
                "duration_ms": int((time.monotonic() - started) * 1000),
                "source_key": item.key,
                "disposition": filed.disposition,
                "reason": filed.reason,
                "case_no": filed.case_no,
            },
        )

    # -- marks the mailbox did not take (see mailbot.service.marks) -----------
    def _mark_failed(self, item: SourceItem, exc: SourceError) -> None:
        """Committed already: count the failed mark, retry it later, and let the cursor move on."""
        try:
            attempts = marks.record_mark_failure(self.sessions, self.source.name, item.key, str(exc), self.clock())
        except _STORE_ERRORS as store_exc:
            raise StoreUnavailable(_short(store_exc)) from store_exc
        log.warning("could not mark %s (failure %d), retrying later: %s", item.key, attempts, exc)
        settle = getattr(self.source, "settle", None)
        if settle is not None:
            settle(item)

    def _retry_marks(self) -> None:
        """Try the pending marks that are due again (after the poll's own items)."""
        for pending in marks.due_marks(self.sessions, self.source.name, self.clock()):
            with self.sessions() as session:
                row = Store(session).inbound(self.source.name, pending.item_key)
                filed = self._filed_from_row(session, row) if row is not None else None
            if filed is None:
                marks.clear_mark(self.sessions, self.source.name, pending.item_key)
                continue
            item = SourceItem(key=pending.item_key, size=None, load=_not_downloadable)
            try:
                self.source.mark(item, filed.disposition, filed.status)
            except SourceError as exc:
                attempts = marks.record_mark_failure(
                    self.sessions, self.source.name, pending.item_key, str(exc), self.clock()
                )
                log.warning("could not mark %s (failure %d): %s", pending.item_key, attempts, exc)
                continue
            marks.clear_mark(self.sessions, self.source.name, pending.item_key)
            log.info("marked %s after %d failed attempt(s)", pending.item_key, pending.attempts)

    def file_item(self, item: SourceItem) -> tuple[_Filed, bool]:
        """Decide and file one item in one transaction; returns (what was filed, whether it is new)."""
        with self.sessions.begin() as session:
            store = Store(session)
            existing = store.inbound(self.source.name, item.key)
            if existing is not None:
                return self._filed_from_row(session, existing), False
            now = self.clock()
            # The UNIS wait is measured from when the mailbox got the mail, not from when we looked.
            received_at = min(item.received_at or now, now)
            limit = self.policy.limits.max_message_bytes
            raw: bytes | None = None
            message: ParsedMessage | None = None
            if item.size is not None and item.size > limit:
                decision, message = self._oversized(store, item)
            else:
                raw = item.load()
                if len(raw) > limit:
                    decision, message = self._oversized(store, item)
                    raw = None
                else:
                    try:
                        message = parse_message(raw)
                    except UnparseableMessage:
                        decision = quarantine("unparseable", self.policy)
                    else:
                        decision = self._decide(store, message, now, received_at)
            return self._apply(store, item, decision, message, raw, now, received_at=received_at), True

    def _oversized(self, store: Store, item: SourceItem) -> tuple[Decision, ParsedMessage | None]:
        """Too large to download: its headers alone say whether it is a request at all."""
        headers = None
        if item.load_headers is not None:
            try:
                headers = parse_message(item.load_headers())
            except UnparseableMessage:
                headers = None
        if headers is None:
            return quarantine("too_large", self.policy), None
        decision = decide_unopened(
            headers,
            reason="too_large",
            duplicate=store.identity_seen(headers.identity),
            linked_case=self._thread_case(store, headers) is not None,
            policy=self.policy,
        )
        return decision, headers

    def _thread_case(self, store: Store, message: ParsedMessage) -> Case | None:
        thread_ids = [m for m in (message.in_reply_to, *message.references) if m]
        return store.case_for_thread(thread_ids, parse_subject(message.subject).case_no)

    def _decide(self, store: Store, message: ParsedMessage, now: datetime, received_at: datetime) -> Decision:
        case_row = self._thread_case(store, message)
        replies = 0
        if message.sender is not None:
            replies = store.branch_mails_to_since(message.sender.addr, BRANCH_MAILS, now - timedelta(hours=1))
        return decide(
            message,
            received_at=received_at,
            now=now,
            case=_case_view(case_row, store.case_messages(case_row)) if case_row is not None else None,
            duplicate=store.identity_seen(message.identity),
            directory=self.directory,
            unis=DbUnisLookup(store.session),
            policy=self.policy,
            replies_to_sender_last_hour=replies,
            checks=self.checks,
        )

    def _apply(
        self,
        store: Store,
        item: SourceItem,
        decision: Decision,
        message: ParsedMessage | None,
        raw: bytes | None,
        now: datetime,
        error: str | None = None,
        received_at: datetime | None = None,
    ) -> _Filed:
        session = store.session
        raw_row = store.save_raw(raw) if raw is not None else None
        case_row = self._apply_case(store, decision.case, now, decision.reason) if decision.case is not None else None
        inbound = Inbound(
            source=self.source.name,
            source_key=item.key,
            identity=db_id(message.identity if message else f"<{item.key}@{self.source.name}>"),
            message_id=db_id(message.message_id) if message and message.message_id else None,
            subject=db_text(message.subject) if message else "",
            sender=db_text(message.sender.addr, 320) if message and message.sender else None,
            disposition=decision.disposition.value,
            reason=decision.reason,
            case_id=case_row.id if case_row else None,
            raw_id=raw_row.id if raw_row else None,
            defects=defects_to_json(decision.case.defects) if decision.case and decision.case.changed else [],
            problems=[db_text(p) for p in message.problems] if message else [],
            received_at=received_at or now,
            processed_at=now,
        )
        session.add(inbound)
        session.flush()
        facts_extra = {"error": error} if error else {}
        for intent in decision.mails:
            self._queue(store, intent, case_row, message, now, inbound.id, facts_extra, received_at or now)
        failure = store.failure(self.source.name, item.key)
        if failure is not None:
            session.delete(failure)
        return _Filed(
            decision.disposition.value,
            case_row.status if case_row else None,
            case_row.case_no if case_row else None,
            decision.reason,
            inbound.message_id or inbound.identity,
        )

    def _apply_case(self, store: Store, outcome: CaseOutcome, now: datetime, reason: str) -> Case:
        if outcome.case_no is None:
            case = store.new_case(now.astimezone(JST).year, now)
        else:
            found = store.case_for_thread([], outcome.case_no)
            assert found is not None, outcome.case_no
            case = found
        if outcome.changed:
            store.set_case_state(case, outcome, now=now, reason=reason)
        store.session.flush()
        return case

    def _queue(
        self,
        store: Store,
        intent: MailIntent,
        case: Case | None,
        message: ParsedMessage | None,
        now: datetime,
        inbound_id: int | None,
        facts_extra: dict[str, str] | None = None,
        received_at: datetime | None = None,
    ) -> None:
        snapshot = store.latest_snapshot()
        context = mail_context(
            case_no=case.case_no if case else None,
            branch=case.branch if case else None,
            customer_code=case.customer_code if case else None,
            customer_name=case.customer_name if case else None,
            defects=defects_from_json(case.defects) if case else (),
            message=message,
            received_at=received_at,
            policy=self.policy,
            facts={**intent.facts, **(facts_extra or {})},
            extra={"unis_as_of": format_jst(snapshot.as_of) if snapshot else ""},
        )
        row = build_outbox_row(
            intent,
            renderer=self.renderer,
            context=context,
            policy=self.policy,
            now=now,
            case_id=case.id if case else None,
            inbound_id=inbound_id,
        )
        store.add_outbox(row)

    def _filed_from_row(self, session: Session, row: Inbound) -> _Filed:
        case = session.get(Case, row.case_id) if row.case_id else None
        return _Filed(
            row.disposition,
            case.status if case else None,
            case.case_no if case else None,
            row.reason,
            row.message_id or row.identity,
        )

    def _record_failure(self, item: SourceItem, exc: Exception) -> _Filed | None:
        """Count a failed attempt; after ``max_attempts`` quarantine the message as poison."""
        error = f"{type(exc).__name__}: {exc}"
        log.error("processing %s failed: %s", item.key, error)
        now = self.clock()
        with self.sessions.begin() as session:
            attempts = Store(session).record_failure(self.source.name, item.key, error, now)
        if attempts < self.max_attempts:
            return None
        log.error("quarantining %s after %d failures:\n%s", item.key, attempts, traceback.format_exc())
        with self.sessions.begin() as session:
            store = Store(session)
            raw = None
            try:
                raw = item.load() if item.size is None or item.size <= self.policy.limits.max_message_bytes else None
            except Exception:
                raw = None
            return self._apply(store, item, quarantine("poison", self.policy), None, raw, now, error=error)

    # -- waiting cases --------------------------------------------------------
    def recheck_waiting(self) -> int:
        """Decide again every case waiting for UNIS; returns how many changed."""
        changed = 0
        with self.sessions() as session:
            ids = [c.id for c in Store(session).waiting_cases()]
        for case_id in ids:
            with self.sessions.begin() as session:
                store = Store(session)
                case = session.get(Case, case_id)
                if case is None or case.status != CaseStatus.WAITING_UNIS.value:
                    continue
                thread = store.case_messages(case)
                view = _case_view(case, thread)
                now = self.clock()
                result = redecide(
                    view,
                    directory=self.directory,
                    unis=DbUnisLookup(session),
                    policy=self.policy,
                    now=now,
                    checks=self.checks,
                )
                if result is None:
                    continue
                outcome, mails = result
                self._apply_case(store, outcome, now, "unis_recheck")
                latest_row, latest = thread[-1] if thread else (None, None)
                arrived = latest_row.received_at if latest_row is not None else None
                for intent in mails:
                    # The same arrival time as the first notice, not the sender's Date header.
                    self._queue(store, intent, case, latest, now, None, received_at=arrived)
                changed += 1
                log.info("case %s re-checked: %s", case.case_no, outcome.status.value)
        return changed

    # -- delivery ---------------------------------------------------------------
    def deliver_outbox(self) -> DeliveryReport:
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
                    }
                    intent = MailIntent("ops_delivery_failed", ops, facts=facts)
                    self._queue(Store(session), intent, case, None, now, None)


def _case_view(case: Case, thread: Sequence[tuple[Inbound, ParsedMessage]]) -> CaseView:
    """The core's view of a case from its row and its thread as the store rebuilt it."""
    return CaseView(
        case_no=case.case_no,
        status=CaseStatus(case.status),
        messages=tuple(message for _, message in thread),
        waiting_since=case.waiting_since,
    )


def _not_downloadable() -> bytes:
    raise SourceError("a pending mark is retried by its key only; the message is not downloaded again")


def _short(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's statement dump."""
    original = getattr(exc, "orig", None)
    return f"{type(original or exc).__name__}: {original or exc}".strip()
