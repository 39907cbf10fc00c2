"""Value types shared by the decision core and the adapters around it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "Address",
    "Attachment",
    "CaseStatus",
    "Defect",
    "Disposition",
    "ParsedMessage",
]


@dataclass(frozen=True)
class Address:
    """One mailbox: display name (decoded) and the address, lower-cased."""

    name: str
    addr: str

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2]

    def __str__(self) -> str:
        return self.addr


@dataclass(frozen=True)
class Attachment:
    """A MIME part the sender attached, with its decoded filename and bytes."""

    filename: str
    content_type: str
    payload: bytes


@dataclass(frozen=True)
class ParsedMessage:
    """What the core knows of one inbound mail, every text field decoded to str.

    ``identity`` is the Message-ID when the mail has one, else a stable
    synthetic id derived from its content, so the same mail delivered twice
    always gets the same identity.
    """

    identity: str
    message_id: str | None
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    # Header name (lower-case) -> every value of it, decoded. Only used for
    # loop/auto-reply detection and authentication results.
    headers: Mapping[str, tuple[str, ...]]
    # None when the mail has no Return-Path header, "" for the null path <>.
    return_path: str | None
    body_text: str
    attachments: tuple[Attachment, ...]
    # Things the parser had to repair or could not decode; kept for the ledger.
    problems: tuple[str, ...] = ()

    def header(self, name: str) -> tuple[str, ...]:
        return self.headers.get(name.lower(), ())

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc


class Disposition(StrEnum):
    CASE = "case"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


class CaseStatus(StrEnum):
    ACCEPTED = "accepted"
    RETURNED = "returned"
    WAITING_UNIS = "waiting_unis"
    # 要確認: the bot cannot tell (a UBD request without its 管轄支店, a scan it cannot read); a clerk decides.
    NEEDS_REVIEW = "needs_review"


@dataclass(frozen=True)
class Defect:
    """One reason to return a request: a stable code and what it concerns."""

    code: str
    # Free-form facts for the reply template (e.g. the missing document's
    # name, the customer code that UNIS does not know). Values are strings.
    detail: Mapping[str, str] = field(default_factory=dict)
