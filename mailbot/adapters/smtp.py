"""Outgoing mail over SMTP with the standard library's :mod:`smtplib`.

Error policy, in one rule: only an explicit 5xx reply from the server is a
:class:`~mailbot.service.ports.PermanentDeliveryError`. Everything else — 4xx
replies, refused or dropped connections, timeouts, TLS trouble, a server that
does not offer STARTTLS or AUTH — is a
:class:`~mailbot.service.ports.TemporaryDeliveryError`, because nothing about
the mail itself is wrong and the queue should wait for the transport (or its
configuration) to be fixed rather than fail mail for good.

Partial recipient refusal (the server accepted the message for some envelope
recipients and refused others) raises :class:`PartialDeliveryError`, a
permanent error. The message has already been handed over for the accepted
recipients, so a retry would send them a duplicate; the only honest outcome is
to stop and tell a human exactly who did not get it. This holds even when the
refusals were 4xx: the transport cannot resend to a subset of an
:class:`~mailbot.service.ports.OutgoingMail`, and a duplicate reply to a
customer is worse than a flagged case the desk forwards by hand.

Login: a password (``password_env`` or ``password_command``) with AUTH PLAIN or
LOGIN, or an OAuth2 token (``oauth2`` or ``oauth2_token_command``, see
:mod:`mailbot.adapters.oauth2`) with AUTH XOAUTH2, or OAUTHBEARER where the
server offers that and not XOAUTH2. A refused token is replaced by a fresh one
once; a second refusal is reported like a refused password, and the mail stays
queued.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shlex
import smtplib
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mailbot.adapters.errors import PartialDeliveryError
from mailbot.adapters.net import is_loopback
from mailbot.adapters.oauth2 import (
    CredentialError,
    OAuth2Settings,
    TokenSource,
    decode_challenge,
    login_methods,
    oauthbearer_response,
    run_secret_command,
    token_source,
    token_words,
    xoauth2_response,
)
from mailbot.service.ports import (
    DeliveryError,
    OutgoingMail,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)

__all__ = [
    "PartialDeliveryError",
    "SentFolder",
    "SmtpDelivery",
    "SmtpSettings",
    "TlsMode",
    "check_connection",
]

log = logging.getLogger(__name__)

TlsMode = Literal["ssl", "starttls", "none"]
_TLS_MODES: frozenset[str] = frozenset({"ssl", "starttls", "none"})
# What smtplib and ssl raise for a failed session. ValueError is in because
# ssl raises it for some handshake set-up problems, and the Delivery port
# promises callers nothing but DeliveryError.
_FAILURES = (smtplib.SMTPException, OSError, ValueError)


class SentFolder(Protocol):
    """Where a copy of each sent mail is kept (an IMAP Sent folder)."""

    def append_many(self, raws: Sequence[bytes]) -> None: ...

    def contains(self, message_ids: Iterable[str]) -> set[str]: ...


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to submit outgoing mail."""

    host: str
    port: int = 587
    tls: TlsMode = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # keep it out of logs
    timeout_seconds: float = 30.0
    local_hostname: str | None = None
    password_command: str | None = None
    oauth2_token_command: str | None = None
    oauth2: OAuth2Settings | None = None

    def __post_init__(self) -> None:
        if not self.host or not self.host.strip():
            raise ValueError("SMTP host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port {self.port} is not between 1 and 65535")
        if self.tls not in _TLS_MODES:
            raise ValueError(f"SMTP tls must be one of 'ssl', 'starttls' or 'none', not {self.tls!r}")
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError(
                f"SMTP tls 'none' would send mail and credentials in cleartext to "
                f"{self.host!r}; it is only allowed for a loopback host "
                f"(localhost, 127.0.0.1, ::1). Use 'starttls' or 'ssl'."
            )
        if self.timeout_seconds <= 0:
            raise ValueError(f"SMTP timeout must be positive, not {self.timeout_seconds}")
        credentials = login_methods(self.password, self.password_command, self.oauth2_token_command, self.oauth2)
        if len(credentials) > 1:
            raise ValueError(f"SMTP login: give only one of {', '.join(credentials)}")
        if (self.username is None) != (not credentials):
            raise ValueError(
                "SMTP username and a password (password_env, password_command) or token "
                "(oauth2, oauth2_token_command) must be given together"
            )
        for label, value in (("username", self.username), ("password", self.password)):
            # smtplib encodes AUTH PLAIN/LOGIN as ASCII and would crash mid-login.
            if value is not None and not value.isascii():
                raise ValueError(f"SMTP {label} must be ASCII (an smtplib limitation)")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def logs_in(self) -> bool:
        return self.username is not None

    @classmethod
    def from_config(cls, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """From the ``[delivery]`` table (``kind = "smtp"``); secrets come from the environment or commands."""
        env = environ if environ is not None else os.environ
        password = None
        if table.get("password_env"):
            password = env.get(table["password_env"])
            if password is None:
                raise ValueError(f"password_env: environment variable {table['password_env']} is not set")

        def command(key: str) -> str | None:
            value = table.get(key)
            if isinstance(value, list):
                return shlex.join(str(v) for v in value)
            return None if value is None else str(value)

        username = table.get("username")
        oauth2 = table.get("oauth2")
        return cls(
            host=table["host"],
            port=int(table.get("port", 587)),
            tls=table.get("tls", "starttls"),
            username=username,
            password=password,
            timeout_seconds=float(table.get("timeout_seconds", 30.0)),
            password_command=command("password_command"),
            oauth2_token_command=command("oauth2_token_command"),
            oauth2=OAuth2Settings.from_table(oauth2, username or "", env) if oauth2 is not None else None,
        )


def _reply_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def _new_client(settings: SmtpSettings, context: ssl.SSLContext) -> smtplib.SMTP:
    # Created unconnected so the caller sees the greeting and can close the
    # client if connect() fails.
    client: smtplib.SMTP
    if settings.tls == "ssl":
        client = smtplib.SMTP_SSL(
            local_hostname=settings.local_hostname,
            timeout=settings.timeout_seconds,
            context=context,
        )
    else:
        client = smtplib.SMTP(local_hostname=settings.local_hostname, timeout=settings.timeout_seconds)
    # smtplib only records the host for TLS certificate checks when it is
    # given to the constructor; connect() alone would leave it empty and every
    # handshake would fail with "check_hostname requires server_hostname".
    client._host = settings.host  # type: ignore[attr-defined]
    return client


def _quiet(client: smtplib.SMTP) -> bool:
    """True when the server has sent nothing since its last reply, without asking it.

    A server that gives up on an idle session says 421 or just closes it; either
    makes the socket readable. A quiet, open socket is used as it is.
    """
    sock = client.sock
    if sock is None:
        return False
    try:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _discard(client: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        client.close()


def _translate(exc: Exception, where: str) -> DeliveryError:
    """Map an smtplib/socket failure to the port's error classes."""
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        reply = _reply_text(exc.smtp_error)
        text = f"{where}: server replied {code} {reply}"
        if 500 <= code < 600:
            return PermanentDeliveryError(text)
        return TemporaryDeliveryError(text)
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError):
        # smtplib reports a read timeout as a disconnect; say what happened.
        return TemporaryDeliveryError(f"{where}: timed out waiting for the server")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TemporaryDeliveryError(f"{where}: server closed the connection ({exc})")
    if isinstance(exc, smtplib.SMTPException):
        # e.g. STARTTLS or AUTH not offered: a setup problem, not the mail's.
        return TemporaryDeliveryError(f"{where}: {exc}")
    if isinstance(exc, TimeoutError):
        return TemporaryDeliveryError(f"{where}: timed out ({exc})")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TemporaryDeliveryError(f"{where}: TLS certificate not trusted ({exc.verify_message})")
    if isinstance(exc, OSError):
        return TemporaryDeliveryError(f"{where}: {exc.strerror or exc}")
    if isinstance(exc, CredentialError):
        return TemporaryDeliveryError(f"{where}: {exc}")
    return TemporaryDeliveryError(f"{where}: {exc!r}")


# A failed login: smtplib's and socket errors, or no password/token to be had.
_LOGIN_FAILURES = (*_FAILURES, CredentialError)


def _log_in(client: smtplib.SMTP, settings: SmtpSettings, tokens: TokenSource | None) -> tuple[int, bytes]:
    """Log in with the settings' password or token; returns the server's final reply."""
    assert settings.username is not None
    if tokens is not None:
        return _token_login(client, settings.username, tokens)
    if settings.password_command is not None:
        password = run_secret_command(settings.password_command, "password_command", settings.timeout_seconds)
    else:
        assert settings.password is not None
        password = settings.password
    return client.login(settings.username, password)


def _token_mechanism(client: smtplib.SMTP) -> str:
    offered = client.esmtp_features.get("auth", "").upper().split() if client.has_extn("auth") else []
    # XOAUTH2 is what Microsoft 365 and Gmail offer; OAUTHBEARER (RFC 7628) where it is the only one.
    for mechanism in ("XOAUTH2", "OAUTHBEARER"):
        if mechanism in offered:
            return mechanism
    offers = f"AUTH {' '.join(offered)}" if offered else "no AUTH at all"
    raise smtplib.SMTPNotSupportedError(f"the server offers neither AUTH XOAUTH2 nor OAUTHBEARER ({offers})")


def _token_login(client: smtplib.SMTP, user: str, tokens: TokenSource) -> tuple[int, bytes]:
    """AUTH XOAUTH2 (or OAUTHBEARER) with the token held, then once with a fresh one."""
    mechanism = _token_mechanism(client)
    said: list[str] = []

    def attempt(token: str) -> tuple[int, bytes]:
        said.clear()

        def answer(challenge: bytes | None = None) -> str:
            if challenge is None:
                build = xoauth2_response if mechanism == "XOAUTH2" else oauthbearer_response
                return build(user, token)
            # A refused token draws a 334 with the reason (JSON); the client must answer it to hear the 535.
            said.append(decode_challenge(challenge))
            return "" if mechanism == "XOAUTH2" else "\x01"

        return client.auth(mechanism, answer)

    try:
        return attempt(tokens.token())
    except smtplib.SMTPAuthenticationError:
        pass
    try:
        return attempt(tokens.fresh())
    except smtplib.SMTPAuthenticationError as exc:
        tokens.forget()
        detail = f"; the server said: {said[0]}" if said else ""
        note = f" (AUTH {mechanism}, refused again with a fresh token from {tokens.name}{detail})"
        reply = exc.smtp_error if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error).encode()
        raise smtplib.SMTPAuthenticationError(exc.smtp_code, reply + note.encode()) from exc


