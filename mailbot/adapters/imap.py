"""IMAP mailbox adapter: reads requests from a folder and files them afterwards.

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

import contextlib
import email.parser
import email.policy
import email.utils
import imaplib
import json
import logging
import os
import re
import shlex
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from mailbot.adapters.errors import MessageTooLarge
from mailbot.adapters.net import is_loopback
from mailbot.adapters.oauth2 import (
    CredentialError,
    OAuth2Settings,
    TokenSource,
    login_methods,
    run_secret_command,
    token_source,
    token_words,
)
from mailbot.domain.lifecycle import mailbox_outcome
from mailbot.service.ports import AuthenticationFailed, CursorStore, SourceError, SourceItem

__all__ = [
    "CONFIG_KEYS",
    "KEYWORDS",
    "OUTCOMES",
    "AuthenticationFailed",
    "ImapSettings",
    "ImapSource",
    "MessageTooLarge",
    "SentFolder",
    "check_connection",
    "message_id_key",
]

log = logging.getLogger(__name__)

TlsMode = Literal["ssl", "starttls", "none"]

# Outcome -> IMAP keyword added by ImapSource.mark().
KEYWORDS: Mapping[str, str] = MappingProxyType(
    {
        "accepted": "$Mailbot-Accepted",
        "returned": "$Mailbot-Returned",
        "waiting": "$Mailbot-Waiting",
        "quarantined": "$Mailbot-Quarantined",
    }
)
OUTCOMES = frozenset(KEYWORDS)

# RFC 2177: servers may drop an IDLE client after 30 minutes; renew before that.
IDLE_RENEW_SECONDS = 25 * 60
_FETCH_BATCH = 500
# Message bodies asked for in one FETCH: the intake files a batch of 25 per
# transaction; a window of the same size saves a round trip per message while
# holding at most 32 MB that a crash would make us fetch again.
_PREFETCH_COUNT = 25
_PREFETCH_BYTES = 32 * 1024 * 1024
_COMMAND_TIMEOUT_SECONDS = 30.0
_MSGID_RE = re.compile(r"<[^<>\s]+>")

_NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, imaplib.IMAP4.error, EOFError)
# Exchange / Microsoft 365 under load: "BAD Request is throttled. Suggested Backoff Time: 1234 milliseconds".
_THROTTLED_RE = re.compile(r"throttled.*?Backoff Time:\s*(\d+)\s*milli", re.IGNORECASE | re.DOTALL)
_MAX_THROTTLE_SECONDS = 60.0
# RFC 6154 special-use attributes mailbot looks for.
SENT_USE = "\\Sent"


# The keys of the [mailbox] table for kind = "imap"; the config loader checks against these too.
CONFIG_KEYS = frozenset(
    {
        "kind",
        "host",
        "port",
        "tls",
        "username",
        "password_env",
        "password_command",
        "oauth2_token_command",
        "oauth2",
        "folder",
        "timeout_seconds",
        "max_message_bytes",
        "idle",
        "folders",
    }
)


def message_id_key(message_id: str) -> str:
    """The ``known()`` key for a Message-ID: ``"msgid:<id@host>"``.

    The value is unfolded and reduced to its first ``<...>`` token, or the
    trimmed value wrapped in angle brackets when it has none.
    """
    value = " ".join(message_id.split())
    match = _MSGID_RE.search(value)
    core = match.group(0) if match else f"<{value.strip('<> ')}>"
    return f"msgid:{core}"


@dataclass(frozen=True)
class ImapSettings:
    """How to reach and log in to the mailbox (the ``[mailbox]`` table, kind="imap")."""

    host: str
    port: int
    tls: TlsMode
    username: str
    password: str | None = field(default=None, repr=False)
    password_command: str | None = None
    oauth2_token_command: str | None = None
    # Microsoft 365 (MSAL) or Google Workspace (service account): see mailbot.adapters.oauth2.
    oauth2: OAuth2Settings | None = None
    folder: str = "INBOX"
    timeout_seconds: float = 30.0
    max_message_bytes: int = 30 * 1024 * 1024
    # Outcome (accepted/returned/waiting/quarantined) -> folder to move to.
    folders: Mapping[str, str] = field(default_factory=dict, hash=False)
    idle: bool = False

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("mailbox host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"mailbox port {self.port} is out of range")
        if self.tls not in ("ssl", "starttls", "none"):
            raise ValueError(f"mailbox tls must be ssl, starttls or none, not {self.tls!r}")
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError(
                f"tls = 'none' sends the password in clear text; it is only allowed "
                f"for a loopback host, not {self.host!r}"
            )
        if not self.username:
            raise ValueError("mailbox username must not be empty")
        methods = login_methods(self.password, self.password_command, self.oauth2_token_command, self.oauth2)
        if len(methods) != 1:
            raise ValueError(
                "give exactly one of password (password_env), password_command, "
                f"oauth2_token_command or oauth2 for the mailbox; got {methods or 'none'}"
            )
        if not self.folder:
            raise ValueError("mailbox folder must not be empty")
        if self.timeout_seconds <= 0:
            raise ValueError("mailbox timeout_seconds must be positive")
        if self.max_message_bytes <= 0:
            raise ValueError("mailbox max_message_bytes must be positive")
        unknown = set(self.folders) - OUTCOMES
        if unknown:
            raise ValueError(f"unknown [mailbox.folders] keys {sorted(unknown)}; allowed: {sorted(OUTCOMES)}")
        if any(not name for name in self.folders.values()):
            raise ValueError("[mailbox.folders] names must not be empty")
        object.__setattr__(self, "folders", MappingProxyType(dict(self.folders)))

    @classmethod
    def from_config(cls, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ImapSettings:
        """Build settings from the ``[mailbox]`` TOML table (``kind = "imap"``).

        ``password_env`` names an environment variable holding the password;
        the password itself is never read from the file.
        """
        unknown = set(table) - CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown [mailbox] keys: {sorted(unknown)}")
        if table.get("kind", "imap") != "imap":
            raise ValueError(f"[mailbox] kind is {table.get('kind')!r}, not 'imap'")
        tls = str(table.get("tls", "ssl"))
        port = int(table.get("port", {"ssl": 993}.get(tls, 143)))
        password: str | None = None
        env_name = table.get("password_env")
        if env_name:
            env = environ if environ is not None else os.environ
            if env_name not in env:
                raise ValueError(f"environment variable {env_name} (password_env) is not set")
            password = env[env_name]

        def command(key: str) -> str | None:
            value = table.get(key)
            if value is None or isinstance(value, str):
                return value
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return shlex.join(value)
            raise ValueError(f"[mailbox] {key} must be a string or a list of strings")

        username = str(table.get("username", ""))
        oauth2 = table.get("oauth2")
        if oauth2 is not None and not isinstance(oauth2, Mapping):
            raise ValueError('[mailbox] oauth2 must be a table such as { provider = "microsoft", ... }')
        return cls(
            host=str(table.get("host", "")),
            port=port,
            tls=tls,  # type: ignore[arg-type]  # validated in __post_init__
            username=username,
            password=password,
            password_command=command("password_command"),
            oauth2_token_command=command("oauth2_token_command"),
            oauth2=OAuth2Settings.from_table(oauth2, username, environ) if oauth2 is not None else None,
            folder=str(table.get("folder", "INBOX")),
            timeout_seconds=float(table.get("timeout_seconds", 30.0)),
            max_message_bytes=int(table.get("max_message_bytes", 30 * 1024 * 1024)),
            folders=dict(table.get("folders", {})),
            idle=bool(table.get("idle", False)),
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _run_secret_command(command: str, setting: str, timeout: float) -> str:
    """Run a credential helper (no shell) and return its first output line."""
    try:
        return run_secret_command(command, setting, timeout)
    except CredentialError as exc:
        raise AuthenticationFailed(str(exc)) from exc


class _Connection:
    """One lazily (re)connected, logged-in IMAP session."""

    def __init__(self, settings: ImapSettings, folder: str) -> None:
        self.settings = settings
        self.folder = folder
        self._client: IMAPClient | None = None
        self._selected: str | None = None
        self._uidvalidity: int | None = None
        # The OAuth2 token source (None for a password); it keeps its token across reconnections.
        self.tokens: TokenSource | None = token_source(
            settings.oauth2, settings.oauth2_token_command, settings.timeout_seconds
        )
        self._known_folders: set[str] = set()
        self._readonly = False
        # What the server told us about itself (reset on every new session).
        self._personal: tuple[str, str] | None = None  # (prefix, separator) of the personal namespace
        self._listing: dict[str, tuple[str, ...]] | None = None  # folder -> attributes (lower case)
        self.keywords_allowed = True  # PERMANENTFLAGS of the main folder holds \*
        self.selected_allows_keywords = True  # the same for the folder selected last
        self.keyword_store_refused: str | None = None  # the server's answer when a STORE was refused anyway
        # Honour a throttling answer: no command before this monotonic time.
        self._not_before = 0.0

    def where(self, folder: str | None = None) -> str:
        s = self.settings
        return f"IMAP {s.username}@{s.host}:{s.port} folder {folder or self.folder!r}"

    def error(self, what: str, exc: BaseException, folder: str | None = None) -> SourceError:
        detail = str(exc) or type(exc).__name__
        return SourceError(f"{self.where(folder)}: {what} failed: {detail}")

    @contextlib.contextmanager
    def guard(self, what: str, folder: str | None = None) -> Iterator[None]:
        """Turn network/protocol errors into SourceError.

        Only a lost connection (socket error, EOF, BYE) drops the session; a
        command the server answered NO or BAD leaves it open for the next
        one. A throttling answer delays the next command by the time the
        server suggests; ``BYE ... AccessTokenExpired`` forgets the OAuth2
        token, so the next login asks for a new one.
        """
        try:
            yield
        except SourceError:
            raise
        except _NETWORK_ERRORS as exc:
            text = str(exc)
            pause = throttle_pause(text)
            if pause is not None:
                self._not_before = time.monotonic() + pause
                log.warning("%s: server asks to back off for %.1f s (throttled)", self.where(folder), pause)
            if "accesstokenexpired" in text.lower() and self.tokens is not None:
                self.tokens.forget()
            if _connection_lost(exc):
                self.drop()
            raise self.error(what, exc, folder) from exc

    @property
    def connected(self) -> bool:
        return self._client is not None

    def client(self) -> IMAPClient:
        wait = self._not_before - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, _MAX_THROTTLE_SECONDS))
        if self._client is None:
            # No pause here: the poller backs off between failing polls (30 s doubling to 15 min).
            self._client = self._open()
        return self._client

    def _open(self) -> IMAPClient:
        s = self.settings
        with self.guard("connecting"):
            context = ssl.create_default_context() if s.tls != "none" else None
            client = IMAPClient(
                s.host,
                s.port,
                ssl=s.tls == "ssl",
                ssl_context=context,
                timeout=s.timeout_seconds,
            )
        try:
            with self.guard("STARTTLS" if s.tls == "starttls" else "login"):
                if s.tls == "starttls":
                    if not client.has_capability("STARTTLS"):
                        raise SourceError(f"{self.where()}: server does not offer STARTTLS")
                    client.starttls(context)
                self._login(client)
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        self._selected = None
        self._uidvalidity = None
        self._known_folders = set()
        self._personal = None
        self._listing = None
        return client

    def _login(self, client: IMAPClient) -> None:
        s = self.settings
        timeout = s.timeout_seconds
        tokens = self.tokens
        if tokens is not None:
            # XOAUTH2 where offered (Microsoft 365, Gmail, Dovecot); RFC 7628 OAUTHBEARER otherwise.
            bearer = not client.has_capability("AUTH=XOAUTH2") and client.has_capability("AUTH=OAUTHBEARER")
            mechanism = "OAUTHBEARER" if bearer else "XOAUTH2"

            def login(token: str) -> None:
                if bearer:
                    client.oauthbearer_login(s.username, token)
                else:
                    client.oauth2_login(s.username, token)

            try:
                login(self._token_from(tokens.token))
                return
            except LoginError:
                pass
            # The token was refused (expired, revoked?): ask for a new one and retry once.
            try:
                login(self._token_from(tokens.fresh))
            except LoginError as exc:
                tokens.forget()
                raise AuthenticationFailed(
                    f"{self.where()}: {mechanism} login refused even with a fresh token from {tokens.name}: {exc}"
                ) from exc
            return
        if s.password is not None:
            password = s.password
        else:
            assert s.password_command is not None
            password = _run_secret_command(s.password_command, "password_command", timeout)
        try:
            client.login(s.username, password)
        except LoginError as exc:
            raise AuthenticationFailed(f"{self.where()}: login refused: {exc}") from exc

    def _token_from(self, get: Callable[[], str]) -> str:
        try:
            return get()
        except CredentialError as exc:
            raise AuthenticationFailed(f"{self.where()}: {exc}") from exc

    # -- what the server is like --------------------------------------------

    def personal_namespace(self) -> tuple[str, str]:
        """(prefix, separator) of the personal namespace.

        ``("", "/")`` on Dovecot's default, ``("INBOX.", ".")`` on Courier and Cyrus.
        """
        if self._personal is None:
            client = self.client()
            prefix, separator = "", "/"
            with self.guard("reading the NAMESPACE"):
                if client.has_capability("NAMESPACE"):
                    personal = client.namespace().personal
                    if personal:
                        prefix, separator = personal[0][0] or "", personal[0][1] or "/"
                else:
                    for _flags, delimiter, _name in client.list_folders("", ""):
                        if delimiter:
                            separator = delimiter.decode() if isinstance(delimiter, bytes) else str(delimiter)
            self._personal = (prefix, separator)
        return self._personal

    def listing(self) -> dict[str, tuple[str, ...]]:
        """Every folder and its LIST attributes in lower case (SPECIAL-USE ones included)."""
        if self._listing is None:
            client = self.client()
            with self.guard("listing folders"):
                rows = client.list_folders()
            self._listing = {
                str(name): tuple((f.decode() if isinstance(f, bytes) else str(f)).lower() for f in flags)
                for flags, _delimiter, name in rows
            }
        return self._listing

    def special_use(self, attribute: str) -> str | None:
        """The folder carrying an RFC 6154 attribute such as ``\\Sent``, if the server marks one."""
        wanted = attribute.lower()
        for name, attributes in self.listing().items():
            if wanted in attributes:
                return name
        return None

    def full_name(self, folder: str) -> str:
        """A configured folder name as the server knows it.

        ``INBOX``, a name already under the personal namespace and a name the
        server lists as it is are kept; anything else is put under the
        personal namespace (``受付済`` -> ``INBOX.受付済`` on Courier and Cyrus).
        """
        prefix, _separator = self.personal_namespace()
        if not prefix or folder.upper() == "INBOX":
            return folder
        if folder.startswith(prefix) or (
            folder.upper().startswith(prefix.upper()) and prefix.upper().startswith("INBOX")
        ):
            return folder
        if folder in self.listing():
            return folder
        return prefix + folder

    def select(self, folder: str | None = None, readonly: bool = False) -> int:
        """SELECT (or EXAMINE) ``folder`` and return its UIDVALIDITY."""
        folder = self.full_name(folder or self.folder)
        client = self.client()
        with self.guard("SELECT", folder):
            info = client.select_folder(folder, readonly=readonly)
        validity = info.get(b"UIDVALIDITY")
        if validity is None:
            raise SourceError(f"{self.where(folder)}: server sent no UIDVALIDITY")
        # RFC 3501: without PERMANENTFLAGS every flag is permanent. (EXAMINE answers
        # PERMANENTFLAGS () on many servers, so only a read-write SELECT tells.)
        permanent = info.get(b"PERMANENTFLAGS")
        self.selected_allows_keywords = permanent is None or b"\\*" in permanent
        if not readonly and folder == self.full_name(self.folder):
            self.keywords_allowed = self.selected_allows_keywords
        self._selected = folder
        self._readonly = readonly
        self._uidvalidity = int(validity)
        return self._uidvalidity

    def ensure_selected(self) -> int:
        """The UIDVALIDITY of the main folder, selecting it only if needed."""
        if self._client is None or self._uidvalidity is None or self._selected != self.full_name(self.folder):
            return self.select()
        return self._uidvalidity

    def leave_if_examined(self, folder: str) -> None:
        """Leave ``folder`` when it is selected read-only: Courier refuses an APPEND there."""
        if self._client is None or self._selected != folder or not self._readonly:
            return
        client = self._client
        with self.guard("leaving the folder", folder):
            if client.has_capability("UNSELECT"):
                client.unselect_folder()
            else:
                client.close_folder()  # read-only: CLOSE expunges nothing
        self._selected = None
        self._uidvalidity = None

    def exists(self, folder: str) -> bool:
        if folder in self._known_folders:
            return True
        client = self.client()
        with self.guard("looking for the folder", folder):
            return bool(client.folder_exists(folder))

    def ensure_folder(self, folder: str) -> None:
        """Create (and subscribe) ``folder`` (a full name) unless it exists."""
        if folder in self._known_folders:
            return
        client = self.client()
        with self.guard("creating folder", folder):
            if not client.folder_exists(folder):
                try:
                    client.create_folder(folder)
                except imaplib.IMAP4.error:
                    if not client.folder_exists(folder):  # lost a race: fine
                        raise
                with contextlib.suppress(imaplib.IMAP4.error):
                    client.subscribe_folder(folder)
                self._listing = None
        self._known_folders.add(folder)

    def drop(self) -> None:
        client, self._client = self._client, None
        self._selected = None
        self._uidvalidity = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()

    def close(self) -> None:
        client, self._client = self._client, None
        self._selected = None
        self._uidvalidity = None
        if client is not None:
            try:
                client.logout()
            except Exception:
                with contextlib.suppress(Exception):
                    client.shutdown()


def throttle_pause(answer: str) -> float | None:
    """Seconds to wait after Exchange's ``BAD Request is throttled. Suggested Backoff Time: N milliseconds``.

    None when ``answer`` is no throttling answer; at most a minute.
    """
    match = _THROTTLED_RE.search(answer)
    if match is None:
        return None
    return min(int(match.group(1)) / 1000.0, _MAX_THROTTLE_SECONDS)


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the session is gone (not just a NO or BAD answer)."""
    if isinstance(exc, imaplib.IMAP4.readonly):
        return False
    return isinstance(exc, (OSError, EOFError, imaplib.IMAP4.abort))


