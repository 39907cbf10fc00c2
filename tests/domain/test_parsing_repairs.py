"""parse_message on broken mail: what it repairs, what it notes, what it keeps.

Every input here is shaped like mail the desk's mailbox does receive from
branch clients, relays and phones, with one thing wrong; the hand-written
bytes keep the defect visible in the test itself.
"""

from __future__ import annotations

import base64
import quopri
from datetime import UTC, datetime

import pytest

from mailbot.domain.model import Address, Attachment, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message

# --- a body that cannot be read: the headers alone ---------------------------

# A relay mangled the RFC 2231 charset of the text part into a NUL; the
# stdlib cannot even ask for that charset, so the body is lost but the
# headers still say who wrote, to whom, and in which thread.
#   GyRCJVUlbCVDJUQlKCU5JSsbKEI=  = フレッツエスカ (ISO-2022-JP)
#   GyRCPUJDKztZRTkbKEI=          = 渋谷支店
_UNREADABLE_BODY = (
    b"Return-Path: <Shibuya@Usen.co.jp>\r\n"
    b"From: =?iso-2022-jp?B?GyRCPUJDKztZRTkbKEI=?= <Shibuya@Usen.co.jp>, second@usen.co.jp\r\n"
    b"To: f-desk <f-desk@usen.co.jp>\r\n"
    b"Cc: Manager <mgr@usen.co.jp>\r\n"
    b"Reply-To: reply@usen.co.jp\r\n"
    b"Subject: =?iso-2022-jp?B?GyRCJVUlbCVDJUQlKCU5JSsbKEI=?=\r\n"
    b"Date: Mon, 13 May 2024 10:00:00 +0900\r\n"
    b"In-Reply-To: <first@usen.co.jp> <second@usen.co.jp>\r\n"
    b"References: <root@usen.co.jp> <first@usen.co.jp>\r\n"
    b"References: <other@usen.co.jp>\r\n"
    b"%(message_id)s"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset*=utf\x00''x\r\n"
    b"\r\n"
    b"\xe9\xa1\xa7\xe5\xae\xa2CD:123456789\r\n"
)


def _unreadable(message_id: bytes) -> bytes:
    return _UNREADABLE_BODY % {b"message_id": message_id}


def test_a_mail_whose_body_cannot_be_read_still_yields_every_header_field() -> None:
    parsed = parse_message(_unreadable(b"Message-ID: <TY1@usen.co.jp>\r\n"))
    assert parsed == ParsedMessage(
        identity="<TY1@usen.co.jp>",
        message_id="<TY1@usen.co.jp>",
        subject="フレッツエスカ",
        sender=Address(name="渋谷支店", addr="shibuya@usen.co.jp"),
        to=(Address(name="f-desk", addr="f-desk@usen.co.jp"),),
        cc=(Address(name="Manager", addr="mgr@usen.co.jp"),),
        reply_to=(Address(name="", addr="reply@usen.co.jp"),),
        date=datetime(2024, 5, 13, 1, 0, tzinfo=UTC),
        in_reply_to="<first@usen.co.jp>",
        references=("<root@usen.co.jp>", "<first@usen.co.jp>", "<other@usen.co.jp>"),
        headers=parsed.headers,
        return_path="shibuya@usen.co.jp",
        body_text="",
        attachments=(),
        problems=("body could not be read (ValueError: embedded null character); headers only",),
    )
    assert parsed.header("subject") == ("フレッツエスカ",)
    assert parsed.header("references") == ("<root@usen.co.jp> <first@usen.co.jp>", "<other@usen.co.jp>")


def test_a_mail_whose_body_cannot_be_read_and_has_no_message_id_gets_a_stable_identity() -> None:
    raw = _unreadable(b"")
    parsed = parse_message(raw)
    assert parsed.message_id is None
    assert parsed.identity.endswith("@mailbot.invalid>")
    assert parse_message(raw.replace(b"\r\n", b"\n")).identity == parsed.identity
    assert parse_message(raw.replace(b"Cc: Manager", b"Cc: Other")).identity != parsed.identity


def test_a_mail_whose_body_cannot_be_read_and_lacks_from_subject_and_thread_headers_is_still_read() -> None:
    raw = b"To: f-desk@usen.co.jp\r\nContent-Type: text/plain; charset*=utf\x00''x\r\n\r\nbody\r\n"
    parsed = parse_message(raw)
    assert parsed.sender is None
    assert parsed.subject == ""
    assert parsed.in_reply_to is None
    assert parsed.references == ()
    assert parsed.to == (Address(name="", addr="f-desk@usen.co.jp"),)
    assert parsed.problems == ("body could not be read (ValueError: embedded null character); headers only",)


def test_a_mail_whose_body_cannot_be_read_notes_a_bad_message_id_and_date_too() -> None:
    raw = _unreadable(b"Message-ID: <>\r\n").replace(b"Mon, 13 May 2024 10:00:00 +0900", b"sometime")
    parsed = parse_message(raw)
    assert parsed.message_id is None
    assert parsed.date is None
    assert parsed.problems == (
        "body could not be read (ValueError: embedded null character); headers only",
        "empty or malformed Message-ID ignored",
        "unparseable Date header ignored",
    )


