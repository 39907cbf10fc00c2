"""ImapSource, ImapSentFolder and check_connection on each real server: Dovecot, Courier, Cyrus.

Courier runs with IMAP_KEYWORDS=0 (PERMANENTFLAGS without ``\\*``, no MOVE,
no SPECIAL-USE); Courier and Cyrus keep personal folders under ``INBOX.``
with separator ``.``; Cyrus marks ``INBOX.Sent`` as ``\\Sent``. See
tests/fixtures/imap_servers.py.
"""

from __future__ import annotations

import imaplib
import json
from pathlib import Path

import pytest

from mailbot.adapters.imap import KEYWORDS, ImapSentFolder, ImapSource, check_connection, throttle_pause
from mailbot.service.ports import SourceError
from tests.adapters.test_imap import DictCursor, Ledger, mail, settings_for, token_command, uid_of
from tests.fixtures.dovecot import DovecotMailbox, DovecotServer
from tests.fixtures.imap_servers import ServerMailbox

pytestmark = pytest.mark.services

Mailbox = DovecotMailbox | ServerMailbox
FOLDERS = {"accepted": "受付済", "returned": "返却", "quarantined": "隔離"}


def keywords_kept(box: Mailbox) -> bool:
    return box.kind != "courier"


def test_each_request_is_filed_once_in_its_folder_under_the_personal_namespace_and_the_cursor_advances(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    for n in (1, 2, 3):
        box.append(mail(n))
    cursor, ledger = DictCursor(), Ledger()
    source = ImapSource(settings_for(box, folders=FOLDERS), cursor)

    items = list(source.fetch_new(ledger.known))
    assert len(items) == 3
    for item, (disposition, status) in zip(
        items, [("case", "accepted"), ("case", "returned"), ("quarantined", None)], strict=True
    ):
        ledger.record(item)
        source.mark(item, disposition, status)

    assert box.uids() == []
    for outcome, keyword in [("accepted", "$Mailbot-Accepted"), ("returned", "$Mailbot-Returned")]:
        flags = box.flags(FOLDERS[outcome])
        assert len(flags) == 1, f"{outcome} filed once"
        assert (keyword.encode() in next(iter(flags.values()))) is keywords_kept(box)
    assert len(box.flags("隔離")) == 1
    if box.prefix:
        assert box.full("受付済") == "INBOX.受付済" and "INBOX.受付済" in box.folders()
        assert "受付済" not in box.folders()
    stored = json.loads(cursor.values[source.name])
    assert stored["last_uid"] == max(uid_of(i) for i in items)

    assert list(source.fetch_new(ledger.known)) == [], "a second poll does nothing"
    box.append(mail(4))
    (fourth,) = source.fetch_new(ledger.known)
    assert uid_of(fourth) > stored["last_uid"]
    source.close()


def test_marking_without_a_folder_keeps_the_mail_in_place_with_a_keyword_only_where_the_server_allows(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    box.append(mail(1))
    cursor = DictCursor()
    source = ImapSource(settings_for(box), cursor)
    (item,) = source.fetch_new(Ledger().known)
    source.mark(item, "case", "accepted")
    flags = box.flags()
    assert list(flags) == [uid_of(item)]
    expected = {KEYWORDS["accepted"].encode()} if keywords_kept(box) else set()
    assert set(next(iter(flags.values()))) == expected
    assert json.loads(cursor.values[source.name])["last_uid"] == uid_of(item)
    source.close()


def test_one_session_serves_a_whole_poll_even_when_the_server_refuses_keywords(imap_mailbox: Mailbox) -> None:
    box = imap_mailbox
    for n in range(1, 6):
        box.append(mail(n))
    source = ImapSource(settings_for(box, folders=FOLDERS), DictCursor())
    ledger = Ledger()
    items = list(source.fetch_new(ledger.known))
    first = source._conn._client
    for item in items:
        ledger.record(item)
        source.mark(item, "case", "accepted")
    assert source._conn._client is first, "no reconnect per request"
    assert len(box.flags("受付済")) == 5
    source.close()


def test_sent_copies_are_filed_once_where_the_server_keeps_sent_mail_and_found_by_message_id(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    sent = ImapSentFolder(settings_for(box), "auto")
    # Cyrus marks INBOX.Sent as \Sent; Dovecot and Courier mark none, so it is Sent under the namespace.
    assert sent.target() == box.full("Sent")
    assert sent.contains(["<1@test.example>"]) == set(), "no Sent folder yet: nothing was sent"
    sent.append_many([mail(1)])
    # contains() examined the folder on this same session; Courier would refuse an APPEND there.
    assert sent.contains(["<1@test.example>", "<2@test.example>"]) == {"<1@test.example>"}
    sent.append_many([mail(2)])
    assert sent.contains(["<1@test.example>", "<2@test.example>"]) == {"<1@test.example>", "<2@test.example>"}
    copies = box.flags("Sent")
    assert len(copies) == 2
    assert all(b"\\Seen" in flags for flags in copies.values())
    sent.close()


def test_a_run_of_copies_is_filed_in_one_go_and_seen_with_or_without_multiappend(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    sent = ImapSentFolder(settings_for(box), "Sent")
    client = sent._conn.client()
    offers = client.has_capability("MULTIAPPEND")
    appended: list[str] = []
    for name in ("append", "multiappend"):
        real = getattr(client, name)

        def counted(*args: object, _real=real, _name=name, **kwargs: object) -> object:
            appended.append(_name)
            return _real(*args, **kwargs)

        setattr(client, name, counted)
    sent.append_many([mail(i) for i in (1, 2, 3)])
    # One command where the server offers MULTIAPPEND (Dovecot, Cyrus), else one a mail (Courier).
    assert appended == (["multiappend"] if offers else ["append"] * 3), f"MULTIAPPEND offered: {offers}"
    copies = box.flags("Sent")
    assert len(copies) == 3 and all(b"\\Seen" in flags for flags in copies.values())
    assert sent.contains([f"<{i}@test.example>" for i in (1, 2, 3)]) == {f"<{i}@test.example>" for i in (1, 2, 3)}
    sent.close()


def test_a_named_sent_folder_goes_under_the_personal_namespace(imap_mailbox: Mailbox) -> None:
    box = imap_mailbox
    sent = ImapSentFolder(settings_for(box), "送信済み")
    sent.append_many([mail(1)])
    assert len(box.flags("送信済み")) == 1
    assert box.full("送信済み") in box.folders()
    sent.close()


def test_check_connection_says_what_each_server_refuses_and_leaves_no_folder_behind(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    box.append(mail(1))
    before = sorted(box.folders())
    steps = check_connection(settings_for(box, folders=FOLDERS), sent_folder="Sent")
    by_step = {step: (ok, detail) for step, ok, detail in steps}
    assert all(ok for ok, _ in by_step.values()), steps
    keywords = by_step["keywords"][1]
    if keywords_kept(box):
        assert "custom keywords are kept" in keywords
    else:
        assert "refuses custom keywords" in keywords
        assert "moving the message to its folder and in its database only" in keywords
    assert f"moves to {box.full('受付済')!r}" in by_step["folder accepted"][1]
    assert box.full("Sent") in by_step["sent folder"][1]
    if box.prefix:
        assert "INBOX." in by_step["namespace"][1]
    assert sorted(box.folders()) == before, "whatever the check created is removed again"
    assert len(box.uids()) == 1


def test_check_connection_reports_a_folder_the_server_will_not_create_in_plain_words(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    # Dovecot refuses a name starting with "~", Courier and Cyrus one holding "/" (their separator is ".").
    refused = "~受付済" if box.kind == "dovecot" else "受付/済"
    steps = check_connection(settings_for(box, folders={"accepted": refused}))
    [(_step, ok, detail)] = [s for s in steps if s[0] == "folder accepted"]
    assert not ok
    assert "the server refuses CREATE" in detail and "stays in 'INBOX'" in detail


def test_exchange_throttling_answers_give_the_suggested_pause_in_seconds_at_most_a_minute() -> None:
    assert throttle_pause("BAD Request is throttled. Suggested Backoff Time: 1500 milliseconds") == 1.5
    assert throttle_pause("UID STORE failed: Request is throttled. Suggested Backoff Time: 999999 milliseconds") == 60
    assert throttle_pause("NO [CANNOT] Invalid mailbox name") is None


def test_where_the_server_files_sent_mail_itself_auto_appends_nothing_and_a_resend_still_finds_the_copy(
    dovecot_server: DovecotServer,
) -> None:
    # A real Dovecot that advertises Gmail's X-GM-EXT-1 for this user (a userdb override).
    user, password = dovecot_server.add_user(userdb_fields="userdb_imap_capability=+X-GM-EXT-1")
    box = DovecotMailbox(server=dovecot_server, user=user, password=password)
    settings = settings_for(box)
    sent = ImapSentFolder(settings, "auto")
    assert sent.files_itself()
    sent.append_many([mail(1)])
    assert box.folders() == ["INBOX"], "no APPEND: the submission server files its own copy"

    box.append(mail(1), folder="Sent")  # what Gmail's SMTP does
    assert sent.contains(["<1@test.example>", "<2@test.example>"]) == {"<1@test.example>"}
    sent.close()

    [(_step, ok, detail)] = [s for s in check_connection(settings, sent_folder="auto") if s[0] == "sent folder"]
    assert ok and "files sent mail in 'Sent' itself" in detail and "does not APPEND" in detail
    assert not ImapSentFolder(settings, "Sent").files_itself(), "a folder named in the config is always filled"


def test_a_command_the_server_refuses_keeps_the_session_and_the_mark_fails_without_moving_the_cursor(
    imap_mailbox: Mailbox,
) -> None:
    box = imap_mailbox
    box.append(mail(1))
    box.append(mail(2))
    refused = "~受付済" if box.kind == "dovecot" else "受付/済"
    cursor = DictCursor()
    source = ImapSource(settings_for(box, folders={"accepted": refused}), cursor)
    one, two = source.fetch_new(Ledger().known)
    session = source._conn._client
    with pytest.raises(SourceError, match="creating folder failed"):
        source.mark(one, "case", "accepted")
    assert source._conn._client is session, "a NO answer does not drop the connection"
    assert source.name not in cursor.values
    source.settle(one)  # the service recorded the failed mark: the cursor moves on
    source.mark(two, "ignored", None)
    assert json.loads(cursor.values[source.name])["last_uid"] == uid_of(two)
    assert source._conn._client is session
    source.close()


def test_an_access_token_expired_goodbye_makes_the_next_login_run_the_token_command_again(
    dovecot_mailbox: DovecotMailbox, tmp_path: Path
) -> None:
    box = dovecot_mailbox
    box.append(mail(1))
    command, count = token_command(tmp_path, [box.oauth2_token(expires_in=600), box.oauth2_token(expires_in=600)])
    source = ImapSource(settings_for(box, password=None, oauth2_token_command=command), DictCursor())
    assert len(list(source.fetch_new(Ledger().known))) == 1
    conn = source._conn
    # Exchange Online's answer when the token ran out mid-session (Dovecot never sends it, so it is raised here).
    with pytest.raises(SourceError, match="AccessTokenExpired"), conn.guard("FETCH"):
        raise imaplib.IMAP4.abort("* BYE Session invalidated - AccessTokenExpired")
    assert not conn.connected
    assert len(list(source.fetch_new(Ledger().known))) == 1
    assert count.read_text() == "2", "a new token for the new session"
    source.close()
