"""Is the bot healthy? ``mailbot status`` and the alert mails to ops.

Two conditions are problems:

* ``stale_poll``: the last successful poll is older than three poll intervals
  (or none was ever recorded);
* ``unprocessed_mail``: the mailbox holds a request (subject
  ``フレッツエスカ ...``) older than three poll intervals that was never
  processed;
* ``marks_pending``: a processed message's mark (keyword, folder move) failed
  three times or more (see :mod:`mailbot.service.marks`);
* ``mailbox_unreachable``: ``mailbot status`` could not read the mailbox itself
  (at once, not after three intervals: the look is its own);
* ``relay_refusing``: pending mails whose last try the relay refused;
* ``outbox_stale``: a mail pending for longer than ``[alerts] outbox_minutes``;
* ``copies_pending``: sent mails whose Sent-folder copy is still to be filed
  three poll intervals after they went out.

A poll that files mail counts as alive even before it ends (a long poll after
an outage is not a stale one), so the status does not flap at recovery.

The scheduler checks them after each poll and sends ops one ``ops_alert``
mail when a condition starts and one ``ops_alert_cleared`` when it clears;
the open alert is a ``JobRun`` row (``job="alert"``, ``key=<condition>``),
inserted or deleted in the same transaction as the mail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import Case, Inbound, JobRun, Outbox
from mailbot.adapters.database.store import Store
from mailbot.adapters.templates import Renderer
from mailbot.domain.clock import format_jst
from mailbot.domain.decision import MailIntent
from mailbot.domain.jobs import JobName
from mailbot.domain.lifecycle import kinds_made_by
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.domain.policy import Policy
from mailbot.domain.subject import parse_subject
from mailbot.service.intake import LOGIN_FAILED
from mailbot.service.mails import build_outbox_row
from mailbot.service.marks import PendingMark, pending_marks
from mailbot.service.ports import MailSource, SourceError, SourceItem

__all__ = [
    "ALERT_KINDS",
    "BotState",
    "MailboxScan",
    "PendingMail",
    "Problem",
    "Status",
    "beat",
    "bot_state",
    "collect_status",
    "find_problems",
    "scan_mailbox",
    "update_alerts",
]

log = logging.getLogger("mailbot.health")

ALERT_KINDS = kinds_made_by("alert")
STALE_FACTOR = 3
TITLES = {
    "mailbox_login": "メールボックスにログインできません",
    "stale_poll": "メールボックスの確認が止まっています",
    "unprocessed_mail": "未処理のフレッツエスカ依頼がメールボックスに残っています",
    "marks_pending": "処理済みのメールをメールボックスで移動・マークできていません",
    "mailbox_unreachable": "メールボックスに接続できません",
    "relay_refusing": "送信サーバ(SMTP)がメールを受け付けていません",
    "outbox_stale": "送信待ちのメールが長く送信されていません",
    "copies_pending": "送信済みメールの控えを送信済みフォルダに保存できていません",
    "bot_not_running": "mailbot run が動いていません",
    "bot_stopped": "ボットが停止しています",
}
# How long a pending mail may wait before `mailbot status` calls it a problem (``[alerts] outbox_minutes``).
OUTBOX_MINUTES = 30
# A mark that failed this many times is a problem (ops told once, via the alert).
MARKS_REPORTED_AFTER = 3


@dataclass(frozen=True)
class PendingMail:
    """A mailbox item the ledger does not know."""

    key: str
    arrived_at: datetime | None
    subject: str | None = None  # only read for items older than the threshold
    is_request: bool | None = None


@dataclass
class MailboxScan:
    waiting: int = 0  # items the bot has still to process or mark
    unprocessed: list[PendingMail] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class Problem:
    code: str
    title: str
    detail: str


@dataclass
class Status:
    now: datetime
    poll_seconds: int
    last_successful_poll: datetime | None
    mailbox: MailboxScan
    outbox: dict[str, int]
    cases: dict[str, int]
    unis_as_of: datetime | None
    unis_imported_at: datetime | None
    open_alerts: dict[str, datetime]
    problems: list[Problem]
    schedule: list[dict[str, Any]] = field(default_factory=list)
    marks_pending: list[PendingMark] = field(default_factory=list)
    bot: BotState | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "now": _iso(self.now),
            "ok": not self.problems,
            "last_successful_poll": _iso(self.last_successful_poll),
            "poll_seconds": self.poll_seconds,
            "mailbox": {
                "waiting": self.mailbox.waiting,
                "unprocessed": [
                    {"key": p.key, "arrived_at": _iso(p.arrived_at), "subject": p.subject, "is_request": p.is_request}
                    for p in self.mailbox.unprocessed
                ],
                "error": self.mailbox.error,
            },
            "outbox": self.outbox,
            "cases": self.cases,
            "unis": {"as_of": _iso(self.unis_as_of), "imported_at": _iso(self.unis_imported_at)},
            "open_alerts": {k: _iso(v) for k, v in self.open_alerts.items()},
            "problems": [{"code": p.code, "title": p.title, "detail": p.detail} for p in self.problems],
            "schedule": self.schedule,
            "marks_pending": [
                {"key": m.item_key, "attempts": m.attempts, "since": _iso(m.since), "error": m.error}
                for m in self.marks_pending
            ],
            "bot": None
            if self.bot is None
            else {
                "running": self.bot.running,
                "heartbeat": _iso(self.bot.heartbeat),
                "stopped_at": _iso(self.bot.stopped_at),
            },
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# -- the mailbox -------------------------------------------------------------------------
def _known(sessions: sessionmaker[Session], source_name: str) -> Callable[[Sequence[str]], set[str]]:
    def known(keys: Sequence[str]) -> set[str]:
        with sessions() as session:
            return Store(session).known_keys(source_name, keys)

    return known


def _peek(raw: bytes) -> tuple[str, bool, datetime | None]:
    try:
        message = parse_message(raw)
    except UnparseableMessage:
        return "", False, None
    return message.subject, parse_subject(message.subject).is_request, message.date


def scan_mailbox(
    source: MailSource,
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    older_than: timedelta,
    max_bytes: int,
) -> MailboxScan:
    """Count what waits in the mailbox; read only the headers of unprocessed items older than ``older_than``.

    The arrival time is the mailbox's own (Maildir: file time; IMAP:
    INTERNALDATE), not the sender's Date header, which a wrong clock or a
    missing header would make useless here.
    """
    known = _known(sessions, source.name)
    scan = MailboxScan()
    try:
        items = list(source.pending(known))  # a look, not a poll: see MailSource.pending
        done = known([i.key for i in items]) if items else set()
        scan.waiting = sum(1 for i in items if i.key not in done)
        for item in items:
            if item.key in done:
                continue
            arrived = item.received_at
            subject, is_request = None, None
            if arrived is None or now - arrived > older_than:
                head = _head(item, max_bytes)
                if head is not None:
                    subject, is_request, date = _peek(head)
                    arrived = arrived or date
            scan.unprocessed.append(PendingMail(item.key, arrived, subject, is_request))
    except SourceError as exc:
        scan.error = str(exc)
    return scan


def _head(item: SourceItem, max_bytes: int) -> bytes | None:
    if item.load_headers is not None:
        return item.load_headers()
    if item.size is None or item.size <= max_bytes:
        return item.load()
    return None


def last_successful_poll(session: Session) -> datetime | None:
    return session.scalar(
        select(JobRun.done_at).where(JobRun.job == JobName.HEALTH, JobRun.key == "last_successful_poll")
    )


def login_failure(session: Session) -> tuple[datetime, str] | None:
    row = session.execute(
        select(JobRun.done_at, JobRun.detail).where(JobRun.job == JobName.HEALTH, JobRun.key == LOGIN_FAILED)
    ).one_or_none()
    return (row[0], row[1] or "") if row is not None else None


def open_alerts(session: Session) -> dict[str, datetime]:
    return {k: at for k, at in session.execute(select(JobRun.key, JobRun.done_at).where(JobRun.job == JobName.ALERT))}


def find_problems(
    *,
    now: datetime,
    poll_seconds: int,
    last_poll: datetime | None,
    mailbox: MailboxScan,
    login_failure: tuple[datetime, str] | None = None,
    marks_pending: Sequence[PendingMark] = (),
    check_mailbox_error: bool = False,
) -> list[Problem]:
    limit = timedelta(seconds=STALE_FACTOR * poll_seconds)
    problems = []
    if check_mailbox_error and mailbox.error and login_failure is None:
        problems.append(Problem("mailbox_unreachable", TITLES["mailbox_unreachable"], mailbox.error))
    if login_failure is not None:
        # At once, not after three intervals: a changed password will not heal itself.
        since, detail = login_failure
        problems.append(Problem("mailbox_login", TITLES["mailbox_login"], f"{format_jst(since)} から: {detail}"))
    if last_poll is None:
        problems.append(Problem("stale_poll", TITLES["stale_poll"], "メールを確認できた記録がありません"))
    elif now - last_poll > limit:
        problems.append(
            Problem(
                "stale_poll",
                TITLES["stale_poll"],
                f"最後にメールを確認できたのは {format_jst(last_poll)}"
                f"({int((now - last_poll).total_seconds() // 60)}分前)です"
                + (f"。メールボックスのエラー: {mailbox.error}" if mailbox.error else ""),
            )
        )
    old = [p for p in mailbox.unprocessed if p.is_request and p.arrived_at is not None and now - p.arrived_at > limit]
    if old:
        oldest = min(p.arrived_at for p in old if p.arrived_at is not None)
        problems.append(
            Problem(
                "unprocessed_mail",
                TITLES["unprocessed_mail"],
                f"{len(old)}件の依頼メールが未処理です(最も古いもの {format_jst(oldest)} 受信)。"
                f"例: {old[0].subject or old[0].key}",
            )
        )
    stuck = [m for m in marks_pending if m.attempts >= MARKS_REPORTED_AFTER]
    if stuck:
        first = min(m.since for m in stuck)
        problems.append(
            Problem(
                "marks_pending",
                TITLES["marks_pending"],
                f"marks pending: {len(stuck)}件のメールは記録済みですが、メールボックスでのフォルダ移動・"
                f"マークが{MARKS_REPORTED_AFTER}回以上失敗しています(最初の失敗 {format_jst(first)})。"
                f"自動で再試行を続けます。最新のエラー: {stuck[-1].error}",
            )
        )
    return problems


def collect_status(
    *,
    sessions: sessionmaker[Session],
    source: MailSource | None,
    poll_seconds: int,
    max_message_bytes: int,
    now: datetime,
    outbox_minutes: int | None = None,
    bot_expected: bool = False,
) -> Status:
    """Everything ``mailbot status`` shows, and the problems found.

    ``outbox_minutes`` (``mailbot status``, not the scheduler's own check):
    also the outbox's and the mailbox's own problems (relay refusing, mail
    pending too long, copies not filed, the mailbox unreachable now).
    ``bot_expected`` (the workbench's 稼働状況): a bot not running is a problem,
    seen from its heartbeat within one poll interval.
    """
    with sessions() as session:
        last_poll = last_successful_poll(session)
        # A poll that is filing mail right now is alive, though it has not finished yet.
        filed = session.scalar(select(func.max(Inbound.processed_at)))
        if filed is not None and last_poll is not None and filed > last_poll:
            last_poll = filed
        delivery_problems = (
            outbox_problems(session, now=now, outbox_minutes=outbox_minutes, poll_seconds=poll_seconds)
            if outbox_minutes is not None
            else []
        )
        refused = login_failure(session)
        outbox = {s: n for s, n in session.execute(select(Outbox.status, func.count()).group_by(Outbox.status))}
        cases: dict[str, int] = {}
        for stage, verdict, n in session.execute(
            select(Case.stage, Case.status, func.count()).group_by(Case.stage, Case.status)
        ):
            # A closed case waits for nothing, whatever its last verdict.
            key = "closed" if stage == "closed" else verdict
            cases[key] = cases.get(key, 0) + n
        snapshot = Store(session).latest_snapshot()
        alerts = open_alerts(session)
        marks = pending_marks(session)
        bot = bot_state(session, now=now, poll_seconds=poll_seconds)
    limit = timedelta(seconds=STALE_FACTOR * poll_seconds)
    mailbox = (
        scan_mailbox(source, sessions, now=now, older_than=limit, max_bytes=max_message_bytes)
        if source is not None
        else MailboxScan(error="not checked")
    )
    return Status(
        now=now,
        poll_seconds=poll_seconds,
        last_successful_poll=last_poll,
        mailbox=mailbox,
        outbox={"pending": outbox.get("pending", 0), "failed": outbox.get("failed", 0), "sent": outbox.get("sent", 0)},
        cases={s: cases.get(s, 0) for s in ("accepted", "returned", "waiting_unis", "closed")},
        unis_as_of=snapshot.as_of if snapshot else None,
        unis_imported_at=snapshot.imported_at if snapshot else None,
        open_alerts=alerts,
        problems=find_problems(
            now=now,
            poll_seconds=poll_seconds,
            last_poll=last_poll,
            mailbox=mailbox,
            login_failure=refused,
            marks_pending=marks,
            check_mailbox_error=outbox_minutes is not None and source is not None,
        )
        + delivery_problems
        + ([problem] if bot_expected and (problem := bot.problem()) else []),
        marks_pending=marks,
        bot=bot,
    )


def outbox_problems(session: Session, *, now: datetime, outbox_minutes: int, poll_seconds: int) -> list[Problem]:
    """The relay refusing, mail pending too long, copies not filed: read from the outbox alone."""
    problems = []
    pending = Outbox.status == "pending"
    refused, latest = session.execute(
        select(func.count(), func.max(Outbox.id)).where(pending, Outbox.last_error.is_not(None))
    ).one()
    if refused:
        error = session.scalar(select(Outbox.last_error).where(Outbox.id == latest))
        detail = f"{refused}件のメールが再送待ちです。最新のエラー: {error}"
        problems.append(Problem("relay_refusing", TITLES["relay_refusing"], detail))
    oldest = session.scalar(select(func.min(Outbox.created_at)).where(pending))
    if oldest is not None and now - oldest > timedelta(minutes=outbox_minutes):
        count = session.scalar(select(func.count()).where(pending)) or 0
        detail = f"{count}件が送信待ちで、最も古いものは {format_jst(oldest)} から待っています({outbox_minutes}分超)"
        problems.append(Problem("outbox_stale", TITLES["outbox_stale"], detail))
    late = now - timedelta(seconds=STALE_FACTOR * poll_seconds)
    copies = session.scalar(select(func.count()).where(Outbox.copy_pending.is_(True), Outbox.sent_at < late))
    if copies:
        detail = f"{copies}件の控えが未保存です。メールボックスに接続でき次第、自動で保存します"
        problems.append(Problem("copies_pending", TITLES["copies_pending"], detail))
    return problems


# -- alerts ----------------------------------------------------------------------------------
def update_alerts(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    policy: Policy,
    problems: Sequence[Problem],
    *,
    now: datetime,
) -> list[str]:
    """One mail when a condition starts and one when it clears; returns what changed."""
    current = {p.code: p for p in problems}
    changes: list[str] = []
    with sessions() as session:
        active = open_alerts(session)
    ops = tuple(policy.ops_recipients)
    for code, problem in current.items():
        if code in active:
            continue
        try:
            with sessions.begin() as session:
                session.add(JobRun(job=JobName.ALERT, key=code, done_at=now, detail=problem.detail))
                session.flush()
                if ops:
                    context = {
                        "title": problem.title,
                        "detail": problem.detail,
                        "since": format_jst(now, policy.tz),
                        "code": code,
                    }
                    session.add(_row("ops_alert", ops, renderer, policy, context, now))
        except IntegrityError:
            continue  # another process raised it first
        log.warning("alert raised: %s: %s", code, problem.detail)
        changes.append(f"raised {code}")
    for code, since in active.items():
        if code in current:
            continue
        with sessions.begin() as session:
            row = session.scalars(select(JobRun).where(JobRun.job == JobName.ALERT, JobRun.key == code)).one_or_none()
            if row is None:
                continue  # another process cleared it
            session.delete(row)
            if ops:
                context = {
                    "title": TITLES.get(code, code),
                    "since": format_jst(since, policy.tz),
                    "cleared": format_jst(now, policy.tz),
                    "code": code,
                }
                session.add(_row("ops_alert_cleared", ops, renderer, policy, context, now))
        log.info("alert cleared: %s", code)
        changes.append(f"cleared {code}")
    return changes


def _row(
    kind: str, to: tuple[str, ...], renderer: Renderer, policy: Policy, context: dict[str, Any], now: datetime
) -> Outbox:
    return build_outbox_row(
        MailIntent(kind, to),
        renderer=renderer,
        context={"case_no": "", **context},
        policy=policy,
        now=now,
        case_id=None,
        inbound_id=None,
    )


# -- the running bot ---------------------------------------------------------------------------
RUNNER_KEY = "runner"
# Written by the running bot every heartbeat_seconds(); gone, and STOPPED_KEY written, at a clean stop.
HEARTBEAT_KEY = "heartbeat"
STOPPED_KEY = "stopped"


def heartbeat_seconds(poll_seconds: int) -> float:
    """How often the running bot says it is alive: three beats fit in one poll interval, at most a minute apart."""
    return max(1.0, min(60.0, poll_seconds / 3))


def _put(session: Session, key: str, now: datetime, detail: str | None) -> None:
    row = session.scalars(select(JobRun).where(JobRun.job == JobName.HEALTH, JobRun.key == key)).one_or_none()
    if row is None:
        session.add(JobRun(job=JobName.HEALTH, key=key, done_at=now, detail=detail))
    else:
        row.done_at, row.detail = now, detail


def _drop(session: Session, *keys: str) -> None:
    session.execute(delete(JobRun).where(JobRun.job == JobName.HEALTH, JobRun.key.in_(keys)))


def mark_runner(sessions: sessionmaker[Session], who: str, now: datetime) -> None:
    """`mailbot run` started: from now on a free poller lock means the bot died (until a clean stop)."""
    with sessions.begin() as session:
        _put(session, RUNNER_KEY, now, who)
        _put(session, HEARTBEAT_KEY, now, who)
        _drop(session, STOPPED_KEY)


def beat(sessions: sessionmaker[Session], who: str, now: datetime) -> None:
    """The running bot is alive (the workbench reads it: まもなく送信, 稼働状況)."""
    with sessions.begin() as session:
        _put(session, HEARTBEAT_KEY, now, who)


def clear_runner(sessions: sessionmaker[Session], now: datetime | None = None) -> None:
    """A clean stop: no bot is expected to hold the lock any more, and the workbench says so at once."""
    with sessions.begin() as session:
        _drop(session, RUNNER_KEY, HEARTBEAT_KEY)
        if now is not None:
            _put(session, STOPPED_KEY, now, None)


@dataclass(frozen=True)
class BotState:
    """Is `mailbot run` running, as the workbench tells a clerk: from its heartbeat, without asking the lock."""

    running: bool
    last_poll: datetime | None  # the last successful poll: 「最終確認」
    heartbeat: datetime | None  # the last sign of life (kept after a crash, gone after a clean stop)
    stopped_at: datetime | None  # a clean stop's time

    def problem(self) -> Problem | None:
        """The status page's line when the bot is not running (within one poll interval of its end)."""
        if self.running:
            return None
        if self.stopped_at is not None:
            detail = f"{format_jst(self.stopped_at)} に停止しました"
        elif self.heartbeat is not None:
            detail = f"{format_jst(self.heartbeat)} から応答がありません(停止の記録なし)"
        else:
            detail = "起動の記録がありません"
        waits = "。画面から送ったメールは、再開するまで送信されません"
        return Problem("bot_stopped", TITLES["bot_stopped"], detail + waits)


def bot_state(session: Session, *, now: datetime, poll_seconds: int) -> BotState:
    keys = (HEARTBEAT_KEY, STOPPED_KEY, "last_successful_poll")
    rows: dict[str, datetime] = {
        key: at
        for key, at in session.execute(
            select(JobRun.key, JobRun.done_at).where(JobRun.job == JobName.HEALTH, JobRun.key.in_(keys))
        )
    }
    heartbeat = rows.get(HEARTBEAT_KEY)
    alive = heartbeat is not None and now - heartbeat <= timedelta(seconds=3 * heartbeat_seconds(poll_seconds))
    return BotState(
        running=alive, last_poll=rows.get("last_successful_poll"), heartbeat=heartbeat, stopped_at=rows.get(STOPPED_KEY)
    )


def runner_problem(sessions: sessionmaker[Session], *, lock_free: bool) -> Problem | None:
    """A `mailbot run` started and never stopped cleanly, and no one holds the poller lock: it is gone."""
    if not lock_free:
        return None
    with sessions() as session:
        row = session.execute(
            select(JobRun.done_at, JobRun.detail).where(JobRun.job == JobName.HEALTH, JobRun.key == RUNNER_KEY)
        ).one_or_none()
    if row is None:
        return None
    since, who = row
    detail = f"{format_jst(since)} に起動した {who} がポーラーのロックを持っていません(停止の記録なし)"
    return Problem("bot_not_running", TITLES["bot_not_running"], detail)
