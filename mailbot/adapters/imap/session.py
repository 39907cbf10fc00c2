"""One IMAP session: connecting, logging in (password or OAuth2), what the server offers, folders.

Each source keeps one long-lived session: only a lost connection (socket
error, EOF, BYE) drops it, a NO or BAD answer does not; an Exchange throttling
answer (``Suggested Backoff Time: N milliseconds``) delays the next command by
N ms; ``BYE ... AccessTokenExpired`` makes the next login ask for a new OAuth2
token. What the server can do is its CAPABILITY answer, read once after login
into :class:`Capabilities`; nothing asks the library object what it has.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from mailbot.adapters.imap.settings import ImapSettings
from mailbot.adapters.oauth2 import CredentialError, TokenSource, token_source
from mailbot.service.ports import AuthenticationFailed, SourceError

__all__ = ["Capabilities", "ImapSession", "throttle_pause"]

log = logging.getLogger("mailbot.adapters.imap")  # one logger for the package, as before the split

_NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, imaplib.IMAP4.error, EOFError)
# Exchange / Microsoft 365 under load: "BAD Request is throttled. Suggested Backoff Time: 1234 milliseconds".
_THROTTLED_RE = re.compile(r"throttled.*?Backoff Time:\s*(\d+)\s*milli", re.IGNORECASE | re.DOTALL)
_MAX_THROTTLE_SECONDS = 60.0


@dataclass(frozen=True)
class Capabilities:
    """The parts of a server's CAPABILITY answer mailbot acts on; all False until the server says so."""

    starttls: bool = False
    auth_xoauth2: bool = False  # AUTH=XOAUTH2 (Microsoft 365, Gmail, Dovecot)
    auth_oauthbearer: bool = False  # AUTH=OAUTHBEARER (RFC 7628)
    namespace: bool = False  # RFC 2342
    unselect: bool = False  # RFC 3691
    move: bool = False  # RFC 6851
    uidplus: bool = False  # RFC 4315: UID EXPUNGE, APPENDUID
    idle: bool = False  # RFC 2177
    multiappend: bool = False  # RFC 3502
    gmail: bool = False  # X-GM-EXT-1: Gmail, whose SMTP files sent mail itself

    @classmethod
    def parse(cls, answer: Iterable[bytes | str]) -> Capabilities:
        """From the words of a CAPABILITY answer (any case), as imapclient's ``capabilities()`` returns them."""
        words = {(w.decode("ascii", "replace") if isinstance(w, bytes) else w).upper() for w in answer}
        return cls(
            starttls="STARTTLS" in words,
            auth_xoauth2="AUTH=XOAUTH2" in words,
            auth_oauthbearer="AUTH=OAUTHBEARER" in words,
            namespace="NAMESPACE" in words,
            unselect="UNSELECT" in words,
            move="MOVE" in words,
            uidplus="UIDPLUS" in words,
            idle="IDLE" in words,
            multiappend="MULTIAPPEND" in words,
            gmail="X-GM-EXT-1" in words,
        )

    @classmethod
    def of(cls, client: IMAPClient) -> Capabilities:
        """What ``client``'s server offers now (before login: its login mechanisms; after: everything)."""
        return cls.parse(client.capabilities())


class ImapSession:
    """One lazily (re)connected, logged-in IMAP session and what its server offers."""

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
        self.capabilities = Capabilities()  # its CAPABILITY answer after login
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
                    if not Capabilities.of(client).starttls:
                        raise SourceError(f"{self.where()}: server does not offer STARTTLS")
                    client.starttls(context)
                self._login(client)
            # Servers announce more after login (MOVE, IDLE, X-GM-EXT-1, ...): read once, declared from here on.
            with self.guard("reading CAPABILITY"):
                capabilities = Capabilities.of(client)
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        self._selected = None
        self._uidvalidity = None
        self._known_folders = set()
        self._personal = None
        self._listing = None
        self.capabilities = capabilities
        return client

    def _login(self, client: IMAPClient) -> None:
        s = self.settings
        tokens = self.tokens
        if tokens is not None:
            # XOAUTH2 where offered (Microsoft 365, Gmail, Dovecot); RFC 7628 OAUTHBEARER otherwise.
            offered = Capabilities.of(client)
            bearer = not offered.auth_xoauth2 and offered.auth_oauthbearer
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
        password = s.login_password()
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
                if self.capabilities.namespace:
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
            if self.capabilities.unselect:
                client.unselect_folder()
            else:
                client.close_folder()  # read-only: CLOSE expunges nothing
        self._selected = None
        self._uidvalidity = None

    def leave(self, folder: str) -> None:
        """Leave ``folder`` if it is selected, before it is deleted (CLOSE may expunge it: it goes anyway)."""
        if self._selected != folder:
            return
        self.leave_if_examined(folder)
        if self._client is not None and self._selected == folder:
            self._client.close_folder()
            self._selected, self._uidvalidity = None, None

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