# --- header field names with a space or 8-bit byte ---------------------------

_BODY_B64 = base64.b64encode("顧客CD:123456789 お願いします".encode()).decode().encode()


def test_a_header_name_with_a_space_is_repaired_so_the_later_headers_still_decode_the_body() -> None:
    raw = (
        b"From: a@usen.co.jp\r\nTo: f-desk@usen.co.jp\r\n"
        b"X-Spam Score: 5\r\n  folded\r\n"
        b"Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\n" + _BODY_B64 + b"\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "顧客CD:123456789 お願いします"
    assert parsed.subject == "s"
    assert parsed.header("x-spam_score") == ("5  folded",)
    assert parsed.problems == ("invalid header field name repaired",)


def test_a_japanese_header_name_is_replaced_byte_for_byte_and_its_value_kept() -> None:
    raw = (
        (
            "From: a@usen.co.jp\nX-送信者: 渋谷\nContent-Transfer-Encoding: base64\n"
            "Content-Type: text/plain; charset=utf-8\n\n"
        ).encode()
        + _BODY_B64
        + b"\n"
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "顧客CD:123456789 お願いします"
    # Nine underscores: the UTF-8 bytes of 送信者, one each.
    assert dict(parsed.headers) == {
        "from": ("a@usen.co.jp",),
        "x-_________": ("渋谷",),
        "content-transfer-encoding": ("base64",),
        "content-type": ("text/plain; charset=utf-8",),
    }
    assert parsed.problems == ("invalid header field name repaired",)


def test_a_header_line_with_no_name_before_its_colon_gets_a_placeholder_name() -> None:
    raw = b"From: a@usen.co.jp\r\n: orphan\r\nContent-Transfer-Encoding: base64\r\n\r\n" + _BODY_B64 + b"\r\n"
    parsed = parse_message(raw)
    assert parsed.header("x-invalid-header") == ("orphan",)
    assert parsed.body_text == "顧客CD:123456789 お願いします"
    assert parsed.problems == ("invalid header field name repaired",)


def test_body_text_right_after_the_headers_without_a_blank_line_stays_body() -> None:
    raw = "From: a@usen.co.jp\r\nSubject: s\r\nお世話になります\r\n顧客CD:123\r\n".encode()
    parsed = parse_message(raw)
    assert parsed.body_text == "お世話になります\n顧客CD:123\n"
    assert dict(parsed.headers) == {"from": ("a@usen.co.jp",), "subject": ("s",)}
    assert parsed.problems == ("MIME defect repaired: missing header body separator",)


def test_an_mbox_separator_line_is_not_taken_for_a_broken_header() -> None:
    raw = b"From a@usen.co.jp Mon May 13 10:00:00 2024\r\nFrom: a@usen.co.jp\r\nSubject: s\r\n\r\nbody\r\n"
    parsed = parse_message(raw)
    assert dict(parsed.headers) == {"from": ("a@usen.co.jp",), "subject": ("s",)}
    assert parsed.body_text == "body\n"
    assert parsed.problems == ()


# --- a forwarded mail (message/rfc822) under a transfer encoding -------------

# RFC 2046 allows only 7bit/8bit/binary on message/rfc822; some relays and
# webmail forwarders base64- or QP-encode it anyway.
_FORWARDED = (
    b"From: shiten@usen.co.jp\r\nTo: f-desk@usen.co.jp\r\nSubject: =?utf-8?B?55Sz6L68?=\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="in"\r\n\r\n'
    b"--in\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + "顧客CD:123456789 ＝半角=\r\n".encode()
    + b"--in\r\nContent-Type: application/pdf\r\n"
    b'Content-Disposition: attachment; filename="form.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--in--\r\n"
)
_FORM = Attachment(filename="form.pdf", content_type="application/pdf", payload=b"%PDF-1.4")


def _forwarding(cte: bytes, encoded: bytes) -> bytes:
    return (
        b"From: relay@usen.co.jp\r\nTo: f-desk@usen.co.jp\r\nSubject: fwd\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="out"\r\n\r\n'
        b"--out\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe8\xbb\xa2\xe9\x80\x81\r\n"
        b"--out\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: "
        + cte
        + b"\r\n\r\n"
        + encoded
        + b"\r\n--out--\r\n"
    )


def test_a_base64_encoded_forwarded_mail_gives_its_japanese_text_and_its_attachment() -> None:
    parsed = parse_message(_forwarding(b"base64", base64.encodebytes(_FORWARDED)))
    assert parsed.body_text == "転送\n顧客CD:123456789 ＝半角="
    assert parsed.attachments == (_FORM,)
    assert "transfer-encoded message/rfc822 part decoded" in parsed.problems


def test_a_quoted_printable_forwarded_mail_in_capitals_is_decoded_too() -> None:
    parsed = parse_message(_forwarding(b"Quoted-Printable ", quopri.encodestring(_FORWARDED)))
    assert parsed.body_text == "転送\n顧客CD:123456789 ＝半角="
    assert parsed.attachments == (_FORM,)
    assert "transfer-encoded message/rfc822 part decoded" in parsed.problems


def test_a_forwarded_mail_sent_as_7bit_is_read_as_it_stands_without_a_note() -> None:
    parsed = parse_message(_forwarding(b"8bit", _FORWARDED))
    assert parsed.body_text == "転送\n顧客CD:123456789 ＝半角="
    assert parsed.attachments == (_FORM,)
    assert parsed.problems == ()


# --- an HTML part that names its charset only in a <meta> tag ----------------


def _html_mail(html: bytes) -> bytes:
    return (
        b"From: a@usen.co.jp\r\nTo: f-desk@usen.co.jp\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html\r\n\r\n" + html
    )


def test_an_html_part_whose_charset_is_only_in_an_http_equiv_meta_tag_decodes_as_shift_jis() -> None:
    sjis = "お世話になります。顧客CD:123456789".encode("shift_jis")
    parsed = parse_message(
        _html_mail(
            b'<html><head><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=Shift_JIS"></head>'
            b"<body><p>" + sjis + b"</p></body></html>"
        )
    )
    assert parsed.body_text == "お世話になります。顧客CD:123456789"
    assert parsed.problems == ()


def test_an_html_part_with_an_html5_meta_charset_decodes_as_euc_jp() -> None:
    # EUC-JP bytes also read as (wrong) half-width katakana in CP932, so only
    # the meta tag gets this right.
    euc = "お世話になります。顧客CD:123456789".encode("euc_jp")
    parsed = parse_message(_html_mail(b"<html><head><META CHARSET='EUC-JP'><title>t</title></head><body>" + euc))
    assert parsed.body_text == "お世話になります。顧客CD:123456789"


def test_an_html_part_without_any_charset_is_sniffed() -> None:
    assert parse_message(_html_mail("<p>お世話になります</p>".encode())).body_text == "お世話になります"


@pytest.mark.parametrize("named", ["shift_jis", "iso-8859-1"])
def test_a_meta_tag_in_a_plain_text_part_is_text_not_a_charset(named: str) -> None:
    # The UTF-8 text is sniffed as UTF-8; the tag names a charset it is not in
    # (and every byte string is valid ISO-8859-1, so that one would stick).
    raw = _html_mail(f'<meta charset="{named}">お世話になります'.encode()).replace(b"text/html", b"text/plain")
    assert parse_message(raw).body_text == f'<meta charset="{named}">お世話になります'


# --- input that is no mail at all ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty input"),
        (b"  \r\n\t", "empty input"),
        (b"hello world\r\n", "input does not start with a header field"),
        (b"From a@usen.co.jp Mon May 13 10:00:00 2024\r\n", "input does not start with a header field"),
        (b"From a@usen.co.jp Mon May 13 10:00:00 2024\r\n\r\nbody\r\n", "input does not start with a header field"),
        (b"From a@usen.co.jp Mon May 13 10:00:00 2024", "input does not start with a header field"),
    ],
)
def test_input_that_is_no_mail_is_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(UnparseableMessage, match=f"^{reason}$"):
        parse_message(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"From a@usen.co.jp Mon May 13 10:00:00 2024\r\nFrom: a@usen.co.jp\r\n\r\nbody",
        b"From a@usen.co.jp Mon May 13 10:00:00 2024\nFrom: a@usen.co.jp",
        b"From: a@usen.co.jp\r\n\r\nbody",
        b"Subject:body",
    ],
)
def test_a_mail_with_or_without_an_mbox_separator_line_is_accepted(raw: bytes) -> None:
    assert parse_message(raw).problems == ()


