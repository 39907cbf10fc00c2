"""What is down right now (the database, the mailbox, the relay, the Sent folder), and when to try again.

An outage is one log line when it starts (what, since when, next try) and one
when it ends; the tries in between wait longer each time, from :data:`FIRST`
to :data:`CEILING`, and say nothing unless the error changes. So a night
without the database adds a few dozen lines to the log, not a line per poll,
and no job spins while it waits: the scheduler skips what cannot work until
``retry_at`` and the IDLE watcher brings no poll forward meanwhile.

Only this process's view: ``mailbot status`` looks for itself, and the
alerts (:mod:`mailbot.service.outage_alerts`) read :meth:`Outages.open`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CEILING", "DATABASE", "FIRST", "MAILBOX", "RELAY", "SENT_FOLDER", "SERVICES", "Outage", "Outages"]

log = logging.getLogger("mailbot.outages")

# What can be down (the names the log lines, the alerts and `mailbot status` use).
DATABASE = "database"
MAILBOX = "mailbox"
RELAY = "relay"
SENT_FOLDER = "Sent folder"
SERVICES = (DATABASE, MAILBOX, RELAY, SENT_FOLDER)

FIRST = timedelta(seconds=30)
CEILING = timedelta(minutes=5)


@dataclass
class Outage:
    what: str
    since: datetime
    error: str
    failures: int
    retry_at: datetime


class Outages:
    """Failures of each service, with the back-off before the next try (thread-safe: the watcher asks too)."""

    def __init__(self, clock: Callable[[], datetime], first: timedelta = FIRST, ceiling: timedelta = CEILING) -> None:
        self.clock = clock
        self.first = first
        self.ceiling = ceiling
        self._open: dict[str, Outage] = {}
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def failed(self, what: str, error: str) -> Outage:
        """One more failure of ``what``: logged when it starts or its error changes; the next try backs off."""
        now = self.clock()
        with self._lock:
            self._counts[what] = self._counts.get(what, 0) + 1
            outage = self._open.get(what)
            changed = outage is None or _gist(outage.error) != _gist(error)
            if outage is None:
                outage = Outage(what, now, error, 0, now)
                self._open[what] = outage
            outage.failures += 1
            outage.error = error
            # The exponent is capped: a night of failures must not overflow a timedelta.
            delay = min(self.first * 2 ** min(outage.failures - 1, 16), self.ceiling)
            outage.retry_at = now + delay
        if changed:
            log.error(
                "%s unavailable since %s: %s; next try at %s, then less often, at most every %d s",
                what,
                _hms(outage.since),
                error,
                _hms(outage.retry_at),
                self.ceiling.total_seconds(),
                extra={"outage": what, "since": outage.since.isoformat()},
            )
        return outage

    def recovered(self, what: str) -> Outage | None:
        """``what`` worked again: one line saying how long it was away."""
        with self._lock:
            outage = self._open.pop(what, None)
        if outage is not None:
            lasted = int((self.clock() - outage.since).total_seconds())
            log.warning(
                "%s available again after %d s (%d failed tries since %s)",
                what,
                lasted,
                outage.failures,
                _hms(outage.since),
                extra={"outage": what, "duration_s": lasted},
            )
        return outage

    def waiting(self, what: str) -> datetime | None:
        """When the next try of ``what`` is due, while its back-off runs; None when it may be tried now."""
        with self._lock:
            outage = self._open.get(what)
            if outage is None or self.clock() >= outage.retry_at:
                return None
            return outage.retry_at

    def backing_off(self, *whats: str) -> bool:
        return any(self.waiting(what) is not None for what in whats)

    def open(self) -> dict[str, Outage]:
        with self._lock:
            return dict(self._open)

    def count(self, what: str) -> int:
        """Failures of ``what`` so far (to tell whether a job met one)."""
        with self._lock:
            return self._counts.get(what, 0)


def _gist(error: str) -> str:
    """The error's cause (its last part, the Message-IDs left out), to tell a new error from a repeat.

    "could not store the copies: IMAP …: connecting failed: Connection refused"
    and "could not check the Sent folder: IMAP …: Connection refused" are one
    outage; "Connection refused" then "authentication failed" are two.
    """
    return _MESSAGE_ID.sub("<…>", error).rsplit(": ", 1)[-1].strip()


_MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>\s]+>")


def _hms(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