def _search_above(client: IMAPClient, last_uid: int) -> list[int]:
    """UIDs above ``last_uid``; filters the highest UID that ``n:*`` always returns."""
    found = client.search(["UID", f"{last_uid + 1}:*"])
    return sorted(uid for uid in found if uid > last_uid)


def _batches(items: Sequence[int], size: int = _FETCH_BATCH) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def _header_fields(data: Mapping[bytes, Any]) -> bytes:
    """The BODY[HEADER.FIELDS ...] item of a FETCH answer, however the server spells it.

    Dovecot and Cyrus answer ``BODY[HEADER.FIELDS (MESSAGE-ID)]``, Courier
    quotes the field name: ``BODY[HEADER.FIELDS ("MESSAGE-ID")]``.
    """
    for key, value in data.items():
        if isinstance(key, bytes) and key.upper().startswith(b"BODY[HEADER.FIELDS"):
            return bytes(value or b"")
    return b""


def _message_id_of(header_block: bytes) -> str | None:
    value = _HEADER_PARSER.parsebytes(header_block).get("Message-ID")
    if value is None or not str(value).strip():
        return None
    return str(value)


@dataclass
class _Poll:
    """Bookkeeping of one fetch_new() round: the watermark and the read-ahead of bodies."""

    uidvalidity: int
    base: int  # last_uid stored when the poll started (0 after a UIDVALIDITY change)
    offered: list[int] = field(default_factory=list)  # ascending, known-by-Message-ID ones too
    offered_set: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)
    settled: int = 0  # offered[:settled] are all done
    highest: int = 0
    # The read-ahead: RFC822.SIZE of every message found, the UIDs whose bodies
    # are fetched ahead (all the poll yields, in order, known-by-Message-ID ones
    # left out), and the bodies fetched ahead of their load().
    sizes: dict[int, int] = field(default_factory=dict)
    queue: list[int] = field(default_factory=list)
    position: dict[int, int] = field(default_factory=dict)  # uid -> index in queue
    ahead: dict[int, bytes] = field(default_factory=dict)

    def offer(self, uid: int) -> None:
        self.offered.append(uid)
        self.offered_set.add(uid)

    def settle(self, uid: int) -> int | None:
        """Mark ``uid`` done; return the new watermark if it moved."""
        if uid not in self.offered_set or uid in self.done:
            return None
        self.done.add(uid)
        before = self.settled
        while self.settled < len(self.offered) and self.offered[self.settled] in self.done:
            self.settled += 1
        if self.settled == before:
            return None
        return self.offered[self.settled - 1]

    def line_up(self, uids: Sequence[int]) -> None:
        """Set the messages whose bodies are fetched ahead, in the order they are yielded."""
        self.queue = list(uids)
        self.position = {uid: index for index, uid in enumerate(self.queue)}

    def window(self, uid: int, max_message_bytes: int) -> list[int]:
        """``uid`` and the next offered messages, for one FETCH: at most a batch, and a bounded size."""
        wanted = [uid]
        position = self.position.get(uid)
        if position is None:
            return wanted
        total = self.sizes.get(uid, 0)
        for other in self.queue[position + 1 : position + _PREFETCH_COUNT]:
            size = self.sizes.get(other)
            if size is None or size > max_message_bytes or total + size > _PREFETCH_BYTES:
                break
            if other in self.done or other in self.ahead:
                continue
            wanted.append(other)
            total += size
        return wanted


