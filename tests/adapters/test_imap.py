"""ImapSource / ImapSentFolder against a real private Dovecot (tests/fixtures/dovecot.py).

Tests that take ``imap_mailbox`` also run on Courier and Cyrus (tests/fixtures/imap_servers.py).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from imapclient import IMAPClient, imap_utf7

from mailbot.adapters.imap import (
    KEYWORDS,
    AuthenticationFailed,
    ImapSentFolder,
    ImapSettings,
    ImapSource,
    MessageTooLarge,
    check_connection,
    message_id_key,
)
from mailbot.adapters.oauth2 import OAuth2Settings
from mailbot.service.ports import SourceError, SourceItem
from tests.fixtures.dovecot import DovecotMailbox
from tests.fixtures.imap_servers import ServerMailbox
from tests.fixtures.token_endpoint import TokenEndpoint

pytestmark = pytest.mark.services

SEEN = b"\\Seen"
# Tests taking imap_mailbox run on Dovecot, Courier (no keywords) and Cyrus (INBOX. namespace).
Mailbox = DovecotMailbox | ServerMailbox


def mail(n: int, body: str = "hello", extra: bytes = b"") -> bytes:
    """A minimal RFC 5322 message with Message-ID <n@test.example>."""
    return (
        b"From: sender@example.com\r\n"
        b"To: desk@example.com\r\n"
        + f"Subject: request {n}\r\n".encode()
        + f"Message-ID: <{n}@test.example>\r\n".encode()
        + b"Date: Mon, 01 Jan 2024 09:00:00 +0900\r\n"
        + extra
        + b"\r\n"
        + body.encode()
        + b"\r\n"
    )


class DictCursor:
    """In-memory CursorStore."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, source: str) -> str | None:
        return self.values.get(source)

    def set(self, source: str, value: str) -> None:
        self.values[source] = value


