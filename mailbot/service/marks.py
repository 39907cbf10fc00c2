"""Marks the mailbox could not take: recorded, retried with back-off, reported once.

The mark (keyword and folder move) comes after the commit, so a message whose
mark fails is already in the ledger. It must not stall the mailbox: the
intake records the failure here, tells the source to move its cursor on, and
retries the mark on later polls, 1, 2, 4 ... minutes apart and then hourly.
Once a mark failed ``max_attempts`` times, ``mailbot status`` shows the
problem ``marks_pending`` (exit status 1) and the scheduler's alert tells ops
once; the alert clears when the last pending mark went through.

One ``JobRun`` row per pending mark, ``job="mark_pending"``, so no schema
change is needed: ``key`` is ``"<source> <item key>"`` (the source part is a
digest when the whole would not fit), ``done_at`` the first failure and
``detail`` JSON with the source, item key, attempts, next try and last error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import JobRun
from mailbot.domain.jobs import JobName

__all__ = ["PendingMark", "clear_mark", "due_marks", "pending_marks", "record_mark_failure"]

_KEY_LENGTH = 200  # JobRun.key
_MAX_PAUSE_MINUTES = 60


@dataclass(frozen=True)
class PendingMark:
    source: str
    item_key: str
    attempts: int
    since: datetime
    next_at: datetime
    error: str


def _job_key(source: str, item_key: str) -> str:
    key = f"{source} {item_key}"
    if len(key) <= _KEY_LENGTH:
        return key
    return f"{hashlib.sha256(source.encode()).hexdigest()[:32]} {item_key}"[:_KEY_LENGTH]


def _parse(row: JobRun) -> PendingMark | None:
    try:
        data = json.loads(row.detail or "")
        return PendingMark(
            source=str(data["source"]),
            item_key=str(data["key"]),
            attempts=int(data["attempts"]),
            since=row.done_at,
            next_at=datetime.fromisoformat(data["next_at"]),
            error=str(data.get("error", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def record_mark_failure(sessions: sessionmaker[Session], source: str, item_key: str, error: str, now: datetime) -> int:
    """Count one more failed mark of ``item_key``; returns the attempts so far."""
    key = _job_key(source, item_key)
    with sessions.begin() as session:
        row = session.scalars(select(JobRun).where(JobRun.job == JobName.MARK_PENDING, JobRun.key == key)).one_or_none()
        previous = _parse(row) if row is not None else None
        attempts = (previous.attempts if previous else 0) + 1
        pause = timedelta(minutes=min(2 ** (attempts - 1), _MAX_PAUSE_MINUTES))
        detail = json.dumps(
            {
                "source": source,
                "key": item_key,
                "attempts": attempts,
                "next_at": (now + pause).isoformat(),
                "error": error[:1000],
            },
            ensure_ascii=False,
        )
        if row is None:
            session.add(JobRun(job=JobName.MARK_PENDING, key=key, done_at=now, detail=detail))
        else:
            row.detail = detail
    return attempts


def clear_mark(sessions: sessionmaker[Session], source: str, item_key: str) -> None:
    """The mark went through (or is moot): forget it."""
    key = _job_key(source, item_key)
    with sessions.begin() as session:
        row = session.scalars(select(JobRun).where(JobRun.job == JobName.MARK_PENDING, JobRun.key == key)).one_or_none()
        if row is not None:
            session.delete(row)


def pending_marks(session: Session, source: str | None = None) -> list[PendingMark]:
    """Every pending mark (of ``source`` only, if given), oldest first."""
    rows = session.scalars(select(JobRun).where(JobRun.job == JobName.MARK_PENDING).order_by(JobRun.done_at, JobRun.id))
    marks = [m for m in (_parse(r) for r in rows) if m is not None]
    return [m for m in marks if source is None or m.source == source]


def due_marks(sessions: sessionmaker[Session], source: str, now: datetime) -> list[PendingMark]:
    with sessions() as session:
        return [m for m in pending_marks(session, source) if m.next_at <= now]
