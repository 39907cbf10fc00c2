"""IMAP mailbox adapter: reads requests from a folder, files them afterwards, keeps copies of sent mail.

- :mod:`~mailbot.adapters.imap.settings`: the ``[mailbox]`` table, outcomes and keywords;
- :mod:`~mailbot.adapters.imap.session`: connecting, login (password or OAuth2), the server's capabilities;
- :mod:`~mailbot.adapters.imap.source`: :class:`ImapSource`, polling, marks and IDLE
  (how new mail is found is told there), with :mod:`~mailbot.adapters.imap.poll` its bookkeeping;
- :mod:`~mailbot.adapters.imap.sent`: :class:`ImapSentFolder`, the ``save_sent_to`` folder;
- :mod:`~mailbot.adapters.imap.diagnostics`: :func:`check_connection`;
- :mod:`~mailbot.adapters.imap.parsing`: what the server's answers mean.

Servers as they are
-------------------
Configured folder names (``folder``, ``[mailbox.folders]``, ``save_sent_to``)
are put under the personal NAMESPACE (``INBOX.`` with separator ``.`` on
Courier and Cyrus) unless given in full (starting with the prefix, or listed
by the server as they are). ``save_sent_to = "auto"`` finds Sent by
SPECIAL-USE (RFC 6154). Each source keeps one long-lived session: only a lost
connection (socket error, EOF, BYE) drops it, a NO or BAD answer does not; an
Exchange throttling answer (``Suggested Backoff Time: N milliseconds``) delays
the next command by N ms; ``BYE ... AccessTokenExpired`` makes the next login
ask for a new OAuth2 token. Network and protocol errors raise
:class:`~mailbot.service.ports.SourceError` (:class:`AuthenticationFailed`
for refused logins); the next call reconnects, and the poller backs off
between failing polls.
"""

from __future__ import annotations

from mailbot.adapters.errors import MessageTooLarge
from mailbot.adapters.imap.diagnostics import check_connection
from mailbot.adapters.imap.parsing import message_id_key
from mailbot.adapters.imap.sent import ImapSentFolder
from mailbot.adapters.imap.session import Capabilities, throttle_pause
from mailbot.adapters.imap.settings import CONFIG_KEYS, KEYWORDS, OUTCOMES, ImapSettings
from mailbot.adapters.imap.source import ImapSource
from mailbot.service.ports import AuthenticationFailed

__all__ = [
    "CONFIG_KEYS",
    "KEYWORDS",
    "OUTCOMES",
    "AuthenticationFailed",
    "Capabilities",
    "ImapSentFolder",
    "ImapSettings",
    "ImapSource",
    "MessageTooLarge",
    "check_connection",
    "message_id_key",
    "throttle_pause",
]
