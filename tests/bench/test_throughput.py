"""The throughput bench's corpus and floor: the figures mean something only if these hold."""

from __future__ import annotations

import email
import email.policy
import sqlite3
import zlib
from email.message import EmailMessage
from pathlib import Path

import pytest

from bench.throughput import STYLES, floor, machine, request
from mailbot.domain.parsing import parse_message
from tests.fixtures.dovecot import DovecotMailbox

CODE = "300000007"


def _message(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _text_part(message: EmailMessage) -> EmailMessage:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part  # type: ignore[return-value]


def test_the_corpus_cycles_through_every_style() -> None:
    assert [request(i, CODE)[0] for i in range(8)] == [*STYLES, *STYLES]


@pytest.mark.parametrize("i", range(4), ids=STYLES)
def test_every_request_is_about_200_kb_with_a_pdf_and_an_xlsx_form(i: int) -> None:
    _style, raw = request(i, CODE)
    parsed = parse_message(raw)

    assert 180_000 < len(raw) < 230_000
    names = sorted(a.filename for a in parsed.attachments)
    assert names == [f"回線単品申込書_株式会社ベンチ商事{i}.pdf", f"申込書フォーム_ベンチ商事{i}.xlsx"]


@pytest.mark.parametrize("i", range(4), ids=STYLES)
def test_every_request_reads_back_as_the_japanese_it_was_written_in(i: int) -> None:
    parsed = parse_message(request(i, CODE)[1])

    assert parsed.subject == f"フレッツエスカ 渋谷支店 ㈱ベンチ商事{i}"
    assert f"顧客CD:{CODE}" in parsed.body_text
    assert "㈱ベンチ商事" in parsed.body_text and "①" in parsed.body_text
    assert not parsed.problems


@pytest.mark.parametrize(
    ("i", "charset", "transfer", "subject_word"),
    [
        (0, "iso-2022-jp", "7bit", b"=?iso-2022-jp?B?"),
        (1, "utf-8", "base64", b"=?UTF-8?B?"),
        (2, "utf-8", "quoted-printable", b"=?utf-8?B?"),
        (3, "shift_jis", "8bit", b"=?Shift_JIS?B?"),
    ],
    ids=STYLES,
)
def test_each_style_writes_its_text_in_its_own_charset(
    i: int, charset: str, transfer: str, subject_word: bytes
) -> None:
    raw = request(i, CODE)[1]
    text = _text_part(_message(raw))

    assert text.get_content_charset() == charset
    assert text["Content-Transfer-Encoding"] == transfer
    assert b"\r\nSubject: " + subject_word in raw


def test_the_shift_jis_request_carries_its_body_as_raw_shift_jis_bytes() -> None:
    raw = request(3, CODE)[1]

    assert f"顧客CD:{CODE}".encode("cp932") in raw
    assert "㈱ベンチ商事3 ～本店～".encode("cp932") in raw


def test_the_iphone_request_names_its_files_with_rfc2231_continuations() -> None:
    raw = request(2, CODE)[1]

    assert b"filename*0*=utf-8''" in raw and b"filename*1*=" in raw


def test_every_fifth_request_leaves_the_manager_out_of_cc() -> None:
    copied = [bool(parse_message(request(i, CODE)[1]).cc) for i in range(6)]

    assert copied == [False, True, True, True, True, False]


def test_the_machine_line_names_the_cores_and_the_python() -> None:
    import platform

    line = machine()

    assert line.startswith("machine: ") and " cores, Python " + platform.python_version() in line


@pytest.mark.services
def test_the_floor_stores_every_message_compressed_in_a_row_of_its_own(
    dovecot_mailbox: DovecotMailbox, tmp_path: Path
) -> None:
    box = dovecot_mailbox
    corpus = [request(i, f"30000000{i}")[1] for i in range(3)]
    with box.client() as client:
        for raw in corpus:
            client.append("INBOX", raw)
    db_path = tmp_path / "floor.sqlite3"

    rate = floor(box.server.host, box.server.port, box.user, box.password, db_path)

    assert rate.count == 3
    with sqlite3.connect(db_path) as db:
        stored = [zlib.decompress(row[0]) for row in db.execute("SELECT raw FROM message ORDER BY uid")]
    assert stored == corpus
