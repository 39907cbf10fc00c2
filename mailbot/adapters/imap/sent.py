"""The Sent folder (``save_sent_to``): copies of the bot's outgoing mail, and the proof of what was sent."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from mailbot.adapters.imap.parsing import header_fields, message_id_key, message_id_of
from mailbot.adapters.imap.session import ImapSession
from mailbot.adapters.imap.settings import ImapSettings
from mailbot.service.ports import SourceError

__all__ = ["AUTO", "SENT_USE", "ImapSentFolder"]

log = logging.getLogger("mailbot.adapters.imap")  # one logger for the package, as before the split

# RFC 6154 special-use attributes mailbot looks for.
SENT_USE = "\\Sent"
AUTO = "auto"


class ImapSentFolder:
    """Keeps copies of the bot's outgoing mail in an IMAP folder (``save_sent_to``).

    ``folder`` is a name (put under the personal namespace like every
    configured folder) or ``"auto"``: the folder the server marks ``\\Sent``
    (RFC 6154 SPECIAL-USE), else ``Sent`` under the personal namespace. With
    ``"auto"`` on Gmail (CAPABILITY ``X-GM-EXT-1``) nothing is appended, since
    Gmail's SMTP files every sent mail in its Sent label itself; ``contains``
    still looks there before a resend.
    """

    def __init__(self, settings: ImapSettings, folder: str = "Sent", *, session: ImapSession | None = None) -> None:
        """``session``: one to share (the diagnostics' own); by default the folder opens its own."""
        self.settings = settings
        self.folder = folder
        self._conn = session if session is not None else ImapSession(settings, settings.folder)

    def target(self) -> str:
        """The full name of the folder the copies go to."""
        conn = self._conn
        if self.folder.lower() == AUTO:
            return conn.special_use(SENT_USE) or conn.full_name("Sent")
        return conn.full_name(self.folder)

    def files_itself(self) -> bool:
        """True where the submission server files sent mail itself (Gmail) and ``save_sent_to = "auto"``."""
        if self.folder.lower() != AUTO:
            return False
        conn = self._conn
        conn.client()  # the capabilities are the logged-in session's
        return conn.capabilities.gmail

    def append_many(self, raws: Sequence[bytes]) -> None:
        """APPEND every one of ``raws`` with ``\\Seen``, creating the folder if needed: in one command
        where the server offers MULTIAPPEND.

        One command is one wait for the server's fsync instead of one per mail.
        RFC 3502 makes it all or nothing; a refused one (a server that caps the
        command's size, say) is retried one mail at a time, and the first mail
        refused alone raises.
        """
        if not raws or self.files_itself():
            return
        conn = self._conn
        folder = self.target()
        conn.ensure_folder(folder)
        conn.leave_if_examined(folder)
        client = conn.client()
        if len(raws) > 1 and conn.capabilities.multiappend:
            try:
                with conn.guard("MULTIAPPEND", folder):
                    client.multiappend(folder, [{"msg": raw, "flags": (b"\\Seen",)} for raw in raws])
                return
            except SourceError as exc:
                log.info("%s: MULTIAPPEND of %d refused, one at a time: %s", conn.where(folder), len(raws), exc)
                client = conn.client()
        for raw in raws:
            with conn.guard("APPEND", folder):
                client.append(folder, raw, flags=(b"\\Seen",))

    def contains(self, message_ids: Iterable[str]) -> set[str]:
        """Which of ``message_ids`` have a copy in the folder (by Message-ID header).

        A folder that does not exist holds no copy: the answer is "none", with
        a warning, so that the outbox is not deferred for good.
        """
        wanted = {message_id_key(m): m for m in message_ids if m and m.strip()}
        if not wanted:
            return set()
        conn = self._conn
        folder = self.target()
        if not conn.exists(folder):
            log.warning(
                "%s: no Sent folder yet, so no copy of %d mail(s) to be resent", conn.where(folder), len(wanted)
            )
            return set()
        conn.select(folder, readonly=True)
        client = conn.client()
        found: set[str] = set()
        with conn.guard("searching by Message-ID"):
            for key, original in wanted.items():
                uids = client.search(_header_search(key.removeprefix("msgid:")))
                if not uids:
                    continue
                data = client.fetch(list(uids), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
                for values in data.values():
                    mid = message_id_of(header_fields(values))
                    if mid and message_id_key(mid) == key:
                        found.add(original)
                        break
        return found

    def close(self) -> None:
        self._conn.close()


_SAFE_SEARCH_RUN = re.compile(r"[A-Za-z0-9.@_+=$#!~&'/^|?-]+")


def _header_search(message_id: str) -> list[str]:
    """SEARCH criteria narrowing to candidates for ``message_id``.

    Servers match HEADER by substring, and characters such as ``%``, ``(`` or
    non-ASCII would need quoting or a charset, so search for the longest safe
    run of the id; callers compare the real header afterwards.
    """
    runs = _SAFE_SEARCH_RUN.findall(message_id)
    longest = max(runs, key=len, default="")
    if len(longest) < 3:
        return ["ALL"]
    return ["HEADER", "Message-ID", longest]
