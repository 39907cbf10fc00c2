"""Turning the core's mail intents into outbox rows: template, headers, threading."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailbot.adapters.database.store import db_id
from mailbot.adapters.database.tables import Outbox
from mailbot.adapters.templates import Renderer
from mailbot.domain.decision import MailIntent
from mailbot.domain.model import Defect, ParsedMessage
from mailbot.domain.policy import Policy
from mailbot.domain.replies import own_text

__all__ = ["JST", "build_outbox_row", "clean_header", "format_ja", "format_jst", "mail_context"]

JST = ZoneInfo("Asia/Tokyo")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


def clean_header(value: str) -> str:
    """No CR/LF or other control characters may reach an outgoing header."""
    return " ".join(_CONTROL.sub(" ", value).split())


def format_jst(moment: datetime | None) -> str:
    if moment is None:
        return "(不明)"
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M")


_WEEKDAYS_JA = "月火水木金土日"


def format_ja(moment: datetime | None) -> str:
    """12月2日(水)02:55: how a date reads in a mail to a branch."""
    if moment is None:
        return "(不明)"
    local = moment.astimezone(JST)
    return f"{local.month}月{local.day}日({_WEEKDAYS_JA[local.weekday()]}){local:%H:%M}"


# How much of a branch's mail text a notice to ops carries.
NOTICE_TEXT_CHARS = 2000


def mail_context(
    *,
    case_no: str | None,
    branch: str | None,
    customer_code: str | None,
    customer_name: str | None,
    defects: tuple[Defect, ...],
    message: ParsedMessage | None,
    received_at: datetime | None,
    policy: Policy,
    facts: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    arrived = received_at or (message.date if message else None)
    text = own_text(message.body_text) if message else ""
    original = {
        "subject": message.subject if message else "",
        "subject_core": _subject_core(message.subject) if message else "",
        "sender": message.sender.addr if message and message.sender else "",
        "sender_name": (message.sender.name if message and message.sender else "") or "",
        "message_id": message.message_id if message else "",
        "date": format_jst(arrived),
        "date_ja": format_ja(arrived),
        "text": text[:NOTICE_TEXT_CHARS],
        "text_truncated": len(text) > NOTICE_TEXT_CHARS,
        "attachments": [a.filename for a in message.attachments] if message else [],
    }
    reason = facts.get("reason", "")
    defect_list = [{"code": d.code, "detail": _readable_detail(d)} for d in defects]
    return {
        "case_no": case_no or "",
        "branch": branch or "",
        "customer_code": customer_code or "",
        "customer_name": customer_name or "",
        "defects": defect_list,
        "attachment_defect": any(d.code.startswith("attachment_") for d in defects),
        "original": original,
        "desk": {"address": policy.desk_address, "contact": policy.contact},
        "facts": dict(facts),
        "reason": reason,
        "max_wait_hours": f"{policy.unis_max_wait_hours:g}",
        "wait_until": format_ja(arrived + timedelta(hours=policy.unis_max_wait_hours)) if arrived else "",
        "unis_as_of": "",
        "note": facts.get("note", ""),
        "by": facts.get("by", ""),
        "same_customer": [],
        "resubmission": bool(facts.get("resubmission")),
        "commands": _commands(case_no),
        "case_url": "",
        **(extra or {}),
    }


def _readable_detail(defect: Defect) -> dict[str, str]:
    """The defect's facts, with the UNIS snapshot time as the desk reads it."""
    detail = dict(defect.detail)
    if detail.get("unis_as_of"):
        with contextlib.suppress(ValueError):
            detail["unis_as_of"] = format_ja(datetime.fromisoformat(detail["unis_as_of"]))
    return detail


def _commands(case_no: str | None) -> dict[str, str]:
    """The exact commands a clerk can run on the case, for the notices."""
    if not case_no:
        return {}
    return {
        "show": f"mailbot cases show {case_no}",
        "accept": f'mailbot cases accept {case_no} --note "理由"',
        "return": f'mailbot cases return {case_no} --note "返却の理由"',
        "note": f'mailbot cases note {case_no} "メモ"',
        "close": f'mailbot cases close {case_no} --reason "理由"',
    }


def _subject_core(subject: str) -> str:
    """The branch's own subject without reply prefixes and without an earlier case tag.

    Only RE:/FW: markers and ``[FE-...]`` are removed, so 【至急】 and the
    keyword survive as the branch wrote them.
    """
    text = " ".join(subject.split())
    while True:
        stripped = _REPLY_PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = _CASE_TAG.sub(" ", text)
    return " ".join(text.split()) or subject


_REPLY_PREFIX = re.compile(r"^\s*(?:re|fw|fwd|転送|返信|ＲＥ|ＦＷ)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*", re.IGNORECASE)
_CASE_TAG = re.compile(r"\s*[\[［]\s*FE-\d{4}-\d{5}\s*[\]］]\s*", re.IGNORECASE)


def new_message_id(policy: Policy, case_no: str | None) -> str:
    # Short enough that "Message-ID: <...>" stays on one line and is never folded.
    return f"<{case_no or 'desk'}.{secrets.token_urlsafe(9)}@{policy.message_id_domain}>"


def build_outbox_row(
    intent: MailIntent,
    *,
    renderer: Renderer,
    context: Mapping[str, Any],
    policy: Policy,
    now: datetime,
    case_id: int | None,
    inbound_id: int | None,
) -> Outbox:
    """Render and assemble one mail; the row is added in the caller's transaction."""
    text = renderer.render(intent.kind, context)
    to = [a for a in intent.to if _deliverable(a, policy)]
    cc = [a for a in intent.cc if _deliverable(a, policy) and a not in to]
    message_id = new_message_id(policy, context.get("case_no") or None)
    in_reply_to = None
    references: list[str] = []
    if intent.reply_to is not None and intent.reply_to.message_id:
        in_reply_to = clean_header(db_id(intent.reply_to.message_id))
        references = [clean_header(db_id(r)) for r in (*intent.reply_to.references, in_reply_to)][-20:]

    mail = EmailMessage(policy=SMTP)
    mail["From"] = HeaderAddress("USEN NETWORKS 納品デスク", addr_spec=policy.desk_address)
    if to:
        mail["To"] = ", ".join(to)
    if cc:
        mail["Cc"] = ", ".join(cc)
    mail["Subject"] = clean_header(text.subject)
    mail["Date"] = format_datetime(now.astimezone(JST))
    mail["Message-ID"] = message_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = " ".join(references)
    # RFC 3834: mark every mail as automatic so other robots never answer it.
    mail["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    mail["Precedence"] = "bulk"
    mail.set_content(text.body, charset="utf-8", cte="base64")

    return Outbox(
        kind=intent.kind,
        case_id=case_id,
        inbound_id=inbound_id,
        to_addrs=to,
        cc_addrs=cc,
        subject=clean_header(text.subject),
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=" ".join(references) or None,
        raw=mail.as_bytes(),
        status=("suppressed" if intent.suppressed else "pending") if to else "failed",
        attempts=0,
        next_attempt_at=now,
        last_error=_held_back(intent) if to else "no internal recipient",
        created_at=now,
        sent_at=None,
    )


def _held_back(intent: MailIntent) -> str | None:
    return f"held back: {intent.suppressed}" if intent.suppressed else None


def _deliverable(address: str, policy: Policy) -> bool:
    # The last line of defence: whatever the core decided, nothing leaves for outside.
    # The UBD partner is the one outsider the bot may answer (policy.may_receive).
    return policy.may_receive(address) and not policy.is_desk(address) and "\n" not in address and "\r" not in address