@pytest.mark.parametrize("preamble", [b"\xef\xbb\xbf", b"\r\n\r\n", b"\xef\xbb\xbf\r\n", b"\r\n\xef\xbb\xbf", b" \t"])
def test_a_byte_order_mark_or_blank_lines_before_the_headers_are_removed_and_noted(preamble: bytes) -> None:
    parsed = parse_message(preamble + b"From: a@usen.co.jp\r\nSubject: s\r\n\r\nbody")
    assert parsed.sender == Address(name="", addr="a@usen.co.jp")
    assert parsed.subject == "s"
    assert parsed.body_text == "body"
    assert parsed.problems == ("byte-order mark or blank lines before the headers removed",)


# --- attachment filenames and what counts as an attachment -------------------


def _mixed(*parts: bytes) -> bytes:
    out = (
        b"From: a@usen.co.jp\r\nTo: f-desk@usen.co.jp\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe6\x9c\xac\xe6\x96\x87\r\n"
    )
    for part in parts:
        out += b"--b\r\n" + part + b"\r\n"
    return out + b"--b--\r\n"


def _pdf_with(disposition: bytes) -> bytes:
    return (
        b"Content-Type: application/pdf\r\nContent-Disposition: " + disposition + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg=="
    )


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        # 申込書 in Shift_JIS, percent-encoded (RFC 2231)
        (b"attachment; filename*=shift_jis''%90%5C%8D%9E%8F%91.pdf", "申込書.pdf"),
        # 申込書 in ISO-2022-JP: ESC $ B 3F3D 397E 3D71 ESC ( B
        (b"attachment; filename*=iso-2022-jp''%1B%24B%3F%3D%39%7E%3D%71%1B%28B.pdf", "申込書.pdf"),
        # no charset given: the UTF-8 bytes are recognised
        (b"attachment; filename*=''%E7%94%B3%E8%BE%BC%E6%9B%B8.pdf", "申込書.pdf"),
        # a language tag does not end up in the name
        (b"attachment; filename*=utf-8'ja'%E7%94%B3%E8%BE%BC.pdf", "申込.pdf"),
        # an RFC 2047 word inside the RFC 2231 value: =?utf-8?B?55Sz6L68?= is 申込
        (b"attachment; filename*=us-ascii''%3D%3Futf-8%3FB%3F55Sz6L68%3F%3D.pdf", "申込.pdf"),
    ],
)
def test_an_rfc2231_filename_in_any_japanese_charset_decodes(disposition: bytes, filename: str) -> None:
    parsed = parse_message(_mixed(_pdf_with(disposition)))
    assert parsed.attachments == (Attachment(filename=filename, content_type="application/pdf", payload=b"%PDF"),)
    assert parsed.body_text == "本文"
    assert parsed.problems == ()