class ImapSource:
    """A :class:`~mailbot.service.ports.MailSource` reading one IMAP folder."""

    def __init__(self, settings: ImapSettings, cursor: CursorStore) -> None:
        """``cursor`` keeps the UIDVALIDITY/last-UID watermark under :attr:`name`."""
        self.settings = settings
        self.name = f"imap:{settings.username}@{settings.host}:{settings.port}/{settings.folder}"
        self._cursor = cursor
        self._conn = _Connection(settings, settings.folder)
        self._poll: _Poll | None = None  # the last fetch_new(), with its read-ahead of bodies

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
                    arrived[uid] = _aware(data.get(b"INTERNALDATE"))
                    if revalidated:
                        header = _header_fields(data)
                        msgids[uid] = _message_id_of(header)
        uids = [uid for uid in uids if uid in sizes]  # expunged meanwhile

        this = _Poll(uidvalidity=uidvalidity, base=base, highest=max(uids, default=base), sizes=sizes)
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
        with conn.guard(f"downloading UID {uid}" if len(wanted) == 1 else f"downloading UIDs {_uid_set(wanted)}"):
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
        uidvalidity, uid = _parse_key(item.key)
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
            uidvalidity, _uid = _parse_key(item.key)
            outcome = _outcome(disposition, status)
            if outcome is None:
                done.append(item)
            else:
                groups.setdefault((uidvalidity, outcome), []).append(item)
        for (uidvalidity, outcome), items in groups.items():
            uids = [_parse_key(item.key)[1] for item in items]
            try:
                self._file_many(uidvalidity, uids, outcome)
            except SourceError as exc:
                if len(items) == 1:
                    failed.append((items[0], exc))
                    continue
                for item in items:
                    try:
                        self._file_many(uidvalidity, [_parse_key(item.key)[1]], outcome)
                    except SourceError as exc:
                        failed.append((item, exc))
                    else:
                        done.append(item)
            else:
                done.extend(items)
        for item in done:
            self._advance(*_parse_key(item.key))
        return failed

    def settle(self, item: SourceItem) -> None:
        """Count ``item`` as done for the cursor although its mark failed.

        The service calls this after it recorded the failed mark to retry it
        later (by key, see :mod:`mailbot.service.marks`): the message is in
        the ledger, so it must not hold back the cursor.
        """
        uidvalidity, uid = _parse_key(item.key)
        self._advance(uidvalidity, uid)

    def _file(self, uidvalidity: int, uid: int, outcome: str) -> None:
        self._file_many(uidvalidity, [uid], outcome)

    def _file_many(self, uidvalidity: int, uids: Sequence[int], outcome: str) -> None:
        """Add the outcome's keyword to ``uids`` and move them to its folder, if one is configured."""
        conn = self._conn
        current = conn.ensure_selected()
        which = f"UID {uids[0]}" if len(uids) == 1 else f"UIDs {_uid_set(uids)}"
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
                if client.has_capability("MOVE"):
                    client.move(list(uids), target)
                else:
                    client.copy(list(uids), target)
                    client.add_flags(list(uids), [b"\\Deleted"], silent=True)
                    if client.has_capability("UIDPLUS"):
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
        if not client.has_capability("IDLE"):
            time.sleep(max(timeout, 0.0))
            return False
        poll = self._poll
        if poll is None or poll.uidvalidity != uidvalidity:
            return True  # never polled this folder state: poll now
        with conn.guard("checking for new messages"):
            # NOOP lets the server announce mail that arrived since the poll;
            # a selected session does not see it otherwise.
            _text, responses = client.noop()
            if _has_exists(responses) or _search_above(client, poll.highest):
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
                if _has_exists(responses) or _has_exists(more):
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


