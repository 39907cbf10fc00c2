"""Reading requests from an IMAP folder and filing them afterwards: polling, marks, IDLE.

How new mail is found
---------------------
The cursor (kept in the injected :class:`~mailbot.service.ports.CursorStore`
under :attr:`ImapSource.name`) is the JSON ``{"uidvalidity": V, "last_uid": N}``.
A poll asks the server only for UIDs above ``N`` and yields one
:class:`~mailbot.service.ports.SourceItem` per message with key ``"V:UID"``
and the size from ``RFC822.SIZE``; the body is only downloaded, with
``BODY.PEEK[]`` so that nobody's ``\\Seen`` flag changes, when the service
calls ``item.load()``.

The cursor never moves in :meth:`ImapSource.fetch_new`. It moves in
:meth:`ImapSource.mark`, which the service calls after it committed its
decision: the new ``last_uid`` is the highest UID such that every UID of this
poll up to it was marked. An item that was never marked (processing failed)
holds the watermark back, so it and everything after it is offered again on
the next poll; the service tells re-offered items apart with ``known()``.

When the folder's UIDVALIDITY changed (the folder was recreated or restored)
all UIDs are new, so every message in the folder is offered again with a new
``"V:UID"`` key. To avoid filing the same mail twice the adapter then reads
each message's Message-ID and asks ``known()`` about keys of both forms: the
item key and ``"msgid:<id@host>"`` (see :func:`message_id_key`). A message
whose item key is known is yielded (so the service can finish marking it); one
known only by Message-ID is skipped and counts as done; the rest are yielded.
The service must therefore record both the item key and the
``message_id_key`` of each mail, and answer ``known()`` for either form.
Mail without a Message-ID cannot be matched and is yielded.

Marking adds one keyword per outcome (:data:`KEYWORDS`) and optionally moves
the message to the folder configured for that outcome. ``ignored`` mail is
never touched. Keywords are an extra, never the source of truth: when the
main folder's PERMANENTFLAGS lacks ``\\*`` (Exchange, Microsoft 365, Courier
with IMAP_KEYWORDS=0) or a STORE is refused, no keyword is stored and the
outcome lives in the folder move and the database alone.
"""

from __future__ import annotations

import io
import json
import logging
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from imapclient import IMAPClient

from mailbot.adapters.errors import MessageTooLarge
from mailbot.adapters.imap.parsing import (
    aware,
    has_exists,
    header_fields,
    message_id_key,
    message_id_of,
    parse_key,
    uid_set,
)
from mailbot.adapters.imap.poll import Poll
from mailbot.adapters.imap.session import ImapSession
from mailbot.adapters.imap.settings import KEYWORDS, ImapSettings
from mailbot.domain.lifecycle import mailbox_outcome
from mailbot.service.ports import CursorStore, SourceError, SourceItem

__all__ = ["IDLE_RENEW_SECONDS", "ImapSource"]

log = logging.getLogger("mailbot.adapters.imap")  # one logger for the package, as before the split

# RFC 2177: servers may drop an IDLE client after 30 minutes; renew before that.
IDLE_RENEW_SECONDS = 25 * 60
_FETCH_BATCH = 500