def test_an_rfc2231_filename_that_is_not_valid_in_its_charset_is_replaced_and_noted() -> None:
    parsed = parse_message(_mixed(_pdf_with(b"attachment; filename*=utf-8''%FF%FE%FD.pdf")))
    (attachment,) = parsed.attachments
    assert attachment.filename == "\ufffd\ufffd\ufffd.pdf"
    assert parsed.problems == ("undecodable attachment filename, decoded with replacement",)


def test_an_empty_filename_falls_back_to_the_content_type_name() -> None:
    part = (
        b'Content-Type: application/pdf; name="=?utf-8?B?55Sz6L68?=.pdf"\r\n'
        b'Content-Disposition: attachment; filename=""\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg=='
    )
    (attachment,) = parse_message(_mixed(part)).attachments
    assert attachment.filename == "申込.pdf"


def test_a_text_part_marked_attachment_in_capitals_without_a_name_is_an_attachment_not_body() -> None:
    part = b"Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: ATTACHMENT ; size=2\r\n\r\nhi"
    parsed = parse_message(_mixed(part))
    assert parsed.attachments == (Attachment(filename="attachment-1.txt", content_type="text/plain", payload=b"hi"),)
    assert parsed.body_text == "本文"


def test_an_inline_text_part_joins_the_body() -> None:
    part = b"Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\n\r\nhi there"
    parsed = parse_message(_mixed(part))
    assert parsed.body_text == "本文\nhi there"
    assert parsed.attachments == ()


def test_a_forwarded_mail_marked_attachment_is_read_not_listed_as_a_file() -> None:
    part = (
        b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
        b"From: x@usen.co.jp\r\nSubject: in\r\n\r\ninner text"
    )
    parsed = parse_message(_mixed(part))
    assert parsed.body_text == "本文\ninner text"
    assert parsed.attachments == ()


@pytest.mark.parametrize(
    ("part", "attachment"),
    [
        (
            b"Content-Type: application/octet-stream\r\n\r\nxx",
            Attachment("attachment-1.bin", "application/octet-stream", b"xx"),
        ),
        (
            b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==",
            Attachment("attachment-1.png", "image/png", b"\x89PNG"),
        ),
    ],
)
def test_an_unnamed_non_text_part_is_an_attachment_named_after_its_type(part: bytes, attachment: Attachment) -> None:
    parsed = parse_message(_mixed(part))
    assert parsed.attachments == (attachment,)
    assert parsed.body_text == "本文"


@pytest.mark.parametrize("ctype", [b"text/csv", b"text/enriched"])
def test_an_unnamed_text_part_of_another_subtype_joins_the_body(ctype: bytes) -> None:
    parsed = parse_message(_mixed(b"Content-Type: " + ctype + b"; charset=utf-8\r\n\r\n\xe9\xa1\xa7\xe5\xae\xa2,1"))
    assert parsed.body_text == "本文\n顧客,1"
    assert parsed.attachments == ()


def test_an_rfc2231_filename_in_euc_jp_is_read_in_the_charset_it_names() -> None:
    # おねがい in EUC-JP also reads as CP932 half-width katakana (､ｪ､ﾍ...):
    # only the declared charset gets it right.
    parsed = parse_message(_mixed(_pdf_with(b"attachment; filename*=euc-jp''%A4%AA%A4%CD%A4%AC%A4%A4.pdf")))
    assert parsed.attachments[0].filename == "おねがい.pdf"


def test_a_raw_character_just_beyond_latin1_in_an_rfc2231_filename_is_kept() -> None:
    # U+0100 (Ā), written raw into a percent-encoded value by a broken client.
    part = _pdf_with("attachment; filename*=utf-8''%E7%94%B3Ā.pdf".encode())
    parsed = parse_message(_mixed(part))
    assert parsed.attachments[0].filename == "申Ā.pdf"
    assert parsed.problems == ()


def test_an_attachment_disposition_with_several_parameters_is_still_an_attachment() -> None:
    part = (
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b'Content-Disposition: attachment; size=2; creation-date="Mon, 13 May 2024 01:00:00 GMT"\r\n\r\nhi'
    )
    parsed = parse_message(_mixed(part))
    assert parsed.attachments == (Attachment(filename="attachment-1.txt", content_type="text/plain", payload=b"hi"),)


