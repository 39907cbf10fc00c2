"""The imperative shell around the decision core: read, decide, file, mark, deliver.

One inbound message is one database transaction covering its ledger row, the
case change and the outbox rows; the mailbox is marked only after the commit
and the outbox is delivered after that, so a crash at any point is recovered
by the next poll without losing or doubling anything.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select
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
from mailbot.adapters.database.tables import Case, Inbound, JobRun
from mailbot.adapters.rawstore import RawStoreUnavailable
from mailbot.adapters.templates import Renderer
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import CHECKS, Check
from mailbot.domain.decision import (
    CaseView,
    Decision,
    decide,
    decide_unopened,
    quarantine,
    redecide,
)
from mailbot.domain.lifecycle import BRANCH_MAILS, Stage
from mailbot.domain.model import CaseStatus, Disposition, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.domain.policy import Policy
from mailbot.domain.subject import parse_subject
from mailbot.service import marks
from mailbot.service.casefile import BOT_ACTOR, CaseChange, UnitOfWork, record, write_mails
from mailbot.service.delivery import Deliverer, DeliveryReport
from mailbot.service.ports import (
    AuthenticationFailed,
    Delivery,
    MailSource,
    SourceError,
    SourceItem,
)

__all__ = [
    "LOGIN_FAILED",
    "DeliveryReport",
    "Intake",
    "PollReport",
    "StoreUnavailable",
    "case_view",
    "file_decision",
    "new_inbound",
    "thread_case",
]

# How much decoded text the ledger keeps per message (for search and notices).
BODY_TEXT_CHARS = 20_000

LOGIN_FAILED = "mailbox_login_failed"  # health mark while the mailbox refuses our login

# The database itself is failing (down, locked, disk full), or the raw mail
# directory is: no message is to blame, so the poll stops with nothing marked
# and the next one starts over.
_STORE_ERRORS = (OperationalError, InterfaceError, RawStoreUnavailable)


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
        base_url: str = "",
    ) -> None:
        self.sessions = sessions
        self.source = source
        self.renderer = renderer
        self.directory = directory
        self.policy = policy
        self.clock = clock
        self.checks = checks
        self.max_attempts = max_attempts
        self.base_url = base_url
        self.deliverer = Deliverer(sessions=sessions, delivery=delivery, renderer=renderer, policy=policy, clock=clock)
        self._stopping = False
        # Mailbox back-off: after a failure, wait longer each time before asking again.
        self._source_failures = 0
        self._source_retry_at: datetime | None = None

    @property
    def delivery(self) -> Delivery:
        """The transport, as the deliverer uses it (replaceable, like every port)."""
        return self.deliverer.delivery

    @delivery.setter
    def delivery(self, value: Delivery) -> None:
        self.deliverer.delivery = value

    @property
    def stopping(self) -> bool:
        return self._stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        # SIGTERM: finish the message in hand, send nothing more.
        self._stopping = value
        self.deliverer.stopping = value

    def deliver_outbox(self) -> DeliveryReport:
        return self.deliverer.deliver()

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
            reused = False
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
                        decision, reused = self.decide(store, message, now, received_at)
            uow = self._uow(store, now)
            inbound = new_inbound(self.source.name, item.key, message, raw, store, now, received_at)
            extra = {"message_id_reused": "1"} if reused else {}
            return file_decision(uow, inbound, decision, message, received_at, facts_extra=extra), True

    def _uow(self, store: Store, now: datetime) -> UnitOfWork:
        return UnitOfWork(store, self.renderer, self.policy, now, base_url=self.base_url)

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
            linked_case=thread_case(store, headers) is not None,
            policy=self.policy,
        )
        return decision, headers

    def decide(
        self, store: Store, message: ParsedMessage, now: datetime, received_at: datetime, *, released: bool = False
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
            directory=self.directory,
            unis=DbUnisLookup(store.session),
            policy=self.policy,
            replies_to_sender_last_hour=replies,
            checks=self.checks,
            answers_ops_notice=store.answers_ops_notice(thread_ids(message)),
            released=released,
        )
        return decision, bool(seen) and not duplicate and not released

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
            headers = _headers_only(raw)
            inbound = new_inbound(self.source.name, item.key, headers, raw, store, now, now)
            decision = quarantine("poison", self.policy)
            return file_decision(self._uow(store, now), inbound, decision, headers, now, facts_extra={"error": error})

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
        return changed


def case_view(case: Case, thread: Sequence[tuple[Inbound, ParsedMessage]]) -> CaseView:
    """The core's view of a case from its row and its thread as the store rebuilt it."""
    return CaseView(
        case_no=case.case_no,
        status=CaseStatus(case.status),
        messages=tuple(message for _, message in thread),
        waiting_since=case.waiting_since,
        stage=Stage(case.stage),
        defects=defects_from_json(case.defects or []),
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
    uow: UnitOfWork,
    inbound: Inbound,
    decision: Decision,
    message: ParsedMessage | None,
    received_at: datetime,
    facts_extra: dict[str, str] | None = None,
    actor: str = BOT_ACTOR,
) -> _Filed:
    """Record a decision: the ledger row's disposition, the case change with its event, the mails."""
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
        )
        case_row = record(uow, change)
        inbound.case_id = case_row.id
    else:
        # The notice names the ledger row, so the clerk can release or discard it by number.
        extra = {"quarantine_id": str(inbound.id)} if decision.disposition is Disposition.QUARANTINED else {}
        write_mails(uow, mails, None, message, inbound.id, received_at, facts_extra=extra)
    failure = store.failure(inbound.source, inbound.source_key)
    if failure is not None:
        store.session.delete(failure)
    store.session.flush()
    return _Filed(
        decision.disposition.value,
        case_row.status if case_row else None,
        case_row.case_no if case_row else None,
        decision.reason,
        inbound.message_id or inbound.identity,
    )


def _headers_only(raw: bytes | None) -> ParsedMessage | None:
    """Sender, subject and Message-ID of a mail that cannot be processed, for the notice to ops."""
    if raw is None:
        return None
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    try:
        return parse_message(head + b"\r\n\r\n")
    except Exception:  # the notice must go out whatever the headers hold
        return None


def _not_downloadable() -> bytes:
    raise SourceError("a pending mark is retried by its key only; the message is not downloaded again")


def _short(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's statement dump."""
    original = getattr(exc, "orig", None)
    return f"{type(original or exc).__name__}: {original or exc}".strip()
