"""Turning the core's mail intents into outbox rows: template, headers, threading."""

from __future__ import annotations

import base64
import binascii
import contextlib
import email
import email.policy
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from email.charset import BASE64, Charset
from email.header import Header
from email.message import EmailMessage
from email.message import Message as _Compat32Message
from email.policy import compat32
from email.utils import format_datetime, formataddr
from typing import Any

from mailbot.adapters.database.schema import Outbox
from mailbot.adapters.database.store import db_id
from mailbot.adapters.templates import Renderer
from mailbot.domain.clock import JST, UTC, format_ja, format_jst
from mailbot.domain.decision import MailIntent
from mailbot.domain.lifecycle import MAIL_KINDS
from mailbot.domain.model import Attachment, Defect, ParsedMessage
from mailbot.domain.policy import Policy
from mailbot.domain.replies import own_text
from mailbot.domain.subject import subject_core

__all__ = ["build_outbox_row", "clean_header", "desk_context", "mail_context", "text_of"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


def desk_context(policy: Policy) -> dict[str, str]:
    """What every mail template knows of the desk: its address, and the contact line mail to a branch ends with."""
    return {"address": policy.desk_address, "contact": policy.contact}


def text_of(raw: bytes) -> str:
    """The text of a mail the bot wrote, as the recipient reads it."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("plain",)) if isinstance(message, EmailMessage) else None
    try:
        return str(body.get_content()) if body is not None else ""
    except (LookupError, ValueError):
        return ""


def clean_header(value: str) -> str:
    """No CR/LF or other control characters may reach an outgoing header."""
    return " ".join(_CONTROL.sub(" ", value).split())


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
        "subject_core": subject_core(message.subject) if message else "",
        "sender": message.sender.addr if message and message.sender else "",
        "sender_name": (message.sender.name if message and message.sender else "") or "",
        "message_id": message.message_id if message else "",
        "date": format_jst(arrived, policy.tz),
        "date_ja": format_ja(arrived, policy.tz),
        "text": text[:NOTICE_TEXT_CHARS],
        "text_truncated": len(text) > NOTICE_TEXT_CHARS,
        "attachments": [a.filename for a in message.attachments] if message else [],
    }
    reason = facts.get("reason", "")
    defect_list = [{"code": d.code, "detail": readable_detail(d, policy.tz)} for d in defects]
    return {
        "case_no": case_no or "",
        "branch": branch or "",
        "customer_code": customer_code or "",
        "customer_name": customer_name or "",
        "defects": defect_list,
        "attachment_defect": any(d.code.startswith("attachment_") for d in defects),
        "original": original,
        "desk": desk_context(policy),
        "facts": dict(facts),
        "reason": reason,
        "max_wait_hours": f"{policy.unis_max_wait_hours:g}",
        "wait_until": format_ja(arrived + timedelta(hours=policy.unis_max_wait_hours), policy.tz) if arrived else "",
        "unis_as_of": "",
        "note": facts.get("note", ""),
        "by": facts.get("by", ""),
        "same_customer": [],
        "resubmission": bool(facts.get("resubmission")),
        "commands": _commands(case_no),
        "case_url": "",
        **(extra or {}),
    }


def readable_detail(defect: Defect, tz: tzinfo = JST) -> dict[str, str]:
    """The defect's facts, with the UNIS snapshot time as the desk reads it."""
    detail = dict(defect.detail)
    if detail.get("unis_as_of"):
        with contextlib.suppress(ValueError):
            detail["unis_as_of"] = format_ja(datetime.fromisoformat(detail["unis_as_of"]), tz)
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

    mail: _Compat32Message[str, str | Header] = _Compat32Message()
    mail["From"] = formataddr((_DESK_NAME, policy.desk_address), charset="utf-8")
    if to:
        mail["To"] = ", ".join(to)
    if cc:
        mail["Cc"] = ", ".join(cc)
    mail["Subject"] = _header("Subject", clean_header(text.subject))
    mail["Date"] = format_datetime(now.astimezone(policy.tz))
    topic = clean_header(subject_core(intent.reply_to.subject)) if in_reply_to and intent.reply_to else ""
    if topic:
        # Outlook groups a conversation by Thread-Index / Thread-Topic, not by
        # In-Reply-To: without them the receipt lands beside the request.
        mail["Thread-Topic"] = _header("Thread-Topic", topic)
    if not MAIL_KINDS[intent.kind].written_by_a_person:
        # RFC 3834: mark every automatic mail as such so other robots never answer it. A clerk's answer is
        # a person's mail: marked, the branch's rules would file it with bulk mail.
        mail["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
        mail["X-Auto-Response-Suppress"] = "All"
        mail["Precedence"] = "bulk"
    mail["MIME-Version"] = "1.0"
    # The text in canonical form (CRLF line ends, RFC 2046 4.1.1), then base64.
    body = "\r\n".join(text.body.splitlines()) + "\r\n"
    if intent.attachments:
        _with_files(mail, body, intent.attachments)
    else:
        mail.set_payload(body, charset=_UTF8_BASE64)
    threading = [("Message-ID", [message_id])]
    if in_reply_to:
        parent_index = (intent.reply_to.headers.get("thread-index") or ("",))[0] if intent.reply_to else ""
        threading += [
            ("In-Reply-To", [in_reply_to]),
            ("References", references),
            ("Thread-Index", [thread_index(parent_index, now)]),
        ]
    raw = _with_raw_headers(mail.as_bytes(policy=_WIRE), threading)

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
        raw=raw,
        status=("suppressed" if intent.suppressed else "pending") if to else "failed",
        attempts=0,
        next_attempt_at=now,
        last_error=_held_back(intent) if to else "no internal recipient",
        created_at=now,
        sent_at=None,
    )


# The mails are assembled with the email package's compat32 API: headers are
# kept as given and encoded once (RFC 2047) on output. The structured-header
# policy would parse every header into a tree and fold it again, which was a
# sixth of the intake's time per request for the same bytes on the wire.
_DESK_NAME = "USEN NETWORKS 納品デスク"
_WIRE = compat32.clone(linesep="\r\n", max_line_length=78)
_UTF8_BASE64 = Charset("utf-8")
_UTF8_BASE64.header_encoding = BASE64
_UTF8_BASE64.body_encoding = BASE64


def _header(name: str, value: str) -> str | Header:
    """A header value as is when it is ASCII, else RFC 2047-encoded UTF-8 folded between encoded words.

    The name is given so the first line, which carries it, stays within 78 characters too.
    """
    if value.isascii():
        return value
    return Header(value, _UTF8_BASE64, maxlinelen=78, header_name=name)


def _with_files(mail: _Compat32Message[str, str | Header], body: str, files: tuple[Attachment, ...]) -> None:
    """Make ``mail`` multipart/mixed: the text, then each file base64-encoded under its own (RFC 2231) name."""
    text: _Compat32Message[str, str | Header] = _Compat32Message()
    text.set_payload(body, charset=_UTF8_BASE64)
    parts = [text]
    for file in files:
        part: _Compat32Message[str, str | Header] = _Compat32Message()
        part["Content-Type"] = clean_header(file.content_type) or "application/octet-stream"
        name = clean_header(file.filename) or "attachment"
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
        part["Content-Transfer-Encoding"] = "base64"
        part.set_payload(base64.encodebytes(file.payload).decode("ascii").replace("\n", "\r\n"))
        parts.append(part)
    mail["Content-Type"] = "multipart/mixed"
    mail.set_payload(parts)  # type: ignore[arg-type]


def _held_back(intent: MailIntent) -> str | None:
    return f"held back: {intent.suppressed}" if intent.suppressed else None


# -- threading headers, written by hand -------------------------------------------

# A msg-id as RFC 5322 3.6.4 has it, near enough: "<", printable ASCII without
# "<", ">" or spaces, ">". An id that is not one cannot be written unencoded.
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,900}>")