def test_a_filename_with_a_windows_path_is_cut_to_its_name_and_noted() -> None:
    parsed = parse_message(_mixed(_pdf_with(b'attachment; filename="C:\\\\Users\\\\shiten\\\\form.pdf"')))
    assert parsed.attachments[0].filename == "form.pdf"
    assert parsed.problems == ("attachment filename sanitised",)


# --- header text and addresses that needed help --------------------------------


def _headers(*lines: bytes) -> bytes:
    return b"\r\n".join((b"From: a@usen.co.jp", *lines)) + b"\r\n\r\nbody"


def test_a_subject_that_is_not_valid_in_its_charset_is_replaced_and_noted() -> None:
    parsed = parse_message(_headers(b"Subject: =?utf-8?B?//79?="))
    assert parsed.subject == "\ufffd\ufffd\ufffd"
    assert parsed.problems == ("undecodable header text, decoded with replacement",)


def test_a_header_with_a_space_before_its_colon_is_repaired_and_noted() -> None:
    parsed = parse_message(b"Subject : old style\r\nFrom: a@usen.co.jp\r\n\r\nbody")
    assert parsed.subject == "old style"
    assert parsed.problems == ("whitespace before header colon removed",)


def test_addresses_without_any_brackets_are_recovered_each_and_noted() -> None:
    parsed = parse_message(_headers(b"To: Taro@usen.co.jp hanako@usen.co.jp"))
    assert parsed.to == (Address(name="", addr="taro@usen.co.jp"), Address(name="", addr="hanako@usen.co.jp"))
    assert parsed.problems == ("address in to recovered from malformed header",)


def test_a_japanese_name_before_a_bare_address_becomes_its_display_name_and_is_noted() -> None:
    parsed = parse_message(_headers("Cc: 渋谷 支店長 Mgr@usen.co.jp".encode()))
    assert parsed.cc == (Address(name="渋谷 支店長", addr="mgr@usen.co.jp"),)
    assert parsed.problems == ("address without angle brackets repaired",)


def test_an_address_with_at_spelled_out_is_skipped_and_named_in_the_note() -> None:
    parsed = parse_message(_headers(b"To: f-desk@usen.co.jp, Taro <taro at usen.co.jp>"))
    assert parsed.to == (Address(name="", addr="f-desk@usen.co.jp"),)
    assert parsed.problems == ("malformed address in to skipped: Taro",)


def test_a_malformed_address_is_named_in_the_note_up_to_sixty_characters() -> None:
    long_name = "x" * 70
    parsed = parse_message(_headers(f"To: {long_name}, yyy".encode()))
    assert parsed.to == ()
    assert parsed.problems == (f"malformed address in to skipped: {'x' * 57}...",)


def test_a_malformed_address_of_exactly_sixty_characters_is_named_whole() -> None:
    parsed = parse_message(_headers(("To: " + "x" * 60).encode()))
    assert parsed.problems == (f"malformed address in to skipped: {'x' * 60}",)


def test_several_malformed_addresses_are_all_named_in_one_note() -> None:
    parsed = parse_message(_headers(b"Reply-To: Taro <taro at usen>, Hanako <hanako at usen>"))
    assert parsed.reply_to == ()
    assert parsed.problems == ("malformed address in reply-to skipped: Taro, Hanako",)


# --- the synthetic identity of a mail without a Message-ID ---------------------

_NO_ID = (
    b"From: a@usen.co.jp\r\nTo: f-desk@usen.co.jp\r\nCc: mgr@usen.co.jp\r\nSubject: s\r\n"
    b"Date: Mon, 13 May 2024 10:00:00 +0900\r\n\r\nbody\r\nsecond line\r\n"
)


def test_the_synthetic_identity_is_the_one_earlier_versions_stored_in_the_ledger() -> None:
    # The ledger holds identities computed by earlier versions: if this value
    # changed, a mail delivered again after an upgrade would be filed twice.
    assert parse_message(_NO_ID).identity == (
        "<1f9cfe9b1e50af5a71cbb729dd6af1c6d312ea78a156ae888ff73c9437031617@mailbot.invalid>"
    )
    assert parse_message(b"From: a@usen.co.jp\r\nSubject: s\r\n").identity == (
        "<251d496b8e419e2227e0f0c7b662e68d4f4f105c287c1d89ebf7a8f1c27b314f@mailbot.invalid>"
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"From: a@", b"From: b@"),
        (b"To: f-desk@", b"To: g-desk@"),
        (b"Cc: mgr@", b"Cc: sub@"),
        (b"10:00:00", b"10:00:01"),
        (b"Subject: s", b"Subject: t"),
        (b"\r\n\r\nbody", b"\r\n\r\n\r\nbody"),
    ],
)
def test_the_synthetic_identity_changes_with_each_field_that_makes_a_mail_another(old: bytes, new: bytes) -> None:
    assert parse_message(_NO_ID.replace(old, new)).identity != parse_message(_NO_ID).identity


