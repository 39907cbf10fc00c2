"""Accounts for the web workbench: who may look, who may act.

Passwords are hashed with argon2id (argon2-cffi); the hash is the only thing
stored. Roles: ``viewer`` sees everything and acts on nothing, ``clerk`` also
acts on cases, quarantine and outbox, ``admin`` is a clerk who may also be
given the account commands (which run on the server's command line only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import User, WebSession
from mailbot.service.errors import AccountError

__all__ = ["ROLES", "Account", "AccountError", "Accounts", "account_of", "end_sessions_of"]

ROLES = ("viewer", "clerk", "admin")
ACTING_ROLES = frozenset({"clerk", "admin"})
_NAME = re.compile(r"^[^\s\x00-\x1f\x7f]{1,120}$")
# A hash to verify against when the user does not exist, so a wrong name
# costs as long as a wrong password (no user enumeration by timing).
_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("mailbot-no-such-user")
MIN_PASSWORD = 10


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @property
    def can_act(self) -> bool:
        return self.role in ACTING_ROLES and not self.disabled


def account_of(row: User) -> Account:
    return Account(row.name, row.role, row.disabled, row.created_at, row.last_login_at)


def end_sessions_of(session: Session, user_id: int, now: datetime, why: str) -> int:
    """End every open workbench session of the user, in the caller's transaction; how many there were."""
    ended = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
        .values(expires_at=now, ended_at=now, ended_why=why)
    )
    return int(getattr(ended, "rowcount", 0) or 0)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")


class Accounts:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    def add(self, name: str, role: str, password: str) -> Account:
        name = name.strip()
        if not _NAME.match(name):
            raise AccountError(f"{name!r}: a user name has 1 to 120 characters and no spaces")
        if role not in ROLES:
            raise AccountError(f"--role: expected one of {', '.join(ROLES)}, got {role!r}")
        _check_password(password)
        with self.sessions.begin() as session:
            if session.scalars(select(User).where(User.name == name)).one_or_none() is not None:
                raise AccountError(f"user {name!r} exists already")
            row = User(
                name=name, role=role, password_hash=_HASHER.hash(password), disabled=False, created_at=self.clock()
            )
            session.add(row)
            session.flush()
            return account_of(row)

    def list(self) -> list[Account]:
        with self.sessions() as session:
            return [account_of(u) for u in session.scalars(select(User).order_by(User.name))]

    def disable(self, name: str) -> Account:
        """The account can no longer log in, and its open sessions end now."""
        with self.sessions.begin() as session:
            row = self._row(session, name)
            row.disabled = True
            end_sessions_of(session, row.id, self.clock(), "disabled")
            return account_of(row)

    def set_password(self, name: str, password: str) -> int:
        """A new password; every session of the account ends (a copied cookie dies with the old password).

        Returns how many open sessions were ended.
        """
        _check_password(password)
        with self.sessions.begin() as session:
            row = self._row(session, name)
            row.password_hash = _HASHER.hash(password)
            return end_sessions_of(session, row.id, self.clock(), "password")

    def _row(self, session: Session, name: str) -> User:
        row = session.scalars(select(User).where(User.name == name)).one_or_none()
        if row is None:
            raise AccountError(f"no user {name!r}")
        return row

    def get(self, name: str) -> Account | None:
        with self.sessions() as session:
            row = session.scalars(select(User).where(User.name == name)).one_or_none()
            return account_of(row) if row is not None else None

    def verify(self, name: str, password: str) -> Account | None:
        """The account when the name and password match and it is enabled; None otherwise."""
        with self.sessions.begin() as session:
            row = session.scalars(select(User).where(User.name == name.strip())).one_or_none()
            try:
                _HASHER.verify(row.password_hash if row is not None and row.password_hash else _DUMMY, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return None
            if row is None or row.disabled:
                return None
            if _HASHER.check_needs_rehash(row.password_hash):
                row.password_hash = _HASHER.hash(password)
            row.last_login_at = self.clock()
            return account_of(row)
