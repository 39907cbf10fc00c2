"""The imperative shell around the decision core: read, decide, file, mark, deliver.

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

import hashlib
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
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
from mailbot.domain.jobs import JobName
from mailbot.domain.lifecycle import BRANCH_MAILS, Stage
from mailbot.domain.model import CaseStatus, Disposition, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.domain.policy import Policy
from mailbot.domain.subject import parse_subject
from mailbot.service import marks
from mailbot.service.casefile import BOT_ACTOR, CaseChange, UnitOfWork, record, write_mails
from mailbot.service.delivery import Deliverer, DeliveryReport
from mailbot.service.errors import StoreUnavailable
from mailbot.service.outages import DATABASE, MAILBOX, Outages
from mailbot.service.parse_ahead import Loaded, ParseAhead
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

# Messages filed per transaction. A batch is what a crash can make the next
# poll do again (nothing is marked before its commit), and what is held in
# memory at once; 25 requests of a few hundred KB each is both cheap and small.
BATCH_SIZE = 25

LOGIN_FAILED = "mailbox_login_failed"  # health mark while the mailbox refuses our login
# The job row saying every waiting case was re-checked against a snapshot and rules.

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
        self._rules_digested: tuple[tuple[object, object, tuple[str, ...]], str] | None = None  # see _rules_digest
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
        results: list[tuple[_Filed, bool]] = []
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
        self._mark_all([(item, (filed, fresh))])
        self._log_filed(item, filed, (time.monotonic() - started) * 1000)

    def _mark_all(self, filed: Sequence[tuple[SourceItem, tuple[_Filed, bool]]]) -> None:
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

    def _log_filed(self, item: SourceItem, filed: _Filed, duration_ms: float) -> None:
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

    def file_item(self, item: SourceItem) -> tuple[_Filed, bool]:
        """Decide and file one item in one transaction; returns (what was filed, whether it is new)."""
        with self.sessions.begin() as session:
            return self._file_in(Store(session), item)

    def _file_in(self, store: Store, item: SourceItem) -> tuple[_Filed, bool]:
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
            answers_code_request=case_row is not None
            and not case_row.customer_code
            and store.answers_mail_kind(thread_ids(message), "branch_code_request"),
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


def case_view(case: Case, thread: Sequence[tuple[Inbound, ParsedMessage]]) -> CaseView:
    """The core's view of a case from its row and its thread as the store rebuilt it."""
    return CaseView(
        case_no=case.case_no,
        status=CaseStatus(case.status),
        messages=tuple(message for _, message in thread),
        waiting_since=case.waiting_since,
        stage=Stage(case.stage),
        defects=defects_from_json(case.defects or []),
        customer_code=case.customer_code,
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
            note=outcome.note,
        )
        case_row = record(uow, change)
        inbound.case_id = case_row.id
    else:
        # The notice names the ledger row, so the clerk can release or discard it by number.
        extra = {"quarantine_id": str(inbound.id)} if decision.disposition is Disposition.QUARANTINED else {}
        write_mails(uow, mails, None, message, inbound.id, received_at, facts_extra=extra)
    store.clear_failure(inbound.source, inbound.source_key)
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