@pytest.mark.parametrize(
    "variant",
    [
        _NO_ID.replace(b"\r\n", b"\n"),
        _NO_ID + b"\r\n\r\n",
        _NO_ID.replace(b"Subject: s", b"Subject:    s"),
        _NO_ID.replace(b"Cc: mgr", b"Cc:\r\n mgr"),
        b"Received: from mx by mx; Mon, 13 May 2024 10:00:01 +0900\r\n" + _NO_ID,
    ],
)
def test_the_synthetic_identity_survives_what_transports_do_to_a_mail(variant: bytes) -> None:
    assert parse_message(variant).identity == parse_message(_NO_ID).identity


# --- every field of a well-formed mail ------------------------------------------


def test_a_reply_in_a_thread_keeps_its_reply_to_and_the_first_in_reply_to_id() -> None:
    raw = (
        b"From: =?utf-8?B?5riL6LC3?= <Shibuya@usen.co.jp>\r\nTo: f-desk@usen.co.jp\r\n"
        b"Reply-To: =?utf-8?B?5riL6LC3?= <Reply@usen.co.jp>, other@usen.co.jp\r\n"
        b"Subject: Re: s\r\nIn-Reply-To: <a1@usen.co.jp> <a2@usen.co.jp>\r\n"
        b"References: <r1@usen.co.jp>\r\n <a1@usen.co.jp>\r\nReferences: <r2@usen.co.jp>\r\n"
        b"Message-ID: <m1@usen.co.jp>\r\n\r\nbody"
    )
    parsed = parse_message(raw)
    assert parsed.sender == Address(name="渋谷", addr="shibuya@usen.co.jp")
    assert parsed.reply_to == (
        Address(name="渋谷", addr="reply@usen.co.jp"),
        Address(name="", addr="other@usen.co.jp"),
    )
    assert parsed.in_reply_to == "<a1@usen.co.jp>"
    assert parsed.references == ("<r1@usen.co.jp>", "<a1@usen.co.jp>", "<r2@usen.co.jp>")
    assert parsed.return_path is None
    assert parsed.problems == ()


def test_a_mail_with_no_from_or_subject_header_has_no_sender_and_an_empty_subject() -> None:
    parsed = parse_message(b"To: f-desk@usen.co.jp\r\n\r\nbody")
    assert parsed.sender is None
    assert parsed.subject == ""
    assert parsed.in_reply_to is None
    assert parsed.references == ()


# --- which rendering of multipart/alternative is the body ---------------------