def _aware(moment: object) -> datetime | None:
    """INTERNALDATE as an aware datetime (imapclient gives naive local time by default)."""
    if not isinstance(moment, datetime):
        return None
    return moment.astimezone() if moment.tzinfo is None else moment


def _buffered(client: IMAPClient) -> bool:
    """Whether the server's answers are already read into imaplib's buffer (or TLS's), unseen by a poll."""
    sock = client.socket()
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        return True
    file = getattr(client._imap, "file", None)
    if file is None or not hasattr(file, "peek"):
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


def _has_exists(responses: Iterable[Any]) -> bool:
    return any(isinstance(r, tuple) and len(r) > 1 and r[1] == b"EXISTS" for r in responses)


def _uid_set(uids: Sequence[int]) -> str:
    """``1:3,7`` for log lines: consecutive UIDs as ranges."""
    ordered = sorted(set(uids))
    runs: list[str] = []
    start = previous = ordered[0]
    for uid in ordered[1:]:
        if uid != previous + 1:
            runs.append(f"{start}:{previous}" if previous != start else str(start))
            start = uid
        previous = uid
    runs.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(runs)


def _parse_key(key: str) -> tuple[int, int]:
    try:
        validity, uid = key.split(":", 1)
        return int(validity), int(uid)
    except ValueError:
        raise ValueError(f"not an IMAP item key (UIDVALIDITY:UID): {key!r}") from None


