"""Why the parser does not use mail-parser: what it gives for Outlook's ISO-2022-JP.

If these start failing, mail-parser has been fixed and could take over part
of `mailbot.domain.parsing` again.
"""

import mailparser

from mailbot.domain.parsing import parse_message
from tests.mailfactory import build_mail

RAW = build_mail(
    style="outlook",
    subject="フレッツエスカ 渋谷支店",
    sender="a@usen.co.jp",
    to=["b@usen.co.jp"],
    body="顧客CD:123456789 ㈱さくら",
)


def test_mail_parser_returns_raw_escape_sequences_for_a_7bit_iso2022jp_body() -> None:
    body = mailparser.parse_from_bytes(RAW).body
    assert "\x1b$B" in body
    assert "顧客" not in body


def test_our_parser_decodes_the_same_body_including_cp932_extensions() -> None:
    assert "顧客CD:123456789 ㈱さくら" in parse_message(RAW).body_text
