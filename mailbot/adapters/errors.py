"""Errors raised by the adapters (files, templates, database, mail servers, credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from mailbot.service.errors import PermanentDeliveryError, SourceError


class AdapterError(Exception):
    """The root of every error this layer raises."""


class SchemaOutOfDate(AdapterError):
    """The database schema is not at the version this mailbot expects."""


class SchemaUpgradeFailed(SchemaOutOfDate):
    """An upgrade left the database inconsistent (rows pointing to nothing)."""


class RawRemoved(AdapterError, LookupError):
    """The raw mail, or the attachments the caller needs from it, were removed under the retention policy."""

    def __init__(self, removed_at: datetime, attachments_only: bool) -> None:
        super().__init__(f"raw mail removed under the retention policy at {removed_at.isoformat()}")
        self.removed_at = removed_at
        self.attachments_only = attachments_only


class UnisFileError(AdapterError):
    """A UNIS export could not be read; the message names the line."""


class BackupError(AdapterError):
    """A backup or restore cannot be made; the message is one line for the operator."""


class RawStoreUnavailable(AdapterError, OSError):
    """The directory store cannot take a file now (full disk, missing mount): no message is to blame."""


class MessageTooLarge(AdapterError, SourceError):
    """``load()`` was called for a message above ``max_message_bytes``."""


class ProgressFileError(AdapterError):
    """A progress list could not be read; the message names the file, the line and the column.

    ``japanese`` is the same in one line for the desk (the workbench shows it; the CLI keeps the English).
    """

    def __init__(self, message: str, japanese: str = "") -> None:
        super().__init__(message)
        self.japanese = japanese or message


class TemplateProblem(AdapterError):
    """A mail template is missing or does not render."""


class PartialDeliveryError(AdapterError, PermanentDeliveryError):
    """The server took the mail for some recipients and refused the others."""

    def __init__(
        self,
        message: str,
        refused: Mapping[str, tuple[int, str]],
        delivered: tuple[str, ...],
    ) -> None:
        super().__init__(message)
        self.refused: dict[str, tuple[int, str]] = dict(refused)
        self.delivered = delivered


class CredentialError(AdapterError):
    """A password or token command could not be run, failed, or printed nothing."""


class TokenError(CredentialError):
    """No token could be had; the text is one line naming the source and the issuer's error."""