class Ledger:
    """What the service would remember: item keys and message identities."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.asked: list[list[str]] = []

    def known(self, keys: Sequence[str]) -> set[str]:
        self.asked.append(list(keys))
        return {k for k in keys if k in self.keys}

    def record(self, item: SourceItem) -> None:
        self.keys.add(item.key)
        raw = item.load()
        for line in raw.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.keys.add(message_id_key(line.split(b":", 1)[1].decode()))


def settings_for(box: Mailbox, **overrides: object) -> ImapSettings:
    values: dict[str, object] = {
        "host": box.host,
        "port": box.port,
        "tls": "none",
        "username": box.user,
        "password": box.password,
        "timeout_seconds": 5.0,
    }
    values.update(overrides)
    return ImapSettings(**values)  # type: ignore[arg-type]


def source_for(box: Mailbox, cursor: DictCursor | None = None, **kw: object) -> ImapSource:
    return ImapSource(settings_for(box, **kw), cursor if cursor is not None else DictCursor())


def uid_of(item: SourceItem) -> int:
    return int(item.key.split(":")[1])


def subjects(items: Iterable[SourceItem]) -> list[str]:
    out = []
    for item in items:
        for line in item.load().split(b"\r\n"):
            if line.startswith(b"Subject: "):
                out.append(line[9:].decode())
    return out


def test_a_batch_is_marked_with_one_command_per_outcome_and_each_lands_in_its_folder(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    for n in range(1, 7):
        box.append(mail(n, body="x" * 2000))
    cursor = DictCursor()
    source = source_for(box, cursor, folders={"accepted": "受付済", "returned": "返却"})
    items = list(source.fetch_new(Ledger().known))
    # One FETCH brings several bodies; each item still loads its own message.
    assert subjects(items) == [f"request {n}" for n in range(1, 7)]
    outcomes = [("case", "accepted"), ("case", "returned"), ("case", "accepted"), ("ignored", None)] * 2
    failed = source.mark_many([(item, *outcome) for item, outcome in zip(items, outcomes, strict=False)])
    assert failed == []
    assert len(box.uids("受付済")) == 3
    assert len(box.uids("返却")) == 2
    assert len(box.uids("INBOX")) == 1  # the ignored one stays where it was
    validity = box.uidvalidity()
    assert json.loads(cursor.values[source.name]) == {"uidvalidity": validity, "last_uid": 6}
    source.close()


def test_first_poll_yields_every_message_and_the_second_only_new_ones(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    for n in (1, 2):
        box.append(mail(n))
    cursor, ledger = DictCursor(), Ledger()
    source = source_for(box, cursor)
    validity = box.uidvalidity()

    first = list(source.fetch_new(ledger.known))
    assert [i.key for i in first] == [f"{validity}:1", f"{validity}:2"]
    assert subjects(first) == ["request 1", "request 2"]
    for item in first:
        source.mark(item, "case", "accepted")
    assert json.loads(cursor.values[source.name]) == {"uidvalidity": validity, "last_uid": 2}

    box.append(mail(3))
    second = list(source.fetch_new(ledger.known))
    assert [i.key for i in second] == [f"{validity}:3"]
    source.mark(second[0], "ignored", None)
    # "UID 4:*" still answers the highest UID (3); it must not come back.
    assert list(source.fetch_new(ledger.known)) == []
    source.close()


def test_skipping_existing_mail_starts_the_first_poll_after_the_backlog(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    box.append(mail(1))
    box.append(mail(2))
    source = source_for(box)
    assert source.skip_existing_mail() == 2
    assert list(source.fetch_new(Ledger().known)) == []
    box.append(mail(3))
    assert subjects(source.fetch_new(Ledger().known)) == ["request 3"]
    source.close()


def test_the_source_name_says_user_host_port_and_folder(dovecot_mailbox: DovecotMailbox) -> None:
    source = source_for(dovecot_mailbox, folder="Intake")
    box = dovecot_mailbox
    assert source.name == f"imap:{box.user}@127.0.0.1:{box.port}/Intake"


def test_fetching_and_loading_leave_the_seen_flag_of_staff_untouched(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    unread = box.append(mail(1))
    read = box.append(mail(2), flags=[SEEN])
    before = box.flags()
    assert SEEN not in before[unread] and SEEN in before[read]

    source = source_for(box)
    items = list(source.fetch_new(Ledger().known))
    assert all(item.load().startswith(b"From: ") for item in items)
    assert box.flags() == before
    source.close()


def test_accepted_mail_gets_its_keyword_and_moves_to_a_japanese_folder(
    dovecot_mailbox: DovecotMailbox,
) -> None:
    box = dovecot_mailbox
    box.append(mail(1))
    keep = box.append(mail(2))
    source = source_for(box, folders={"accepted": "受付済", "returned": "返却"})
    first, second = list(source.fetch_new(Ledger().known))

    source.mark(first, "case", "accepted")
    source.mark(first, "case", "accepted")  # idempotent: a second mark is harmless

    assert "受付済" in box.folders()
    assert list(box.flags("受付済").values()) == [frozenset({b"$Mailbot-Accepted"})]
    assert box.uids("INBOX") == [keep]
    # On the wire the name is modified UTF-7, as RFC 3501 requires.
    with box.client() as raw:
        raw.folder_encode = False
        names = [name for _f, _s, name in raw.list_folders()]
    assert imap_utf7.encode("受付済") in names
    source.mark(second, "ignored", None)
    source.close()


@pytest.mark.parametrize(
    ("disposition", "status", "keyword"),
    [
        ("case", "accepted", "$Mailbot-Accepted"),
        ("case", "returned", "$Mailbot-Returned"),
        ("case", "waiting_unis", "$Mailbot-Waiting"),
        ("quarantined", None, "$Mailbot-Quarantined"),
    ],
)
def test_each_outcome_adds_its_keyword_and_stays_put_when_no_folder_is_configured(
    dovecot_mailbox: DovecotMailbox, disposition: str, status: str | None, keyword: str
) -> None:
    box = dovecot_mailbox
    uid = box.append(mail(1), flags=[SEEN])
    source = source_for(box)
    (item,) = source.fetch_new(Ledger().known)
    source.mark(item, disposition, status)
    source.mark(item, disposition, status)
    assert box.flags() == {uid: frozenset({SEEN, keyword.encode()})}
    assert keyword == KEYWORDS[{"waiting_unis": "waiting"}.get(status or "", status or disposition)]
    source.close()


def test_quarantined_mail_moves_to_its_configured_folder(dovecot_mailbox: DovecotMailbox) -> None:
    box = dovecot_mailbox
    box.append(mail(1))
    source = source_for(box, folders={"quarantined": "隔離"})
    (item,) = source.fetch_new(Ledger().known)
    source.mark(item, "quarantined", None)
    assert box.uids("INBOX") == []
    assert list(box.flags("隔離").values()) == [frozenset({b"$Mailbot-Quarantined"})]
    source.close()


def test_without_the_move_capability_mail_is_copied_then_expunged(
    dovecot_mailbox: DovecotMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = dovecot_mailbox
    box.append(mail(1))
    real = IMAPClient.capabilities

    def no_move(self: IMAPClient) -> tuple[bytes, ...]:
        return tuple(word for word in real(self) if word.upper() != b"MOVE")

    # The session reads the server's CAPABILITY answer once, at login: the server offers no MOVE from the start.
    monkeypatch.setattr(IMAPClient, "capabilities", no_move)
    source = source_for(box, folders={"returned": "返却"})
    (item,) = source.fetch_new(Ledger().known)
    source.mark(item, "case", "returned")
    assert box.uids("INBOX") == []
    assert list(box.flags("返却").values()) == [frozenset({b"$Mailbot-Returned"})]
    source.close()


def test_ignored_mail_keeps_exactly_its_flags_but_is_not_offered_again(
    dovecot_mailbox: DovecotMailbox,
) -> None:
    box = dovecot_mailbox
    box.append(mail(1), flags=[SEEN, b"\\Flagged", b"$Label1"])
    box.append(mail(2))
    before = box.flags()
    cursor = DictCursor()
    source = source_for(box, cursor, folders={"accepted": "受付済"})
    for item in source.fetch_new(Ledger().known):
        source.mark(item, "ignored", None)
    assert box.flags() == before
    assert box.folders() == ["INBOX"]
    assert json.loads(cursor.values[source.name])["last_uid"] == 2
    assert list(source.fetch_new(Ledger().known)) == []
    source.close()


def test_an_unmarked_item_holds_the_watermark_back_so_it_is_offered_again(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    for n in (1, 2, 3):
        box.append(mail(n))
    cursor = DictCursor()
    source = source_for(box, cursor)
    one, two, three = source.fetch_new(Ledger().known)
    source.mark(one, "ignored", None)
    source.mark(three, "ignored", None)  # two failed: never marked
    assert json.loads(cursor.values[source.name])["last_uid"] == uid_of(one)

    again = list(source.fetch_new(Ledger().known))
    assert [i.key for i in again] == [two.key, three.key]
    for item in again:
        source.mark(item, "ignored", None)
    assert json.loads(cursor.values[source.name])["last_uid"] == uid_of(three)
    source.close()


def test_after_a_uidvalidity_change_mail_known_by_message_id_is_not_offered_again(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    folder = "Intake"
    for n in (1, 2):
        box.append(mail(n), folder=folder)
    cursor, ledger = DictCursor(), Ledger()
    source = source_for(box, cursor, folder=folder)
    old_validity = box.uidvalidity(folder)
    for item in source.fetch_new(ledger.known):
        ledger.record(item)
        source.mark(item, "case", "accepted")

    box.recreate_folder(folder)  # e.g. restored from a backup
    for n in (1, 2, 3):
        box.append(mail(n), folder=folder)
    new_validity = box.uidvalidity(folder)
    assert new_validity != old_validity

    items = list(source.fetch_new(ledger.known))
    assert [i.key for i in items] == [f"{new_validity}:3"]
    assert subjects(items) == ["request 3"]
    assert "msgid:<1@test.example>" in ledger.asked[-1]
    source.mark(items[0], "case", "accepted")
    assert json.loads(cursor.values[source.name]) == {"uidvalidity": new_validity, "last_uid": 3}
    assert list(source.fetch_new(ledger.known)) == []
    source.close()


def test_after_a_uidvalidity_change_an_item_processed_but_not_marked_is_offered_to_mark(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    folder = "Intake"
    box.append(mail(0), folder=folder)
    cursor, ledger = DictCursor(), Ledger()
    source = source_for(box, cursor, folder=folder)
    for item in source.fetch_new(ledger.known):
        ledger.record(item)
        source.mark(item, "ignored", None)
    box.recreate_folder(folder)
    box.append(mail(1), folder=folder)

    (item,) = source.fetch_new(ledger.known)
    ledger.record(item)  # committed, then the bot crashed before mark()
    (again,) = source.fetch_new(ledger.known)
    assert again.key == item.key
    source.close()


def test_an_oversize_message_is_reported_by_size_and_never_downloaded(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    big = mail(1, body="x" * 20_000)
    box.append(big)
    box.append(mail(2))
    source = source_for(box, max_message_bytes=10_000)
    large, small = source.fetch_new(Ledger().known)
    assert large.size == len(big)
    assert small.size is not None and small.size < 10_000
    with pytest.raises(MessageTooLarge, match="max_message_bytes"):
        large.load()
    assert small.load().startswith(b"From:")
    source.close()


def test_a_stopped_server_raises_source_error_and_works_again_after_restart(
    dovecot_mailbox: DovecotMailbox,
) -> None:
    box = dovecot_mailbox
    box.append(mail(1))
    source = source_for(box)
    (item,) = source.fetch_new(Ledger().known)

    box.stop()
    with pytest.raises(SourceError) as during:
        item.load()
    assert f"127.0.0.1:{box.port}" in str(during.value)
    assert "INBOX" in str(during.value)
    with pytest.raises(SourceError, match="connecting failed"):
        list(source.fetch_new(Ledger().known))

    box.start()
    (again,) = source.fetch_new(Ledger().known)
    assert again.key == item.key  # never marked, so offered again
    assert again.load().startswith(b"From:")
    source.close()


def test_a_wrong_password_raises_authentication_failed(dovecot_mailbox: DovecotMailbox) -> None:
    source = source_for(dovecot_mailbox, password="not-the-password")
    with pytest.raises(AuthenticationFailed, match="login refused"):
        list(source.fetch_new(Ledger().known))
    source.close()


def test_the_password_command_output_is_used_to_log_in(dovecot_mailbox: DovecotMailbox, tmp_path: Path) -> None:
    box = dovecot_mailbox
    secret = tmp_path / "secret"
    secret.write_text(box.password + "\n")
    box.append(mail(1))
    source = source_for(box, password=None, password_command=f"cat '{secret}'")
    assert len(list(source.fetch_new(Ledger().known))) == 1
    source.close()


def test_a_failing_password_command_raises_authentication_failed(
    dovecot_mailbox: DovecotMailbox,
) -> None:
    source = source_for(dovecot_mailbox, password=None, password_command="false")
    with pytest.raises(AuthenticationFailed, match="password_command failed"):
        list(source.fetch_new(Ledger().known))


TOKEN_SCRIPT = """\
import pathlib, sys
state = pathlib.Path(sys.argv[1])
tokens = (state / "tokens").read_text().split()
count = int((state / "count").read_text() or 0) if (state / "count").exists() else 0
(state / "count").write_text(str(count + 1))
print(tokens[min(count, len(tokens) - 1)])
"""


def token_command(tmp_path: Path, tokens: list[str]) -> tuple[str, Path]:
    script = tmp_path / "token.py"
    script.write_text(TOKEN_SCRIPT)
    (tmp_path / "tokens").write_text("\n".join(tokens))
    return f"{sys.executable} {script} {tmp_path}", tmp_path / "count"


def test_xoauth2_login_retries_once_with_a_fresh_token_when_the_first_is_expired(
    dovecot_mailbox: DovecotMailbox, tmp_path: Path
) -> None:
    box = dovecot_mailbox
    box.append(mail(1))
    command, count = token_command(tmp_path, [box.oauth2_token(expires_in=-120), box.oauth2_token(expires_in=600)])
    source = source_for(box, password=None, oauth2_token_command=command)
    assert len(list(source.fetch_new(Ledger().known))) == 1
    assert count.read_text() == "2"
    source.close()


def test_xoauth2_login_with_only_expired_tokens_raises_authentication_failed(
    dovecot_mailbox: DovecotMailbox, tmp_path: Path
) -> None:
    box = dovecot_mailbox
    command, count = token_command(tmp_path, [box.oauth2_token(expires_in=-120)])
    source = source_for(box, password=None, oauth2_token_command=command)
    with pytest.raises(AuthenticationFailed, match="fresh token"):
        list(source.fetch_new(Ledger().known))
    assert count.read_text() == "2"


def microsoft_for(endpoint: TokenEndpoint, box: DovecotMailbox, *expires_in: int) -> OAuth2Settings:
    """MSAL against the loopback issuer, which hands out JWTs the private Dovecot validates (one per expiry given)."""
    lifetimes = list(expires_in) or [600]
    endpoint.mint = lambda issued: box.oauth2_token(expires_in=lifetimes.pop(0) if len(lifetimes) > 1 else lifetimes[0])
    return OAuth2Settings(
        provider="microsoft",
        tenant=endpoint.tenant,
        client_id=endpoint.client_id,
        client_secret=endpoint.client_secret,
        authority=endpoint.authority,
    )


def test_a_jwt_from_msal_logs_in_to_dovecot_with_xoauth2_and_serves_the_next_session(
    dovecot_mailbox: DovecotMailbox, token_endpoint: TokenEndpoint
) -> None:
    box = dovecot_mailbox
    box.append(mail(1))
    source = source_for(box, password=None, oauth2=microsoft_for(token_endpoint, box))

    assert len(list(source.fetch_new(Ledger().known))) == 1
    source.close()  # the session ends; the next poll logs in again
    box.append(mail(2))
    assert len(list(source.fetch_new(Ledger().known))) == 2
    source.close()

    assert len(token_endpoint.issued) == 1, "MSAL's cached token served the second login"


def test_a_jwt_dovecot_finds_expired_is_replaced_once_by_a_fresh_one_from_msal(
    dovecot_mailbox: DovecotMailbox, token_endpoint: TokenEndpoint
) -> None:
    # The issuer says an hour, the server says expired (a clock apart, a token revoked): the server decides.
    box = dovecot_mailbox
    box.append(mail(1))
    source = source_for(box, password=None, oauth2=microsoft_for(token_endpoint, box, -120, 600))

    assert len(list(source.fetch_new(Ledger().known))) == 1
    source.close()
    assert len(token_endpoint.issued) == 2


def test_a_jwt_refused_even_fresh_is_one_line_naming_the_token_source(
    dovecot_mailbox: DovecotMailbox, token_endpoint: TokenEndpoint
) -> None:
    source = source_for(dovecot_mailbox, password=None, oauth2=microsoft_for(token_endpoint, dovecot_mailbox, -120))

    with pytest.raises(AuthenticationFailed) as caught:
        list(source.fetch_new(Ledger().known))

    message = str(caught.value)
    assert "\n" not in message and "XOAUTH2 login refused even with a fresh token from Microsoft Entra ID" in message
    assert "AUTHENTICATIONFAILED" in message.upper()
    assert len(token_endpoint.issued) == 2


def test_check_connection_gets_the_token_then_logs_in_with_it(
    dovecot_mailbox: DovecotMailbox, token_endpoint: TokenEndpoint
) -> None:
    settings = settings_for(dovecot_mailbox, password=None, oauth2=microsoft_for(token_endpoint, dovecot_mailbox))

    steps = check_connection(settings)

    assert [(name, ok) for name, ok, _ in steps[:3]] == [("get token", True), ("connect", True), ("login", True)]
    assert "got an access token from Microsoft Entra ID" in steps[0][2]
    assert steps[2][2] == f"logged in as {dovecot_mailbox.user} with the token (SASL XOAUTH2 or OAUTHBEARER)"


def test_check_connection_stops_at_the_token_when_the_issuer_refuses_the_client(
    dovecot_mailbox: DovecotMailbox, token_endpoint: TokenEndpoint
) -> None:
    oauth2 = microsoft_for(token_endpoint, dovecot_mailbox)
    token_endpoint.client_secret = "rotated"

    steps = check_connection(settings_for(dovecot_mailbox, password=None, oauth2=oauth2))

    [(name, ok, detail)] = steps
    assert (name, ok) == ("get token", False) and "AADSTS7000215" in detail


def test_the_sent_folder_keeps_seen_copies_and_finds_them_by_message_id(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    sent = ImapSentFolder(settings_for(box), folder="送信済み")
    assert sent.contains(["<1@test.example>"]) == set()
    sent.append_many([mail(1)])
    sent.append_many([mail(12)])
    assert list(box.flags("送信済み").values()) == [frozenset({SEEN})] * 2
    found = sent.contains(["<1@test.example>", "<2@test.example>", "<12@test.example>"])
    # Header search is a substring match; "<1@" must not match "<12@".
    assert found == {"<1@test.example>", "<12@test.example>"}
    sent.close()


def test_the_sent_folder_finds_message_ids_with_characters_that_need_quoting(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    odd = '<a%b(c)"d"\\e@x.example>'
    raw = mail(1).replace(b"<1@test.example>", odd.encode())
    sent = ImapSentFolder(settings_for(box))
    sent.append_many([raw])
    assert sent.contains([odd, "<a%b@x.example>"]) == {odd}
    sent.close()


def test_idle_wakes_up_within_seconds_when_mail_is_appended(
    dovecot_mailbox: DovecotMailbox,
) -> None:
    box = dovecot_mailbox
    source = source_for(box, idle=True)
    assert list(source.fetch_new(Ledger().known)) == []

    timer = threading.Timer(0.5, box.append, args=(mail(1),))
    timer.start()
    started = time.monotonic()
    try:
        assert source.wait_for_new(timeout=20) is True
    finally:
        timer.join()
    assert time.monotonic() - started < 5
    assert len(list(source.fetch_new(Ledger().known))) == 1

    started = time.monotonic()
    assert source.wait_for_new(timeout=1.0) is False
    assert 0.9 <= time.monotonic() - started < 5
    source.close()


def test_idle_returns_at_once_when_mail_arrived_since_the_last_poll(
    dovecot_mailbox: DovecotMailbox,
) -> None:
    box = dovecot_mailbox
    source = source_for(box, idle=True)
    assert list(source.fetch_new(Ledger().known)) == []
    box.append(mail(1))
    started = time.monotonic()
    assert source.wait_for_new(timeout=20) is True
    assert time.monotonic() - started < 2
    source.close()


def test_a_look_at_pending_mail_after_a_poll_leaves_that_mail_new_for_idle_and_the_next_poll(
    dovecot_mailbox: DovecotMailbox,
) -> None:
    box = dovecot_mailbox
    cursor, ledger = DictCursor(), Ledger()
    source = source_for(box, cursor, idle=True)
    box.append(mail(1))
    (first,) = source.fetch_new(ledger.known)
    ledger.record(first)
    source.mark(first, "ignored", None)
    # Arrives after the poll fetched, before the health check looks at the mailbox.
    box.append(mail(2))
    assert subjects(source.pending(ledger.known)) == ["request 2"]
    stored = dict(cursor.values)

    # Had the look counted as a poll, IDLE would wait out the whole timeout for
    # mail that is already there (its EXISTS went to the look's commands).
    assert source.wait_for_new(timeout=60) is True
    assert cursor.values == stored, "a look moves no cursor"
    assert subjects(source.fetch_new(ledger.known)) == ["request 2"]
    source.close()


def test_without_idle_waiting_just_sleeps_and_returns_false(
    dovecot_mailbox: DovecotMailbox,
) -> None:
    source = source_for(dovecot_mailbox, idle=False)
    started = time.monotonic()
    assert source.wait_for_new(timeout=0.3) is False
    assert time.monotonic() - started >= 0.3


def test_check_connection_reports_each_step_in_plain_words(
    dovecot_mailbox: DovecotMailbox,
) -> None:
    box = dovecot_mailbox
    box.append(mail(1))
    ok = check_connection(settings_for(box))
    assert [(step, good) for step, good, _ in ok] == [
        ("connect", True),
        ("login", True),
        ("select folder", True),
        ("keywords", True),
    ]
    assert "1 message" in ok[2][2]
    assert "custom keywords are kept" in ok[3][2]
    assert box.folders() == ["INBOX"], "the scratch folder is removed again"

    bad = check_connection(settings_for(box, password="wrong"))
    assert [(step, good) for step, good, _ in bad] == [("connect", True), ("login", False)]

    missing = check_connection(settings_for(box, folder="NoSuchFolder"))
    assert missing[-1][:2] == ("select folder", False)
    assert "NoSuchFolder" in missing[-1][2]


def test_check_connection_reports_an_unreachable_server(dovecot_mailbox: DovecotMailbox) -> None:
    box = dovecot_mailbox
    box.stop()
    steps = check_connection(settings_for(box))
    assert steps[0][:2] == ("connect", False)
    assert f"127.0.0.1:{box.port}" in steps[0][2]


def test_settings_refuse_clear_text_to_a_host_that_is_not_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ImapSettings(host="imap.example.com", port=143, tls="none", username="u", password="p")
    ImapSettings(host="::1", port=143, tls="none", username="u", password="p")


def test_settings_need_exactly_one_way_to_log_in_and_known_folder_keys() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ImapSettings(host="h", port=993, tls="ssl", username="u")
    with pytest.raises(ValueError, match="exactly one"):
        ImapSettings(host="h", port=993, tls="ssl", username="u", password="p", password_command="x")
    with pytest.raises(ValueError, match="folders"):
        ImapSettings(host="h", port=993, tls="ssl", username="u", password="p", folders={"done": "X"})


def test_settings_are_read_from_the_mailbox_table_with_the_password_from_the_environment() -> None:
    table = {
        "kind": "imap",
        "host": "imap.example.com",
        "tls": "ssl",
        "username": "f-desk@example.com",
        "password_env": "MAILBOT_IMAP_PASSWORD",
        "folder": "INBOX",
        "idle": True,
        "folders": {"accepted": "受付済", "returned": "返却", "quarantined": "隔離"},
    }
    s = ImapSettings.from_config(table, {"MAILBOT_IMAP_PASSWORD": "pw"})
    assert (s.port, s.password, s.idle, s.folders["accepted"]) == (993, "pw", True, "受付済")
    assert "pw" not in repr(s)
    hash(s)
    listed = ImapSettings.from_config(
        {**table, "password_env": None, "oauth2_token_command": ["token-tool", "--for", "a b"]}
    )
    assert listed.oauth2_token_command == "token-tool --for 'a b'"
    with pytest.raises(ValueError, match="MAILBOT_IMAP_PASSWORD"):
        ImapSettings.from_config(table, {})


def test_message_id_keys_are_normalised() -> None:
    assert message_id_key(" <a@b>\r\n ") == "msgid:<a@b>"
    assert message_id_key("a@b") == "msgid:<a@b>"
    assert message_id_key("<a@b> (comment)") == "msgid:<a@b>"
