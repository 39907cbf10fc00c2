"""What the IMAP session takes from a CAPABILITY answer: declared once, read as fields (no server needed)."""

from __future__ import annotations

from mailbot.adapters.imap import Capabilities


def test_a_capability_answer_is_read_into_declared_fields_whatever_its_case() -> None:
    answer = (b"IMAP4rev1", b"SASL-IR", b"IDLE", b"move", b"UIDPLUS", b"NAMESPACE", b"AUTH=XOAUTH2", b"X-GM-EXT-1")
    offered = Capabilities.parse(answer)
    assert offered == Capabilities(idle=True, move=True, uidplus=True, namespace=True, auth_xoauth2=True, gmail=True)


def test_a_server_that_says_nothing_offers_nothing() -> None:
    assert Capabilities.parse([]) == Capabilities()
    assert not Capabilities().starttls


def test_text_words_count_like_bytes() -> None:
    offered = Capabilities.parse(["STARTTLS", "AUTH=OAUTHBEARER", "MULTIAPPEND", "UNSELECT"])
    assert offered == Capabilities(starttls=True, auth_oauthbearer=True, multiappend=True, unselect=True)
