"""Turning the core's mail intents into outbox rows: template, headers, threading."""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.charset import BASE64, Charset
from email.header import Header
from email.message import Message as _Compat32Message
from email.policy import compat32
from email.utils import format_datetime, formataddr
from typing import Any
from zoneinfo import ZoneInfo

from mailbot.adapters.database.schema import Outbox
from mailbot.adapters.database.store import db_id
from mailbot.adapters.templates import Renderer
from mailbot.domain.decision import MailIntent
from mailbot.domain.model import Address, Attachment, Defect, ParsedMessage
from mailbot.domain.policy import Policy
from mailbot.domain.replies import own_text
from mailbot.domain.subject import remove_case_tags, strip_reply_prefixes

__all__ = [
    "JST",
    "build_outbox_row",
    "clean_header",
    "desk_context",
    "format_ja",
    "format_jst",
    "mail_context",
    "sample_context",
]

JST = ZoneInfo("Asia/Tokyo")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


def desk_context(policy: Policy) -> dict[str, str]:
    """What every mail template knows of the desk: its address, and the contact line mail to a branch ends with."""
    return {"address": policy.desk_address, "contact": policy.contact}


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
    defect_list = [{"code": d.code, "detail": readable_detail(d)} for d in defects]
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


def readable_detail(defect: Defect) -> dict[str, str]:
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


# -- a sample mail of every kind, for checking templates at start-up ------------

_SAMPLE_DEFECTS = (
    Defect("subject_form", {"subject": "フレッツ光申込 渋谷支店", "branch": "渋谷支店"}),
    Defect("branch_missing"),
    Defect("ubd_branch_unknown", {"customer_code": ""}),
    Defect("document_unrecognised", {"document": "回線単品申込書", "filename": "scan0001.pdf", "problem": ""}),
    Defect("branch_unknown", {"branch": "渋谷"}),
    Defect("manager_cc_missing", {"branch": "渋谷支店", "managers": "shibuya-mgr@example.co.jp"}),
    Defect("attachment_missing", {"document": "回線単品申込書", "received": "scan001.pdf"}),
    Defect("attachment_unreadable", {"filename": "申込書.zip", "problem": "パスワード付き", "kind": "encrypted_zip"}),
    Defect("customer_code_missing", {"digits": "9", "pdf": "1"}),
    Defect("customer_code_multiple", {"codes": "012345678, 012345679"}),
    Defect("unis_customer_missing", {"customer_code": "012345678", "unis_as_of": "2026-11-27T06:00:00+09:00"}),
    Defect(
        "unis_order_missing",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "unis_as_of": "2026-11-27T06:00:00+09:00"},
    ),
    Defect(
        "unis_customer_class",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "unis_as_of": "2026-11-27T06:00:00+09:00"},
    ),
    Defect(
        "unis_customer_class",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "customer_class": "2", "unis_as_of": ""},
    ),
    Defect(
        "unis_order_taken",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "lines": "C0001/001(F-2026-0002)"},
    ),
    Defect(
        "unis_customer_cancelled",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "status": "解約", "unis_as_of": ""},
    ),
    Defect(
        "unis_line_contract",
        {
            "customer_code": "012345678",
            "line": "C0002/001",
            "contract": "C0002",
            "contracts": "C0001",
            "pattern": "A/B",
        },
    ),
    Defect(
        "unis_line_values",
        {
            "customer_code": "012345678",
            "line": "C0001/002",
            "pattern": "A/B",
            "screen": "契約明細",
            "field": "明細処理区分",
            "expected": "2 契約変更",
            "actual": "1 新設",
        },
    ),
    Defect("attachment_missing", {"document": "重要事項説明書", "by_person": "1"}),
)
_SAMPLE_FACTS = {
    "reason": "poison",
    "reply_suppressed": "cap",
    "error": "550 5.1.1 user unknown",
    "kind_ja": "受付",
    "to": "shibuya@example.co.jp",
    "subject": "RE: [F-2026-0001] フレッツエスカ 渋谷支店",
    "case_no": "F-2026-0001",
    # ops_unis_import
    "file": "unis_20261127.csv",
    "rows": "2,000,000",
    "padded_codes": "12",
    "padded_lines": "15, 208, 1022, ...",
    "bad_due_dates": "1",
    "bad_due_date_lines": "77",
    "bad_dates": "受注登録日: 2件(行 12, 40)",
    "unknown_states": "1",
    "unknown_state_lines": "51",
    "unknown_state_values": "受注済み",
    # a person's action, the case's stage, the notices' loop guards and ids
    "note": "副支店長がCCに入っていたため受付",
    "by": "山田",
    "resubmission": "1",
    "stage": "closed",
    "quarantine_id": "12",
    "mail_id": "34",
    "recipients_capped": "41",
    "message_id_reused": "1",
    # the UNIS line the case is bound to, the manual's pattern, what could not be checked
    "unis_line": "C0001/002",
    "unis_pattern": "A/B",
    "unchecked": "UNISの登録内容(開始年月)は確認していません(UNISの出力にその列がありません)",
    # the UBD path (manual §1): what was sent to 事務センター and the branch, who answered the 顧客CD
    "ubd": "1",
    "ubd_no_code": "1",
    "jimu_sent": "1",
    "code_request_sent": "1",
    "code_answered_by": "shibuya-mgr@example.co.jp",
    "unis_known": "1",
    "request_subject": "フレッツ光取次のお願い(株式会社みどり)",
    "documents": "回線単品申込書_みどり.pdf",
    "documents_attached": "1",
}