def _describe_refusals(refused: Mapping[str, tuple[int, bytes | str]]) -> str:
    return "; ".join(f"{rcpt}: {code} {_reply_text(reply)}" for rcpt, (code, reply) in refused.items())


class SmtpDelivery:
    """A :class:`~mailbot.service.ports.Delivery` that submits mail over SMTP.

    One connection is opened lazily and reused for every ``send`` until
    :meth:`close`. Not thread-safe: use one instance per worker.
    """

    def __init__(self, settings: SmtpSettings, sent_folder: SentFolder | None = None) -> None:
        self._settings = settings
        self._sent_folder = sent_folder
        self._tls_context = ssl.create_default_context()
        self._client: smtplib.SMTP | None = None
        # Kept for the delivery's life, so a token serves every connection until it expires or is refused.
        self._tokens = token_source(settings.oauth2, settings.oauth2_token_command, settings.timeout_seconds)

    def __enter__(self) -> SmtpDelivery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, mail: OutgoingMail) -> None:
        where = f"SMTP {self._settings.address}, mail {mail.message_id}"
        if not mail.recipients:
            raise PermanentDeliveryError(f"{where}: no envelope recipients")
        client = self._connection()
        options = self._mail_options(client, mail, where)
        try:
            refused = client.sendmail(mail.sender, list(mail.recipients), mail.raw, options)
        except smtplib.SMTPSenderRefused as exc:
            # MAIL FROM refused (login required, sender not allowed): the relay's
            # setup, not this mail. Permanent would fail every queued mail.
            self._forget_if_closed(client)
            raise TemporaryDeliveryError(
                f"{where}: sender refused with {exc.smtp_code} {_reply_text(exc.smtp_error)} (mail stays queued)"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            # Nobody got it; a 421 here also means smtplib already hung up.
            self._forget_if_closed(client)
            raise self._all_refused(exc.recipients, where) from exc
        except (smtplib.SMTPResponseException, smtplib.SMTPNotSupportedError) as exc:
            # smtplib has already RSET the session (or closed it on 421).
            self._forget_if_closed(client)
            raise _translate(exc, where) from exc
        except _FAILURES as exc:
            # The session is in an unknown state; never reuse it.
            self._drop()
            raise _translate(exc, where) from exc
        log.info(
            "sent %s to %d recipient(s) via %s",
            mail.message_id,
            len(mail.recipients) - len(refused),
            self._settings.address,
        )
        if refused:
            # Marked failed, never resent: the copy cannot cause a duplicate, so keep it now.
            with contextlib.suppress(TemporaryDeliveryError):  # the mail is out either way
                self.keep_copies([mail])
            delivered = tuple(r for r in mail.recipients if r not in refused)
            raise PartialDeliveryError(
                f"{where}: refused for {_describe_refusals(refused)}. It WAS handed over "
                f"for {', '.join(delivered)}, so it is not retried (that would send them a "
                f"duplicate); forward it to the refused recipients by hand.",
                refused={r: (code, _reply_text(reply)) for r, (code, reply) in refused.items()},
                delivered=delivered,
            )

    def already_sent(self, message_ids: Iterable[str]) -> set[str]:
        if self._sent_folder is None:
            return set()
        ids = list(message_ids)
        if not ids:
            return set()
        try:
            return set(self._sent_folder.contains(ids))
        except Exception as exc:
            # Answering "none" here would make the caller resend, so fail instead.
            raise TemporaryDeliveryError(f"could not check the Sent folder: {exc}") from exc

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except _FAILURES:
            _discard(client)

    # -- internals -----------------------------------------------------------

    def _connection(self) -> smtplib.SMTP:
        client = self._client
        if client is not None:
            if _quiet(client):
                # Nothing came from the server since its last reply: no 421, no
                # close. Within a run of mails that is every time, and a NOOP
                # round trip a mail is a sixth of what the relay is asked.
                return client
            # Probe before the transaction rather than retrying after a
            # failure: a mail whose DATA may have reached the server must never
            # be replayed automatically.
            try:
                if client.noop()[0] == 250:
                    return client
            except _FAILURES:
                pass
            log.info("SMTP connection to %s was dropped; reconnecting", self._settings.address)
            self._drop()
        self._client = self._open()
        return self._client

    def _open(self) -> smtplib.SMTP:
        settings = self._settings
        client = _new_client(settings, self._tls_context)
        step = f"SMTP {settings.address}: connect"
        try:
            code, reply = client.connect(settings.host, settings.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, reply)
            step = f"SMTP {settings.address}: EHLO"
            client.ehlo_or_helo_if_needed()
            if settings.tls == "starttls":
                step = f"SMTP {settings.address}: STARTTLS"
                client.starttls(context=self._tls_context)
                client.ehlo()
            if settings.logs_in:
                step = f"SMTP {settings.address}: login as {settings.username}"
                _log_in(client, settings, self._tokens)
        except _LOGIN_FAILURES as exc:
            _discard(client)
            error = _translate(exc, step)
            if isinstance(error, PermanentDeliveryError):
                # A refusal before MAIL FROM (a changed password, a relay that
                # will not talk to us) says nothing about this mail: every
                # queued mail would fail for good. Keep them until it is fixed.
                raise TemporaryDeliveryError(f"{error} (the connection itself was refused; mail stays queued)") from exc
            raise error from exc
        return client

    def _mail_options(self, client: smtplib.SMTP, mail: OutgoingMail, where: str) -> list[str]:
        options: list[str] = []
        addresses = (mail.sender, *mail.recipients)
        if not all(a.isascii() for a in addresses):
            if not client.has_extn("smtputf8"):
                raise PermanentDeliveryError(f"{where}: non-ASCII address but the server does not offer SMTPUTF8")
            options.append("SMTPUTF8")
        if not mail.raw.isascii() and client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        return options

    def _all_refused(self, refused: Mapping[str, tuple[int, bytes]], where: str) -> DeliveryError:
        text = f"{where}: all recipients refused: {_describe_refusals(refused)}"
        codes = [code for code, _ in refused.values()]
        # One permanently bad address means this mail can never reach everyone.
        if any(500 <= code < 600 for code in codes):
            return PermanentDeliveryError(text)
        return TemporaryDeliveryError(text)

    def keeps_copies(self) -> bool:
        return self._sent_folder is not None

    def keep_copies(self, mails: Sequence[OutgoingMail]) -> None:
        """File the sent mails in the Sent folder, after their rows are marked sent.

        One APPEND for the lot where the server takes several at once (each
        APPEND waits for the server's fsync). A failure raises
        :class:`TemporaryDeliveryError`: the mails are out, their rows keep
        ``copy_pending`` and a later delivery files the copies.
        """
        if self._sent_folder is None or not mails:
            return
        try:
            self._sent_folder.append_many([mail.raw for mail in mails])
        except Exception as exc:
            raise TemporaryDeliveryError(
                f"sent {len(mails)} mail(s) but could not store them in the Sent folder yet: {exc}"
            ) from exc

    def _forget_if_closed(self, client: smtplib.SMTP) -> None:
        if client.sock is None:
            self._client = None

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _discard(client)


def check_connection(settings: SmtpSettings) -> list[tuple[str, bool, str]]:
    """Try each step of a session and report ``(step, ok, detail)``; stops at the first failure."""
    report: list[tuple[str, bool, str]] = []
    context = ssl.create_default_context()
    client = _new_client(settings, context)
    secure = " over TLS" if settings.tls == "ssl" else ""

    def failed(step: str, exc: Exception) -> list[tuple[str, bool, str]]:
        report.append((step, False, _explain(exc)))
        _discard(client)
        return report

    step = f"Connect to {settings.address}{secure}"
    try:
        code, reply = client.connect(settings.host, settings.port)
    except _FAILURES as exc:
        return failed(step, exc)
    if code != 220:
        return failed(step, smtplib.SMTPConnectError(code, reply))
    greeting = f"{code} {_reply_text(reply)}"
    if settings.tls == "ssl":
        greeting += f" ({_tls_version(client)})"
    report.append((step, True, greeting))

    step = f"Say hello (EHLO {client.local_hostname})"
    try:
        code, reply = client.ehlo()
    except _FAILURES as exc:
        return failed(step, exc)
    if code != 250:
        return failed(step, smtplib.SMTPHeloError(code, reply))
    report.append((step, True, f"{code} {_reply_text(reply)}"))

    if settings.tls == "starttls":
        step = "Switch to encryption (STARTTLS)"
        if not client.has_extn("starttls"):
            report.append((step, False, f"the server does not offer STARTTLS (it offers: {_offers(client)})"))
            _discard(client)
            return report
        try:
            code, reply = client.starttls(context=context)
            client.ehlo()
        except _FAILURES as exc:
            return failed(step, exc)
        report.append((step, True, f"{code} {_reply_text(reply)} ({_tls_version(client)})"))

    if settings.logs_in:
        tokens = token_source(settings.oauth2, settings.oauth2_token_command, settings.timeout_seconds)
        step = f"Log in as {settings.username}"
        if not client.has_extn("auth"):
            report.append((step, False, f"the server does not offer AUTH (it offers: {_offers(client)})"))
            _discard(client)
            return report
        if tokens is not None:
            step = "Get an OAuth2 token"
            try:
                tokens.token()
            except CredentialError as exc:
                return failed(step, exc)
            report.append((step, True, token_words(tokens)))
            try:
                step = f"Log in as {settings.username} with AUTH {_token_mechanism(client)}"
            except smtplib.SMTPNotSupportedError as exc:
                return failed(f"Log in as {settings.username}", exc)
        try:
            code, reply = _log_in(client, settings, tokens)
        except _LOGIN_FAILURES as exc:
            return failed(step, exc)
        report.append((step, True, f"{code} {_reply_text(reply)}"))

    try:
        client.quit()
    except _FAILURES:
        _discard(client)
    return report


def _offers(client: smtplib.SMTP) -> str:
    return ", ".join(sorted(name.upper() for name in client.esmtp_features)) or "nothing"


def _tls_version(client: smtplib.SMTP) -> str:
    sock = client.sock
    version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
    return version or "TLS"


def _explain(exc: Exception) -> str:
    # Same wording as delivery errors, minus the "where" prefix the step already gives.
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"login refused: {exc.smtp_code} {_reply_text(exc.smtp_error)}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing is listening there, or a firewall said no"
    return str(_translate(exc, "failed")).removeprefix("failed: ")