def _outcome(disposition: str, status: str | None) -> str | None:
    # The outcome of a disposition and verdict is a row of the lifecycle's data;
    # an unknown one leaves the mail as it is rather than failing the poll.
    return mailbox_outcome(disposition, status)


AUTO = "auto"


class SentFolder:
    """Keeps copies of the bot's outgoing mail in an IMAP folder (``save_sent_to``).

    ``folder`` is a name (put under the personal namespace like every
    configured folder) or ``"auto"``: the folder the server marks ``\\Sent``
    (RFC 6154 SPECIAL-USE), else ``Sent`` under the personal namespace. With
    ``"auto"`` on Gmail (CAPABILITY ``X-GM-EXT-1``) nothing is appended, since
    Gmail's SMTP files every sent mail in its Sent label itself; ``contains``
    still looks there before a resend.
    """

    def __init__(self, settings: ImapSettings, folder: str = "Sent") -> None:
        self.settings = settings
        self.folder = folder
        self._conn = _Connection(settings, settings.folder)

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
        client = conn.client()
        with conn.guard("reading CAPABILITY"):
            return bool(client.has_capability("X-GM-EXT-1"))

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
        if len(raws) > 1 and client.has_capability("MULTIAPPEND"):
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
                    mid = _message_id_of(_header_fields(values))
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


