"""Workbench sessions held on the server: a copied cookie dies with the session it copied.

The cookie carries a random id (:func:`secrets.token_urlsafe`); the table
keeps only its SHA-256, the user, and when the session began, was last seen
and ends. A session ends at logout, when the account's password changes or
the account is disabled (:func:`mailbot.service.accounts.end_sessions_of`),
and :data:`LIFETIME` after the login. Every lookup is one indexed read; the
rows of ended sessions are deleted at the next login (one indexed delete),
so the table holds about one row per open session.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import User, WebSession
from mailbot.service.accounts import Account, AccountError, account_of

__all__ = ["LIFETIME", "WebSessions", "token_hash"]

# A working day and its overtime: the same 12 hours the signed cookie lasted before.
LIFETIME = timedelta(hours=12)
# "Last seen" is written at most this often: a page view is a read, not a write.
SEEN_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    """What the table stores of a session id: the id itself would open the session."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class WebSessions:
    """Start, find and end the workbench's sessions."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    def start(self, name: str) -> str:
        """A new session of the account ``name``; returns the id the cookie carries."""
        now = self.clock()
        token = secrets.token_urlsafe(32)
        with self.sessions.begin() as session:
            user = session.scalars(select(User).where(User.name == name)).one_or_none()
            if user is None or user.disabled:
                raise AccountError(f"no enabled user {name!r}")
            self._prune(session, now)
            session.add(
                WebSession(
                    token_hash=token_hash(token),
                    user_id=user.id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + LIFETIME,
                )
            )
        return token

    def find(self, token: str) -> Account | None:
        """The account of an open session; None when the session ended, expired or never was."""
        if not token:
            return None
        now = self.clock()
        with self.sessions.begin() as session:
            found = session.execute(
                select(WebSession, User)
                .join(User, User.id == WebSession.user_id)
                .where(
                    WebSession.token_hash == token_hash(token),
                    WebSession.ended_at.is_(None),
                    WebSession.expires_at > now,
                )
            ).one_or_none()
            if found is None:
                return None
            row, user = found
            if user.disabled:
                return None
            if now - row.last_seen_at >= SEEN_EVERY:
                row.last_seen_at = now
            return account_of(user)

    def end(self, token: str, why: str = "logout") -> bool:
        """End one session (logout); False when it had ended already."""
        if not token:
            return False
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.scalars(
                select(WebSession).where(WebSession.token_hash == token_hash(token), WebSession.ended_at.is_(None))
            ).one_or_none()
            if row is None:
                return False
            row.expires_at, row.ended_at, row.ended_why = now, now, why
            return True

    def open_count(self, name: str) -> int:
        """How many sessions of ``name`` are open now (for the accounts listing and the tests)."""
        now = self.clock()
        with self.sessions() as session:
            rows = session.scalars(
                select(WebSession.id)
                .join(User, User.id == WebSession.user_id)
                .where(User.name == name, WebSession.ended_at.is_(None), WebSession.expires_at > now)
            )
            return len(rows.all())

    def prune(self) -> int:
        """Delete the rows of sessions that ended or expired; how many."""
        with self.sessions.begin() as session:
            return self._prune(session, self.clock())

    @staticmethod
    def _prune(session: Session, now: datetime) -> int:
        # An ended session's expires_at is the moment it ended: one indexed range covers both.
        gone = session.execute(delete(WebSession).where(WebSession.expires_at <= now))
        return int(getattr(gone, "rowcount", 0) or 0)
