"""Before any check: is this mail a request at all, and may the bot answer it?

Like a Mailman chain, the rules are an ordered table; the first that fires
decides. Rules only read the message and the facts the shell looked up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mailbot.domain.documents import is_signature
from mailbot.domain.model import Disposition, ParsedMessage
from mailbot.domain.policy import Policy
from mailbot.domain.subject import parse_subject, resembles_request

__all__ = ["DISPOSITION_LABELS", "RESOLUTION_LABELS", "TRIAGE_RULES", "Triage", "TriageFacts", "near_miss", "triage"]

_ROBOT_LOCALPARTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply", "bounce", "bounces"})
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})


@dataclass(frozen=True)
class TriageFacts:
    """What the shell knows about this message from its ledger."""

    duplicate: bool = False
    linked_case: bool = False
    # It answers one of the bot's notices to ops (In-Reply-To / References).
    answers_ops_notice: bool = False
    # A person released it from quarantine: file it as if it came from inside.
    released: bool = False
    # The configured branches' names: a subject naming one resembles a request.
    branch_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Triage:
    """The verdict of the first rule that fired; ``None`` disposition means: a request.

    ``Disposition.CASE`` means: record it on the case of its thread, check nothing, answer nothing.
    """

    disposition: Disposition | None
    reason: str


def _duplicate(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    return facts.duplicate


def _own_mail(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    if m.sender is not None and policy.is_desk(m.sender.addr):
        return True
    return bool(m.message_id and m.message_id.rstrip(">").lower().endswith("@" + policy.message_id_domain.lower()))


def _bounce(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    if m.return_path == "":
        return True
    if m.sender is not None and m.sender.addr.partition("@")[0].lower() in _ROBOT_LOCALPARTS:
        return True
    content_type = " ".join(m.header("content-type")).lower()
    return "multipart/report" in content_type


def _auto_reply(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    # RFC 3834 and the vendor headers that predate it.
    for value in m.header("auto-submitted"):
        if value.strip().lower().split(";")[0] not in ("", "no"):
            return True
    if m.header("x-autoreply") or m.header("x-autorespond") or m.header("x-auto-reply"):
        return True
    if any(v.strip().lower() in _BULK_PRECEDENCE for v in m.header("precedence")):
        return True
    # X-Auto-Response-Suppress is not a sign of an automatic mail (Exchange sets
    # it on ordinary mail too); decision.asks_for_no_auto_reply honours it.
    return bool(m.header("list-id") or m.header("list-unsubscribe"))


def _from_desk(facts: TriageFacts) -> bool:
    return facts.answers_ops_notice


def _staff(m: ParsedMessage, policy: Policy) -> bool:
    return m.sender is not None and policy.is_staff(m.sender.addr)


def _staff_in_thread(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    # A clerk answering in a case's thread, or anyone answering a notice to ops.
    return facts.linked_case and (_staff(m, policy) or _from_desk(facts))


def _staff_elsewhere(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    return _staff(m, policy) or _from_desk(facts)


def near_miss(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    """Not the request form, but meant as one: from inside (or the UBD partner), a subject resembling it."""
    if facts.linked_case or parse_subject(m.subject).is_request or m.sender is None:
        return False
    if not (policy.is_internal(m.sender.addr) or policy.is_ubd(m.sender.addr) or facts.released):
        return False
    document = any(not is_signature(a) for a in m.attachments)
    return resembles_request(m.subject, facts.branch_names, with_document=document)


def _near_miss_held(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    # The desk chose to look at near misses itself; a released one is filed as a request.
    return policy.near_miss == "hold" and not facts.released and near_miss(m, facts, policy)


def _not_request(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    if facts.linked_case or parse_subject(m.subject).is_request:
        return False
    return not near_miss(m, facts, policy)


def _outside(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    if facts.released:
        return False
    return m.sender is None or not policy.may_receive(m.sender.addr)


_AUTH_RESULT = re.compile(r"\b(dmarc|spf)\s*=\s*(\w+)", re.IGNORECASE)


def _failed_authentication(m: ParsedMessage, facts: TriageFacts, policy: Policy) -> bool:
    # Only our own server's verdict counts: anyone can write this header.
    if not policy.trusted_authserv_id or facts.released:
        return False
    for value in m.header("authentication-results"):
        authserv = value.partition(";")[0].strip().lower()
        if authserv != policy.trusted_authserv_id.lower():
            continue
        for _method, result in _AUTH_RESULT.findall(value):
            if result.lower() == "fail":
                return True
    return False


Rule = Callable[[ParsedMessage, TriageFacts, Policy], bool]

TRIAGE_RULES: tuple[tuple[str, Disposition, Rule], ...] = (
    ("duplicate", Disposition.IGNORED, _duplicate),
    ("own_mail", Disposition.IGNORED, _own_mail),
    ("bounce", Disposition.IGNORED, _bounce),
    ("auto_reply", Disposition.IGNORED, _auto_reply),
    # The desk's own people are never answered automatically.
    ("staff_message", Disposition.CASE, _staff_in_thread),
    ("staff_mail", Disposition.IGNORED, _staff_elsewhere),
    # A subject that nearly has the form: held for the desk when configured, else a request (subject_form).
    ("subject_form", Disposition.QUARANTINED, _near_miss_held),
    # 対象外: recorded with its reason, listed in the workbench and counted in the desk's weekly summary.
    ("not_request", Disposition.IGNORED, _not_request),
    ("outside_domain", Disposition.QUARANTINED, _outside),
    ("authentication_failed", Disposition.QUARANTINED, _failed_authentication),
)


# What became of a mail, as the desk reads it (Inbound.disposition).
DISPOSITION_LABELS: Mapping[str, str] = MappingProxyType(
    {Disposition.CASE.value: "案件", Disposition.IGNORED.value: "対象外", Disposition.QUARANTINED.value: "隔離"}
)

# What a clerk did with a quarantined mail (Inbound.resolution).
RESOLUTION_LABELS: Mapping[str, str] = MappingProxyType({"released": "依頼として処理", "discarded": "破棄"})


def triage(message: ParsedMessage, facts: TriageFacts, policy: Policy) -> Triage:
    for reason, disposition, rule in TRIAGE_RULES:
        if rule(message, facts, policy):
            return Triage(disposition, reason)
    return Triage(None, "request")
