"""The mail factory writes what each client really writes.

Checked with the standard library (and raw byte inspection), not with
mailbot's parser, so a parser bug cannot hide a factory bug.
"""

from __future__ import annotations

import email
import re
from datetime import datetime
from email.header import decode_header
from email.message import Message
from email.policy import compat32

import pytest

from tests.mailfactory import (
    build_auto_reply,
    build_bounce,
    build_mail,
    encode_iso2022jp_cp932,
)

SENDER = "渋谷 太郎 <taro@usen.co.jp>"
TO = ["f-desk@usen.co.jp"]
LONG_NAME = "申込書_とても長いファイル名で継続行に分割されることを確かめる.pdf"


def _parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=compat32)


def _mail(style: str = "outlook", **overrides: object) -> bytes:
    kwargs: dict[str, object] = {
        "style": style,
        "subject": "フレッツエスカ 渋谷支店",
        "sender": SENDER,
        "to": TO,
        "body": "お世話になります。\n渋谷支店です。\n",
    }
    kwargs.update(overrides)
    return build_mail(**kwargs)  # type: ignore[arg-type]


def _header_bytes(value: str) -> bytes:
    return b"".join(chunk if isinstance(chunk, bytes) else chunk.encode() for chunk, _ in decode_header(value))


# --- encode_iso2022jp_cp932 ---------------------------------------------------


def test_plain_jis_text_encodes_exactly_like_the_stdlib_codec() -> None:
    text = "渋谷支店 テスト abc"
    assert encode_iso2022jp_cp932(text) == text.encode("iso2022_jp")


def test_cp932_extensions_encode_to_their_jis_rows() -> None:
    # ㈱ 2D6A, ① 2D21, ～ 2141, ― 213D, 髙 7C62 (NEC-selected IBM extension)
    assert encode_iso2022jp_cp932("㈱①～―髙") == b"\x1b$B-j-!!A!=|b\x1b(B"


def test_halfwidth_katakana_are_widened_like_cp50220() -> None:
    assert encode_iso2022jp_cp932("ﾃｽﾄ") == "テスト".encode("iso2022_jp")


def test_characters_outside_cp932_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_iso2022jp_cp932("📧")


# --- outlook ------------------------------------------------------------------


def test_outlook_mail_is_seven_bit_iso2022jp_from_outlook16() -> None:
    raw = _mail("outlook", body="㈱テスト①～―\n", attachments=[("申込書㈱.pdf", b"%PDF")])
    assert raw.isascii()
    msg = _parse(raw)
    assert msg["X-Mailer"] == "Microsoft Outlook 16.0"
    text_part = msg.get_payload()[0]
    assert text_part.get_content_charset() == "iso-2022-jp"
    assert text_part["Content-Transfer-Encoding"] == "7bit"
    assert text_part.get_payload(decode=True) == b"\x1b$B-j%F%9%H-!!A!=\x1b(B\r\n"


def test_outlook_subject_and_display_name_are_b_encoded_iso2022jp() -> None:
    raw = _mail("outlook", subject="㈱渋谷", sender="㈱渋谷 <a@usen.co.jp>")
    msg = _parse(raw)
    assert msg["Subject"].startswith("=?iso-2022-jp?B?")
    assert _header_bytes(msg["Subject"]) == b"\x1b$B-j=BC+\x1b(B"
    assert _header_bytes(msg["From"].split(" <")[0]) == b"\x1b$B-j=BC+\x1b(B"
    assert msg["From"].endswith("<a@usen.co.jp>")


def test_outlook_attachment_names_are_rfc2047_words_inside_the_parameters() -> None:
    raw = _mail("outlook", attachments=[("申込書㈱.pdf", b"%PDF")])
    part = _parse(raw).get_payload()[1]
    for header in ("Content-Type", "Content-Disposition"):
        assert re.search(r'name="=\?iso-2022-jp\?B\?', part[header])
    assert _header_bytes(part.get_filename()) == b"\x1b$B?=9~=q-j\x1b(B.pdf"
    assert part.get_payload(decode=True) == b"%PDF"


def test_outlook_long_values_are_split_into_short_folded_words() -> None:
    raw = _mail("outlook", subject="フレッツエスカ" * 8, attachments=[(LONG_NAME, b"x")])
    for word in re.findall(rb"=\?[^?]+\?[BQ]\?[^?]*\?=", raw):
        assert len(word) <= 75
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    part = _parse(raw).get_payload()[1]
    assert len(decode_header(part.get_filename())) >= 1
    assert "\r\n " in part.get_filename()


# --- gmail ----------------------------------------------------------------------


