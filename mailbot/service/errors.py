"""Errors of the application service and its ports; one root for the entry points to catch."""

from __future__ import annotations


class ServiceError(Exception):
    """The root of every error this layer raises."""


class SourceError(ServiceError):
    """The mailbox could not be read right now (connection, login, folder)."""


class AuthenticationFailed(SourceError):
    """The mailbox refused the login, or the credential command failed."""


class DeliveryError(ServiceError):
    """A mail could not be handed over to the transport."""


class TemporaryDeliveryError(DeliveryError):
    """Delivery failed but may work later (4xx, connection refused)."""


class PermanentDeliveryError(DeliveryError):
    """Delivery was refused for good (5xx); retrying will not help."""


class AccountError(ServiceError):
    """An account command that cannot be done (unknown role, duplicate name, weak password)."""


class StoreUnavailable(ServiceError):
    """The database cannot be used right now; the poll stopped without marking anything."""


class DeskError(ServiceError):
    """A desk action that cannot be done; the message says why, in the desk's words."""


class NotFound(ServiceError, LookupError):
    """Nothing is stored under the number asked for; the subclasses say what was looked for."""


class CaseNotFound(NotFound):
    """No case with that number."""


class QuarantineItemNotFound(NotFound):
    """No quarantined mail with that ID."""


class MailNotFound(NotFound):
    """No stored mail with that ID, or no attachment with that index in it."""


class OriginalRemoved(MailNotFound):
    """The stored mail (or its attachments) was removed under the retention policy; the text says so in Japanese."""


class UnknownCommand(ServiceError, TypeError):
    """No handler for this command's class: a programming error, not something a user did."""
