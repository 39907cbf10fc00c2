"""The desk's rules as data: what the checks compare against."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo

from mailbot.domain.clock import JST
from mailbot.domain.japanese import normalize

__all__ = ["DEFAULT_CODE_LABELS", "DEFAULT_DOCUMENTS", "DocumentRule", "Flow", "Limits", "Policy"]


@dataclass(frozen=True)
class DocumentRule:
    """A required document, recognised by keywords in the attachment filename."""

    name: str
    keywords: tuple[str, ...]
    required: bool = True

    def matches(self, filename: str) -> bool:
        folded = normalize(filename).casefold()
        return any(normalize(k).casefold() in folded for k in self.keywords)

    def matches_title(self, title: str) -> bool:
        """The document's own title text (the first lines of its text layer) names it, spaces ignored."""
        folded = "".join(normalize(title).casefold().split())
        return bool(folded) and any("".join(normalize(k).casefold().split()) in folded for k in self.keywords)


@dataclass(frozen=True)
class Flow:
    """A request flow of the manual's §3 (通常, 即決 ...): how it is recognised, what it must carry.

    Every criterion given must hold (a keyword in the subject or body, the
    sender, a department named in the sender's name or the body, the branch's
    region); a flow with none matches every request. Empty ``documents``: the
    desk-wide ``[[documents]]``.
    """

    name: str
    keywords: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    documents: tuple[DocumentRule, ...] = ()


# The FLET'S form by its own name: the generic 申込書 would let a BGM 加入申込書 pass for it.
DEFAULT_DOCUMENTS = (DocumentRule("回線単品申込書", ("回線単品申込書", "単品申込書", "回線単品")),)
DEFAULT_CODE_LABELS = ("顧客CD", "顧客コード", "お客様コード", "顧客番号")


@dataclass(frozen=True)
class Limits:
    """Bounds on what the bot is willing to open."""

    max_message_bytes: int = 30 * 1024 * 1024
    max_attachments: int = 30
    max_total_attachment_bytes: int = 50 * 1024 * 1024
    # A ZIP container (.xlsx) is opened only below these.
    max_zip_uncompressed_bytes: int = 100 * 1024 * 1024
    max_zip_ratio: int = 200
    max_zip_members: int = 2000
    # To + Cc of any mail the bot writes; a reply-all beyond it goes to the
    # sender and the branch's managers only.
    max_reply_recipients: int = 20
    # A PDF's text layer is read from its first pages only (the form's title and 顧客CD are on
    # page 1), and a page whose content stream decodes to more than this is skipped: together
    # they bound the reading of any PDF, a bomb or 500 pages, to well under a second.
    max_pdf_pages: int = 3
    max_pdf_page_content_bytes: int = 2 * 1024 * 1024


@dataclass(frozen=True)
class Policy:
    """Everything the decision depends on besides the mail, the branches and UNIS."""

    desk_address: str
    internal_domains: tuple[str, ...]
    ops_recipients: tuple[str, ...] = ()
    documents: tuple[DocumentRule, ...] = DEFAULT_DOCUMENTS
    customer_code_digits: int = 9
    customer_code_labels: tuple[str, ...] = DEFAULT_CODE_LABELS
    unis_max_wait_hours: float = 36.0
    trusted_authserv_id: str | None = None
    max_replies_per_sender_per_hour: int = 10
    limits: Limits = field(default_factory=Limits)
    # Outgoing Message-IDs end with this, so the bot knows its own mail.
    message_id_domain: str = "mailbot.invalid"
    # The desk's people: their mail is recorded, never answered automatically.
    staff: tuple[str, ...] = ()
    staff_domains: tuple[str, ...] = ()
    # The contact line every mail to a branch ends with (phone, a person's address).
    contact: str = ""
    # Request flows, first match wins; none configured: one flow, the [[documents]].
    flows: tuple[Flow, ...] = ()
    # The UBD partner: outside internal_domains, yet its requests are filed and answered.
    ubd_senders: tuple[str, ...] = ()
    ubd_domains: tuple[str, ...] = ()
    # An internal mail whose subject nearly has the form (フレッツ エスカ, フレッツ光申込, a branch's name):
    # "return" files it as a request returned for ``subject_form``; "hold" quarantines it for the desk.
    near_miss: str = "return"
    # [jimu_center] recipients: 事務センター, who registers a UBD request's order in UNIS (manual §1).
    jimu_recipients: tuple[str, ...] = ()
    # The desk's time zone ([schedule] timezone): how times read in its mail and when its days begin.
    tz: tzinfo = JST

    def is_internal(self, address: str) -> bool:
        return _in_domains(address, self.internal_domains)

    def is_ubd(self, address: str) -> bool:
        """The UBD partner: a configured address or domain that is not ours."""
        if self.is_internal(address):
            return False
        return address.strip().lower() in {a.lower() for a in self.ubd_senders} or _in_domains(
            address, self.ubd_domains
        )

    def may_receive(self, address: str) -> bool:
        """Who the bot may write to: internal addresses, and the UBD partner; no other outsider."""
        return self.is_internal(address) or self.is_ubd(address)

    def is_desk(self, address: str) -> bool:
        return address.strip().lower() == self.desk_address.strip().lower()

    def is_staff(self, address: str) -> bool:
        """A person of the desk: a listed staff address, an ops recipient, or a staff domain."""
        address = address.strip().lower()
        if address in {a.lower() for a in (*self.staff, *self.ops_recipients)}:
            return True
        return _in_domains(address, self.staff_domains)


def _in_domains(address: str, domains: tuple[str, ...]) -> bool:
    """The address's domain is one of ``domains`` or a subdomain of one."""
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    if not domain:
        return False
    # An empty configured domain needs no filter: domain is non-empty and has no trailing dot.
    return any(domain == d or domain.endswith("." + d) for d in (x.lower().lstrip("@").rstrip(".") for x in domains))