_SAMPLE_POLICY = Policy(
    desk_address="f-desk@example.co.jp",
    internal_domains=("example.co.jp",),
    ops_recipients=("ops@example.co.jp",),
)


def _sample_summaries() -> dict[str, dict[str, Any]]:
    """The weekly summaries' contexts, from their real builder over a sample week."""
    from mailbot.domain.branches import Branch, BranchDirectory
    from mailbot.service import summaries  # imported late: summaries builds on this module

    line = summaries.CaseLine(
        case_no="F-2026-0001",
        branch="渋谷支店",
        customer_code="012345678",
        customer_name="株式会社サンプル",
        status="returned",
        defects=[{"code": d.code, "detail": dict(d.detail)} for d in _SAMPLE_DEFECTS],
        since=datetime(2026, 11, 24, 9, 0, tzinfo=JST),
        age_days=3,
        return_count=1,
    )
    # An open return older than the listed days, so that the line counting such returns is rendered too.
    old = dataclasses.replace(line, case_no="F-2026-0000", since=datetime(2026, 6, 1, 9, 0, tzinfo=JST), age_days=182)
    week = summaries.BranchWeek("渋谷支店", received=3, accepted=[line], returned=[line], open_returns=[old, line])
    week.waiting.append(line)
    report = summaries.WeekReport(
        week=summaries.Week(2026, 48),
        as_of=datetime(2026, 11, 30, 8, 30, tzinfo=JST),
        branches={"渋谷支店": week},
    )
    directory = BranchDirectory([Branch("渋谷支店", (), "首都圏", ("shibuya-mgr@example.co.jp",))])
    mails, _ = summaries.plan_mails(report, directory=directory, policy=_SAMPLE_POLICY, open_returns_days=90)
    return {mail.kind: mail.context for mail in mails}


def _sample_own_context(kind: str) -> dict[str, Any] | None:
    """Kinds whose builder does not go through :func:`mail_context`: their context as built."""
    if kind in ("weekly_branch", "weekly_ops"):
        return _sample_summaries()[kind]
    # service.health.update_alerts builds these inline (and build_outbox_row's caller adds case_no).
    alert = {"case_no": "", "title": "メールボックスにログインできません", "since": "2026-11-27 09:00"}
    if kind == "ops_alert":
        return {**alert, "detail": "2026-11-27 09:00 から: login failed", "code": "mailbox_login"}
    if kind == "ops_alert_cleared":
        return {**alert, "cleared": "2026-11-27 10:00", "code": "mailbox_login"}
    return None


def sample_context(kind: str) -> dict[str, Any]:
    """A context like the one a real ``kind`` mail is rendered with, every field filled.

    Start-up renders each template once with it under StrictUndefined, so a
    misspelt variable fails there and not on the first real mail. Built with
    :func:`mail_context` itself (and, for the weekly summaries, with their own
    builder), so a variable added there comes along.
    """
    own = _sample_own_context(kind)
    if own is not None:
        return own
    sender = Address(name="渋谷 太郎", addr="shibuya@example.co.jp")
    message = ParsedMessage(
        identity="<sample@example.co.jp>",
        message_id="<sample@example.co.jp>",
        subject="RE: フレッツエスカ 渋谷支店 回線単品申込",
        sender=sender,
        to=(Address(name="納品デスク", addr="f-desk@example.co.jp"),),
        cc=(Address(name="渋谷支店長", addr="shibuya-mgr@example.co.jp"),),
        reply_to=(),
        date=datetime(2026, 11, 27, 0, 0, tzinfo=JST),
        in_reply_to=None,
        references=(),
        headers={},
        return_path="shibuya@example.co.jp",
        body_text="顧客CD:012345678",
        attachments=(),
        problems=(),
    )
    return mail_context(
        case_no="F-2026-0001",
        branch="渋谷支店",
        customer_code="012345678",
        customer_name="株式会社サンプル",
        defects=_SAMPLE_DEFECTS,
        message=message,
        received_at=datetime(2026, 11, 27, 9, 0, tzinfo=JST),
        policy=_SAMPLE_POLICY,
        facts=_SAMPLE_FACTS,
        extra={"unis_as_of": "2026-11-27 06:00", "same_customer": ["F-2026-0002"], "case_url": "https://desk/c/1"},
    )


def _subject_core(subject: str) -> str:
    """The branch's own subject without reply prefixes and without an earlier case tag.

    Only RE:/FW: markers and the case number (any bracket) are removed, with the
    domain's patterns (:mod:`mailbot.domain.subject`), so 【至急】 and the keyword
    survive as the branch wrote them.
    """
    text = " ".join(subject.split())
    core = strip_reply_prefixes(remove_case_tags(strip_reply_prefixes(text)))
    return " ".join(core.split()) or subject


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
    mail["Date"] = format_datetime(now.astimezone(JST))
    topic = clean_header(_subject_core(intent.reply_to.subject)) if in_reply_to and intent.reply_to else ""
    if topic:
        # Outlook groups a conversation by Thread-Index / Thread-Topic, not by
        # In-Reply-To: without them the receipt lands beside the request.
        mail["Thread-Topic"] = _header("Thread-Topic", topic)
    # RFC 3834: mark every mail as automatic so other robots never answer it.
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


_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=ZoneInfo("UTC"))


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
