"""parse_message: real-client encodings, malformed MIME, and the public corpus.

The first group feeds hand-written raw bytes (not the factory) so the factory
is not only testing itself; the JIS codes used are noted next to each literal.
"""

from __future__ import annotations

import base64
import email
import re
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header as stdlib_decode_header
from email.policy import compat32
from pathlib import Path

import pytest

from mailbot.domain.model import Address, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from tests.mailfactory import build_auto_reply, build_bounce, build_mail
from tests.required import CORPUS, corpus_files, need_corpus

JST = timezone(timedelta(hours=9))
STYLES = ("outlook", "gmail", "iphone")

# --- hand-written raw mail ---------------------------------------------------

# Outlook 16, Japanese: ISO-2022-JP with NEC row 13 in the display name, the
# subject and inside the quoted filename parameters.
#   GyRCLWo9QkMrGyhC                 = ESC$B "-j" (㈱) "=BC+" (渋谷) ESC(B
#   GyRCJVUlbCVDJUQlKCU5JSsbKEI=     = フレッツエスカ
#   GyRCPUJDKztZRTkbKEI=             = 渋谷支店
#   GyRCPz05fj1xLWobKEIucGRm         = 申込書㈱.pdf
OUTLOOK_RAW = (
    b"Received: from TYAPR01MB1234.jpnprd01.prod.outlook.com by mx.usen.co.jp; "
    b"Mon, 13 May 2024 10:00:02 +0900\r\n"
    b"From: =?iso-2022-jp?B?GyRCLWo9QkMrGyhC?= <Shibuya@Usen.co.jp>\r\n"
    b"To: f-desk <f-desk@usen.co.jp>\r\n"
    b"CC: =?iso-2022-jp?B?GyRCPUJDKztZRTkbKEI=?= <mgr@usen.co.jp>\r\n"
    b"Subject: =?iso-2022-jp?B?GyRCJVUlbCVDJUQlKCU5JSsbKEI=?=\r\n"
    b" =?iso-2022-jp?B?GyRCPUJDKztZRTkbKEI=?=\r\n"
    b"Date: Mon, 13 May 2024 10:00:00 +0900\r\n"
    b"Message-ID: <TYAPR01MB0001@TYAPR01MB0001.jpnprd01.prod.outlook.com>\r\n"
    b"X-Mailer: Microsoft Outlook 16.0\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="_004_TYAPR01MB0001_"\r\n'
    b"\r\n"
    b"--_004_TYAPR01MB0001_\r\n"
    b'Content-Type: text/plain; charset="iso-2022-jp"\r\n'
    b"Content-Transfer-Encoding: 7bit\r\n"
    b"\r\n"
    # お世話になります。 / ㈱テスト①～―
    b"\x1b$B$*@$OC$K$J$j$^$9!#\x1b(B\r\n"
    b"\x1b$B-j%F%9%H-!!A!=\x1b(B\r\n"
    b"--_004_TYAPR01MB0001_\r\n"
    b'Content-Type: application/pdf; name="=?iso-2022-jp?B?GyRCPz05fj1xLWobKEIucGRm?="\r\n'
    b"Content-Description: =?iso-2022-jp?B?GyRCPz05fj1xLWobKEIucGRm?=\r\n"
    b'Content-Disposition: attachment; filename="=?iso-2022-jp?B?GyRCPz05fj1xLWobKEIucGRm?=";\r\n'
    b'\tsize=8; creation-date="Mon, 13 May 2024 01:00:00 GMT"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQ=\r\n"
    b"--_004_TYAPR01MB0001_--\r\n"
)


def test_literal_outlook_mail_decodes_subject_with_folded_words() -> None:
    assert parse_message(OUTLOOK_RAW).subject == "フレッツエスカ渋谷支店"


def test_literal_outlook_display_name_with_cp932_extension_decodes() -> None:
    parsed = parse_message(OUTLOOK_RAW)
    assert parsed.sender == Address(name="㈱渋谷", addr="shibuya@usen.co.jp")
    assert parsed.cc == (Address(name="渋谷支店", addr="mgr@usen.co.jp"),)
    assert parsed.to == (Address(name="f-desk", addr="f-desk@usen.co.jp"),)


def test_literal_outlook_filename_with_cp932_extension_decodes() -> None:
    (attachment,) = parse_message(OUTLOOK_RAW).attachments
    assert attachment.filename == "申込書㈱.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.payload == b"%PDF-1.4"


def test_literal_outlook_7bit_iso2022jp_body_is_decoded_text_not_escapes() -> None:
    parsed = parse_message(OUTLOOK_RAW)
    # The CRLF before a boundary belongs to the boundary (RFC 2046).
    assert parsed.body_text == "お世話になります。\n㈱テスト①～―"
    assert "\x1b" not in parsed.body_text
    assert parsed.problems == ()


def test_literal_outlook_mail_keeps_ids_and_date() -> None:
    parsed = parse_message(OUTLOOK_RAW)
    assert parsed.message_id == "<TYAPR01MB0001@TYAPR01MB0001.jpnprd01.prod.outlook.com>"
    assert parsed.identity == parsed.message_id
    assert parsed.date == datetime(2024, 5, 13, 1, 0, tzinfo=UTC)
    assert parsed.date is not None and parsed.date.utcoffset() == timedelta(hours=9)


