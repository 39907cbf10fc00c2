"""Turn one raw RFC 5322 message into a :class:`ParsedMessage`.

Built on the standard library ``email`` package with ``policy=compat32``,
with all decoding of header text, parameters and bodies done by
:mod:`mailbot.domain.japanese`. Why not the alternatives:

* mail-parser 4.8.0 (a wrapper over the same stdlib parser) hands back a
  7bit ISO-2022-JP text part as raw escape sequences instead of text, and its
  header decoding goes through ``email.header`` which rejects CP932
  extensions; checking and redoing every field would cost more than it saves.
* ``policy=default`` decodes headers itself, but it decodes ISO-2022-JP words
  with the strict codec (a ``㈱`` in a filename comes back still encoded as
  ``=?ISO-2022-JP?B?...?=`` from ``get_filename()``), and some malformed
  address headers make its header classes raise on access. compat32 keeps the
  raw text, which is what the Japanese-aware decoding needs, and never raises
  while parsing.

The parser is pure: no I/O, clock or environment.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from email import errors as email_errors
from email.header import Header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

from mailbot.domain.errors import UnparseableMessage
from mailbot.domain.japanese import (
    decode_bytes,
    decode_bytes_detailed,
    decode_header_value_detailed,
)
from mailbot.domain.model import Address, Attachment, ParsedMessage

__all__ = ["UnparseableMessage", "parse_message"]

# Nested multiparts deeper than this are hostile or broken; real clients
# rarely go beyond 5.
_MAX_DEPTH = 40
_MAX_FILENAME = 255


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse ``raw`` into a ParsedMessage; degrade and note problems, never raise
    on malformed MIME. Raises :class:`UnparseableMessage` only for non-mail."""
    _Parse.reject_non_mail(raw)
    try:
        return _Parse(raw).result()
    except RecursionError as exc:
        raise UnparseableMessage(f"MIME structure too deep: {exc}") from exc
    except Exception as exc:
        return _degraded(raw, exc)


def _degraded(raw: bytes, exc: Exception) -> ParsedMessage:
    """What the headers alone say, when walking the body failed on broken input."""
    try:
        parse = _Parse(raw)
        parse.note(f"body could not be read ({type(exc).__name__}: {_clip(str(exc))}); headers only")
        message_id = parse.message_id()
        from_ = parse.addresses("from")
        in_reply_to = _message_ids(parse.first("in-reply-to") or "")
        return ParsedMessage(
            identity=parse.identity(message_id),
            message_id=message_id,
            subject=parse.header_text(parse.first("subject") or ""),
            sender=from_[0] if from_ else None,
            to=parse.addresses("to"),
            cc=parse.addresses("cc"),
            reply_to=parse.addresses("reply-to"),
            date=parse.date(),
            in_reply_to=in_reply_to[0] if in_reply_to else None,
            references=tuple(m for v in parse.raw_headers.get("references", ()) for m in _message_ids(v)),
            headers=parse.headers(),
            return_path=parse.return_path(),
            body_text="",
            attachments=(),
            problems=tuple(parse.problems),
        )
    except Exception as again:
        raise UnparseableMessage(f"cannot read this message: {type(again).__name__}: {again}") from again