def _alternative(*parts: bytes) -> bytes:
    return (
        _mixed(*parts)
        .replace(b"multipart/mixed", b"multipart/alternative", 1)
        .replace(b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe6\x9c\xac\xe6\x96\x87\r\n", b"", 1)
    )


_PLAIN = b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xe6\x9c\xac\xe6\x96\x87"  # 本文
_HTML = b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>\xe6\x9c\xac\xe6\x96\x87 html</p>"
_ENRICHED = b"Content-Type: text/enriched; charset=utf-8\r\n\r\nenriched"


def test_the_html_rendering_is_the_body_when_the_only_plain_text_is_a_named_file() -> None:
    named_plain = (
        b'Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline; filename="memo.txt"\r\n\r\nmemo'
    )
    parsed = parse_message(_alternative(named_plain, _HTML))
    assert parsed.body_text == "本文 html"
    assert parsed.attachments == (Attachment(filename="memo.txt", content_type="text/plain", payload=b"memo"),)


def test_the_html_rendering_is_preferred_to_another_text_subtype() -> None:
    assert parse_message(_alternative(_ENRICHED, _HTML)).body_text == "本文 html"


def test_plain_text_is_preferred_to_html_in_either_order() -> None:
    assert parse_message(_alternative(_HTML, _PLAIN)).body_text == "本文"


def test_an_alternative_of_unknown_renderings_reads_only_the_first() -> None:
    other = b"Content-Type: text/richtext; charset=utf-8\r\n\r\nrichtext"
    assert parse_message(_alternative(_ENRICHED, other)).body_text == "enriched"


# --- how deep the MIME tree is read -----------------------------------------------


def _wrapped(levels: int, leaf: bytes, subtype: bytes = b"mixed") -> bytes:
    for i in range(levels):
        leaf = (
            b'Content-Type: multipart/%s; boundary="b%d"\r\n\r\n--b%d\r\n' % (subtype, i, i)
            + leaf
            + b"\r\n--b%d--\r\n" % i
        )
    return leaf


_LEAF = b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xe9\xa1\xa7\xe5\xae\xa2CD:123456789"  # 顧客CD


def test_text_forty_multiparts_deep_is_still_read() -> None:
    parsed = parse_message(b"From: a@usen.co.jp\r\n" + _wrapped(40, _LEAF))
    assert parsed.body_text == "顧客CD:123456789"
    assert parsed.problems == ()


def test_text_forty_one_multiparts_deep_is_skipped_and_noted() -> None:
    parsed = parse_message(b"From: a@usen.co.jp\r\n" + _wrapped(41, _LEAF))
    assert parsed.body_text == ""
    assert parsed.problems == ("MIME nesting too deep, inner parts skipped",)


def _alternative_with_deep_file(levels: int) -> bytes:
    named = b'Content-Type: application/pdf; name="form.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg=='
    return (
        b'From: a@usen.co.jp\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        b"--alt\r\n" + _LEAF + b"\r\n--alt\r\n" + _wrapped(levels, named, b"related") + b"\r\n--alt--\r\n"
    )


def test_a_named_file_forty_levels_deep_in_the_html_branch_is_kept() -> None:
    parsed = parse_message(_alternative_with_deep_file(39))
    assert parsed.attachments == (Attachment(filename="form.pdf", content_type="application/pdf", payload=b"%PDF"),)
    assert parsed.body_text == "顧客CD:123456789"


def test_a_named_file_deeper_than_forty_levels_in_the_html_branch_is_dropped() -> None:
    parsed = parse_message(_alternative_with_deep_file(40))
    assert parsed.attachments == ()
    assert parsed.body_text == "顧客CD:123456789"


# --- bounces, HTML and line ends -------------------------------------------------

_BOUNCE = (
    b"From: MAILER-DAEMON@usen.co.jp\r\nTo: a@usen.co.jp\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
    b"--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
    b"--r\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.usen.co.jp\r\n\r\n"
    b"Final-Recipient: rfc822; x@usen.co.jp\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--r--\r\n"
)


def test_a_delivery_status_report_is_kept_as_text_block_by_block() -> None:
    parsed = parse_message(_BOUNCE)
    assert parsed.body_text == (
        "failed\nReporting-MTA: dns; mx.usen.co.jp\n\n"
        "Final-Recipient: rfc822; x@usen.co.jp\nAction: failed\nStatus: 5.1.1"
    )
    assert parsed.problems == ()


def test_an_empty_delivery_status_report_leaves_the_rest_of_the_bounce() -> None:
    empty = _BOUNCE.split(b"Reporting-MTA")[0] + b"--r--\r\n"
    parsed = parse_message(empty)
    assert parsed.body_text == "failed"
    assert parsed.problems == ()


def test_html_is_reduced_to_its_lines_without_runs_of_spaces_or_blank_lines() -> None:
    html = (
        "<html><head><title>件名</title><style>p {color: red}</style></head><body>"
        "<p>お世話に   なります。</p><br><br><br><br><div>顧客CD:\t123</div></body></html>"
    ).encode()
    parsed = parse_message(_html_mail(html).replace(b"text/html", b"text/html; charset=utf-8"))
    assert parsed.body_text == "お世話に なります。\n\n顧客CD: 123"
    assert parsed.problems == ()


def test_html_the_parser_trips_on_is_stripped_of_its_tags_and_noted() -> None:
    parsed = parse_message(
        _html_mail("<![foo[ x ]]><p>本文</p>".encode()).replace(b"text/html", b"text/html; charset=utf-8")
    )
    assert parsed.body_text == "本文"
    assert parsed.problems == ("broken HTML part, tags stripped crudely",)


def test_old_mac_line_ends_in_an_encoded_text_part_become_newlines() -> None:
    body = base64.b64encode("一行目\r二行目\r\n三行目".encode())
    raw = (
        b"From: a@usen.co.jp\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body
    )
    assert parse_message(raw).body_text == "一行目\n二行目\n三行目"


def test_a_text_part_declared_ascii_but_written_in_utf8_is_decoded_and_noted() -> None:
    raw = b"From: a@usen.co.jp\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + "顧客".encode()
    parsed = parse_message(raw)
    assert parsed.body_text == "顧客"
    assert parsed.problems == ("text part declared us-ascii but decoded as utf-8",)


def test_a_text_part_without_a_charset_in_euc_jp_is_read_as_euc_jp_without_a_note() -> None:
    raw = b"From: a@usen.co.jp\r\nContent-Type: text/plain\r\n\r\n" + "テストです".encode("euc_jp")
    parsed = parse_message(raw)
    assert parsed.body_text == "テストです"
    assert parsed.problems == ()


def test_a_text_part_without_a_charset_that_reads_as_cp932_and_as_euc_jp_is_noted_as_a_guess() -> None:
    # Kanji-only EUC-JP is also valid half-width CP932: the staff must be told.
    raw = b"From: a@usen.co.jp\r\nContent-Type: text/plain\r\n\r\n" + "渋谷支店".encode("euc_jp")
    parsed = parse_message(raw)
    assert parsed.problems == ("text part without a charset, guessed as cp932",)


def test_a_raw_shift_jis_name_on_the_content_type_alone_decodes() -> None:
    # Some phone clients name the file only in Content-Type, unencoded.
    part = b'Content-Type: application/pdf; name="' + "申込書.pdf".encode("shift_jis") + b'"\r\n\r\nx'
    (attachment,) = parse_message(_mixed(part)).attachments
    assert attachment.filename == "申込書.pdf"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # a relay that writes the path without brackets
        (b"Return-Path: Bounce@usen.co.jp", "bounce@usen.co.jp"),
        # a long VERP path folded inside the brackets
        (
            b"Return-Path: <bounce-12345-\r\n shiten=usen.co.jp@lists.usen.co.jp>",
            "bounce-12345-shiten=usen.co.jp@lists.usen.co.jp",
        ),
    ],
)
def test_a_return_path_without_brackets_or_folded_is_read_whole(header: bytes, expected: str) -> None:
    assert parse_message(_headers(header)).return_path == expected