def _mail(headers: bytes, body: bytes) -> bytes:
    base = b"From: a@usen.co.jp\r\nTo: f-desk@usen.co.jp\r\nSubject: s\r\n"
    return base + headers + b"\r\n" + body


def test_literal_rfc2231_continuation_filename_decodes() -> None:
    raw = _mail(
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n',
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment;\r\n"
        b"\tfilename*0*=UTF-8''%E7%94%B3%E8%BE%BC%E6%9B%B8;\r\n"
        b"\tfilename*1*=%E3%88%B1%E2%91%A0;\r\n"
        b"\tfilename*2=.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n",
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.filename == "申込書㈱①.pdf"
    assert attachment.payload == b"%PDF"


def test_literal_rfc2231_filename_in_shift_jis_decodes() -> None:
    # 渋谷申込書.pdf in CP932, percent-encoded.
    raw = _mail(
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n',
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=shift_jis''%8Fa%92J%90%5C%8D%9E%8F%91.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n",
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.filename == "渋谷申込書.pdf"
    assert attachment.payload == b"\x00\x01\x02"


def test_literal_rfc2047_name_in_shift_jis_on_content_type_only_decodes() -> None:
    # kFyNno+RLnhsc3g= is 申込書.xlsx in Shift_JIS; no Content-Disposition at all.
    raw = _mail(
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n',
        b"--b\r\nContent-Type: application/vnd.ms-excel;\r\n"
        b' name="=?Shift_JIS?B?kFyNno+RLnhsc3g=?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n",
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.filename == "申込書.xlsx"


def test_literal_shift_jis_body_with_halfwidth_katakana_decodes() -> None:
    body = "ﾌﾚｯﾂｴｽｶ 渋谷支店 ①\r\n".encode("cp932")
    raw = _mail(
        b"Content-Type: text/plain; charset=Shift_JIS\r\nContent-Transfer-Encoding: 8bit\r\n",
        body,
    )
    assert parse_message(raw).body_text == "ﾌﾚｯﾂｴｽｶ 渋谷支店 ①\n"


def test_literal_quoted_printable_utf8_body_decodes() -> None:
    raw = _mail(
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
        b"=E6=B8=8B=E8=B0=B7=\r\n=E6=94=AF=E5=BA=97\r\n",
    )
    assert parse_message(raw).body_text == "渋谷支店\n"


def test_literal_euc_jp_subject_and_body_decode() -> None:
    raw = (
        b"From: a@usen.co.jp\r\nSubject: =?EUC-JP?B?pdWl7KXDpcSlqKW5pas=?=\r\n"
        b"Content-Type: text/plain; charset=EUC-JP\r\n\r\n" + "渋谷支店".encode("euc_jp")
    )
    parsed = parse_message(raw)
    assert parsed.subject == "フレッツエスカ"
    assert parsed.body_text == "渋谷支店"


def test_literal_quoted_encoded_word_display_name_decodes() -> None:
    raw = _mail(b'Cc: "=?ISO-2022-JP?B?GyRCLWo9QkMrGyhC?=" <X@Y.JP>\r\n', b"x")
    assert parse_message(raw).cc == (Address(name="㈱渋谷", addr="x@y.jp"),)


# --- factory-built mail, all three clients -----------------------------------

SUBJECT = "フレッツエスカ ㈱渋谷支店 ①～― ｶﾀｶﾅ 長い件名がここで折り返されることを確かめるための文章です"
FILENAME = "申込書㈱①_とても長いファイル名で継続行に分割されることを確かめる.pdf"
BODY = "お世話になります。\n㈱渋谷支店の①～―です。\nｶﾀｶﾅ １２３\n"


def _factory_mail(style: str, **overrides: object) -> ParsedMessage:
    kwargs: dict[str, object] = {
        "style": style,
        "subject": SUBJECT,
        "sender": "渋谷 太郎 <Taro.Shibuya@usen.co.jp>",
        "to": ["フレッツ デスク <f-desk@usen.co.jp>"],
        "cc": ["支店長 ㈱花子 <Hanako@usen.co.jp>", "bare@usen.co.jp"],
        "body": BODY,
        "attachments": [(FILENAME, b"%PDF-1.7\n" * 40), ("顧客一覧.xlsx", b"PK\x03\x04xx")],
    }
    kwargs.update(overrides)
    return parse_message(build_mail(**kwargs))  # type: ignore[arg-type]


def _katakana_widened(text: str, style: str) -> str:
    # Outlook writes ISO-2022-JP the CP50220 way, which widens ｶﾀｶﾅ.
    return text.replace("ｶﾀｶﾅ", "カタカナ") if style == "outlook" else text


@pytest.mark.parametrize("style", STYLES)
def test_factory_subject_decodes_for_every_client(style: str) -> None:
    assert _factory_mail(style).subject == _katakana_widened(SUBJECT, style)


@pytest.mark.parametrize("style", STYLES)
def test_factory_display_names_decode_for_every_client(style: str) -> None:
    parsed = _factory_mail(style)
    assert parsed.sender == Address(name="渋谷 太郎", addr="taro.shibuya@usen.co.jp")
    assert parsed.to == (Address(name="フレッツ デスク", addr="f-desk@usen.co.jp"),)
    assert parsed.cc == (
        Address(name="支店長 ㈱花子", addr="hanako@usen.co.jp"),
        Address(name="", addr="bare@usen.co.jp"),
    )


@pytest.mark.parametrize("style", STYLES)
def test_factory_body_decodes_for_every_client(style: str) -> None:
    assert _factory_mail(style).body_text == _katakana_widened(BODY, style)


@pytest.mark.parametrize("style", STYLES)
def test_factory_long_cp932_filename_decodes_for_every_client(style: str) -> None:
    attachments = _factory_mail(style).attachments
    assert [a.filename for a in attachments] == [FILENAME, "顧客一覧.xlsx"]
    assert attachments[0].payload == b"%PDF-1.7\n" * 40
    assert attachments[0].content_type == "application/pdf"
    assert attachments[1].content_type.endswith("spreadsheetml.sheet")


@pytest.mark.parametrize("style", STYLES)
def test_factory_mail_parses_without_problems(style: str) -> None:
    parsed = _factory_mail(style)
    assert parsed.problems == ()
    assert "\ufffd" not in parsed.subject + parsed.body_text


@pytest.mark.parametrize("style", STYLES)
def test_factory_threading_headers_come_back_as_bracketed_ids(style: str) -> None:
    parsed = _factory_mail(
        style,
        message_id="abc@usen.co.jp",
        in_reply_to="<root@usen.co.jp>",
        references=["<root@usen.co.jp>", "mid@usen.co.jp"],
        date=datetime(2024, 6, 1, 9, 0, tzinfo=JST),
    )
    assert parsed.message_id == "<abc@usen.co.jp>"
    assert parsed.in_reply_to == "<root@usen.co.jp>"
    assert parsed.references == ("<root@usen.co.jp>", "<mid@usen.co.jp>")
    assert parsed.date == datetime(2024, 6, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("style", STYLES)
def test_factory_mail_without_attachments_has_body_only(style: str) -> None:
    parsed = _factory_mail(style, attachments=())
    assert parsed.attachments == ()
    assert parsed.body_text == _katakana_widened(BODY, style)


def test_gmail_html_alternative_is_not_added_to_the_body() -> None:
    parsed = _factory_mail("gmail")
    assert "<div" not in parsed.body_text
    assert parsed.body_text.count("お世話になります") == 1


# --- identity ------------------------------------------------------------------


def test_message_id_is_normalised_with_whitespace_stripped() -> None:
    raw = _mail(b"Message-ID:\r\n  < abc@ex.jp >\r\n", b"x")
    parsed = parse_message(raw)
    assert parsed.message_id == "<abc@ex.jp>"
    assert parsed.identity == "<abc@ex.jp>"


def test_message_id_without_brackets_is_bracketed() -> None:
    assert parse_message(_mail(b"Message-ID: abc@ex.jp\r\n", b"x")).message_id == "<abc@ex.jp>"


def test_synthetic_identity_ignores_transport_headers_and_line_endings() -> None:
    raw = build_mail(
        subject="件名",
        sender="a@usen.co.jp",
        to=["f@usen.co.jp"],
        body="本文",
        omit_message_id=True,
    )
    path_a = b"Return-Path: <a@usen.co.jp>\r\nReceived: from mx1 by mx2; Mon, 13 May 2024\r\n" + raw
    path_b = b"Received: from relay by mx9; Tue, 14 May 2024\n" + raw.replace(b"\r\n", b"\n")
    first, second = parse_message(path_a), parse_message(path_b)
    assert first.message_id is None
    assert re.fullmatch(r"<[0-9a-f]{64}@mailbot\.invalid>", first.identity)
    assert first.identity == second.identity


def test_synthetic_identity_changes_with_body_and_subject() -> None:
    def identity(subject: str, body: str) -> str:
        raw = build_mail(subject=subject, sender="a@x.jp", to=["f@x.jp"], body=body, omit_message_id=True)
        return parse_message(raw).identity

    assert identity("件名", "本文") != identity("件名", "本文2")
    assert identity("件名", "本文") != identity("件名2", "本文")


# --- headers, addresses, dates -------------------------------------------------


def test_headers_are_lower_cased_decoded_and_keep_every_value() -> None:
    parsed = parse_message(OUTLOOK_RAW)
    assert parsed.header("Subject") == ("フレッツエスカ渋谷支店",)
    assert parsed.headers["x-mailer"] == ("Microsoft Outlook 16.0",)
    raw = _mail(b"Received: one\r\nReceived: two\r\n X\r\n", b"x")
    assert parse_message(raw).header("received") == ("one", "two X")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"", None),
        (b"Return-Path: <>\r\n", ""),
        (b"Return-Path: <Bounce@Ex.JP>\r\n", "bounce@ex.jp"),
    ],
)
def test_return_path_absent_null_or_address(header: bytes, expected: str | None) -> None:
    assert parse_message(_mail(header, b"x")).return_path == expected


def test_malformed_address_header_keeps_good_entries_and_notes_the_rest() -> None:
    raw = b'From: a@usen.co.jp\r\nTo: good@usen.co.jp, bad@@x, "Name" <other@usen.co.jp>, junk\r\n\r\nx'
    parsed = parse_message(raw)
    assert [a.addr for a in parsed.to] == ["good@usen.co.jp", "other@usen.co.jp"]
    assert any("malformed address in to" in p for p in parsed.problems)


def test_address_without_brackets_after_a_japanese_name_is_repaired() -> None:
    raw = "From: 渋谷 太郎 taro@usen.co.jp\r\n\r\nx".encode()
    parsed = parse_message(raw)
    assert parsed.sender is not None
    assert parsed.sender.addr == "taro@usen.co.jp"


def test_empty_group_address_is_not_a_problem() -> None:
    parsed = parse_message(b"From: a@x.jp\r\nTo: undisclosed-recipients:;\r\n\r\nx")
    assert parsed.to == ()
    assert parsed.problems == ()


def test_date_without_zone_is_taken_as_utc_and_garbage_date_as_none() -> None:
    naive = parse_message(_mail(b"Date: Mon, 13 May 2024 10:00:00 -0000\r\n", b"x")).date
    assert naive == datetime(2024, 5, 13, 10, 0, tzinfo=UTC)
    parsed = parse_message(_mail(b"Date: yesterday-ish\r\n", b"x"))
    assert parsed.date is None
    assert "unparseable Date header ignored" in parsed.problems


# --- body structure ------------------------------------------------------------


def test_html_only_mail_is_stripped_to_text() -> None:
    html = "<html><head><style>p{}</style></head><body><p>渋谷&amp;支店</p><br>以上</body></html>"
    raw = _mail(b"Content-Type: text/html; charset=utf-8\r\n", html.encode())
    assert parse_message(raw).body_text == "渋谷&支店\n\n以上"


def test_forwarded_message_contributes_text_and_attachments() -> None:
    inner = build_mail(
        style="outlook", subject="元のメール", sender="a@usen.co.jp", to=["b@usen.co.jp"],
        body="転送元の本文㈱", attachments=[("契約書㈱.pdf", b"%PDF")],
    )  # fmt: skip
    raw = _mail(
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="fw"\r\n',
        b"--fw\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + "転送します".encode()
        + b"\r\n--fw\r\nContent-Type: message/rfc822\r\n"
        b'Content-Disposition: attachment; filename="fwd.eml"\r\n\r\n' + inner + b"\r\n--fw--\r\n",
    )
    parsed = parse_message(raw)
    assert "転送します" in parsed.body_text
    assert "転送元の本文㈱" in parsed.body_text
    assert [a.filename for a in parsed.attachments] == ["契約書㈱.pdf"]


def test_text_part_with_a_filename_is_an_attachment_not_body() -> None:
    raw = _mail(
        b'Content-Type: multipart/mixed; boundary="b"\r\n',
        b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b'--b\r\nContent-Type: text/plain; name="memo.txt"\r\n\r\nnote\r\n--b--\r\n',
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "body"
    assert [(a.filename, a.payload) for a in parsed.attachments] == [("memo.txt", b"note")]


def test_unnamed_attachment_gets_a_neutral_name() -> None:
    raw = _mail(
        b'Content-Type: multipart/mixed; boundary="b"\r\n',
        b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n"
        b"--b\r\nContent-Type: application/x-weird\r\n\r\nzz\r\n--b--\r\n",
    )
    names = [a.filename for a in parse_message(raw).attachments]
    assert names == ["attachment-1.pdf", "attachment-2.bin"]


@pytest.mark.parametrize(
    ("raw_name", "expected"),
    [
        (b"C:\\\\Users\\\\taro\\\\\\xe7\\x94\\xb3.pdf", "申.pdf"),
        (b"../../etc/passwd", "passwd"),
        (b"a\\x01b\\x7fc.pdf", "abc.pdf"),
        (b"=?UTF-8?B?44OG44K544OI4oCuZmRwLmV4ZQ==?=", "テストfdp.exe"),
        (b"..", "attachment-1.bin"),
    ],
)
def test_filename_never_contains_path_separators_or_control_characters(raw_name: bytes, expected: str | None) -> None:
    name = raw_name.decode("unicode_escape").encode("latin-1")
    raw = _mail(
        b'Content-Type: multipart/mixed; boundary="b"\r\n',
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="' + name + b'"\r\n\r\nzz\r\n--b--\r\n',
    )
    (attachment,) = parse_message(raw).attachments
    assert not re.search(r"[/\\\x00-\x1f\x7f\u202e]", attachment.filename)
    if expected is not None:
        assert attachment.filename == expected
    assert attachment.filename


def test_bad_base64_padding_is_tolerated() -> None:
    raw = _mail(
        b'Content-Type: multipart/mixed; boundary="b"\r\n',
        b"--b\r\nContent-Type: application/pdf; name=a.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ\r\n--b--\r\n",
    )
    parsed = parse_message(raw)
    assert parsed.attachments[0].payload == b"%PDF-1.4"
    assert any("base64" in p for p in parsed.problems)


def test_missing_closing_boundary_still_yields_parts() -> None:
    raw = _mail(
        b'Content-Type: multipart/mixed; boundary="b"\r\n',
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: application/pdf; name=a.pdf\r\n\r\n%PDF\r\n",
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "hello"
    assert [a.filename for a in parsed.attachments] == ["a.pdf"]
    assert any("close boundary" in p for p in parsed.problems)


def test_multipart_without_boundary_parameter_does_not_raise() -> None:
    parsed = parse_message(_mail(b"Content-Type: multipart/mixed\r\n", b"just text"))
    assert "just text" in parsed.body_text
    assert parsed.problems


def test_unknown_charset_body_is_sniffed() -> None:
    raw = _mail(b"Content-Type: text/plain; charset=x-klingon\r\n", "渋谷".encode())
    parsed = parse_message(raw)
    assert parsed.body_text == "渋谷"
    assert any("x-klingon" in p for p in parsed.problems)


def test_undecodable_body_is_replaced_and_noted() -> None:
    raw = _mail(b"Content-Type: text/plain; charset=utf-8\r\n", b"ok \xff\xfe\x80\x80")
    parsed = parse_message(raw)
    assert parsed.body_text.startswith("ok ")
    assert "undecodable text part, decoded with replacement" in parsed.problems


def test_eight_bit_junk_in_headers_is_decoded_not_fatal() -> None:
    raw = "Subject: 申込書 ﾃｽﾄ\r\nFrom: 渋谷 <a@x.jp>\r\n\r\nx".encode("cp932")
    parsed = parse_message(raw)
    assert parsed.subject == "申込書 ﾃｽﾄ"
    assert parsed.sender == Address(name="渋谷", addr="a@x.jp")


def test_huge_header_line_does_not_raise() -> None:
    raw = b"From: a@x.jp\r\nX-Long: " + b"A" * 300_000 + b"\r\nSubject: ok\r\n\r\nbody"
    parsed = parse_message(raw)
    assert parsed.subject == "ok"
    assert len(parsed.header("x-long")[0]) == 300_000


def test_header_with_space_before_colon_keeps_later_headers() -> None:
    raw = b"Subject : old style\r\nFrom: a@x.jp\r\n\r\nbody"
    parsed = parse_message(raw)
    assert parsed.subject == "old style"
    assert parsed.sender == Address(name="", addr="a@x.jp")
    assert parsed.body_text == "body"


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n", b"\xd0\xcf\x11\xe0\x00\x00binary", b"%PDF-1.4\n%junk"])
def test_non_mail_input_raises_unparseable(raw: bytes) -> None:
    with pytest.raises(UnparseableMessage):
        parse_message(raw)


def test_auto_reply_and_bounce_from_the_factory_parse() -> None:
    original = build_mail(subject="フレッツエスカ 渋谷支店", sender="a@usen.co.jp", to=["f@usen.co.jp"])
    reply = parse_message(
        build_auto_reply(
            original_subject="フレッツエスカ 渋谷支店",
            sender="b@usen.co.jp",
            to=["f@usen.co.jp"],
            in_reply_to="<x@y>",
        )
    )
    assert reply.header("auto-submitted") == ("auto-replied",)
    assert reply.return_path == ""
    assert reply.subject == "自動応答: フレッツエスカ 渋谷支店"
    bounce = parse_message(build_bounce(original=original, failed_recipient="gone@usen.co.jp", to="f@usen.co.jp"))
    assert bounce.return_path == ""
    assert bounce.sender is not None and bounce.sender.addr.startswith("mailer-daemon@")
    assert "Status: 5.1.1" in bounce.body_text
    assert "gone@usen.co.jp" in bounce.body_text


# --- the public corpus ---------------------------------------------------------

_JAPANESE = re.compile(rb"iso-2022-jp|shift[_-]jis|euc-jp|cp932|windows-31j|x-sjis", re.I)
_HEADERISH = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")
_JP_CODECS = ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext", "cp932", "euc_jp", "utf-8")


def _corpus_files() -> list[Path]:
    return corpus_files()


def _looks_like_mail(raw: bytes) -> bool:
    lines = raw.lstrip(b"\r\n\t ").removeprefix(b"\xef\xbb\xbf").splitlines()
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]
    return bool(lines) and bool(_HEADERISH.match(lines[0]))


def _chunks_valid(chunks: list[tuple[bytes, str | None]]) -> bool:
    # Oracle independent of mailbot: the stdlib splits the words, and a chunk
    # is "valid" when some Japanese-capable stdlib codec decodes it strictly.
    for data, charset in chunks:
        if charset is None or charset == "unknown-8bit":
            if not data.isascii():
                return False  # raw 8-bit header: no declared charset to hold it to
            continue
        if charset.lower().startswith("iso-2022-jp") and not data.isascii():
            return False  # a 7-bit charset holding 8-bit bytes: U+FFFD is right (imap_tools agrees)
        for codec in (charset, *_JP_CODECS):
            try:
                data.decode(codec)
                break
            except (UnicodeDecodeError, LookupError):
                continue
        else:
            return False
    return True


def _header_valid(value: str) -> bool:
    try:
        chunks = stdlib_decode_header(value)
    except Exception:
        return False
    normalised = [(c.encode("latin-1") if isinstance(c, str) else c, cs) for c, cs in chunks]
    return _chunks_valid(normalised)


def _filenames_valid(msg: email.message.Message) -> bool:
    for part in msg.walk():
        for header, param in (("content-disposition", "filename"), ("content-type", "name")):
            value = part.get_param(param, header=header)
            if value is None:
                continue
            if isinstance(value, tuple):
                charset, _, text = value
                if not _chunks_valid([(text.encode("latin-1", "replace"), charset or None)]):
                    return False
            elif not _header_valid(value):
                return False
    return True


def test_corpus_is_not_empty() -> None:
    assert len(need_corpus()) >= 100


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_every_corpus_mail_parses_without_raising(path: Path) -> None:
    raw = path.read_bytes()
    try:
        parsed = parse_message(raw)
    except UnparseableMessage:
        assert not _looks_like_mail(raw), "a mail with headers was rejected"
        return
    assert isinstance(parsed, ParsedMessage)
    assert parsed.headers, "a parsed mail has at least one header"
    assert parsed.identity.startswith("<") and parsed.identity.endswith(">")
    for attachment in parsed.attachments:
        assert attachment.filename
        assert not re.search(r"[/\\\x00-\x1f]", attachment.filename)
    if parsed.date is not None:
        assert parsed.date.tzinfo is not None
    if not _JAPANESE.search(raw):
        return
    msg = email.message_from_bytes(raw.lstrip(b"\r\n"), policy=compat32)
    subject = msg.get("subject")
    if isinstance(subject, str) and _header_valid(subject):
        assert "\ufffd" not in parsed.subject
        assert not re.search(r"=\?[^?\s]+\?[bBqQ]\?", parsed.subject), parsed.subject
    if _filenames_valid(msg):
        for attachment in parsed.attachments:
            assert "\ufffd" not in attachment.filename
            assert "=?" not in attachment.filename


def test_corpus_location_is_skipped_only_when_absent() -> None:
    need_corpus()
    assert any(p.name.startswith("letters__test_japanese") for p in _corpus_files())


def test_corpus_japanese_letters_decode_exactly() -> None:
    need_corpus()
    path = CORPUS / "letters__test_japanese_multipart_mixed_iso-2022-jp_over_7bit.txt"
    assert path.exists(), "the corpus lost its Japanese letters sample"
    parsed = parse_message(path.read_bytes())
    assert parsed.subject == "📧 Test いろは歌"
    assert parsed.to[0] == Address(name="郵便ボブ", addr="bob.yuubin@example.com")
    assert parsed.body_text.startswith("色は匂えど\n散りぬるを\n")


def test_base64_fixture_literals_are_what_the_comments_say() -> None:
    # Guards the hand-written fixtures above against typos.
    decoded = base64.b64decode("GyRCPz05fj1xLWobKEIucGRm")
    assert decoded == b"\x1b$B?=9~=q-j\x1b(B.pdf"
    assert decoded.replace(b"-j", b"").decode("iso2022_jp") == "申込書.pdf"


@pytest.mark.parametrize("codec", ["cp932", "utf-8"])
def test_raw_eight_bit_filename_without_any_encoding_decodes(codec: str) -> None:
    # Some webmail and feature-phone clients put the bytes in unencoded.
    name = "申込書ﾃｽﾄ①.pdf".encode(codec)
    raw = _mail(
        b'Content-Type: multipart/mixed; boundary="b"\r\n',
        b'--b\r\nContent-Type: application/pdf; name="' + name + b'"\r\n'
        b'Content-Disposition: attachment; filename="' + name + b'"\r\n\r\nzz\r\n--b--\r\n',
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.filename == "申込書ﾃｽﾄ①.pdf"


def test_raw_utf8_addresses_are_decoded_not_left_as_surrogates() -> None:
    raw = (
        "From: Jöhn Doe <jdöe@mächine.example>\r\n"
        "To: Märy <märy@exämple.net>\r\n"
        "Subject: test\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n"
    ).encode()
    message = parse_message(raw)
    assert message.sender is not None
    assert message.sender.addr == "jdöe@mächine.example"
    assert [a.addr for a in message.to] == ["märy@exämple.net"]
    message.sender.addr.encode("utf-8")  # storable: no lone surrogates


def test_an_rfc2231_filename_mangled_beyond_latin1_does_not_raise() -> None:
    # Found by the fuzz test: a U+FFFD inside an RFC 2231 value left by an earlier repair.
    raw = (
        "From: a@usen.co.jp\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename*=UTF-8''%E7%94%B3\ufffd.pdf\r\n\r\n%PDF-1.4\r\n--b--\r\n"
    ).encode("utf-8")
    [attachment] = parse_message(raw).attachments
    assert attachment.filename.startswith("申") and attachment.filename.endswith(".pdf")


@pytest.mark.parametrize("charset", ["charset*=utf-8''utf-8", 'charset="\x00us-ascii"'])
def test_a_leaf_part_with_a_mangled_charset_and_8bit_body_still_parses(charset: str) -> None:
    # Found by the fuzz test: the stdlib's get_payload() raised on these charsets.
    raw = f"From: a@usen.co.jp\r\nSubject: t\r\nContent-Type: text/plain; {charset}\r\n\r\n".encode() + "本文".encode()
    message = parse_message(raw)
    assert message.subject == "t"
    assert message.sender is not None and message.sender.addr == "a@usen.co.jp"


# --- the peer corpus: other projects' Japanese test mails ------------------------

PEER = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "peer"
# In an expectation, EMOJI stands for one carrier emoji: the peer maps it to
# its own private-use code point, mailbot keeps the carrier's private-use code
# point or, where no codec has one (au's JIS rows 0x75-0x76), U+FFFD.
EMOJI = "\x00"
LETTERS_SUBJECT = "📧 Test いろは歌"
JPMOBILE_LONG_SUBJECT = (
    "タイトルの長いメールの場合の対処を実装するためのテストケースとしてのメールに含まれている件名であるサブジェクト部分"
)
LETTERS_BODY = "色は匂えど\n散りぬるを\n我が世誰ぞ\n常ならん\n有為の奥山\n今日越えて\n浅き夢見じ\n酔いもせず。"

# What each peer project's own tests assert for its mail: jpmobile
# spec/unit/receive_mail_spec.rb, zammad test/data/mail/*.yml, ikvk/imap_tools
# tests/messages_data/ (mikel/mail fixtures), mnako/letters tests, MimeKit,
# php-mime-mail-parser. "body" is compared from the start of the body text.
PEER_EXPECTATIONS: dict[str, dict[str, object]] = {
    "jpmobile__pc-mail-single.eml": {
        "subject": JPMOBILE_LONG_SUBJECT,
        "body": "本文です\n\n",
    },
    "jpmobile__pc-mail-multi.eml": {
        "subject": JPMOBILE_LONG_SUBJECT,
        "body": "本文です\n\n",
    },
    "jpmobile__pc-mail-attached-without-subject.eml": {"body": "本文です\n\n", "attachments": ["Transparent.gif"]},
    "jpmobile__mobile_mailer_docomo-gmail-sjis.eml": {"subject": f"テスト{EMOJI}", "body": f"テストです{EMOJI}"},
    "jpmobile__mobile_mailer_softbank-gmail-sjis.eml": {
        "subject": f"テスト{EMOJI}{EMOJI}{EMOJI}",
        "body": f"テストです{EMOJI}",
    },
    "jpmobile__mobile_mailer_softbank-gmail-utf8.eml": {"subject": f"テストです{EMOJI}", "body": f"テストです{EMOJI}"},
    "jpmobile__au-decomail.eml": {"subject": f"テスト{EMOJI}", "body": f"テストです{EMOJI}"},
    "jpmobile__docomo-emoji.eml": {"subject": f"題名{EMOJI}", "body": f"本文{EMOJI}\nFor docomo\n\n"},
    "jpmobile__docomo-jis.eml": {"subject": "テスト", "body": "テスト本文\n\n"},
    "jpmobile__au-emoji.eml": {"subject": f"題名{EMOJI}", "body": f"本文{EMOJI}\nFor au\n\n"},
    "jpmobile__softbank-emoji.eml": {"subject": f"題名{EMOJI}", "body": f"本文{EMOJI}\nFor softbank\n\n"},
    "jpmobile__iphone-cp932.eml": {"subject": "Re: 【NKSC】test", "body": "テストです。㈱"},
    "jpmobile__iphone-jis.eml": {"body": "(=ﾟωﾟ)ﾉ\n\n\n"},
    "jpmobile__iphone-unicode-emoji.eml": {"subject": "絵文字\U0001f385", "body": "\U0001f384\u2763"},
    "jpmobile__iphone-circled-numbers-in-jis.eml": {"subject": "テスト①", "body": "丸数字のテストです②ⅱ\n\n"},
    "jpmobile__au-attached.eml": {"attachments": ["20098calendar01.jpg"]},
    "zammad__mail048.eml": {
        "subject": "AW: OTRS / Anfrage OTRS Einführung/Präsentation [Ticket#11545]",
        "sender_name": "Martin Edenhofer",
        "body": "Enjoy!",
        # Apple Mail: alternative[plain, related[html, image]]; zammad keeps the image.
        "attachments": ["CPG-Reklamationsmitteilung bezügl.01234567895 an Voda-28.03.2017.jpg"],
    },
    "zammad__mail091.eml": {"subject": "メルマガ解除"},
    "zammad__mail093.eml": {
        "subject": "ツール",
        "sender_name": "ツール EXAMPLE",
        "to_name": "駅北口",
        "body": "今なら、先着100施設限定で",
    },
    "zammad__mail098.eml": {
        "subject": "一覧」をアップします",
        "sender_name": "事務局",
        "body": "カテゴリ：全メンバー\n",
    },
    "zammad__mail099.eml": {"subject": "example", "body": "　　　　　①１都３県の鯵と、\n\n"},
    "rubymail__multi_charset_japanese.eml": {"subject": "まみむめも", "body": "かきくえこ"},
    "rubymail__multi_charset_japanese_iso_2022.eml": {"subject": "まみむめも", "body": "すみません。"},
    "rubymail__multi_charset_japanese_shift_jis.eml": {
        "subject": "test",
        "body": "あいうえお\n\nこのメールはテスト用のメールです。",
    },
    "rubymail__multi_charset_japanese_attachment.eml": {"subject": "testing", "attachments": ["てすと.txt"]},
    "rubymail__multi_charset_japanese_attachment_long_name.eml": {
        "subject": "まみむめも" * 10,
        "attachments": ["かきくけこ" * 5 + ".txt"],
    },
    # An 8-bit byte inside an RFC 2231 value declared ISO-2022-JP: imap_tools expects U+FFFD.
    "rubymail__attachment_emails_attachment_with_encoded_name.eml": {
        "attachments": ["01 Quien Te Dij\ufffdat. Pitbull.mp3"],
    },
    "rubymail__plain_emails_raw_email_with_partially_quoted_subject.eml": {
        "subject": 'Re: Test: "漢字" mid "漢字" tail',
    },
    "rubymail__rfc2822_example14.eml": {"subject": "Re: TEST \tテストテスト"},
    "mimekit__japanese.eml": {
        "subject": "日本語メールテスト (testing Japanese emails)",
        "body": "Let's see if both subject and body works fine...\n\n日本語が\n正常に\n送れているか\nテスト.",
    },
    # Exchange's Japanese bounce, labelled gb2312 but written in GBK.
    "phpmimemailparser__failure.eml": {"body": "次の受信者またはグループへの配信に失敗しました:"},
    "stalwart__thirdparty_010.eml": {"subject": "こんにちは"},
    **{
        f"letters__test_japanese_{kind}_{charset}_over_{cte}.eml": {
            "subject": ("📧 Signed Test いろは歌" if kind == "multipart_signed" else LETTERS_SUBJECT),
            "sender_name": "郵便アリス",
            "to_name": "郵便ボブ",
            "body_contains": LETTERS_BODY,
        }
        for kind in ("plaintext", "multipart_mixed", "multipart_related", "multipart_signed")
        for charset in ("iso-2022-jp", "euc-jp")
        for cte in ("7bit", "base64", "quoted-printable")
        if not (charset == "euc-jp" and cte == "7bit")
    },
}


def _peer_files() -> list[Path]:
    if not PEER.is_dir():
        return []
    return sorted(p for p in PEER.iterdir() if p.suffix == ".eml")


def _matches(expected: str, actual: str, *, prefix: bool = False) -> bool:
    pattern = "".join("[\ue000-\uf8ff\ufffd]" if ch == EMOJI else re.escape(ch) for ch in expected)
    return re.match(pattern if prefix else pattern + r"\Z", actual) is not None


def _peer_mismatches(name: str, parsed: ParsedMessage) -> list[str]:
    expected = PEER_EXPECTATIONS[name]
    found: list[str] = []
    if "subject" in expected and not _matches(str(expected["subject"]), parsed.subject):
        found.append(f"subject {parsed.subject!r}")
    if "sender_name" in expected and (parsed.sender is None or parsed.sender.name != expected["sender_name"]):
        found.append(f"sender {parsed.sender!r}")
    if "to_name" in expected and (not parsed.to or parsed.to[0].name != expected["to_name"]):
        found.append(f"to {parsed.to!r}")
    body = parsed.body_text.lstrip("\n")
    if "body" in expected and not _matches(str(expected["body"]).lstrip("\n"), body, prefix=True):
        found.append(f"body {body[:60]!r}")
    if "body_contains" in expected and str(expected["body_contains"]) not in body:
        found.append(f"body {body[:60]!r}")
    if "attachments" in expected:
        names = [a.filename for a in parsed.attachments]
        if any(n not in names for n in expected["attachments"]):  # type: ignore[attr-defined]
            found.append(f"attachments {names!r}")
    return found


@pytest.mark.skipif(not PEER.is_dir(), reason="../shared/corpus/peer is not present")
def test_peer_corpus_has_all_65_mails_and_most_carry_an_expectation() -> None:
    names = {p.name for p in _peer_files()}
    assert len(names) == 65
    assert set(PEER_EXPECTATIONS) <= names, set(PEER_EXPECTATIONS) - names
    assert len(PEER_EXPECTATIONS) >= 50


@pytest.mark.skipif(not PEER.is_dir(), reason="../shared/corpus/peer is not present")
def test_peer_corpus_decodes_as_each_peer_project_expects() -> None:
    # The score: every expectation a peer project asserts for its own mail.
    misses = {}
    for path in _peer_files():
        if path.name in PEER_EXPECTATIONS:
            mismatches = _peer_mismatches(path.name, parse_message(path.read_bytes()))
            if mismatches:
                misses[path.name] = mismatches
    assert misses == {}, f"{len(misses)} of {len(PEER_EXPECTATIONS)} peer mails decode differently: {misses}"


@pytest.mark.parametrize("path", _peer_files(), ids=lambda p: p.name)
def test_no_peer_corpus_mail_comes_back_with_raw_escape_sequences(path: Path) -> None:
    parsed = parse_message(path.read_bytes())
    texts = [parsed.subject, parsed.body_text, *(a.filename for a in parsed.attachments)]
    assert not any("\x1b" in text for text in texts)
    assert not any(re.search(r"=\?[^?\s]+\?[bBqQ]\?", text) for text in [parsed.subject])


def test_a_named_attachment_inside_the_html_branch_of_an_alternative_is_kept() -> None:
    # Apple Mail: alternative[plain, related[html, image]]; the plain text is
    # read for the body, the attachment in the HTML branch must not be lost.
    raw = _mail(
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="alt"\r\n',
        b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + "本文".encode() + b"\r\n"
        b'--alt\r\nContent-Type: multipart/related; type="text/html"; boundary="rel"\r\n\r\n'
        b"--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n"
        b'--rel\r\nContent-Type: image/jpeg; name="photo.jpg"\r\n'
        b'Content-Disposition: inline; filename="photo.jpg"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        b"/9j/4AAQ\r\n--rel--\r\n--alt--\r\n",
    )
    message = parse_message(raw)
    assert message.body_text.strip() == "本文"
    assert [(a.filename, a.content_type) for a in message.attachments] == [("photo.jpg", "image/jpeg")]
