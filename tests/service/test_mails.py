"""Outgoing mail assembly: threading headers as Outlook and RFC 5322 need them."""

from __future__ import annotations

import base64
import email
import itertools
import re
from datetime import UTC, datetime, timedelta
from email.policy import default

import pytest

from mailbot.adapters.templates import Renderer
from mailbot.domain.decision import MailIntent
from mailbot.domain.policy import Policy
from mailbot.service.mails import build_outbox_row, fold_msg_ids, mail_context, thread_index
from tests.domain.builders import request

POLICY = Policy(desk_address="f-desk@mxb.usen.co.jp", internal_domains=("usen.co.jp",))
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
# Exchange Online's normal form: longer than 77 characters on its own.
OUTLOOK_ID = "<TYWPR01MB10513B4D3A8C4E0E0F3A0B9E2B1A32@TYWPR01MB10513.jpnprd01.prod.outlook.com>"
OUTLOOK_IDS = [
    f"<TYWPR01MB10513B4D3A8C4E0E0F3A0B9E2B1A3{i}@TYWPR01MB10513.jpnprd01.prod.outlook.com>" for i in range(3)
]


def _reply(**overrides: object) -> bytes:
    message = request(**overrides)
    context = mail_context(
        case_no="FE-2026-00001",
        branch="渋谷支店",
        customer_code="123456789",
        customer_name="",
        defects=(),
        message=message,
        received_at=NOW,
        policy=POLICY,
        facts={},
    )
    intent = MailIntent("receipt", ("taro@usen.co.jp",), reply_to=message)
    row = build_outbox_row(
        intent, renderer=Renderer(), context=context, policy=POLICY, now=NOW, case_id=None, inbound_id=None
    )
    return row.raw


def _head_lines(raw: bytes) -> list[bytes]:
    return raw.partition(b"\r\n\r\n")[0].split(b"\r\n")


def test_a_reply_to_an_outlook_message_id_longer_than_77_characters_threads_unencoded() -> None:
    raw = _reply(message_id=OUTLOOK_ID, references=OUTLOOK_IDS[:2])
    parsed = email.message_from_bytes(raw, policy=default)
    assert parsed["In-Reply-To"] == OUTLOOK_ID
    assert parsed["References"].split() == [*OUTLOOK_IDS[:2], OUTLOOK_ID]
    lines = _head_lines(raw)
    assert f"In-Reply-To: {OUTLOOK_ID}".encode() in lines
    for name in (b"Message-ID:", b"In-Reply-To:", b"References:"):
        start = next(i for i, line in enumerate(lines) if line.startswith(name))
        field = [lines[start], *itertools.takewhile(lambda x: x.startswith(b" "), lines[start + 1 :])]
        assert not any(b"=?" in line for line in field), field


def test_references_fold_only_between_msg_ids() -> None:
    raw = _reply(message_id=OUTLOOK_ID, references=OUTLOOK_IDS)
    lines = _head_lines(raw)
    start = next(i for i, line in enumerate(lines) if line.startswith(b"References:"))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith(b" "):
            break
        block.append(line)
    assert len(block) == 4  # each id is longer than a line: one id per line
    ids = [token for line in block for token in line.removeprefix(b"References:").split()]
    assert ids == [i.encode() for i in (*OUTLOOK_IDS, OUTLOOK_ID)]
    assert all(re.fullmatch(rb"(References:)? ?<[^<>\s]+>", line) for line in block)


def test_short_msg_ids_share_a_line_up_to_78_characters() -> None:
    folded = fold_msg_ids("References", [f"<{i}@a.jp>" for i in range(20)])
    lines = folded.decode().split("\r\n")[:-1]
    assert len(lines) > 1 and all(len(line) <= 78 for line in lines)
    assert all(line.startswith(" <") for line in lines[1:])


def test_the_message_id_is_never_encoded_even_with_a_long_id_domain() -> None:
    policy = Policy(
        desk_address="f-desk@mxb.usen.co.jp",
        internal_domains=("usen.co.jp",),
        message_id_domain="mailbot.a-very-long-subdomain-name.mxb.usen.co.jp",
    )
    message = request()
    context = mail_context(
        case_no="FE-2026-00001", branch="", customer_code="", customer_name="", defects=(), message=message,
        received_at=NOW, policy=policy, facts={},
    )  # fmt: skip
    row = build_outbox_row(
        MailIntent("ops_accepted", ("ops@usen.co.jp",)),
        renderer=Renderer(), context=context, policy=policy, now=NOW, case_id=None, inbound_id=None,
    )  # fmt: skip
    assert f"Message-ID: {row.message_id}".encode() in _head_lines(row.raw)
    assert email.message_from_bytes(row.raw, policy=default)["Message-ID"] == row.message_id