class ImapSource:
    """A :class:`~mailbot.service.ports.MailSource` reading one IMAP folder."""

    def __init__(self, settings: ImapSettings, cursor: CursorStore) -> None:
        """``cursor`` keeps the UIDVALIDITY/last-UID watermark under :attr:`name`."""
        self.settings = settings
        self.name = f"imap:{settings.username}@{settings.host}:{settings.port}/{settings.folder}"
        self._cursor = cursor
        self._conn = ImapSession(settings, settings.folder)
        self._poll: Poll | None = None  # the last fetch_new(), with its read-ahead of bodies

    # -- cursor ------------------------------------------------------------

    def _read_cursor(self) -> tuple[int, int] | None:
        raw = self._cursor.get(self.name)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return int(data["uidvalidity"]), int(data["last_uid"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable IMAP cursor for %s: %r", self.name, raw)
            return None

    def _write_cursor(self, uidvalidity: int, last_uid: int) -> None:
        self._cursor.set(self.name, json.dumps({"uidvalidity": uidvalidity, "last_uid": last_uid}))

    def _advance(self, uidvalidity: int, uid: int) -> None:
        """Count ``uid`` as done and move the stored watermark if it can."""
        poll = self._poll
        if poll is None or poll.uidvalidity != uidvalidity:
            return
        watermark = poll.settle(uid)
        if watermark is None:
            # Nothing new is settled. In particular a new UIDVALIDITY is never
            # stored with last_uid 0: the next poll would then skip the
            # Message-ID check and refile everything.
            return
        stored = self._read_cursor()
        if stored is None or stored[0] != uidvalidity or stored[1] < watermark:
            self._write_cursor(uidvalidity, watermark)

    # -- MailSource --------------------------------------------------------

    def fetch_new(self, known: Callable[[Sequence[str]], set[str]]) -> Iterator[SourceItem]:
        """Yield messages above the watermark (see the module docstring)."""
        return self._above_watermark(known, poll=True)

    def pending(self, known: Callable[[Sequence[str]], set[str]]) -> Iterator[SourceItem]:
        """What :meth:`fetch_new` would yield, without starting a poll.

        The last poll's bookkeeping stays: :meth:`wait_for_new` compares with
        its highest UID, and the health scan runs right after a poll, so mail
        that arrived in between must still count as new. Messages skipped as
        known by Message-ID are left for the next poll to count as done.
        """
        return self._above_watermark(known, poll=False)

    def _above_watermark(self, known: Callable[[Sequence[str]], set[str]], *, poll: bool) -> Iterator[SourceItem]:
        conn = self._conn
        uidvalidity = conn.select()
        client = conn.client()
        stored = self._read_cursor()
        if stored is not None and stored[0] == uidvalidity:
            base, revalidated = stored[1], False
        else:
            base, revalidated = 0, stored is not None
            if revalidated:
                log.warning(
                    "%s: UIDVALIDITY changed from %s to %s; matching messages by Message-ID",
                    conn.where(),
                    stored[0] if stored else None,
                    uidvalidity,
                )
        with conn.guard("searching for new messages"):
            uids = _search_above(client, base)
            sizes: dict[int, int] = {}
            arrived: dict[int, datetime | None] = {}
            msgids: dict[int, str | None] = {}
            parts = ["RFC822.SIZE", "INTERNALDATE"]
            if revalidated:
                parts.append("BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")
            for batch in _batches(uids):
                for uid, data in client.fetch(list(batch), parts).items():
                    sizes[uid] = int(data[b"RFC822.SIZE"])
                    arrived[uid] = aware(data.get(b"INTERNALDATE"))
                    if revalidated:
                        header = header_fields(data)
                        msgids[uid] = message_id_of(header)
        uids = [uid for uid in uids if uid in sizes]  # expunged meanwhile

        this = Poll(uidvalidity=uidvalidity, base=base, highest=max(uids, default=base), sizes=sizes)
        if poll:
            self._poll = this

        skip: set[int] = set()
        if revalidated and uids:
            keys = [f"{uidvalidity}:{uid}" for uid in uids]
            keys += [message_id_key(m) for m in msgids.values() if m]
            answered = known(keys)
            for uid in uids:
                mid = msgids.get(uid)
                if f"{uidvalidity}:{uid}" in answered:
                    continue  # processed under this UIDVALIDITY; let the service mark it
                if mid and message_id_key(mid) in answered:
                    skip.add(uid)

        if poll:
            this.line_up([uid for uid in uids if uid not in skip])
        for uid in uids:
            this.offer(uid)
            if uid in skip:
                if poll:
                    self._advance(uidvalidity, uid)
                continue
            yield SourceItem(
                key=f"{uidvalidity}:{uid}",
                size=sizes[uid],
                load=self._loader(uidvalidity, uid, sizes[uid]),
                received_at=arrived.get(uid),
                load_headers=self._header_loader(uidvalidity, uid),
            )

    def _loader(self, uidvalidity: int, uid: int, size: int) -> Callable[[], bytes]:
        def load() -> bytes:
            return self._load(uidvalidity, uid, size)

        return load

    def _header_loader(self, uidvalidity: int, uid: int) -> Callable[[], bytes]:
        def load_headers() -> bytes:
            conn = self._conn
            if conn.ensure_selected() != uidvalidity:
                raise SourceError(f"{conn.where()}: UIDVALIDITY changed before UID {uid}'s headers were read")
            with conn.guard(f"reading the headers of UID {uid}"):
                data = conn.client().fetch([uid], ["BODY.PEEK[HEADER]"])
            header = data.get(uid, {}).get(b"BODY[HEADER]")
            if header is None:
                raise SourceError(f"{conn.where()}: message UID {uid} is gone (expunged?)")
            return bytes(header)

        return load_headers

    def _load(self, uidvalidity: int, uid: int, size: int) -> bytes:
        conn = self._conn
        if size > self.settings.max_message_bytes:
            raise MessageTooLarge(
                f"{conn.where()}: message UID {uid} has {size} bytes, above "
                f"max_message_bytes={self.settings.max_message_bytes}; not downloaded"
            )
        current = conn.ensure_selected()
        if current != uidvalidity:
            raise SourceError(
                f"{conn.where()}: UIDVALIDITY changed ({uidvalidity} -> {current}) "
                f"before UID {uid} was downloaded; it will be offered again"
            )
        # Read ahead only within the poll this message belongs to.
        poll = self._poll if self._poll is not None and self._poll.uidvalidity == uidvalidity else None
        if poll is None:
            wanted = [uid]
        else:
            ahead = poll.ahead.pop(uid, None)
            if ahead is not None:
                return ahead
            wanted = poll.window(uid, self.settings.max_message_bytes)
        client = conn.client()
        with conn.guard(f"downloading UID {uid}" if len(wanted) == 1 else f"downloading UIDs {uid_set(wanted)}"):
            data = client.fetch(wanted, ["BODY.PEEK[]"])
        if poll is not None:
            for other in wanted:
                other_body = data.get(other, {}).get(b"BODY[]")
                if other != uid and other_body is not None:
                    poll.ahead[other] = bytes(other_body)
        body = data.get(uid, {}).get(b"BODY[]")
        if body is None:
            raise SourceError(f"{conn.where()}: message UID {uid} is gone (expunged?)")
        return bytes(body)

    def mark(self, item: SourceItem, disposition: str, status: str | None) -> None:
        """Add the outcome keyword, move if configured; ``ignored`` touches nothing."""
        uidvalidity, uid = parse_key(item.key)
        outcome = _outcome(disposition, status)
        if outcome is not None:
            self._file(uidvalidity, uid, outcome)
        self._advance(uidvalidity, uid)

    def mark_many(self, marks: Sequence[tuple[SourceItem, str, str | None]]) -> list[tuple[SourceItem, SourceError]]:
        """Mark several items, one STORE and one MOVE per outcome (RFC 3501 UID sets).

        Returns the items whose mark failed, each with its error. When a
        command for a whole set fails, its items are marked one by one, so
        one message the server refuses does not hold back the others.
        """
        groups: dict[tuple[int, str], list[SourceItem]] = {}
        done: list[SourceItem] = []
        failed: list[tuple[SourceItem, SourceError]] = []
        for item, disposition, status in marks:
            uidvalidity, _uid = parse_key(item.key)
            outcome = _outcome(disposition, status)
            if outcome is None:
                done.append(item)
            else:
                groups.setdefault((uidvalidity, outcome), []).append(item)
        for (uidvalidity, outcome), items in groups.items():
            uids = [parse_key(item.key)[1] for item in items]
            try:
                self._file_many(uidvalidity, uids, outcome)
            except SourceError as exc:
                if len(items) == 1:
                    failed.append((items[0], exc))
                    continue
                for item in items:
                    try:
                        self._file_many(uidvalidity, [parse_key(item.key)[1]], outcome)
                    except SourceError as exc:
                        failed.append((item, exc))
                    else:
                        done.append(item)
            else:
                done.extend(items)
        for item in done:
            self._advance(*parse_key(item.key))
        return failed

    def settle(self, item: SourceItem) -> None:
        """Count ``item`` as done for the cursor although its mark failed.

        The service calls this after it recorded the failed mark to retry it
        later (by key, see :mod:`mailbot.service.marks`): the message is in
        the ledger, so it must not hold back the cursor.
        """
        uidvalidity, uid = parse_key(item.key)
        self._advance(uidvalidity, uid)

    def _file(self, uidvalidity: int, uid: int, outcome: str) -> None:
        self._file_many(uidvalidity, [uid], outcome)

    def _file_many(self, uidvalidity: int, uids: Sequence[int], outcome: str) -> None:
        """Add the outcome's keyword to ``uids`` and move them to its folder, if one is configured."""
        conn = self._conn
        current = conn.ensure_selected()
        which = f"UID {uids[0]}" if len(uids) == 1 else f"UIDs {uid_set(uids)}"
        if current != uidvalidity:
            # The UID now names a different message (or none): never touch it.
            log.warning(
                "%s: not marking %s: UIDVALIDITY is now %s, not %s",
                conn.where(),
                which,
                current,
                uidvalidity,
            )
            return
        client = conn.client()
        if conn.keywords_allowed:
            try:
                with conn.guard(f"marking {which} as {outcome}"):
                    client.add_flags(list(uids), [KEYWORDS[outcome]], silent=True)
            except SourceError as exc:
                if not conn.connected:
                    raise
                # Keywords are an extra: the folder move and the database record the outcome.
                conn.keywords_allowed = False
                conn.keyword_store_refused = str(exc)
                log.warning("%s: custom keywords refused, filing by folder only: %s", conn.where(), exc)
        configured = self.settings.folders.get(outcome)
        target = conn.full_name(configured) if configured else None
        if target and target != conn.full_name(self.settings.folder):
            conn.ensure_folder(target)
            with conn.guard(f"moving {which} to {target!r}"):
                if conn.capabilities.move:
                    client.move(list(uids), target)
                else:
                    client.copy(list(uids), target)
                    client.add_flags(list(uids), [b"\\Deleted"], silent=True)
                    if conn.capabilities.uidplus:
                        client.uid_expunge(list(uids))
                    else:
                        log.warning(
                            "%s: server lacks UIDPLUS; %s left flagged \\Deleted",
                            conn.where(),
                            which,
                        )

    def wait_for_new(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when new mail (EXISTS) arrived.

        Uses IMAP IDLE when ``settings.idle`` is on and the server offers it,
        else just sleeps and returns False.
        """
        conn = self._conn
        if not self.settings.idle:
            time.sleep(max(timeout, 0.0))
            return False
        uidvalidity = conn.ensure_selected()
        client = conn.client()
        if not conn.capabilities.idle:
            time.sleep(max(timeout, 0.0))
            return False
        poll = self._poll
        if poll is None or poll.uidvalidity != uidvalidity:
            return True  # never polled this folder state: poll now
        with conn.guard("checking for new messages"):
            # NOOP lets the server announce mail that arrived since the poll;
            # a selected session does not see it otherwise.
            _text, responses = client.noop()
            if has_exists(responses) or _search_above(client, poll.highest):
                return True
        deadline = time.monotonic() + max(timeout, 0.0)
        with conn.guard("IDLE"):
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                chunk = min(remaining, IDLE_RENEW_SECONDS)
                client.idle()
                # An EXISTS that came in the same packet as the "+ idling"
                # answer already sits in imaplib's buffer, where idle_check's
                # poll of the socket cannot see it: DONE reads it at once.
                responses = [] if _buffered(client) else client.idle_check(timeout=chunk)
                if any(r and r[0] == b"BYE" for r in responses):
                    raise ConnectionError("server closed the connection (BYE)")
                # DONE also proves the connection is still alive: idle_check()
                # returns nothing both on timeout and when the peer went away.
                _text, more = client.idle_done()
                if has_exists(responses) or has_exists(more):
                    return True

    def skip_existing_mail(self) -> int:
        """Set the cursor past every message now in the folder; return that UID.

        For going live on a mailbox with a backlog that must not be processed.
        Without it the first poll offers every message in the folder.
        """
        conn = self._conn
        uidvalidity = conn.select()
        client = conn.client()
        with conn.guard("searching"):
            highest = max(client.search("ALL"), default=0)
        self._write_cursor(uidvalidity, highest)
        self._poll = None
        return int(highest)

    def close(self) -> None:
        self._conn.close()


def _search_above(client: IMAPClient, last_uid: int) -> list[int]:
    """UIDs above ``last_uid``; filters the highest UID that ``n:*`` always returns."""
    found = client.search(["UID", f"{last_uid + 1}:*"])
    return sorted(uid for uid in found if uid > last_uid)


def _batches(items: Sequence[int], size: int = _FETCH_BATCH) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _buffered(client: IMAPClient) -> bool:
    """Whether the server's answers are already read into imaplib's buffer (or TLS's), unseen by a poll."""
    sock = client.socket()
    # With tls = "ssl" or "starttls" the session runs over an SSLSocket, which decrypts ahead into its own buffer.
    if isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
        return True
    # imaplib (3.11 to 3.13) reads through sock.makefile("rb"): a BufferedReader.
    file = client._imap.file
    if not isinstance(file, io.BufferedReader):
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        # With the socket non-blocking, peek returns what is buffered and never waits.
        return bool(file.peek(1))
    except (OSError, ValueError):
        return False
    finally:
        sock.settimeout(timeout)


def _outcome(disposition: str, status: str | None) -> str | None:
    # The outcome of a disposition and verdict is a row of the lifecycle's data;
    # an unknown one leaves the mail as it is rather than failing the poll.
    return mailbox_outcome(disposition, status)
