"""The poll: read the mailbox, have each mail decided and filed, mark it, deliver the answers.

Filing one mail is :mod:`mailbot.service.filing`'s, re-checking the waiting
cases :mod:`mailbot.service.recheck`'s; ``Intake`` runs both for the poll.

New mail is filed in batches: one database transaction covers the ledger
rows, case changes and outbox rows of up to ``batch_size`` messages, so each
message's records stay all-or-nothing with its batch. When any message of a
batch fails, the batch is rolled back and its messages are filed again one
transaction each, so the failing one is counted (and quarantined as poison
in the end) alone. The mailbox is marked only after the commit, the whole
batch at once, and the outbox is delivered after that (after each batch of
a backlog, so its first answers do not wait for the whole poll), so a crash
at any point is recovered by the next poll without losing or doubling
anything.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import Case, Inbound, JobRun
from mailbot.adapters.database.store import Store
from mailbot.adapters.rawstore import RawStoreUnavailable
from mailbot.adapters.templates import Renderer
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import CHECKS, Check
from mailbot.domain.decision import Decision, decide_unopened, quarantine
from mailbot.domain.jobs import JobName
from mailbot.domain.model import ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.domain.policy import Policy
from mailbot.service import marks
from mailbot.service.casefile import RecordContext
from mailbot.service.delivery import Deliverer, DeliveryReport
from mailbot.service.errors import StoreUnavailable
from mailbot.service.filing import (
    Filed,
    decide_message,
    file_decision,
    headers_only,
    new_inbound,
    thread_case,
)
from mailbot.service.outages import DATABASE, MAILBOX, Outages
from mailbot.service.parse_ahead import Loaded, ParseAhead
from mailbot.service.ports import (
    AuthenticationFailed,
    Delivery,
    MailSource,
    SourceError,
    SourceItem,
)
from mailbot.service.recheck import WaitingRecheck

__all__ = [
    "LOGIN_FAILED",
    "DeliveryReport",
    "Intake",
    "PollReport",
    "StoreUnavailable",
]

# Messages filed per transaction. A batch is what a crash can make the next
# poll do again (nothing is marked before its commit), and what is held in
# memory at once; 25 requests of a few hundred KB each is both cheap and small.
BATCH_SIZE = 25

LOGIN_FAILED = "mailbox_login_failed"  # health mark while the mailbox refuses our login

# The database itself is failing (down, locked, disk full), or the raw mail
# directory is: no message is to blame, so the poll stops with nothing marked
# and the next one starts over.
_STORE_ERRORS = (OperationalError, InterfaceError, RawStoreUnavailable)


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


class Intake(WaitingRecheck):
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
        batch_size: int = BATCH_SIZE,
        parse_ahead: bool = True,
    ) -> None:
        self.sessions = sessions
        self.source = source
        self.renderer = renderer
        self.directory = directory
        self.policy = policy
        self.clock = clock
        self.checks = checks
        self._rules_digested = None  # see WaitingRecheck._rules_digest
        self.max_attempts = max_attempts
        self.base_url = base_url
        self.batch_size = max(1, batch_size)
        self.parse_ahead = ParseAhead(
            enabled=parse_ahead, batch_size=self.batch_size, max_bytes=policy.limits.max_message_bytes
        )
        self._loaded: dict[str, Loaded] = {}
        # What is down now, and when to try it again (the mailbox, the database, the relay).
        self.outages = Outages(clock)
        self.deliverer = Deliverer(
            sessions=sessions, delivery=delivery, renderer=renderer, policy=policy, clock=clock, outages=self.outages
        )
        self._stopping = False

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
            retry_at = self.outages.waiting(MAILBOX)
            if retry_at is not None:
                report.source_error = f"mailbox skipped until {retry_at.isoformat()} (backing off)"
            else:
                try:
                    batches = self._batches(self.source.fetch_new(self._known))
                    batch = next(batches, None)
                    while batch is not None:
                        # The next batch is read and parsed by the worker while this one is filed.
                        following = next(batches, None)
                        if following is not None:
                            self._loaded.update(self.parse_ahead.load(following, self._known))
                        self._handle_batch(batch, report)
                        if deliver and following is not None:
                            # A backlog's first answers go out after their batch, not after the whole poll.
                            try:
                                self._deliver(report)
                            except _STORE_ERRORS as exc:
                                raise StoreUnavailable(_short(exc)) from exc
                        batch = following
                finally:
                    self._loaded.clear()
                self._retry_marks()
                self.outages.recovered(MAILBOX)
        except AuthenticationFailed as exc:
            report.source_error = str(exc)
            self._back_off(exc, "mailbox login refused")
            self._record_health(LOGIN_FAILED, detail=str(exc), keep_since=True)
        except SourceError as exc:
            report.source_error = str(exc)
            self._back_off(exc, "mailbox unavailable")
        except StoreUnavailable as exc:
            report.store_error = str(exc)
            self.outages.failed(DATABASE, f"poll stopped: {exc}")
            return report
        except _STORE_ERRORS as exc:
            # Read outside the filing itself (the mailbox cursor, the ledger's known keys): the same outage.
            report.store_error = _short(exc)
            self.outages.failed(DATABASE, f"poll stopped: {report.store_error}")
            return report
        try:
            self.recheck_waiting()
            if deliver:
                self._deliver(report)
            if report.source_error is None:
                self._record_health("last_successful_poll")
                self._clear_health(LOGIN_FAILED)
        except _STORE_ERRORS as exc:
            report.store_error = _short(exc)
            self.outages.failed(DATABASE, report.store_error)
            return report
        self.outages.recovered(DATABASE)
        return report

    def _deliver(self, report: PollReport) -> None:
        delivery = self.deliver_outbox()
        report.delivered += delivery.sent
        report.delivery_failed += delivery.failed

    def _back_off(self, exc: SourceError, what: str) -> None:
        """Retry a failing mailbox after 30 s, then 1, 2, 4 minutes, then every 5 (one log line, see outages)."""
        self.outages.failed(MAILBOX, f"{what}: {exc}")

    def _record_health(self, key: str, detail: str | None = None, keep_since: bool = False) -> None:
        """Remember how the bot is doing (last good poll, a refused login), for `mailbot status`."""
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.scalars(select(JobRun).where(JobRun.job == JobName.HEALTH, JobRun.key == key)).one_or_none()
            if row is None:
                session.add(JobRun(job=JobName.HEALTH, key=key, done_at=now, detail=detail))
            else:
                row.done_at = row.done_at if keep_since else now
                row.detail = detail

    def _clear_health(self, key: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(JobRun).where(JobRun.job == JobName.HEALTH, JobRun.key == key))

    def _known(self, keys: Sequence[str]) -> set[str]:
        with self.sessions() as session:
            return Store(session).known_keys(self.source.name, keys)

    def _batches(self, items: Iterable[SourceItem]) -> Iterator[list[SourceItem]]:
        """The source's items in groups of ``batch_size``; none once stopping (SIGTERM)."""
        batch: list[SourceItem] = []
        for item in items:
            if self.stopping:
                break
            batch.append(item)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch and not self.stopping:
            yield batch

    def _handle_batch(self, items: Sequence[SourceItem], report: PollReport) -> None:
        """File ``items`` in one transaction, then mark them; on any failure, each alone."""
        if len(items) == 1:
            self._handle(items[0], report)
            return
        started = time.monotonic()
        results: list[tuple[Filed, bool]] = []
        interrupted: SourceError | None = None
        try:
            with self.sessions.begin() as session:
                store = Store(session)
                for item in items:
                    try:
                        results.append(self._file_in(store, item))
                    except SourceError as exc:
                        # The mailbox failed while the item was read, before it wrote
                        # anything: what the batch filed so far is whole, keep it.
                        interrupted = exc
                        break
        except Exception as exc:  # whichever message failed is found below, alone
            log.info("a batch of %d messages failed (%s); filing them one by one", len(items), _short(exc))
            for item in items:
                if self.stopping:
                    break
                self._handle(item, report)
            return
        filed = list(zip(items, results, strict=False))
        for _item, (outcome, fresh) in filed:
            if fresh:
                report.dispositions[outcome.disposition] += 1
            else:
                report.marked_again += 1
        if filed:
            self._mark_all(filed)
            duration_ms = (time.monotonic() - started) * 1000 / len(filed)
            for item, (outcome, _fresh) in filed:
                self._log_filed(item, outcome, duration_ms)
        if interrupted is not None:
            raise interrupted

    def _handle(self, item: SourceItem, report: PollReport) -> None:
        """File one item in its own transaction, counting a failure against it; then mark it."""
        started = time.monotonic()
        filed: Filed | None
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
        self._mark_all([(item, (filed, fresh))])
        self._log_filed(item, filed, (time.monotonic() - started) * 1000)

    def _mark_all(self, filed: Sequence[tuple[SourceItem, tuple[Filed, bool]]]) -> None:
        """Mark committed items in the mailbox, several per command where the source can."""
        wanted = [(item, f.disposition, f.status) for item, (f, _fresh) in filed]
        mark_many = getattr(self.source, "mark_many", None)
        failures: dict[str, SourceError] = {}
        if mark_many is not None:
            failures = {item.key: exc for item, exc in mark_many(wanted)}
        else:
            for item, disposition, status in wanted:
                try:
                    self.source.mark(item, disposition, status)
                except SourceError as exc:
                    failures[item.key] = exc
        for item, (_f, fresh) in filed:
            failure = failures.get(item.key)
            if failure is not None:
                self._mark_failed(item, failure)
            elif not fresh:
                marks.clear_mark(self.sessions, self.source.name, item.key)

    def _log_filed(self, item: SourceItem, filed: Filed, duration_ms: float) -> None:
        log.info(
            "message %s key=%s disposition=%s reason=%s case=%s duration_ms=%d",
            filed.message_id,
            item.key,
            filed.disposition,
            filed.reason,
            filed.case_no or "-",
            duration_ms,
            extra={
                "message_id": filed.message_id,
                "duration_ms": int(duration_ms),
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

    def file_item(self, item: SourceItem) -> tuple[Filed, bool]:
        """Decide and file one item in one transaction; returns (what was filed, whether it is new)."""
        with self.sessions.begin() as session:
            return self._file_in(Store(session), item)

    def _file_in(self, store: Store, item: SourceItem) -> tuple[Filed, bool]:
        """Decide and file one item inside the caller's transaction."""
        session = store.session
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
            loaded = self._loaded.pop(item.key, None)
            if loaded is not None and loaded.error is not None:
                raise loaded.error
            raw = loaded.raw if loaded is not None and loaded.raw is not None else item.load()
            if len(raw) > limit:
                decision, message = self._oversized(store, item)
                raw = None
            else:
                try:
                    message = loaded.message() if loaded is not None and loaded.raw is not None else parse_message(raw)
                except UnparseableMessage:
                    decision = quarantine("unparseable", self.policy)
                else:
                    decision, reused = self.decide(store, message, now, received_at)
        uow = self._uow(store, now)
        inbound = new_inbound(self.source.name, item.key, message, raw, store, now, received_at)
        extra = {"message_id_reused": "1"} if reused else {}
        return file_decision(uow, inbound, decision, message, received_at, facts_extra=extra), True

    def _uow(self, store: Store, now: datetime) -> RecordContext:
        return RecordContext(store, self.renderer, self.policy, now, base_url=self.base_url)

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
        """The core's decision on a parsed message (:func:`mailbot.service.filing.decide_message`)."""
        return decide_message(
            store,
            message,
            now,
            received_at,
            directory=self.directory,
            policy=self.policy,
            checks=self.checks,
            released=released,
        )

    def _filed_from_row(self, session: Session, row: Inbound) -> Filed:
        case = session.get(Case, row.case_id) if row.case_id else None
        return Filed(
            row.disposition,
            case.status if case else None,
            case.case_no if case else None,
            row.reason,
            row.message_id or row.identity,
        )

    def _record_failure(self, item: SourceItem, exc: Exception) -> Filed | None:
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
            headers = headers_only(raw)
            inbound = new_inbound(self.source.name, item.key, headers, raw, store, now, now)
            decision = quarantine("poison", self.policy)
            return file_decision(self._uow(store, now), inbound, decision, headers, now, facts_extra={"error": error})


def _not_downloadable() -> bytes:
    raise SourceError("a pending mark is retried by its key only; the message is not downloaded again")


def _short(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's statement dump."""
    original = getattr(exc, "orig", None)
    return f"{type(original or exc).__name__}: {original or exc}".strip()
