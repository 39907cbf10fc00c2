"""Submitting mail: :class:`SmtpDelivery`, one reused session, and copies kept in the Sent folder."""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from mailbot.adapters.errors import PartialDeliveryError
from mailbot.adapters.oauth2 import token_source
from mailbot.adapters.smtp.session import (
    FAILURES,
    LOGIN_FAILURES,
    describe_refusals,
    discard,
    log_in,
    new_client,
    quiet,
    reply_text,
    translate,
)
from mailbot.adapters.smtp.settings import SmtpSettings
from mailbot.service.ports import (
    DeliveryError,
    OutgoingMail,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)

__all__ = ["SentCopies", "SmtpDelivery"]

log = logging.getLogger("mailbot.adapters.smtp")  # one logger for the package, as before the split


class SentCopies(Protocol):
    """Where a copy of each sent mail is kept, and looked up before a resend (an IMAP Sent folder)."""

    def append_many(self, raws: Sequence[bytes]) -> None: ...

    def contains(self, message_ids: Iterable[str]) -> set[str]: ...


class SmtpDelivery:
    """A :class:`~mailbot.service.ports.Delivery` that submits mail over SMTP.

    One connection is opened lazily and reused for every ``send`` until
    :meth:`close`. Not thread-safe: use one instance per worker.
    """

    def __init__(self, settings: SmtpSettings, sent_folder: SentCopies | None = None) -> None:
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
                f"{where}: sender refused with {exc.smtp_code} {reply_text(exc.smtp_error)} (mail stays queued)"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            # Nobody got it; a 421 here also means smtplib already hung up.
            self._forget_if_closed(client)
            raise self._all_refused(exc.recipients, where) from exc
        except (smtplib.SMTPResponseException, smtplib.SMTPNotSupportedError) as exc:
            # smtplib has already RSET the session (or closed it on 421).
            self._forget_if_closed(client)
            raise translate(exc, where) from exc
        except FAILURES as exc:
            # The session is in an unknown state; never reuse it.
            self._drop()
            raise translate(exc, where) from exc
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
                f"{where}: refused for {describe_refusals(refused)}. It WAS handed over "
                f"for {', '.join(delivered)}, so it is not retried (that would send them a "
                f"duplicate); forward it to the refused recipients by hand.",
                refused={r: (code, reply_text(reply)) for r, (code, reply) in refused.items()},
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
        except FAILURES:
            discard(client)

    # -- internals -----------------------------------------------------------

    def _connection(self) -> smtplib.SMTP:
        client = self._client
        if client is not None:
            if quiet(client):
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
            except FAILURES:
                pass
            log.info("SMTP connection to %s was dropped; reconnecting", self._settings.address)
            self._drop()
        self._client = self._open()
        return self._client

    def _open(self) -> smtplib.SMTP:
        settings = self._settings
        client = new_client(settings, self._tls_context)
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
                log_in(client, settings, self._tokens)
        except LOGIN_FAILURES as exc:
            discard(client)
            error = translate(exc, step)
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
        text = f"{where}: all recipients refused: {describe_refusals(refused)}"
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
            discard(client)
