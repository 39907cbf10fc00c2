"""Build raw mail bytes the way real clients write them, for tests.

The MIME is written by hand, not with ``email.generator``, so the bytes
match what the desk actually receives and the parser is not tested against
the same library that wrote its input:

* ``outlook``: Outlook 16 (Windows, Japanese). ISO-2022-JP everywhere,
  encoded with Microsoft's CP50220 tables: CP932 characters squeezed into
  7-bit JIS, so NEC row 13 (㈱ ①) and ～ ― survive, half-width katakana are
  widened. 7bit body, B-encoded headers, RFC 2047 words *inside* the quoted
  ``name=``/``filename=`` parameters, folded across lines when long.
* ``gmail``: UTF-8, base64 bodies, multipart/alternative text + html,
  RFC 2231 ``filename*=UTF-8''...`` parameters.
* ``iphone``: UTF-8 quoted-printable body, RFC 2231 filename with
  continuations (``filename*0*=``, ``filename*1*=``) and an RFC 2047
  ``name=`` on the Content-Type, ``X-Mailer: iPhone Mail``.

Everything is deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import quopri
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Literal
from urllib.parse import quote

__all__ = [
    "JST",
    "Style",
    "build_auto_reply",
    "build_bounce",
    "build_mail",
    "encode_iso2022jp_cp932",
]

Style = Literal["outlook", "gmail", "iphone"]
JST = timezone(timedelta(hours=9), "JST")
_DEFAULT_DATE = datetime(2024, 5, 13, 10, 30, 0, tzinfo=JST)
CRLF = b"\r\n"

_CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".heic": "image/heic",
    ".gif": "image/gif",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".zip": "application/zip",
}


# --- ISO-2022-JP the Outlook way -----------------------------------------


def _sjis_to_jis(lead: int, trail: int) -> bytes:
    # Inverse of the JIS -> Shift_JIS arithmetic, kept separate from the
    # parser's copy so a shared bug cannot cancel out in round-trip tests.
    row = (lead - (0xC1 if lead >= 0xE0 else 0x81)) * 2 + 0x21
    if trail >= 0x9F:
        return bytes((row + 1, trail - 0x7E))
    return bytes((row, trail - (0x20 if trail >= 0x80 else 0x1F)))


def encode_iso2022jp_cp932(text: str) -> bytes:
    """Encode like Outlook (CP50220): CP932 characters as 7-bit JIS.

    Half-width katakana become full-width (JIS X 0208 has no room for them
    in 7-bit ISO-2022-JP). Every line ends back in ASCII. Raises
    ``ValueError`` for characters CP932 cannot encode in a JIS row.
    """
    out = bytearray()
    jis = False
    for ch in _widen_katakana(text):
        if ord(ch) < 0x80 and ch not in "\x1b\x0e\x0f":
            if jis:
                out += b"\x1b(B"
                jis = False
            out += ch.encode("ascii")
            continue
        try:
            sjis = ch.encode("cp932")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{ch!r} cannot be written in ISO-2022-JP") from exc
        if len(sjis) != 2 or sjis[0] > 0xEF:
            raise ValueError(f"{ch!r} has no JIS X 0208 row in CP932")
        if not jis:
            out += b"\x1b$B"
            jis = True
        out += _sjis_to_jis(sjis[0], sjis[1])
    if jis:
        out += b"\x1b(B"
    return bytes(out)


def _widen_katakana(text: str) -> str:
    return re.sub(r"[\uff61-\uff9f]+", lambda m: unicodedata.normalize("NFKC", m.group(0)), text)


# --- header encoding --------------------------------------------------------


def _b_words(text: str, style: Style) -> list[str]:
    """Split ``text`` into RFC 2047 B-words of at most 75 characters each."""
    charset = {"outlook": "iso-2022-jp", "gmail": "UTF-8", "iphone": "utf-8"}[style]
    words: list[str] = []
    chunk = ""
    for ch in text:
        candidate = chunk + ch
        if chunk and len(_b_word(candidate, charset)) > 75:
            words.append(_b_word(chunk, charset))
            chunk = ch
        else:
            chunk = candidate
    if chunk:
        words.append(_b_word(chunk, charset))
    return words


def _b_word(text: str, charset: str) -> str:
    data = encode_iso2022jp_cp932(text) if charset == "iso-2022-jp" else text.encode("utf-8")
    # Apple writes the charset in lower case, Gmail in upper case.
    return f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?="


def _encode_text(text: str, style: Style) -> str:
    if text.isascii():
        return text
    return "\r\n ".join(_b_words(text, style))


def _split_mailbox(entry: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*(.*?)\s*<([^<>]+)>\s*", entry)
    if match:
        return match.group(1).strip().strip('"'), match.group(2).strip()
    return "", entry.strip()


def _encode_mailbox(entry: str, style: Style) -> str:
    name, addr = _split_mailbox(entry)
    if not name:
        return addr
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{addr}>'
    return f"{_encode_text(name, style)} <{addr}>"


def _address_list(entries: Sequence[str], style: Style) -> str:
    return ",\r\n\t".join(_encode_mailbox(e, style) for e in entries)


def _angle(msg_id: str) -> str:
    msg_id = msg_id.strip()
    return msg_id if msg_id.startswith("<") else f"<{msg_id}>"


# --- parts -----------------------------------------------------------------


def _content_type_for(filename: str) -> str:
    dot = filename.rfind(".")
    return _CONTENT_TYPES.get(filename[dot:].lower(), "application/octet-stream")


def _b64_lines(data: bytes, width: int = 76) -> bytes:
    encoded = base64.b64encode(data)
    return CRLF.join(encoded[i : i + width] for i in range(0, len(encoded), width))


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _part(headers: Sequence[str], body: bytes) -> bytes:
    return CRLF.join(h.encode("ascii") for h in headers) + CRLF + CRLF + body


def _multipart(boundary: str, parts: Sequence[bytes], preamble: str = "") -> bytes:
    out = preamble.encode("ascii") + CRLF if preamble else b""
    for part in parts:
        out += b"--" + boundary.encode("ascii") + CRLF + part + CRLF
    return out + b"--" + boundary.encode("ascii") + b"--" + CRLF


def _outlook_text(body: str) -> tuple[list[str], bytes]:
    headers = ['Content-Type: text/plain; charset="iso-2022-jp"', "Content-Transfer-Encoding: 7bit"]
    lines = [encode_iso2022jp_cp932(line) for line in _crlf(body).split("\r\n")]
    return headers, CRLF.join(lines)


def _gmail_text(body: str, subtype: str) -> bytes:
    headers = [
        f'Content-Type: text/{subtype}; charset="UTF-8"',
        "Content-Transfer-Encoding: base64",
    ]
    return _part(headers, _b64_lines(_crlf(body).encode("utf-8")))


def _iphone_text(body: str) -> tuple[list[str], bytes]:
    headers = [
        "Content-Type: text/plain;\r\n\tcharset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
    ]
    lines = body.replace("\r\n", "\n").split("\n")
    encoded = [quopri.encodestring(line.encode("utf-8")).replace(b"=\n", b"=\r\n") for line in lines]
    return headers, CRLF.join(encoded)


def _html(body: str) -> str:
    escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return '<div dir="ltr">' + escaped.replace("\n", "<br>") + "</div>"


def _rfc2231_continuations(filename: str) -> str:
    param = "filename"
    quoted = quote(filename.encode("utf-8"), safe="")
    first = f"utf-8''{quoted}"
    if len(first) <= 60:
        return f"{param}*={first}"
    # Split only between %XX escapes, 45 characters per segment, as Apple Mail does.
    pieces: list[str] = []
    current = "utf-8''"
    for token in re.findall(r"%[0-9A-F]{2}|[^%]", quoted):
        if len(current) + len(token) > 45:
            pieces.append(current)
            current = ""
        current += token
    pieces.append(current)
    return ";\r\n\t".join(f"{param}*{i}*={piece}" for i, piece in enumerate(pieces))


def _attachment_part(filename: str, data: bytes, style: Style, index: int) -> bytes:
    ctype = _content_type_for(filename)
    if style == "outlook":
        encoded = "\r\n ".join(_b_words(filename, style)) if not filename.isascii() else filename
        headers = [
            f'Content-Type: {ctype}; name="{encoded}"',
            f"Content-Description: {encoded}",
            f'Content-Disposition: attachment; filename="{encoded}"; size={len(data)};\r\n'
            '\tcreation-date="Mon, 13 May 2024 01:20:00 GMT";\r\n'
            '\tmodification-date="Mon, 13 May 2024 01:20:00 GMT"',
            "Content-Transfer-Encoding: base64",
        ]
    elif style == "gmail":
        # Gmail names the Content-Type with an RFC 2047 word, the disposition with RFC 2231.
        name_param = 'name="' + "\r\n ".join(_b_words(filename, style)) + '"'
        if filename.isascii():
            name_param = f'name="{filename}"'
        disposition = (
            f'filename="{filename}"'
            if filename.isascii()
            else "filename*=UTF-8''" + quote(filename.encode("utf-8"), safe="")
        )
        headers = [
            f"Content-Type: {ctype}; {name_param}",
            f"Content-Disposition: attachment; {disposition}",
            "Content-Transfer-Encoding: base64",
            f"Content-ID: <f_lw{index:04d}>",
            f"X-Attachment-Id: f_lw{index:04d}",
        ]
    else:
        rfc2047 = "\r\n ".join(_b_words(filename, style)) if not filename.isascii() else filename
        disposition = f'filename="{filename}"' if filename.isascii() else _rfc2231_continuations(filename)
        headers = [
            "Content-Disposition: attachment;\r\n\t" + disposition,
            f'Content-Type: {ctype};\r\n\tx-unix-mode=0644;\r\n\tname="{rfc2047}"',
            "Content-Transfer-Encoding: base64",
        ]
    return _part(headers, _b64_lines(data))


def _body_and_type(
    style: Style, body: str, attachments: Sequence[tuple[str, bytes]], seed: str
) -> tuple[list[str], bytes]:
    """Top-level Content-* headers and the encoded body of the message."""
    if style == "outlook":
        text_headers, text = _outlook_text(body)
    elif style == "iphone":
        text_headers, text = _iphone_text(body)
    else:
        alt_boundary = f"000000000000{seed[:12]}a"
        alternative = _multipart(alt_boundary, [_gmail_text(body, "plain"), _gmail_text(_html(body), "html")])
        text_headers = [f'Content-Type: multipart/alternative; boundary="{alt_boundary}"']
        text = alternative
    if not attachments:
        return text_headers, text
    boundary = {
        "outlook": f"_004_TYAPR01MB{seed[:8].upper()}TYAPR01MB_",
        "gmail": f"000000000000{seed[:12]}m",
        "iphone": f"Apple-Mail-{seed[:8].upper()}-{seed[8:12].upper()}",
    }[style]
    parts = [_part(text_headers, text)]
    parts += [_attachment_part(n, d, style, i) for i, (n, d) in enumerate(attachments)]
    top = [f'Content-Type: multipart/mixed;\r\n\tboundary="{boundary}"']
    return top, _multipart(boundary, parts)


def _default_message_id(style: Style, seed: str, sender: str) -> str:
    domain = _split_mailbox(sender)[1].rpartition("@")[2] or "example.invalid"
    if style == "outlook":
        host = f"TYAPR01MB{seed[16:20].upper()}.jpnprd01.prod.outlook.com"
        return f"<TYAPR01MB{seed[:16].upper()}@{host}>"
    if style == "gmail":
        token = base64.urlsafe_b64encode(bytes.fromhex(seed[:36])).decode("ascii")
        return f"<CA+{token}@mail.gmail.com>"
    uuid = f"{seed[:8]}-{seed[8:12]}-{seed[12:16]}-{seed[16:20]}-{seed[20:32]}".upper()
    return f"<{uuid}@{domain}>"


def build_mail(
    *,
    style: Style = "outlook",
    subject: str,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    body: str = "",
    attachments: Sequence[tuple[str, bytes]] = (),
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    date: datetime | None = None,
    extra_headers: Mapping[str, str] = {},  # read-only; part of the agreed API
    omit_message_id: bool = False,
) -> bytes:
    """Return one raw RFC 5322 message (CRLF line ends) as ``style`` writes it.

    ``sender``/``to``/``cc`` entries are ``"渋谷 太郎 <taro@usen.co.jp>"`` or a
    bare address. ``attachments`` are ``(filename, bytes)``; the content type
    follows the extension. Without ``message_id`` a deterministic one in the
    client's own format is derived from the arguments; ``omit_message_id``
    leaves the header out. ``date`` defaults to 2024-05-13 10:30 JST (naive
    datetimes are taken as JST). ``extra_headers`` are added at the end of the
    header block, RFC 2047-encoded in the style's charset when not ASCII.
    """
    seed = hashlib.sha256(
        repr(
            (style, subject, sender, tuple(to), tuple(cc), body, tuple(attachments),
             in_reply_to, tuple(references), date, sorted(extra_headers.items()))
        ).encode("utf-8")
    ).hexdigest()  # fmt: skip
    when = date or _DEFAULT_DATE
    if when.tzinfo is None:
        when = when.replace(tzinfo=JST)
    msg_id = None if omit_message_id else _angle(message_id or _default_message_id(style, seed, sender))

    headers: list[str] = []
    if style == "iphone":
        headers += ["Mime-Version: 1.0 (1.0)"]
    headers.append(f"From: {_encode_mailbox(sender, style)}")
    if to:
        headers.append(f"To: {_address_list(to, style)}")
    if cc:
        headers.append(f"{'CC' if style == 'outlook' else 'Cc'}: {_address_list(cc, style)}")
    headers.append(f"Subject: {_encode_text(subject, style)}")
    headers.append(f"Date: {format_datetime(when)}")
    if msg_id:
        headers.append(f"Message-ID: {msg_id}" if style != "iphone" else f"Message-Id: {msg_id}")
    if in_reply_to:
        headers.append(f"In-Reply-To: {_angle(in_reply_to)}")
    if references:
        headers.append("References: " + "\r\n ".join(_angle(r) for r in references))
    if style == "outlook":
        headers += [
            "Accept-Language: ja-JP, en-US",
            "Content-Language: ja-JP",
            "X-Mailer: Microsoft Outlook 16.0",
            "Thread-Index: AdqlCk1wXj3nZ8YbQ0m0c2s1a2tQ5A==",
            "MIME-Version: 1.0",
        ]
    elif style == "gmail":
        headers.insert(0, "MIME-Version: 1.0")
    else:
        headers.append("X-Mailer: iPhone Mail (21E236)")
    for name, value in extra_headers.items():
        headers.append(f"{name}: {_encode_text(value, style)}")
    content_headers, payload = _body_and_type(style, body, attachments, seed)
    return _part(headers + content_headers, payload)


def build_auto_reply(
    *,
    original_subject: str,
    sender: str,
    to: Sequence[str],
    in_reply_to: str | None = None,
    body: str = "ただいま不在にしております。5月20日に戻ります。",
    style: Style = "outlook",
    date: datetime | None = None,
    message_id: str | None = None,
    return_path: str = "<>",
) -> bytes:
    """An Exchange/Outlook out-of-office reply to a mail with ``original_subject``.

    Subject ``自動応答: <original>``, ``Auto-Submitted: auto-replied``,
    ``X-Auto-Response-Suppress: All``, and ``Return-Path: <>`` by default
    (Exchange sends OOF notices with the null reverse-path). ``sender`` is the
    absent person, ``to`` the original sender.
    """
    return build_mail(
        style=style,
        subject=f"自動応答: {original_subject}",
        sender=sender,
        to=to,
        body=body,
        in_reply_to=in_reply_to,
        references=(in_reply_to,) if in_reply_to else (),
        date=date,
        message_id=message_id,
        extra_headers={
            "Return-Path": return_path,
            "Auto-Submitted": "auto-replied",
            "X-Auto-Response-Suppress": "All",
            "X-MS-Exchange-Inbox-Rules-Loop": _split_mailbox(sender)[1],
        },
    )


def build_bounce(
    *,
    original: bytes,
    failed_recipient: str,
    to: str,
    reporting_mta: str = "mx01.usen.co.jp",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
    date: datetime | None = None,
    message_id: str | None = None,
) -> bytes:
    """A Postfix-style MAILER-DAEMON delivery status notification (RFC 3464).

    ``original`` is the returned mail (included whole as message/rfc822),
    ``failed_recipient`` the address that failed, ``to`` the envelope sender
    the DSN goes back to. The result has ``Return-Path: <>``,
    ``Auto-Submitted: auto-replied`` and ``multipart/report;
    report-type=delivery-status`` with the three standard parts.
    """
    when = date or _DEFAULT_DATE
    if when.tzinfo is None:
        when = when.replace(tzinfo=JST)
    seed = hashlib.sha256(original + failed_recipient.encode() + to.encode()).hexdigest()
    boundary = f"{seed[:10].upper()}.{seed[10:20]}/{reporting_mta}"
    msg_id = _angle(message_id or f"{seed[:14]}@{reporting_mta}")
    diag = diagnostic.format(rcpt=failed_recipient)
    human = (
        f"This is the mail system at host {reporting_mta}.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        f"<{failed_recipient}>: host said: {diag}\n"
    )
    status_block = _crlf(
        f"Reporting-MTA: dns; {reporting_mta}\n"
        f"Arrival-Date: {format_datetime(when)}\n\n"
        f"Final-Recipient: rfc822; {failed_recipient}\n"
        f"Original-Recipient: rfc822;{failed_recipient}\n"
        "Action: failed\n"
        f"Status: {status}\n"
        f"Diagnostic-Code: {diag}\n"
    ).encode("ascii")
    parts = [
        _part(
            ["Content-Description: Notification", "Content-Type: text/plain; charset=us-ascii"],
            _crlf(human).encode("ascii"),
        ),
        _part(
            ["Content-Description: Delivery report", "Content-Type: message/delivery-status"],
            status_block,
        ),
        _part(
            ["Content-Description: Undelivered Message", "Content-Type: message/rfc822"],
            original.rstrip(b"\r\n"),
        ),
    ]
    headers = [
        "Return-Path: <>",
        f"Date: {format_datetime(when)}",
        f"From: MAILER-DAEMON@{reporting_mta} (Mail Delivery System)",
        "Subject: Undelivered Mail Returned to Sender",
        f"To: {to}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"',
        f"Message-Id: {msg_id}",
    ]
    preamble = "This is a MIME-encapsulated message."
    return _part(headers, _multipart(boundary, parts, preamble))
