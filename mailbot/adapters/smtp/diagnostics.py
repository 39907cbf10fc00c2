"""``mailbot check-connection`` for the submission server: each step of a session, in words."""

from __future__ import annotations

import smtplib
import ssl

from mailbot.adapters.oauth2 import CredentialError, token_source, token_words
from mailbot.adapters.smtp.session import (
    FAILURES,
    LOGIN_FAILURES,
    discard,
    log_in,
    new_client,
    reply_text,
    token_mechanism,
    translate,
)
from mailbot.adapters.smtp.settings import SmtpSettings

__all__ = ["check_connection"]


def check_connection(settings: SmtpSettings) -> list[tuple[str, bool, str]]:
    """Try each step of a session and report ``(step, ok, detail)``; stops at the first failure."""
    report: list[tuple[str, bool, str]] = []
    context = ssl.create_default_context()
    client = new_client(settings, context)
    secure = " over TLS" if settings.tls == "ssl" else ""

    def failed(step: str, exc: Exception) -> list[tuple[str, bool, str]]:
        report.append((step, False, _explain(exc)))
        discard(client)
        return report

    step = f"Connect to {settings.address}{secure}"
    try:
        code, reply = client.connect(settings.host, settings.port)
    except FAILURES as exc:
        return failed(step, exc)
    if code != 220:
        return failed(step, smtplib.SMTPConnectError(code, reply))
    greeting = f"{code} {reply_text(reply)}"
    if settings.tls == "ssl":
        greeting += f" ({_tls_version(client)})"
    report.append((step, True, greeting))

    step = f"Say hello (EHLO {client.local_hostname})"
    try:
        code, reply = client.ehlo()
    except FAILURES as exc:
        return failed(step, exc)
    if code != 250:
        return failed(step, smtplib.SMTPHeloError(code, reply))
    report.append((step, True, f"{code} {reply_text(reply)}"))

    if settings.tls == "starttls":
        step = "Switch to encryption (STARTTLS)"
        if not client.has_extn("starttls"):
            report.append((step, False, f"the server does not offer STARTTLS (it offers: {_offers(client)})"))
            discard(client)
            return report
        try:
            code, reply = client.starttls(context=context)
            client.ehlo()
        except FAILURES as exc:
            return failed(step, exc)
        report.append((step, True, f"{code} {reply_text(reply)} ({_tls_version(client)})"))

    if settings.logs_in:
        tokens = token_source(settings.oauth2, settings.oauth2_token_command, settings.timeout_seconds)
        step = f"Log in as {settings.username}"
        if not client.has_extn("auth"):
            report.append((step, False, f"the server does not offer AUTH (it offers: {_offers(client)})"))
            discard(client)
            return report
        if tokens is not None:
            step = "Get an OAuth2 token"
            try:
                tokens.token()
            except CredentialError as exc:
                return failed(step, exc)
            report.append((step, True, token_words(tokens)))
            try:
                step = f"Log in as {settings.username} with AUTH {token_mechanism(client)}"
            except smtplib.SMTPNotSupportedError as exc:
                return failed(f"Log in as {settings.username}", exc)
        try:
            code, reply = log_in(client, settings, tokens)
        except LOGIN_FAILURES as exc:
            return failed(step, exc)
        report.append((step, True, f"{code} {reply_text(reply)}"))

    try:
        client.quit()
    except FAILURES:
        discard(client)
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
        return f"login refused: {exc.smtp_code} {reply_text(exc.smtp_error)}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing is listening there, or a firewall said no"
    return str(translate(exc, "failed")).removeprefix("failed: ")