def _test_message() -> bytes:
    stamp = email.utils.formatdate(localtime=False)
    return (
        b"From: mailbot <mailbot@invalid>\r\n"
        b"To: mailbot <mailbot@invalid>\r\n"
        b"Subject: mailbot check-connection test (removed again)\r\n"
        + f"Date: {stamp}\r\nMessage-ID: <check-{os.urandom(8).hex()}@mailbot.invalid>\r\n".encode()
        + b"\r\nThis message is appended and removed again by `mailbot check-connection`.\r\n"
    )


def _appended_uid(response: object) -> int | None:
    text = response.decode(errors="replace") if isinstance(response, bytes) else str(response)
    match = re.search(r"APPENDUID \d+ (\d+)", text)
    return int(match.group(1)) if match else None


def _remove_test_copy(conn: _Connection, folder: str, response: object) -> None:
    """Delete the message APPENDed by the check (found by APPENDUID, else by its subject)."""
    client = conn.client()
    conn.select(folder)
    uid = _appended_uid(response)
    uids = [uid] if uid else client.search(["SUBJECT", "mailbot check-connection test"])
    if not uids:
        return
    client.add_flags(uids, [b"\\Deleted"], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:
        client.expunge()


def _check_keywords(conn: _Connection, scratch: str) -> tuple[str, bool, str]:
    """Try a keyword STORE on a test message in the scratch folder."""
    client = conn.client()
    keyword = KEYWORDS["accepted"]
    with conn.guard("APPEND", scratch):
        response = client.append(scratch, _test_message())
    conn.select(scratch)
    uid = _appended_uid(response) or max(client.search("ALL"), default=0)
    try:
        with conn.guard("STORE", scratch):
            client.add_flags([uid], [keyword], silent=False)
            stored = keyword.encode() in client.get_flags([uid]).get(uid, ())
        answer = "" if stored else "the keyword was not kept"
    except SourceError as exc:
        stored, answer = False, str(exc).split(" failed: ", 1)[-1]
    if stored and conn.selected_allows_keywords:
        return ("keywords", True, f"custom keywords are kept ({keyword} and the others mark each outcome)")
    why = answer or "PERMANENTFLAGS of the folder has no \\*"
    return (
        "keywords",
        True,
        f"the server refuses custom keywords ({why}); mailbot records each outcome by moving the "
        "message to its folder and in its database only",
    )


def check_connection(settings: ImapSettings, sent_folder: str | None = None) -> list[tuple[str, bool, str]]:
    """Try connect, login, folder selection, CREATE, APPEND and a keyword STORE.

    Returns (step, ok, plain-English detail) each and stops at the first step
    that leaves nothing to try. Whatever the check creates (a scratch folder,
    missing configured folders, a test copy in Sent) is removed again; the
    mail in the mailbox is not touched. ``ok`` is False only where mailbot
    cannot do what the config asks; a refusal mailbot works around (custom
    keywords) is reported in words with ``ok`` True.
    """
    steps: list[tuple[str, bool, str]] = []
    conn = _Connection(settings, settings.folder)
    try:
        if conn.tokens is not None:
            try:
                conn.tokens.token()
            except CredentialError as exc:
                steps.append(("get token", False, str(exc)))
                return steps
            steps.append(("get token", True, token_words(conn.tokens)))
        try:
            conn.client()
        except AuthenticationFailed as exc:
            steps.append(("connect", True, f"reached {settings.address} ({settings.tls})"))
            steps.append(("login", False, str(exc)))
            return steps
        except SourceError as exc:
            steps.append(("connect", False, str(exc)))
            return steps
        steps.append(("connect", True, f"reached {settings.address} ({settings.tls})"))
        how = " with the token (SASL XOAUTH2 or OAUTHBEARER)" if conn.tokens is not None else ""
        steps.append(("login", True, f"logged in as {settings.username}{how}"))
        try:
            conn.select(readonly=True)
        except SourceError as exc:
            steps.append(("select folder", False, str(exc)))
            return steps
        client = conn.client()
        with conn.guard("counting messages"):
            count = len(client.search("ALL"))
        folder = conn.full_name(settings.folder)
        steps.append(("select folder", True, f"folder {folder!r} has {count} message(s)"))
        prefix, separator = conn.personal_namespace()
        if prefix:
            steps.append(
                (
                    "namespace",
                    True,
                    f"personal namespace {prefix!r} (separator {separator!r}): configured folder names "
                    f"are put under it, e.g. '受付済' is {prefix + '受付済'!r}",
                )
            )
        steps += _check_folders(conn, settings)
        if sent_folder:
            steps.append(_check_sent(conn, settings, sent_folder))
        return steps
    except SourceError as exc:
        steps.append(("error", False, str(exc)))
        return steps
    finally:
        conn.close()


def _try_create(conn: _Connection, folder: str) -> str | None:
    """CREATE ``folder``; None when it worked, else the server's answer."""
    client = conn.client()
    try:
        with conn.guard("CREATE", folder):
            client.create_folder(folder)
    except SourceError as exc:
        if not conn.connected:
            raise
        return str(exc).split(" failed: ", 1)[-1]
    return None


def _delete(conn: _Connection, folder: str) -> None:
    client = conn.client()
    with conn.guard("DELETE", folder):
        if conn._selected == folder:
            conn.leave_if_examined(folder)
            if conn._selected == folder:
                client.close_folder()
                conn._selected, conn._uidvalidity = None, None
        client.delete_folder(folder)


def _check_folders(conn: _Connection, settings: ImapSettings) -> list[tuple[str, bool, str]]:
    steps: list[tuple[str, bool, str]] = []
    main = conn.full_name(settings.folder)
    for outcome, name in sorted(settings.folders.items()):
        full = conn.full_name(name)
        if full == main:
            continue
        if conn.exists(full):
            steps.append((f"folder {outcome}", True, f"{outcome} mail moves to {full!r} (exists)"))
            continue
        refused = _try_create(conn, full)
        if refused is None:
            _delete(conn, full)
            steps.append(
                (
                    f"folder {outcome}",
                    True,
                    f"{outcome} mail moves to {full!r} (created on first use; CREATE tried and removed)",
                )
            )
        else:
            steps.append(
                (
                    f"folder {outcome}",
                    False,
                    f"the server refuses CREATE {full!r}: {refused}; create it by hand or configure a folder "
                    f"that exists. Until then {outcome} mail stays in {main!r}, its outcome is kept in the "
                    "database and `mailbot status` shows it as a pending mark",
                )
            )
    scratch = conn.full_name(f"mailbot-check-{os.urandom(4).hex()}")
    refused = _try_create(conn, scratch)
    if refused is not None:
        steps.append(("keywords", True, f"not tried: the server refuses CREATE of a scratch folder ({refused})"))
        return steps
    try:
        steps.append(_check_keywords(conn, scratch))
    finally:
        _delete(conn, scratch)
    return steps


def _check_sent(conn: _Connection, settings: ImapSettings, sent_folder: str) -> tuple[str, bool, str]:
    sent = SentFolder(settings, sent_folder)
    sent._conn = conn
    target = sent.target()
    if sent.files_itself():
        return (
            "sent folder",
            True,
            f"the server (Gmail) files sent mail in {target!r} itself: mailbot does not APPEND a copy, "
            "and looks there for a Message-ID before any resend",
        )
    created = False
    if not conn.exists(target):
        refused = _try_create(conn, target)
        if refused is not None:
            return (
                "sent folder",
                False,
                f"the server refuses CREATE {target!r}: {refused}; mailbot sends without keeping copies and, "
                "after a failed delivery, cannot prove what was already sent (it resends). Set "
                'save_sent_to to a folder that exists, or "auto"',
            )
        created = True
    client = conn.client()
    conn.leave_if_examined(target)
    try:
        with conn.guard("APPEND", target):
            response = client.append(target, _test_message(), flags=(b"\\Seen",))
    except SourceError as exc:
        if created:
            _delete(conn, target)
        return (
            "sent folder",
            False,
            f"the server refuses APPEND to {target!r} ({str(exc).split(' failed: ', 1)[-1]}); mailbot sends "
            "without keeping copies and cannot prove after a failure what was already sent",
        )
    if created:
        _delete(conn, target)
        how = "created on first use; CREATE and APPEND tried and removed"
    else:
        _remove_test_copy(conn, target, response)
        how = "APPEND tried, test copy removed"
    return ("sent folder", True, f"copies of sent mail go to {target!r} ({how})")