class _Parse:
    """One parse; collects problems while the fields are extracted."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.problems: list[str] = []
        self.msg = BytesParser(policy=compat32).parsebytes(self._repaired(raw))
        self.raw_headers = _raw_headers(self.msg)

    def _repaired(self, raw: bytes) -> bytes:
        data = _strip_preamble(raw)
        if len(data) != len(raw):
            self.note("byte-order mark or blank lines before the headers removed")
        head_end = _HEAD_END.search(data)
        cut = head_end.start() if head_end else len(data)
        head, fixes = _OBS_COLON.subn(rb"\1:", data[:cut])
        if fixes:
            # "Subject :" is RFC 822 obsolete syntax; the stdlib parser would
            # take it (and every header after it) for body text.
            self.note("whitespace before header colon removed")
        head, fixed_names = _repair_field_names(head)
        if fixed_names:
            self.note("invalid header field name repaired")
        return head + data[cut:]

    @staticmethod
    def reject_non_mail(raw: bytes) -> None:
        if not raw.strip():
            raise UnparseableMessage("empty input")
        lines = _strip_preamble(raw).split(b"\n", 2)
        if lines[0].startswith(b"From ") and len(lines) > 1:  # mbox separator line
            lines = lines[1:]
        if not _HEADER_LINE.match(lines[0]):
            raise UnparseableMessage("input does not start with a header field")

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    # -- headers ------------------------------------------------------------

    def header_text(self, value: str | Header) -> str:
        text, lossy = decode_header_value_detailed(value)
        if lossy:
            self.note("undecodable header text, decoded with replacement")
        return text

    def first(self, name: str) -> str | None:
        values = self.raw_headers.get(name)
        return values[0] if values else None

    def headers(self) -> dict[str, tuple[str, ...]]:
        return {name: tuple(self.header_text(v) for v in values) for name, values in self.raw_headers.items()}

    def addresses(self, name: str) -> tuple[Address, ...]:
        found: list[Address] = []
        for value in self.raw_headers.get(name, ()):
            found.extend(self._parse_address_list(name, value))
        return tuple(found)

    def _parse_address_list(self, name: str, value: str) -> Iterator[Address]:
        unfolded = _unfold(value)
        try:
            pairs = getaddresses([unfolded])
        except Exception:  # stdlib raised on hostile input (seen with huge headers)
            pairs = []
        parsed_any = False
        skipped: list[str] = []
        for display, addr in pairs:
            address = self._address(display, addr)
            if address is not None:
                parsed_any = True
                yield address
            elif display or addr:
                skipped.append(display or addr)
        if not parsed_any and unfolded.strip() and not _EMPTY_GROUP.fullmatch(unfolded):
            # getaddresses gave up; salvage anything shaped like an address.
            rescued = _ADDR_SPEC.findall(unfolded)
            if rescued:
                self.note(f"address in {name} recovered from malformed header")
                skipped = []
            for addr in rescued:
                yield Address(name="", addr=addr.lower())
        if skipped:
            self.note(f"malformed address in {name} skipped: {_clip(', '.join(skipped))}")

    def _address(self, display: str, addr: str) -> Address | None:
        addr = addr.strip()
        if not _ADDR_SPEC_FULL.fullmatch(addr):
            embedded = _ADDR_SPEC.findall(addr)
            if len(embedded) != 1:
                return None
            # "渋谷 太郎 taro@usen.co.jp" without brackets lands here whole.
            self.note("address without angle brackets repaired")
            display = display or addr.replace(embedded[0], "").strip()
            addr = embedded[0]
        name = self.header_text(display).strip() if display else ""
        return Address(name=_clean_label(name), addr=addr.lower())

    def date(self) -> datetime | None:
        value = self.first("date")
        if value is None:
            return None
        text = _unfold(self.header_text(value)).strip()
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            self.note("unparseable Date header ignored")
            return None
        if parsed.tzinfo is None:
            # "-0000" means UTC with no local zone known (RFC 5322 3.3).
            parsed = parsed.replace(tzinfo=UTC)
        return parsed

    def message_id(self) -> str | None:
        value = self.first("message-id")
        if value is None:
            return None
        ids = _message_ids(value)
        if not ids:
            self.note("empty or malformed Message-ID ignored")
            return None
        return ids[0]

    def return_path(self) -> str | None:
        value = self.first("return-path")
        if value is None:
            return None
        text = _unfold(value).strip()
        inner = text[text.find("<") + 1 : text.rfind(">")] if "<" in text else text
        inner = "".join(inner.split())
        return inner.lower()

    def identity(self, message_id: str | None) -> str:
        if message_id:
            return message_id
        digest = hashlib.sha256()
        for name in ("from", "to", "cc", "date", "subject"):
            for value in self.raw_headers.get(name, ()):
                digest.update(name.encode() + b":" + _canonical_header_bytes(value) + b"\n")
        digest.update(b"\n" + _canonical_body(self.raw))
        return f"<{digest.hexdigest()}@mailbot.invalid>"

    # -- body and attachments -----------------------------------------------

    def walk(self) -> tuple[str, tuple[Attachment, ...]]:
        walker = _Walker(self)
        walker.visit(self.msg, depth=0)
        for part in _all_parts(self.msg):
            for defect in part.defects:
                self.note(_defect_note(defect))
        return "\n".join(t for t in walker.texts if t.strip()), tuple(walker.attachments)

    def result(self) -> ParsedMessage:
        message_id = self.message_id()
        in_reply_to_ids = _message_ids(self.first("in-reply-to") or "")
        references: list[str] = []
        for value in self.raw_headers.get("references", ()):
            references.extend(_message_ids(value))
        from_ = self.addresses("from")
        subject = self.header_text(self.first("subject") or "")
        body, attachments = self.walk()
        return ParsedMessage(
            identity=self.identity(message_id),
            message_id=message_id,
            subject=subject,
            sender=from_[0] if from_ else None,
            to=self.addresses("to"),
            cc=self.addresses("cc"),
            reply_to=self.addresses("reply-to"),
            date=self.date(),
            in_reply_to=in_reply_to_ids[0] if in_reply_to_ids else None,
            references=tuple(references),
            headers=self.headers(),
            return_path=self.return_path(),
            body_text=body,
            attachments=attachments,
            problems=tuple(self.problems),
        )


class _Walker:
    """Depth-first MIME walk collecting body text and attachments."""

    def __init__(self, parse: _Parse) -> None:
        self.parse = parse
        self.texts: list[str] = []
        self.attachments: list[Attachment] = []

    def visit(self, part: Message, depth: int) -> None:
        if depth > _MAX_DEPTH:
            self.parse.note("MIME nesting too deep, inner parts skipped")
            return
        ctype = part.get_content_type()
        filename = self.filename(part)
        if ctype == "message/rfc822" and _transfer_encoding(part) in ("base64", "quoted-printable"):
            self.visit_reparsed(part, depth)
        elif part.is_multipart() and not ctype.startswith("message/delivery-status"):
            self.visit_container(part, ctype, depth)
        elif filename is not None or _is_attachment(part, ctype):
            self.add_attachment(part, ctype, filename)
        elif ctype == "text/html" or ctype.startswith("message/"):
            self.texts.append(self.text_of(part, ctype))
        elif ctype.startswith("text/") or ctype.startswith("multipart/"):
            # Any other text reads as plain text. A multipart with no usable
            # boundary arrives as one opaque payload; its text is still the
            # best body there is.
            self.texts.append(self.text_of(part, "text/plain"))
        else:
            self.add_attachment(part, ctype, None)

    def visit_container(self, part: Message, ctype: str, depth: int) -> None:
        children = [c for c in _children(part) if isinstance(c, Message)]
        if ctype == "multipart/alternative":
            chosen = _preferred_alternative(children)
            # Apple Mail puts a file the sender attached inside the HTML
            # branch (alternative[plain, related[html, image]]): the branch
            # not read for text still hands over its named attachments.
            for other in children:
                if other not in chosen:
                    self.visit_named_attachments(other, depth + 1)
            children = chosen
        # message/rfc822 (a forwarded or returned mail) is walked like a
        # multipart: its text joins the body and its attachments are listed;
        # the .eml wrapper itself is not an attachment.
        for child in children:
            self.visit(child, depth + 1)

    def visit_named_attachments(self, part: Message, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        if part.is_multipart():
            for child in _children(part):
                self.visit_named_attachments(child, depth + 1)
            return
        # A leaf is never message/*: compat32 gives every message/* part a list
        # payload (the inner mail, or delivery-status blocks), so it is a multipart.
        filename = self.filename(part)
        if filename is not None:
            self.add_attachment(part, part.get_content_type(), filename)

    def visit_reparsed(self, part: Message, depth: int) -> None:
        # RFC 2046 forbids base64/QP on message/rfc822, but some mailers do it;
        # compat32 then parses the encoded text as the inner message.
        self.parse.note("transfer-encoded message/rfc822 part decoded")
        data = _payload_bytes(part)  # the encoded text, re-serialised
        # Newlines before the text need no stripping: base64 skips them, and
        # QP decodes them to newlines that _strip_preamble removes.
        decoded = _strip_preamble(_decode_transfer(data, _transfer_encoding(part)))
        self.visit(BytesParser(policy=compat32).parsebytes(decoded), depth + 1)

    def filename(self, part: Message) -> str | None:
        for header, param in (("content-disposition", "filename"), ("content-type", "name")):
            value = _get_param(part, param, header)
            if value is None:
                continue
            name = self.decode_param(value)
            if name:
                return name
        return None

    def decode_param(self, value: str | tuple[str | None, str | None, str]) -> str:
        if isinstance(value, tuple):
            # RFC 2231: compat32 leaves the percent-decoded bytes as latin-1 text.
            charset, _lang, text = value
            # Mangled input can leave characters beyond latin-1 here; keep their UTF-8 bytes.
            # No surrogate escapes reach this: _get_param decodes a raw 8-bit header first.
            data = b"".join(ch.encode("latin-1") if ord(ch) < 256 else ch.encode("utf-8") for ch in text)
            result = decode_bytes_detailed(data, charset or None)
            if result.lossy:
                self.parse.note("undecodable attachment filename, decoded with replacement")
            # Some clients put RFC 2047 words inside RFC 2231 values too.
            return self.parse.header_text(result.text)
        # Outlook writes RFC 2047 words inside the quoted parameter value.
        return self.parse.header_text(value)

    def add_attachment(self, part: Message, ctype: str, filename: str | None) -> None:
        payload = _payload_bytes(part)
        label = _clean_label(filename or "")
        if filename and label != filename:
            self.parse.note("attachment filename sanitised")
        if not label:
            label = f"attachment-{len(self.attachments) + 1}{_extension_for(ctype)}"
        self.attachments.append(Attachment(filename=label, content_type=ctype, payload=payload))

    def text_of(self, part: Message, ctype: str) -> str:
        if ctype.startswith("message/"):
            return _message_block_text(part)
        data = _payload_bytes(part)
        charset = part.get_content_charset() or (_html_charset(data) if ctype == "text/html" else None)
        result = decode_bytes_detailed(data, charset)
        if result.lossy:
            self.parse.note("undecodable text part, decoded with replacement")
        elif result.guessed and charset:
            self.parse.note(f"text part declared {charset} but decoded as {result.codec}")
        elif result.guessed:
            # Unlabelled bytes that read as both Shift_JIS and EUC-JP, neither with kana.
            self.parse.note(f"text part without a charset, guessed as {result.codec}")
        text = result.text
        if ctype == "text/html":
            text = _html_to_text(text, self.parse)
        return text.replace("\r\n", "\n").replace("\r", "\n")


# --- helpers ----------------------------------------------------------------

_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")
_ADDR_SPEC = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@[A-Za-z0-9.\-\[\]:]+[A-Za-z0-9\]]")
_ADDR_SPEC_FULL = re.compile(r"[^\s@<>(),;:\"\[\]]+@[^\s@<>(),;:\"]+")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_OBS_COLON = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:", re.MULTILINE)
_VALID_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_BAD_NAME_CHARS = re.compile(rb"[^\x21-\x39\x3b-\x7e]")
_EMPTY_GROUP = re.compile(r"\s*[^:@]*:\s*;?\s*")
_MSG_ID = re.compile(r"<([^<>]*)>")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# Cc (controls), bidi overrides and zero-width joiners can disguise a
# filename's extension; path separators could escape a directory.
_UNSAFE_LABEL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")

_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/msword": ".doc",
    "application/zip": ".zip",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "image/tiff": ".tif",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/csv": ".csv",
    "message/rfc822": ".eml",
}


def _raw_headers(msg: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    # raw_items() keeps the undecoded text (8-bit bytes as surrogates), which
    # msg[name] would turn into a Header object for the same information.
    for name, value in msg.raw_items():
        # The bytes parser stores every value as str (never a Header object).
        headers.setdefault(str(name).strip().lower(), []).append(str(value))
    return headers


def _repair_field_names(head: bytes) -> tuple[bytes, bool]:
    # The stdlib parser ends the header block at the first line whose field
    # name has a space or 8-bit byte, and parses the rest of the headers as
    # body (losing e.g. a later Content-Transfer-Encoding). If everything from
    # that line to the blank line still looks like headers, it is a header
    # with a bad name, so the name is made valid instead.
    lines = head.split(b"\n")
    first_bad = next(
        (
            i
            for i, line in enumerate(lines)
            if line.strip(b"\r")
            and not _VALID_FIELD.match(line)
            and not line.startswith((b" ", b"\t"))
            and not (i == 0 and line.startswith(b"From "))
        ),
        None,
    )
    if first_bad is None:
        return head, False
    rest = lines[first_bad:]
    if not all(b":" in line or line.startswith((b" ", b"\t")) for line in rest):
        return head, False  # a body that lacks its blank separator line
    for i in range(first_bad, len(lines)):
        line = lines[i]
        if line.startswith((b" ", b"\t")) or _VALID_FIELD.match(line):
            continue
        name, _, value = line.partition(b":")
        safe = _BAD_NAME_CHARS.sub(b"_", name.strip()) or b"X-Invalid-Header"
        lines[i] = safe + b":" + value
    return b"\n".join(lines), True


def _strip_preamble(raw: bytes) -> bytes:
    return raw.lstrip(b"\r\n\t ").removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n\t ")


def _unfold(value: str) -> str:
    return _FOLD.sub("", _without_surrogates(value))


def _without_surrogates(value: str) -> str:
    # Raw 8-bit headers (RFC 6532 UTF-8 addresses) arrive surrogate-escaped;
    # such strings cannot be stored or encoded, so decode the bytes for real.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return decode_bytes(value.encode("utf-8", "surrogateescape"), "utf-8")
    return value


def _clip(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _message_ids(value: str) -> list[str]:
    text = _unfold(value)
    ids = ["<" + "".join(m.split()) + ">" for m in _MSG_ID.findall(text)]
    ids = [i for i in ids if i != "<>"]
    if ids:
        return ids
    # Some mailers omit the brackets; accept bare tokens that look like ids.
    return [f"<{token}>" for token in text.split() if "@" in token and "<" not in token]


def _canonical_header_bytes(value: str) -> bytes:
    # _unfold has already decoded any surrogate-escaped 8-bit bytes.
    return " ".join(_unfold(value).split()).encode()


def _canonical_body(raw: bytes) -> bytes:
    # Transports may rewrite line endings or add trailing blank lines; neither
    # makes it a different mail.
    match = re.search(rb"\r?\n\r?\n", raw)
    body = raw[match.end() :] if match else b""
    return body.replace(b"\r\n", b"\n").rstrip()


def _clean_label(name: str) -> str:
    name = unicodedata.normalize("NFC", name)
    # A sender's path ("C:\\Users\\...\\申請書.pdf") is not part of the label.
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE_LABEL_CHARS.sub("", name).strip()
    if name in {".", ".."}:
        return ""
    return name[:_MAX_FILENAME]


def _get_param(part: Message, param: str, header: str) -> str | tuple[str | None, str | None, str] | None:
    target = part
    raw = next((str(v) for k, v in part.raw_items() if str(k).lower() == header), None)
    if raw is not None and not raw.isascii():
        # Raw 8-bit bytes in a parameter (some webmail and phone clients send
        # filename="申込書.pdf" unencoded): compat32 would hand get_param a
        # Header whose str() has already replaced them with U+FFFD, so the
        # bytes are decoded first and the parameter read from that text.
        text = decode_bytes_detailed(raw.encode("utf-8", "surrogateescape"), None).text
        target = Message()
        target[header] = text
    try:
        value = target.get_param(param, header=header)
    except Exception:  # compat32 can trip on hostile parameter syntax
        return None
    # An RFC 2231 value comes back as (charset or None, language or None, text).
    return value


def _is_attachment(part: Message, ctype: str) -> bool:
    # str(): compat32 returns a Header object when the value has 8-bit bytes.
    disposition = str(part.get("content-disposition") or "").split(";", 1)[0]
    return disposition.strip().lower() == "attachment" and not ctype.startswith("message/")


def _children(part: Message) -> list[Message]:
    # Only ask a multipart for its payload: on a leaf, get_payload() decodes
    # 8-bit text with the declared charset and raises on a mangled one.
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def _all_parts(msg: Message) -> Iterator[Message]:
    stack = [msg]
    seen = 0
    while stack and seen < 10_000:
        part = stack.pop()
        seen += 1
        yield part
        stack.extend(_children(part))


def _preferred_alternative(children: list[Message]) -> list[Message]:
    # Prefer the plain-text rendering; fall back to whatever else is there
    # (HTML, or a nested multipart/related holding the HTML).
    for child in children:
        if child.get_content_type() == "text/plain" and _get_param(child, "filename", "content-disposition") is None:
            return [child]
    for child in children:
        if child.get_content_type() == "text/html" or child.is_multipart():
            return [child]
    return children[:1]


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # decoding junk must not sink the whole message
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    if isinstance(raw, list):
        try:
            return b"".join(p.as_bytes() for p in raw if isinstance(p, Message))
        except Exception:  # re-serialising a broken part; its bytes are not essential
            return b""
    return b""


def _transfer_encoding(part: Message) -> str:
    return str(part.get("content-transfer-encoding", "")).strip().lower()


def _decode_transfer(data: bytes, cte: str) -> bytes:
    # Reuse compat32's tolerant base64/QP decoding via a throwaway part.
    carrier = Message()
    carrier["Content-Transfer-Encoding"] = cte
    carrier.set_payload(data.decode("ascii", "surrogateescape"))
    decoded = carrier.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else data


def _message_block_text(part: Message) -> str:
    # message/delivery-status and similar: header-style blocks worth keeping
    # as text for bounce handling.
    # compat32 always hands such a part over as a list of blocks (at least
    # one, possibly empty); there is no other payload to fall back on.
    blocks = []
    for block in _children(part):
        lines = [f"{name}: {decode_header_value_detailed(value)[0]}" for name, value in block.raw_items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _html_charset(data: bytes) -> str | None:
    match = re.search(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_\-]+)", data[:4096], re.I)
    return match.group(1).decode("ascii") if match else None


class _HTMLText(HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table", "hr"})
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _html_to_text(html: str, parse: _Parse) -> str:
    extractor = _HTMLText()
    try:
        extractor.feed(html)
        extractor.close()
        text = "".join(extractor.parts)
    except Exception:  # HTMLParser can assert on some broken markup
        parse.note("broken HTML part, tags stripped crudely")
        text = re.sub(r"<[^>]*>", " ", html)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _extension_for(ctype: str) -> str:
    return _EXTENSIONS.get(ctype, ".bin")


def _defect_note(defect: email_errors.MessageDefect | Exception) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return f"MIME defect repaired: {words}"