def test_gmail_mail_is_utf8_base64_alternative_with_html() -> None:
    msg = _parse(_mail("gmail", attachments=[("申込書.pdf", b"%PDF")]))
    alternative = msg.get_payload()[0]
    assert alternative.get_content_type() == "multipart/alternative"
    plain, html = alternative.get_payload()
    assert plain["Content-Transfer-Encoding"] == "base64"
    assert plain.get_payload(decode=True).decode("utf-8") == "お世話になります。\r\n渋谷支店です。\r\n"
    assert html.get_content_type() == "text/html"
    assert "渋谷支店です。" in html.get_payload(decode=True).decode("utf-8")


def test_gmail_filename_is_rfc2231_utf8() -> None:
    raw = _mail("gmail", attachments=[("申込書㈱.pdf", b"%PDF")])
    assert b"filename*=UTF-8''%E7%94%B3%E8%BE%BC%E6%9B%B8%E3%88%B1.pdf" in raw
    part = _parse(raw).get_payload()[1]
    assert part.get_filename() == "申込書㈱.pdf"


def test_gmail_headers_are_utf8_words() -> None:
    msg = _parse(_mail("gmail"))
    assert msg["Subject"].startswith("=?UTF-8?B?")
    assert b"".join(c for c, _ in decode_header(msg["Subject"])).decode() == "フレッツエスカ 渋谷支店"


# --- iphone ---------------------------------------------------------------------


def test_iphone_body_is_utf8_quoted_printable() -> None:
    msg = _parse(_mail("iphone", attachments=[("a.pdf", b"x")]))
    assert msg["X-Mailer"].startswith("iPhone Mail")
    text = msg.get_payload()[0]
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_payload(decode=True).decode("utf-8") == "お世話になります。\r\n渋谷支店です。\r\n"


def test_iphone_long_filename_uses_rfc2231_continuations_and_rfc2047_name() -> None:
    raw = _mail("iphone", attachments=[(LONG_NAME, b"%PDF")])
    assert b"filename*0*=utf-8''" in raw
    assert b"filename*1*=" in raw
    part = _parse(raw).get_payload()[1]
    assert part.get_filename() == LONG_NAME
    name = part.get_param("name")
    assert isinstance(name, str) and name.startswith("=?utf-8?B?")
    assert b"".join(c for c, _ in decode_header(name)).decode() == LONG_NAME


# --- common behaviour ------------------------------------------------------------


@pytest.mark.parametrize("style", ["outlook", "gmail", "iphone"])
def test_same_arguments_give_the_same_bytes_and_message_id(style: str) -> None:
    assert _mail(style) == _mail(style)
    first = _parse(_mail(style))["Message-ID"]
    other = _parse(_mail(style, body="別の本文"))["Message-ID"]
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", first)
    assert first != other


@pytest.mark.parametrize("style", ["outlook", "gmail", "iphone"])
def test_message_id_can_be_given_or_omitted(style: str) -> None:
    assert _parse(_mail(style, message_id="given@x.jp"))["Message-ID"] == "<given@x.jp>"
    assert _parse(_mail(style, omit_message_id=True))["Message-ID"] is None


def test_threading_headers_and_date_are_written() -> None:
    msg = _parse(
        _mail(
            in_reply_to="root@x.jp",
            references=["<root@x.jp>", "<mid@x.jp>"],
            date=datetime(2024, 6, 1, 9, 0),
        )
    )
    assert msg["In-Reply-To"] == "<root@x.jp>"
    assert msg["References"].split() == ["<root@x.jp>", "<mid@x.jp>"]
    assert msg["Date"] == "Sat, 01 Jun 2024 09:00:00 +0900"


def test_cc_and_extra_headers_are_written() -> None:
    raw = _mail(
        "gmail",
        cc=["支店長 <mgr@usen.co.jp>", "b@usen.co.jp"],
        extra_headers={"X-Test": "渋谷", "Precedence": "bulk"},
    )
    msg = _parse(raw)
    assert msg["Cc"].endswith("b@usen.co.jp")
    assert "<mgr@usen.co.jp>" in msg["Cc"]
    assert b"".join(c for c, _ in decode_header(msg["X-Test"])).decode() == "渋谷"
    assert msg["Precedence"] == "bulk"


def test_auto_reply_is_marked_auto_submitted_with_null_return_path() -> None:
    msg = _parse(
        build_auto_reply(
            original_subject="フレッツエスカ 渋谷支店",
            sender="b@usen.co.jp",
            to=TO,
            in_reply_to="<x@y>",
        )
    )
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Return-Path"] == "<>"
    assert msg["In-Reply-To"] == "<x@y>"


def test_bounce_is_a_delivery_status_report_carrying_the_original() -> None:
    original = _mail()
    msg = _parse(build_bounce(original=original, failed_recipient="gone@usen.co.jp", to="taro@usen.co.jp"))
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Return-Path"] == "<>"
    assert msg["From"].startswith("MAILER-DAEMON@")
    types = [p.get_content_type() for p in msg.get_payload()]
    assert types == ["text/plain", "message/delivery-status", "message/rfc822"]
    returned = msg.get_payload()[2].get_payload()[0]
    assert returned["Subject"] == _parse(original)["Subject"]
