"""Failed logins slowed, per account name and per client address.

After :data:`LIMITS` failures within :data:`WINDOW` a key is locked for
:data:`FIRST_DELAY`; every further failure once the lock is over locks it
again for twice as long, up to :data:`MAX_DELAY`. While a key is locked every
attempt is refused before the password is looked at, so the right password
is refused too and a guesser learns nothing. A success clears the account's
counter (not the address's: one good account must not buy a guesser more
tries from the same machine). A run of failures is forgotten once it has been
quiet for :data:`WINDOW` after its last failure or lock.

Any name is counted, existing or not, and the refusal reads the same, so it
tells nobody which names are accounts. The counters are rows of
``login_failures``: every workbench process slows the same guesser; rows
of forgotten runs are deleted at the next failure (one indexed delete). The first
lock of an existing account in a run is reported to ops once, through the
outbox (mail kind ``ops_login_locked``), in the transaction that locks it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import LoginFailure, User
from mailbot.adapters.templates import Renderer
from mailbot.domain.clock import format_jst
from mailbot.domain.decision import MailIntent
from mailbot.domain.policy import Policy
from mailbot.service.mails import build_outbox_row

__all__ = ["FIRST_DELAY", "LIMITS", "MAX_DELAY", "TOO_MANY", "WINDOW", "LoginThrottle"]

log = logging.getLogger("mailbot.web")

# Failures before a lock. An office's clerks may share one address (NAT), so the address may fail more.
LIMITS = {"user": 5, "addr": 10}
WINDOW = timedelta(minutes=15)
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
# A lock never outlasts its last failure by more than MAX_DELAY, nor a run its lock by more than WINDOW.
FORGOTTEN_AFTER = WINDOW + MAX_DELAY
TOO_MANY = "ログインの試行回数が多すぎます。しばらくしてからお試しください。"
# Longer names are cut: the key column is bounded, and nobody's name is this long (accounts.py: 120).
_KEY_CHARS = 150


def _keys(name: str, address: str) -> list[tuple[str, str]]:
    keys = [("user", f"user:{name.strip()[:_KEY_CHARS]}")]
    if address:
        keys.append(("addr", f"addr:{address[:_KEY_CHARS]}"))
    return keys


def _delay(locks: int) -> timedelta:
    """The lock after ``locks`` earlier locks of the same run: 30 s, 60 s, 120 s ... up to MAX_DELAY."""
    return min(FIRST_DELAY * (1 << min(locks, 16)), MAX_DELAY)


def _seconds(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


class LoginThrottle:
    """Asked before a password is checked (:meth:`wait`), told of each failure and success."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        renderer: Renderer,
        policy: Policy,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.renderer = renderer
        self.policy = policy

    def wait(self, name: str, address: str) -> int:
        """Seconds before ``name`` may try again from ``address``; 0 when it may try now."""
        now = self.clock()
        keys = [key for _, key in _keys(name, address)]
        with self.sessions() as session:
            until = session.scalars(
                select(LoginFailure.locked_until).where(LoginFailure.key.in_(keys), LoginFailure.locked_until > now)
            ).all()
        return max((_seconds(u, now) for u in until if u is not None), default=0)

    def failed(self, name: str, address: str) -> int:
        """Count a failed login; seconds before the next try is allowed (0: not locked)."""
        for attempt in range(3):
            try:
                return self._failed(name, address)
            except IntegrityError:
                # Another process counted the first failure of the same key at the same moment: count again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _failed(self, name: str, address: str) -> int:
        now = self.clock()
        wait = 0
        with self.sessions.begin() as session:
            # Counters no run can still need (unlocked and quiet past the window): one indexed delete,
            # so names made up by a guesser do not pile up.
            session.execute(delete(LoginFailure).where(LoginFailure.last_failure_at < now - FORGOTTEN_AFTER))
            for kind, key in _keys(name, address):
                row = session.scalars(select(LoginFailure).where(LoginFailure.key == key).with_for_update()).first()
                if row is None:
                    row = LoginFailure(key=key, failures=0, last_failure_at=now, locks=0, locked_until=None)
                    session.add(row)
                    session.flush()
                quiet_since = max(row.last_failure_at, row.locked_until or row.last_failure_at)
                if now - quiet_since > WINDOW:
                    row.failures, row.locks, row.locked_until = 0, 0, None
                row.failures += 1
                row.last_failure_at = now
                if row.failures < LIMITS[kind]:
                    continue
                row.locked_until = now + _delay(row.locks)
                row.locks += 1
                wait = max(wait, _seconds(row.locked_until, now))
                log.warning(
                    "web login locked for %s after %d failures, until %s",
                    key,
                    row.failures,
                    row.locked_until.isoformat(timespec="seconds"),
                )
                if kind == "user" and row.locks == 1:
                    self._tell_ops(session, name.strip(), address, row, now)
        return wait

    def succeeded(self, name: str) -> None:
        """A correct password outside a lock: the account's run of failures is over."""
        with self.sessions.begin() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.key == _keys(name, "")[0][1]))

    def _tell_ops(self, session: Session, name: str, address: str, row: LoginFailure, now: datetime) -> None:
        """One notice per run of failures, for an account that exists (a made-up name locks, silently)."""
        if session.scalars(select(User.id).where(User.name == name)).first() is None:
            return
        recipients = tuple(self.policy.ops_recipients)
        if not recipients:
            return
        until = row.locked_until or now
        context = {
            "case_no": "",
            "user": name,
            "address": address or "不明",
            "failures": str(row.failures),
            "window_minutes": str(int(WINDOW.total_seconds() // 60)),
            "since": format_jst(now, self.policy.tz),
            "until": until.astimezone(self.policy.tz).strftime("%Y-%m-%d %H:%M:%S"),
        }
        session.add(
            build_outbox_row(
                MailIntent("ops_login_locked", recipients),
                renderer=self.renderer,
                context=context,
                policy=self.policy,
                now=now,
                case_id=None,
                inbound_id=None,
            )
        )
        log.warning("ops told that the web account %s is locked", name)
