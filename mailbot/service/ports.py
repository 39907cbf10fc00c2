"""The seams between the intake service and the outside world.

Each port has one implementation per ``kind`` in the config (``maildir`` or
``imap`` for sources, ``directory`` or ``smtp`` for delivery) and fakes in the
tests; :mod:`mailbot.bootstrap` picks the implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailbot.service.errors import (
    AuthenticationFailed,
    DeliveryError,
    PermanentDeliveryError,
    SourceError,
    TemporaryDeliveryError,
)

__all__ = [
    "AuthenticationFailed",
    "CursorStore",
    "Delivery",
    "DeliveryError",
    "MailSource",
    "OutgoingMail",
    "PermanentDeliveryError",
    "SourceError",
    "SourceItem",
    "TemporaryDeliveryError",
    "Wakeup",
]


@dataclass(frozen=True)
class SourceItem:
    """One message in a mailbox, not yet downloaded.

    ``key`` identifies the item within its source for ever (a Maildir unique
    name, or ``UIDVALIDITY:UID`` on IMAP). ``size`` is known before the body
    is fetched so oversized mail can be refused without loading it.
    """

    key: str
    size: int | None
    load: Callable[[], bytes]
    # When the mailbox received it (Maildir: delivery time; IMAP: INTERNALDATE).
    received_at: datetime | None = None
    # The header block alone, for mail too large to download (None: not offered).
    load_headers: Callable[[], bytes] | None = None


class MailSource(Protocol):
    """A mailbox the bot reads requests from."""

    # Stable name used as the ledger namespace, e.g. "maildir:/srv/mail".
    name: str

    def fetch_new(self, known: Callable[[Sequence[str]], set[str]]) -> Iterator[SourceItem]:
        """Yield items that may not have been processed yet.

        ``known`` answers which of the given keys the ledger already holds, so
        a source that cannot tell new from old cheaply can ask in batches. An
        item that was processed but not yet marked (a crash between commit and
        mark) must still be yielded; the service then only marks it.
        """
        ...

    def pending(self, known: Callable[[Sequence[str]], set[str]]) -> Iterator[SourceItem]:
        """The items ``fetch_new`` would yield now, for looking only (the health scan).

        Unlike ``fetch_new`` this is not a poll: what a source remembers of its
        last poll stays as it was. (IMAP: the IDLE watcher asks whether mail
        arrived above the last poll's highest UID; a look that moved it would
        hide mail that arrived after the poll until the next timed poll.)
        """
        ...

    def mark(self, item: SourceItem, disposition: str, status: str | None) -> None:
        """Record in the mailbox that ``item`` was processed.

        Called only after the decision was committed. ``disposition`` is
        ``case``, ``ignored`` or ``quarantined``; ``status`` the case status
        for ``case``. Must be idempotent.
        """
        ...

    def close(self) -> None: ...


class CursorStore(Protocol):
    """Durable per-source bookkeeping (e.g. UIDVALIDITY and last UID)."""

    def get(self, source: str) -> str | None: ...

    def set(self, source: str, value: str) -> None: ...


@dataclass(frozen=True)
class OutgoingMail:
    """A fully rendered mail ready for the transport."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]  # envelope: To + Cc
    raw: bytes


class Delivery(Protocol):
    """A transport for outgoing mail."""

    def send(self, mail: OutgoingMail) -> None:
        """Hand ``mail`` over, or raise a :class:`DeliveryError` subclass."""
        ...

    def keeps_copies(self) -> bool:
        """Whether :meth:`keep_copies` files anything (a Sent folder is configured)."""
        ...

    def keep_copies(self, mails: Sequence[OutgoingMail]) -> None:
        """After their rows are marked sent: file copies where staff see them, in one go where possible.

        The mails are out whatever happens here: a copy that could not be filed
        raises a :class:`DeliveryError` (never a resend), and the deliverer
        keeps the rows' ``copy_pending`` so a later delivery files them.
        """
        ...

    def already_sent(self, message_ids: Iterable[str]) -> set[str]:
        """Which of these Message-IDs the transport can prove it already sent.

        Used after a crash between sending and recording; transports that
        cannot tell return an empty set.
        """
        ...

    def close(self) -> None: ...


class Wakeup(Protocol):
    """A nudge from whoever queued mail (the web, the CLI) to the running bot, which then delivers at once.

    One implementation per database (:mod:`mailbot.adapters.wakeup`): PostgreSQL's
    LISTEN/NOTIFY, or a local datagram socket beside the SQLite file. The poll's
    own schedule stays the safety net: a nudge lost (no bot, a broken connection)
    only means the mail waits for the next poll, as before.
    """

    def notify(self) -> None:
        """After the commit that queued mail: tell the running bot, if any. Never raises."""
        ...

    def listen(self) -> None:
        """The bot (the poller lock's holder) starts receiving; nudges from now on are kept for :meth:`wait`."""
        ...

    def wait(self, timeout: float) -> bool:
        """True when nudged since the last wait (at once if so), False after ``timeout`` seconds without."""
        ...

    def close(self) -> None: ...
