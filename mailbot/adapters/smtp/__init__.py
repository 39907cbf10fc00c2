"""Outgoing mail over SMTP with the standard library's :mod:`smtplib`.

:mod:`~mailbot.adapters.smtp.settings` holds the ``[delivery]`` table,
:mod:`~mailbot.adapters.smtp.session` the session and the error mapping,
:mod:`~mailbot.adapters.smtp.delivery` :class:`SmtpDelivery`, and
:mod:`~mailbot.adapters.smtp.diagnostics` ``check_connection``.

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

from mailbot.adapters.errors import PartialDeliveryError
from mailbot.adapters.smtp.delivery import SentCopies, SmtpDelivery
from mailbot.adapters.smtp.diagnostics import check_connection
from mailbot.adapters.smtp.settings import SmtpSettings

__all__ = [
    "PartialDeliveryError",
    "SentCopies",
    "SmtpDelivery",
    "SmtpSettings",
    "check_connection",
]
