"""One SMTP session: the client, logging in (password or OAuth2), and what a failure means for the mail."""

from __future__ import annotations

import contextlib
import select
import smtplib
import ssl
from collections.abc import Mapping

from mailbot.adapters.oauth2 import (
    CredentialError,
    TokenSource,
    decode_challenge,
    oauthbearer_response,
    run_secret_command,
    xoauth2_response,
)
from mailbot.adapters.smtp.settings import SmtpSettings
from mailbot.service.ports import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError

__all__ = [
    "FAILURES",
    "LOGIN_FAILURES",
    "describe_refusals",
    "discard",
    "log_in",
    "new_client",
    "quiet",
    "reply_text",
    "token_mechanism",
    "translate",
]

# What smtplib and ssl raise for a failed session. ValueError is in because
# ssl raises it for some handshake set-up problems, and the Delivery port
# promises callers nothing but DeliveryError.
FAILURES = (smtplib.SMTPException, OSError, ValueError)


def reply_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def new_client(settings: SmtpSettings, context: ssl.SSLContext) -> smtplib.SMTP:
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


def quiet(client: smtplib.SMTP) -> bool:
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


def discard(client: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        client.close()


def translate(exc: Exception, where: str) -> DeliveryError:
    """Map an smtplib/socket failure to the port's error classes."""
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        reply = reply_text(exc.smtp_error)
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
LOGIN_FAILURES = (*FAILURES, CredentialError)


def log_in(client: smtplib.SMTP, settings: SmtpSettings, tokens: TokenSource | None) -> tuple[int, bytes]:
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


def token_mechanism(client: smtplib.SMTP) -> str:
    offered = client.esmtp_features.get("auth", "").upper().split() if client.has_extn("auth") else []
    # XOAUTH2 is what Microsoft 365 and Gmail offer; OAUTHBEARER (RFC 7628) where it is the only one.
    for mechanism in ("XOAUTH2", "OAUTHBEARER"):
        if mechanism in offered:
            return mechanism
    offers = f"AUTH {' '.join(offered)}" if offered else "no AUTH at all"
    raise smtplib.SMTPNotSupportedError(f"the server offers neither AUTH XOAUTH2 nor OAUTHBEARER ({offers})")


def _token_login(client: smtplib.SMTP, user: str, tokens: TokenSource) -> tuple[int, bytes]:
    """AUTH XOAUTH2 (or OAUTHBEARER) with the token held, then once with a fresh one."""
    mechanism = token_mechanism(client)
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


def describe_refusals(refused: Mapping[str, tuple[int, bytes | str]]) -> str:
    return "; ".join(f"{rcpt}: {code} {reply_text(reply)}" for rcpt, (code, reply) in refused.items())