def fold_msg_ids(name: str, ids: list[str]) -> bytes:
    """``name: <a> <b>`` folded only between msg-ids (never inside one, never
    RFC 2047-encoded: an encoded id is no id and the reply does not thread)."""
    line = f"{name}:"
    lines: list[str] = []
    for msg_id in ids:
        if len(line) + 1 + len(msg_id) > 78 and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + msg_id
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _with_raw_headers(raw: bytes, headers: list[tuple[str, list[str]]]) -> bytes:
    """Insert the threading headers after Date. The email package would fold an
    Outlook id longer than 78 characters by RFC 2047-encoding it."""
    block = b""
    for name, values in headers:
        if name == "Thread-Index":
            block += f"{name}: {values[0]}\r\n".encode("ascii")
        elif ids := [v for v in values if _MSG_ID.fullmatch(v)]:
            block += fold_msg_ids(name, ids)
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    at = next((i for i, line in enumerate(lines) if line.lower().startswith(b"date:")), len(lines) - 1) + 1
    while at < len(lines) and lines[at][:1] in (b" ", b"\t"):
        at += 1  # the Date header's own continuation lines
    new_head = b"\r\n".join(lines[:at]) + b"\r\n" + block + b"\r\n".join(lines[at:])
    return new_head.removesuffix(b"\r\n") + sep + body


_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def _filetime(moment: datetime) -> int:
    delta = moment - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def thread_index(parent: str, now: datetime) -> str:
    """Outlook's Thread-Index (MS-OXOMSG 2.2.1.3, PidTagConversationIndex) for a reply.

    A reply carries its parent's index plus one 5-byte child block (the time
    since the conversation started); without a usable parent index a new
    conversation header block is made (6 bytes of FILETIME, a random GUID).
    """
    try:
        data = base64.b64decode(parent.strip(), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if len(data) < 22 or (len(data) - 22) % 5 or len(data) > 22 + 5 * 150:
        header = (_filetime(now) >> 16).to_bytes(6, "big") + uuid.uuid4().bytes
        return base64.b64encode(header).decode("ascii")
    started = int.from_bytes(data[:6], "big") << 16
    delta = max(0, _filetime(now) - started)
    # Under about 1.7 years: bits 48-18 of the delta; beyond: the DeltaCode bit and bits 53-23.
    code = (delta >> 18) & 0x7FFFFFFF if delta < 1 << 49 else (1 << 31) | ((delta >> 23) & 0x7FFFFFFF)
    child = ((code << 8) | secrets.randbelow(256)).to_bytes(5, "big")
    return base64.b64encode(data + child).decode("ascii")


def _deliverable(address: str, policy: Policy) -> bool:
    # The last line of defence: whatever the core decided, nothing leaves for outside.
    # The UBD partner is the one outsider the bot may answer (policy.may_receive).
    return policy.may_receive(address) and not policy.is_desk(address) and "\n" not in address and "\r" not in address