def test_a_reply_to_an_outlook_request_continues_its_thread_index_and_topic() -> None:
    raw = _reply(message_id=OUTLOOK_ID, style="outlook", subject="RE: フレッツエスカ 渋谷支店")
    parsed = email.message_from_bytes(raw, policy=default)
    parent = base64.b64decode("AdqlCk1wXj3nZ8YbQ0m0c2s1a2tQ5A==")
    index = base64.b64decode(parsed["Thread-Index"])
    assert index[:22] == parent and len(index) == 27
    assert parsed["Thread-Topic"] == "フレッツエスカ 渋谷支店"


def test_a_reply_to_a_request_without_a_thread_index_starts_one() -> None:
    raw = _reply(message_id="<abc@gmail.com>", style="gmail")
    index = base64.b64decode(email.message_from_bytes(raw, policy=default)["Thread-Index"])
    assert len(index) == 22
    # The first 6 bytes are the high bits of the FILETIME of now.
    filetime = int.from_bytes(index[:6], "big") << 16
    seconds = filetime / 10_000_000 - 11_644_473_600
    assert abs(seconds - NOW.timestamp()) < 10


@pytest.mark.parametrize("later", [timedelta(minutes=5), timedelta(days=800)])
def test_the_thread_index_child_block_holds_the_time_since_the_conversation_started(later: timedelta) -> None:
    start = thread_index("", NOW)
    child = base64.b64decode(thread_index(start, NOW + later))[22:]
    value = int.from_bytes(child, "big") >> 8
    delta = later.total_seconds() * 10_000_000
    decoded = (value & 0x7FFFFFFF) << (23 if value >> 31 else 18)
    assert value >> 31 == (1 if later.days > 600 else 0)
    assert abs(decoded - delta) <= (1 << 23)


@pytest.mark.parametrize(
    "subject",
    [
        "フレッツエスカ 渋谷支店",
        "RE: 【至急】フレッツエスカ 渋谷支店 ㈱さくらインターネットサービス 回線単品 申込書一式 再送付のお願い ①②③",
        "Fwd: flets esca shibuya branch " + "long ascii words " * 6,
    ],
)
def test_every_outgoing_mail_is_seven_bit_with_short_lines_and_decodes_to_the_rendered_japanese(subject: str) -> None:
    raw = _reply(subject=subject)
    assert raw.isascii()
    # Only a threading header may be longer: an Outlook msg-id is never folded (see above).
    long_lines = [line for line in raw.split(b"\r\n") if len(line) > 78]
    assert all(line.startswith((b"In-Reply-To:", b"References:", b" <")) for line in long_lines), long_lines
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare line feeds on the wire"
    parsed = email.message_from_bytes(raw, policy=default)
    assert parsed["From"].addresses[0].display_name == "USEN NETWORKS 納品デスク"
    assert parsed["From"].addresses[0].addr_spec == "f-desk@mxb.usen.co.jp"
    assert parsed["To"].addresses[0].addr_spec == "taro@usen.co.jp"
    assert subject.split()[-1] in str(parsed["Subject"])
    assert str(parsed["Thread-Topic"]) and "RE:" not in str(parsed["Thread-Topic"])
    assert parsed["MIME-Version"] == "1.0" and parsed.get_content_type() == "text/plain"
    assert parsed.get_content_charset() == "utf-8" and parsed["Content-Transfer-Encoding"] == "base64"
    text = base64.b64decode(parsed.get_payload()).decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", ""), "the text is in canonical CRLF form"
    assert "FE-2026-00001" in text and "受付" in text


def test_a_mail_reads_its_times_in_the_configured_zone() -> None:
    from datetime import UTC, datetime

    from mailbot.domain.policy import Policy
    from mailbot.service.mails import mail_context

    arrived = datetime(2026, 11, 27, 0, 30, tzinfo=UTC)
    common = {
        "case_no": None,
        "branch": None,
        "customer_code": None,
        "customer_name": None,
        "defects": (),
        "message": None,
        "received_at": arrived,
        "facts": {},
    }
    tokyo = mail_context(policy=Policy("d@x.jp", ("x.jp",)), **common)
    utc = mail_context(policy=Policy("d@x.jp", ("x.jp",), tz=UTC), **common)
    assert tokyo["original"]["date"] == "2026-11-27 09:30"
    assert utc["original"]["date"] == "2026-11-27 00:30"