def test_a_message_id_folded_inside_its_brackets_is_joined_back() -> None:
    parsed = parse_message(_headers(b"Message-ID: <TYAPR01MB0001.jpnprd01.\r\n prod.outlook.com@usen.co.jp>"))
    assert parsed.message_id == "<TYAPR01MB0001.jpnprd01.prod.outlook.com@usen.co.jp>"


def test_bare_references_keep_only_the_tokens_that_look_like_ids() -> None:
    parsed = parse_message(_headers(b"References: r1@usen.co.jp (first mail) r2@usen.co.jp"))
    assert parsed.references == ("<r1@usen.co.jp>", "<r2@usen.co.jp>")


@pytest.mark.parametrize(
    ("filename", "label"),
    [
        # macOS writes names decomposed (NFD): ダ as タ + U+3099
        ("申込書_タ\u3099イ.pdf", "申込書_ダイ.pdf"),
        (".", "attachment-1.pdf"),
        ("..", "attachment-1.pdf"),
        ("a" * 300 + ".pdf", "a" * 255),
        ("\u200b申込書\u202e.pdf", "申込書.pdf"),
        ("  申込書.pdf  ", "申込書.pdf"),
    ],
)
def test_an_attachment_label_is_normalised_stripped_and_at_most_255_characters(filename: str, label: str) -> None:
    word = "=?utf-8?B?" + base64.b64encode(filename.encode()).decode() + "?="
    parsed = parse_message(_mixed(_pdf_with(f'attachment; filename="{word}"'.encode())))
    assert parsed.attachments[0].filename == label


def test_a_mime_tree_a_thousand_levels_deep_is_refused_as_no_mail() -> None:
    # The stdlib parser recurses once per level; such a mail is hostile.
    with pytest.raises(UnparseableMessage, match=r"^MIME structure too deep: maximum recursion depth exceeded"):
        parse_message(b"From: a@usen.co.jp\r\n" + _wrapped(1000, _LEAF))


def test_a_delivery_status_part_marked_as_an_attachment_is_read_as_the_bounce_text() -> None:
    raw = _BOUNCE.replace(
        b"Content-Type: message/delivery-status\r\n",
        b"Content-Type: message/delivery-status\r\nContent-Disposition: attachment\r\n",
    )
    parsed = parse_message(raw)
    assert parsed.attachments == ()
    assert "Status: 5.1.1" in parsed.body_text


def _deep_forward(levels: int) -> bytes:
    inner = b"From: shiten@usen.co.jp\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + "顧客CD:123456789".encode()
    part = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(inner)
    return b"From: relay@usen.co.jp\r\n" + _wrapped(levels, part)


def test_the_text_of_an_encoded_forwarded_mail_counts_one_level_below_its_part() -> None:
    # The part 39 multiparts down, the mail inside it at level 40: still read.
    parsed = parse_message(_deep_forward(39))
    assert parsed.body_text == "顧客CD:123456789"
    assert "MIME nesting too deep, inner parts skipped" not in parsed.problems


def test_an_encoded_forwarded_mail_below_the_depth_limit_is_skipped_and_noted() -> None:
    parsed = parse_message(_deep_forward(40))
    assert parsed.body_text == ""
    assert "MIME nesting too deep, inner parts skipped" in parsed.problems


def test_every_bad_header_name_in_an_mbox_mail_is_repaired_and_the_separator_line_left_alone() -> None:
    raw = (
        b"From a@usen.co.jp Mon May 13 10:00:00 2024\r\nFrom: a@usen.co.jp\r\n"
        b"X Spam Time: 10:00\r\n\tnext day\r\nSubject: s\r\nX Other Bad: 1\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _BODY_B64 + b"\r\n"
    )
    parsed = parse_message(raw)
    assert dict(parsed.headers) == {
        "from": ("a@usen.co.jp",),
        "x_spam_time": ("10:00\tnext day",),
        "subject": ("s",),
        "x_other_bad": ("1",),
        "content-transfer-encoding": ("base64",),
    }
    assert parsed.body_text == "顧客CD:123456789 お願いします"
    assert parsed.problems == ("invalid header field name repaired",)


def test_a_stray_8bit_byte_in_a_base64_forwarded_mail_is_skipped() -> None:
    inner = b"From: shiten@usen.co.jp\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + "顧客CD:123456789".encode()
    encoded = base64.encodebytes(inner)
    parsed = parse_message(_forwarding(b"base64", encoded[:10] + b"\xa0" + encoded[10:]))
    assert parsed.body_text == "転送\n顧客CD:123456789"


def test_a_mail_whose_first_header_is_an_x_header_keeps_its_name() -> None:
    parsed = parse_message(b"X-Mailer: iPhone Mail (21E236)\r\nFrom: a@usen.co.jp\r\n\r\nbody")
    assert parsed.header("x-mailer") == ("iPhone Mail (21E236)",)
    assert parsed.problems == ()
