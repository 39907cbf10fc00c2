"""Raw mail's compression, the directory store and cutting attachments out of a mail."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

from mailbot.adapters.rawstore import RawDirectory, compress, decompress, strip_attachments
from mailbot.domain.parsing import parse_message
from tests.domain.builders import xlsx_form
from tests.mailfactory import build_mail

SHA = "ab" + "0" * 62


def a_mail(style: str = "outlook") -> bytes:
    return build_mail(
        style=style,  # type: ignore[arg-type]
        subject="フレッツエスカ 渋谷支店 ㈱さくら",
        sender="担当 <taro@usen.co.jp>",
        to=["f-desk@mxb.usen.co.jp"],
        cc=["渋谷 支店長 <shibuya-mgr@usen.co.jp>"],
        body="お疲れ様です。\n顧客CD:123456789\nよろしくお願いします。\n",
        attachments=[("回線単品申込書_さくら.pdf", b"%PDF-1.4\n" + os.urandom(20_000)), ("申込書.xlsx", xlsx_form())],
        message_id="<raw-1@usen.co.jp>",
    )


def test_new_raw_mail_is_compressed_with_zstd_and_reads_back_the_same() -> None:
    raw = a_mail()
    data = compress(raw)
    assert data[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert decompress(data) == raw


def test_raw_mail_stored_before_zstd_is_zlib_and_still_reads_back() -> None:
    raw = a_mail()
    for level in (1, 6, 9):
        assert decompress(zlib.compress(raw, level)) == raw


def test_the_directory_store_writes_one_file_by_digest_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = RawDirectory(tmp_path / "raw")
    store.write(SHA, b"compressed bytes")
    assert store.read(SHA) == b"compressed bytes"
    assert [p.name for p in (tmp_path / "raw").rglob("*") if p.is_file()] == [f"{SHA}.zst"]
    assert store.file_of(SHA).parent.name == "ab"
    store.write(SHA, b"again")  # the same name again replaces it whole
    assert store.read(SHA) == b"again"
    assert store.remove(SHA) is True
    assert store.read(SHA) is None
    assert store.remove(SHA) is False


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    store = RawDirectory(tmp_path / "raw")
    store.write(SHA, b"whole")
    # The temporary file is open when the write raises (a str is not bytes), as on a full disk.
    with pytest.raises(TypeError):
        store.write(SHA, "not bytes")  # type: ignore[arg-type]
    assert store.read(SHA) == b"whole"
    assert [p.name for p in store.file_of(SHA).parent.iterdir()] == [f"{SHA}.zst"]


def test_a_name_that_is_not_a_digest_never_becomes_a_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RawDirectory(tmp_path).file_of("../../etc/passwd")


@pytest.mark.parametrize("style", ["outlook", "gmail", "iphone"])
def test_stripping_attachments_keeps_the_headers_the_text_and_each_attachments_name(style: str) -> None:
    raw = a_mail(style)
    before = parse_message(raw)
    stripped = strip_attachments(raw)
    after = parse_message(stripped)
    assert len(stripped) < len(raw) / 4
    assert (after.subject, after.sender, after.to, after.cc, after.message_id, after.date) == (
        before.subject,
        before.sender,
        before.to,
        before.cc,
        before.message_id,
        before.date,
    )
    assert after.body_text == before.body_text
    assert [a.filename for a in after.attachments] == [a.filename for a in before.attachments]
    assert all(a.payload == b"" for a in after.attachments)
    assert strip_attachments(stripped) == stripped  # idempotent
