"""DirectoryDelivery on a real temporary directory."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from mailbot.adapters.directory import DirectoryDelivery, filename_for
from mailbot.service.ports import (
    Delivery,
    OutgoingMail,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)

SAFE_NAME = re.compile(r"[A-Za-z0-9._@-]+\.eml")


def make_mail(message_id: str, body: bytes = b"hello\r\n") -> OutgoingMail:
    raw = (
        f"Message-ID: {message_id}\r\n".encode("utf-8", "surrogatepass")
        + b"Subject: =?utf-8?b?5Y+X5LuY?=\r\n\r\n"
        + body
    )
    return OutgoingMail(message_id=message_id, sender="f-desk@example.co.jp", recipients=("a@example.jp",), raw=raw)


def test_directory_delivery_satisfies_the_delivery_port(tmp_path: Path) -> None:
    port: Delivery = DirectoryDelivery(tmp_path)
    assert port.already_sent([]) == set()


def test_a_mail_is_written_with_exactly_its_bytes_under_its_message_id(tmp_path: Path) -> None:
    delivery = DirectoryDelivery(tmp_path)
    mail = make_mail("<reply-1@mailbot.example.co.jp>", body="本文\r\n".encode())

    delivery.send(mail)

    assert [p.name for p in tmp_path.iterdir()] == ["reply-1@mailbot.example.co.jp.eml"]
    assert (tmp_path / "reply-1@mailbot.example.co.jp.eml").read_bytes() == mail.raw


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    delivery = DirectoryDelivery(tmp_path)
    for n in range(5):
        delivery.send(make_mail(f"<m{n}@x>"))

    assert sorted(p.name for p in tmp_path.iterdir()) == [f"m{n}@x.eml" for n in range(5)]


def test_mail_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    delivery = DirectoryDelivery(tmp_path / "out")
    delivery.send(make_mail("<a@b>"))

    mode = stat.S_IMODE((tmp_path / "out" / "a@b.eml").stat().st_mode)
    assert mode & 0o077 == 0


def test_a_failed_write_leaves_neither_a_partial_mail_nor_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = DirectoryDelivery(tmp_path)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    # Simulated disk failure: root ignores permission bits, so chmod can't do it.
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(TemporaryDeliveryError, match="No space left"):
        delivery.send(make_mail("<a@b>"))

    assert list(tmp_path.iterdir()) == []
    assert delivery.already_sent(["<a@b>"]) == set()


def test_sending_the_same_message_id_again_replaces_the_file_whole(tmp_path: Path) -> None:
    delivery = DirectoryDelivery(tmp_path)
    delivery.send(make_mail("<a@b>", body=b"first\r\n"))
    delivery.send(make_mail("<a@b>", body=b"second\r\n"))

    [only] = tmp_path.iterdir()
    assert only.read_bytes().endswith(b"second\r\n")


def test_already_sent_knows_exactly_the_written_message_ids(tmp_path: Path) -> None:
    delivery = DirectoryDelivery(tmp_path)
    delivery.send(make_mail("<sent@x>"))
    delivery.send(make_mail("<dir/../odd@x>"))

    assert delivery.already_sent(iter(["<sent@x>", "sent@x", "<dir/../odd@x>", "<dir_.._odd@x>", "<never@x>", ""])) == {
        "<sent@x>",
        "sent@x",
        "<dir/../odd@x>",
    }


def test_already_sent_survives_a_new_delivery_object(tmp_path: Path) -> None:
    DirectoryDelivery(tmp_path).send(make_mail("<a@b>"))

    assert DirectoryDelivery(tmp_path).already_sent(["<a@b>"]) == {"<a@b>"}


HOSTILE_IDS = [
    "<../../etc/passwd>",
    "../../../../tmp/owned",
    "/etc/passwd",
    "<..>",
    "..",
    ".",
    "<.hidden@x>",
    "<a\\..\\..\\windows@x>",
    "<a\x00b@x>",
    "<a\nb@x>",
    "<受付@例え.jp>",
    "<" + "x" * 5000 + "@x>",
    "<\udcff@x>",
]


@pytest.mark.parametrize("message_id", HOSTILE_IDS)
def test_a_hostile_message_id_cannot_escape_or_hide_in_the_directory(tmp_path: Path, message_id: str) -> None:
    outbox = tmp_path / "outbox"
    delivery = DirectoryDelivery(outbox)

    delivery.send(make_mail(message_id))

    [written] = outbox.iterdir()
    assert written.parent == outbox
    assert SAFE_NAME.fullmatch(written.name)
    assert not written.name.startswith(".")
    assert len(written.name.encode()) <= 255
    assert [p.name for p in tmp_path.iterdir()] == ["outbox"]
    assert delivery.already_sent([message_id]) == {message_id}


def test_message_ids_that_sanitise_alike_still_get_separate_files(tmp_path: Path) -> None:
    ids = ["<a/b@x>", "<a_b@x>", "<a:b@x>", "<a b@x>"]
    delivery = DirectoryDelivery(tmp_path)
    for message_id in ids:
        delivery.send(make_mail(message_id))

    assert len(list(tmp_path.iterdir())) == len(ids)
    assert len({filename_for(m) for m in ids}) == len(ids)


def test_angle_brackets_do_not_change_the_file_name() -> None:
    assert filename_for("<abc@example.jp>") == filename_for("abc@example.jp") == "abc@example.jp.eml"


def test_an_empty_message_id_is_refused_for_good(tmp_path: Path) -> None:
    with pytest.raises(PermanentDeliveryError, match="empty Message-ID"):
        DirectoryDelivery(tmp_path).send(make_mail("<>"))
