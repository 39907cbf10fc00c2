"""The whole bot on a real mailbox: a private Dovecot for IMAP and an aiosmtpd sink for SMTP."""

from __future__ import annotations

import email
import email.policy
import os
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.domain.checks import CHECKS, Submission
from mailbot.domain.model import Defect
from mailbot.domain.policy import Policy
from mailbot.entrypoints.cli.main import main
from mailbot.service.intake import BATCH_SIZE
from tests.domain.builders import FORM
from tests.fixtures.bot import CUSTOMER, DESK, OPS, SHIBUYA_MGR, Harness, make_harness, unis_row, use_real_servers
from tests.fixtures.bot import rebuild as restart
from tests.fixtures.dovecot import DovecotMailbox
from tests.fixtures.smtp_sink import SmtpSink
from tests.fixtures.token_endpoint import TokenEndpoint
from tests.mailfactory import build_auto_reply, build_mail


@pytest.fixture
def bot(
    tmp_path: Path, db_url: str, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot_mailbox.password)
    harness = make_harness(tmp_path, db_url)
    use_real_servers(
        harness,
        smtp_port=smtp_sink.port,
        imap=(dovecot_mailbox.port, dovecot_mailbox.user, "MAILBOT_TEST_IMAP_PASSWORD"),
    )
    yield harness
    harness.app.close()


def request(**overrides: object) -> bytes:
    arguments: dict = {
        "style": "outlook",
        "subject": "フレッツエスカ 渋谷支店",
        "sender": "渋谷 太郎 <taro@usen.co.jp>",
        "to": [DESK],
        "cc": [f"支店長 <{SHIBUYA_MGR}>"],
        "body": f"お疲れ様です。\n顧客CD:{CUSTOMER}\n",
        "attachments": [FORM],
    }
    arguments.update(overrides)
    return build_mail(**arguments)


def parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def sent_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [parsed(m.raw) for m in sink.messages if address in m.rcpt_tos]


def test_requests_in_dovecot_are_filed_marked_moved_and_answered_in_their_thread(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink
) -> None:
    bot.import_unis()
    accepted = request(message_id="<ok-1@usen.co.jp>")
    returned = request(style="gmail", cc=[], sender="花子 <hanako@usen.co.jp>", message_id="<ng-1@usen.co.jp>")
    enquiry = build_mail(subject="請求書の件", sender="keiri@usen.co.jp", to=[DESK], message_id="<q-1@usen.co.jp>")
    read_enquiry = build_mail(subject="会議の件", sender="soumu@usen.co.jp", to=[DESK], message_id="<q-2@usen.co.jp>")
    auto = build_auto_reply(original_subject="フレッツエスカ 渋谷支店", sender="taro@usen.co.jp", to=[DESK])
    outside = request(sender="営業 <sales@example.com>", message_id="<out-1@example.com>")
    for raw in (accepted, returned, enquiry, auto, outside):
        dovecot_mailbox.append(raw)
    dovecot_mailbox.append(read_enquiry, flags=[b"\\Seen", b"\\Flagged"])
    before = dovecot_mailbox.flags()

    assert main(["--config", str(bot.config_path), "poll", "--once"]) == 0

    dispositions = {m["message_id"]: (m["disposition"], m["reason"]) for m in bot.messages()}
    assert dispositions["<ok-1@usen.co.jp>"] == ("case", "new_request")
    assert dispositions["<ng-1@usen.co.jp>"] == ("case", "new_request")
    assert dispositions["<q-1@usen.co.jp>"] == ("ignored", "not_request")
    assert dispositions["<out-1@example.com>"] == ("quarantined", "outside_domain")
    assert len(dispositions) == 6

    # Requests moved to their folders with a keyword; everything else left exactly as it was.
    inbox = dovecot_mailbox.flags()
    assert len(inbox) == 3
    assert all(inbox[uid] == before[uid] for uid in inbox)
    assert frozenset({b"\\Seen", b"\\Flagged"}) in inbox.values()
    assert any(not flags for flags in inbox.values()), "an unread enquiry stays unread"
    assert [set(f) for f in dovecot_mailbox.flags("受付済").values()] == [{b"$Mailbot-Accepted"}]
    assert [set(f) for f in dovecot_mailbox.flags("返却").values()] == [{b"$Mailbot-Returned"}]
    assert [set(f) for f in dovecot_mailbox.flags("隔離").values()] == [{b"$Mailbot-Quarantined"}]

    # Replies threaded under the original, only to internal people, and never to outside.
    [receipt] = sent_to(smtp_sink, "taro@usen.co.jp")
    assert receipt["In-Reply-To"].strip() == "<ok-1@usen.co.jp>"
    assert "受け付けました" in receipt.get_content()
    [defect_reply] = sent_to(smtp_sink, "hanako@usen.co.jp")
    assert defect_reply["In-Reply-To"].strip() == "<ng-1@usen.co.jp>"
    assert defect_reply["References"].split()[-1] == "<ng-1@usen.co.jp>"
    assert defect_reply["Subject"].endswith("[FE-2026-00002]")
    assert "支店長" in defect_reply.get_content()
    assert not sent_to(smtp_sink, "sales@example.com")
    assert {kind for kind in (o["kind"] for o in bot.outbox())} == {
        "receipt",
        "ops_accepted",
        "defect_reply",
        "ops_returned",
        "ops_quarantined",
    }
    assert all(o["status"] == "sent" for o in bot.outbox())
    assert sent_to(smtp_sink, OPS)

    # Copies in Sent, marked read, for the staff who share the mailbox.
    sent = dovecot_mailbox.flags("Sent")
    assert len(sent) == len(bot.outbox())
    assert all(b"\\Seen" in flags for flags in sent.values())

    # A second poll finds nothing new and sends nothing again.
    count = len(smtp_sink.messages)
    assert main(["--config", str(bot.config_path), "poll", "--once"]) == 0
    assert len(bot.messages()) == 6
    assert len(smtp_sink.messages) == count


class StopsTheServer:
    """A check that stops Dovecot while the poll is in the middle of a batch."""

    name = "stops_server"
    description = "test seam: the IMAP server goes away mid-poll"

    def __init__(self, mailbox: DovecotMailbox) -> None:
        self.mailbox = mailbox

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if "停止" in submission.latest.subject and self.mailbox.server.running:
            self.mailbox.stop()
        return []


def test_a_server_that_goes_away_mid_poll_loses_nothing_and_the_next_poll_finishes(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink
) -> None:
    # More mail than one batch: the server stops while the first batch is being
    # decided (its bodies are already fetched), so that batch is committed but
    # cannot be marked, and reading the second batch fails.
    total = BATCH_SIZE + 5
    bot.import_unis([unis_row(line=f"{n:03d}") for n in range(total)])  # a line for each request
    for i in range(total):
        subject = "フレッツエスカ 渋谷支店 停止" if i == 1 else f"フレッツエスカ 渋谷支店 {i}"
        # One sender each: the per-sender reply cap is not what this test is about.
        sender = f"担当{i} <staff{i}@usen.co.jp>"
        dovecot_mailbox.append(request(subject=subject, sender=sender, message_id=f"<m{i}@usen.co.jp>"))
    bot.app.intake.checks = (*CHECKS, StopsTheServer(dovecot_mailbox))
    first = bot.poll()
    assert first.source_error is not None
    filed = {m["message_id"] for m in bot.messages()}
    assert filed == {f"<m{i}@usen.co.jp>" for i in range(BATCH_SIZE)}, "the committed batch is kept"

    dovecot_mailbox.start()
    bot.clock.advance(minutes=1)  # past the back-off after the failure
    second = bot.poll()
    assert second.source_error is None
    assert sorted(m["message_id"] for m in bot.messages()) == sorted(f"<m{i}@usen.co.jp>" for i in range(total))
    # All were marked in the end, those whose mark failed included.
    assert len(dovecot_mailbox.flags("受付済")) == total
    assert dovecot_mailbox.flags() == {}
    receipted = {r for m in smtp_sink.messages for r in m.rcpt_tos if r.startswith("staff")}
    assert receipted == {f"staff{i}@usen.co.jp" for i in range(total)}
    assert len(smtp_sink.messages) == 2 * total, "one receipt and one ops notice each, none twice"


def test_a_relay_refusing_for_a_while_keeps_mail_pending_then_sends_it(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink
) -> None:
    bot.import_unis()
    dovecot_mailbox.append(request(message_id="<r-1@usen.co.jp>"))
    smtp_sink.refuse_always(code=451, text="4.3.0 try again later")
    bot.poll()
    assert {o["status"] for o in bot.outbox()} == {"pending"}
    assert smtp_sink.messages == []
    smtp_sink.accept()
    bot.clock.advance(minutes=5)
    bot.poll()
    assert {o["status"] for o in bot.outbox()} == {"sent"}
    assert len(smtp_sink.messages) == 2


def rebuild(bot: Harness, old: str, new: str) -> None:
    """Change one line of the bot's config and start it again on the same database."""
    text = bot.config_path.read_text(encoding="utf-8")
    assert old in text
    bot.config_path.write_text(text.replace(old, new), encoding="utf-8")
    restart(bot)


def test_a_uidvalidity_reset_refiles_nothing(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink
) -> None:
    # INBOX cannot be deleted, so the bot reads a folder of its own here.
    rebuild(bot, "timeout_seconds = 10\n", 'timeout_seconds = 10\nfolder = "依頼"\n')
    bot.import_unis()
    enquiry = build_mail(subject="請求書の件", sender="keiri@usen.co.jp", to=[DESK], message_id="<e-1@usen.co.jp>")
    dovecot_mailbox.append(enquiry, folder="依頼")
    bot.poll()
    old = dovecot_mailbox.uidvalidity("依頼")
    dovecot_mailbox.recreate_folder("依頼")
    assert dovecot_mailbox.uidvalidity("依頼") != old
    dovecot_mailbox.append(enquiry, folder="依頼")
    dovecot_mailbox.append(request(message_id="<new-1@usen.co.jp>"), folder="依頼")
    bot.poll()
    assert sorted(m["message_id"] for m in bot.messages()) == ["<e-1@usen.co.jp>", "<new-1@usen.co.jp>"]
    assert len(smtp_sink.messages) == 2  # the new request's receipt and ops notice only


def test_an_oversized_message_is_quarantined_without_downloading_it(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink
) -> None:
    rebuild(bot, "timeout_seconds = 10\n", "timeout_seconds = 10\nmax_message_bytes = 20000\n")
    dovecot_mailbox.append(request(attachments=[("回線単品申込書.pdf", b"%PDF-1.4\n" + os.urandom(40_000))]))
    bot.poll()
    [message] = bot.messages()
    assert (message["disposition"], message["reason"]) == ("quarantined", "too_large")
    assert [set(f) for f in dovecot_mailbox.flags("隔離").values()] == [{b"$Mailbot-Quarantined"}]
    [notice] = [parsed(m.raw) for m in smtp_sink.messages if OPS in m.rcpt_tos]
    assert "サイズが上限" in notice.get_content()


def test_a_refused_login_is_reported_once_and_its_recovery_too(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbot.entrypoints.scheduler import Runner

    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "wrong-password")
    restart(bot)
    runner = Runner(bot.app)
    for _ in range(3):
        runner.poll()
        bot.clock.advance(seconds=60)
    login_alerts = [o for o in bot.outbox() if o["kind"] == "ops_alert" and "ログイン" in o["subject"]]
    assert len(login_alerts) == 1

    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot_mailbox.password)
    restart(bot)
    runner = Runner(bot.app)
    runner.poll()
    runner.poll()
    login = [o["kind"] for o in bot.outbox() if o["kind"].startswith("ops_alert") and "ログイン" in o["subject"]]
    assert login == ["ops_alert", "ops_alert_cleared"]


def test_a_relay_down_for_an_hour_keeps_every_mail_and_sends_each_once_when_back(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink
) -> None:
    bot.import_unis()
    smtp_sink.stop()
    for i in range(3):
        dovecot_mailbox.append(request(message_id=f"<down-{i}@usen.co.jp>", cc=[] if i == 0 else [SHIBUYA_MGR]))
    for _ in range(7):  # an hour of polls, ten minutes apart
        report = bot.poll()
        assert report.delivered == 0
        bot.clock.advance(minutes=10)
    assert len(bot.outbox()) == 6
    assert {o["status"] for o in bot.outbox()} == {"pending"}
    smtp_sink.start()
    bot.clock.advance(hours=1)
    bot.poll()
    assert {o["status"] for o in bot.outbox()} == {"sent"}
    ids = ["".join(m.message["Message-ID"].split()) for m in smtp_sink.messages]
    assert sorted(ids) == sorted(o["message_id"] for o in bot.outbox())


def test_check_connection_says_in_plain_words_what_works(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(bot.config_path), "check-connection"]) == 0
    out = capsys.readouterr().out
    assert out.count("[OK]") >= 4 and "[NG]" not in out
    smtp_sink.stop()
    assert main(["--config", str(bot.config_path), "check-connection"]) == 1
    out = capsys.readouterr().out
    assert "[NG]" in out and str(smtp_sink.port) in out


def test_a_microsoft_365_setup_reads_and_replies_with_msal_tokens_and_check_connection_names_each_step(
    tmp_path: Path,
    db_url: str,
    dovecot_mailbox: DovecotMailbox,
    smtp_sink: SmtpSink,
    token_endpoint: TokenEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No password anywhere: Dovecot validates the issuer's JWTs, the relay asks the issuer about each token.
    box = dovecot_mailbox
    token_endpoint.mint = lambda issued: box.oauth2_token(expires_in=600)
    smtp_sink.require_token(lambda user, token: token_endpoint.check(token) if user == box.user else "wrong user")
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", box.password)
    monkeypatch.setenv("MAILBOT_TEST_CLIENT_SECRET", token_endpoint.client_secret)
    bot = make_harness(tmp_path, db_url)
    use_real_servers(bot, smtp_port=smtp_sink.port, imap=(box.port, box.user, "MAILBOT_TEST_IMAP_PASSWORD"))
    oauth2 = (
        f'oauth2 = {{ provider = "microsoft", tenant = "{token_endpoint.tenant}", client_id = '
        f'"{token_endpoint.client_id}", client_secret_env = "MAILBOT_TEST_CLIENT_SECRET", '
        f'authority = "{token_endpoint.authority}" }}\n'
    )
    text = bot.config_path.read_text(encoding="utf-8")
    text = text.replace('password_env = "MAILBOT_TEST_IMAP_PASSWORD"\n', oauth2)
    relay = f'port = {smtp_sink.port}\ntls = "none"\n'
    text = text.replace(relay, relay + f'username = "{box.user}"\n' + oauth2)
    bot.config_path.write_text(text, encoding="utf-8")
    restart(bot)
    bot.import_unis()
    box.append(request(message_id="<m365-1@usen.co.jp>"))

    bot.poll()

    assert {o["status"] for o in bot.outbox()} == {"sent"}
    assert len(smtp_sink.messages) == len(bot.outbox()) >= 1
    assert smtp_sink.token_attempts and all(ok for _, _, ok in smtp_sink.token_attempts)
    capsys.readouterr()
    assert main(["--config", str(bot.config_path), "check-connection"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        f"[OK] get token: got an access token from Microsoft Entra ID (authority {token_endpoint.authority}, "
        f"client {token_endpoint.client_id}), valid for "
    )
    assert lines[1:3] == [
        f"[OK] connect: reached 127.0.0.1:{box.port} (none)",
        f"[OK] login: logged in as {box.user} with the token (SASL XOAUTH2 or OAUTHBEARER)",
    ]
    assert any(line.startswith("[OK] Get an OAuth2 token: got an access token from Microsoft") for line in lines)
    assert f"[OK] Log in as {box.user} with AUTH XOAUTH2: 235 2.7.0 Authentication successful" in lines
    bot.app.close()


def test_a_failing_mailbox_is_retried_with_growing_pauses(bot: Harness, dovecot_mailbox: DovecotMailbox) -> None:
    dovecot_mailbox.stop()
    first = bot.poll()
    assert first.source_error is not None and "connecting failed" in first.source_error
    assert bot.poll().source_error.startswith("mailbox skipped until")  # type: ignore[union-attr]
    bot.clock.advance(seconds=31)
    assert "connecting failed" in (bot.poll().source_error or "")
    bot.clock.advance(seconds=31)
    assert (bot.poll().source_error or "").startswith("mailbox skipped until"), "the second pause is longer"
    dovecot_mailbox.start()
    bot.clock.advance(seconds=60)
    dovecot_mailbox.append(request(message_id="<back-1@usen.co.jp>"))
    assert bot.poll().source_error is None
    assert [m["message_id"] for m in bot.messages()] == ["<back-1@usen.co.jp>"]


def test_status_ages_unprocessed_imap_mail_by_when_the_server_received_it(
    bot: Harness, dovecot_mailbox: DovecotMailbox
) -> None:
    from datetime import timedelta

    from mailbot.service.health import collect_status

    raw = request(message_id="<stuck@usen.co.jp>").replace(b"\r\nDate: ", b"\r\nX-Old-Date: ", 1)
    with dovecot_mailbox.client() as client:
        client.append("INBOX", raw, msg_time=bot.clock() - timedelta(hours=2))
    status = collect_status(
        sessions=bot.app.sessions,
        source=bot.app.intake.source,
        poll_seconds=60,
        max_message_bytes=bot.app.config.policy.limits.max_message_bytes,
        now=bot.clock(),
    )
    [pending] = status.mailbox.unprocessed
    assert pending.is_request and pending.arrived_at is not None
    assert abs((bot.clock() - pending.arrived_at) - timedelta(hours=2)) < timedelta(minutes=1)
    assert "unprocessed_mail" in [p.code for p in status.problems]
    assert dovecot_mailbox.flags() == {next(iter(dovecot_mailbox.flags())): frozenset()}, "still unread"


def test_on_a_real_mailbox_a_clerks_reply_gets_no_answer_and_a_clerks_acceptance_reaches_the_branch(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink
) -> None:
    domains = 'internal_domains = ["usen.co.jp"]'
    rebuild(bot, domains, domains + '\nstaff = ["yamada@usen.co.jp"]')
    bot.import_unis()
    dovecot_mailbox.append(request(cc=[], message_id="<d-1@usen.co.jp>"))
    bot.poll()
    [case] = bot.cases()
    assert case["status"] == "returned"
    [reply] = sent_to(smtp_sink, "taro@usen.co.jp")
    clerk = request(
        sender="山田 <yamada@usen.co.jp>", to=["taro@usen.co.jp", DESK], cc=[], attachments=[],
        body="副支店長がCCに入っているので受付します", subject=reply["Subject"], message_id="<d-2@usen.co.jp>",
        in_reply_to=reply["Message-ID"],
    )  # fmt: skip
    dovecot_mailbox.append(clerk)
    before = len(smtp_sink.messages)
    bot.poll()
    assert bot.messages()[-1]["reason"] == "staff_message"
    assert len(smtp_sink.messages) == before  # nobody was answered
    assert len(dovecot_mailbox.flags("返却")) == 2  # the clerk's mail is filed with its case

    bot.app.desk.accept(case["case_no"], by="山田", note="副支店長CCのため受付")
    bot.poll()  # the running bot delivers what the desk queued
    receipts = [m for m in sent_to(smtp_sink, "taro@usen.co.jp") if "受け付けました" in m.get_content()]
    assert len(receipts) == 1
    assert receipts[0]["In-Reply-To"].strip() == "<d-1@usen.co.jp>"
    assert "副支店長CCのため受付" in receipts[0].get_content()


def test_a_stop_between_the_marks_and_the_copies_files_each_missing_copy_once_on_the_next_delivery(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from mailbot.adapters.database.schema import Outbox

    bot.import_unis()
    for i in range(3):
        dovecot_mailbox.append(request(message_id=f"<copies-{i}@usen.co.jp>"))
    # As if killed right after the run's marks: the mails are out, no copy is filed yet.
    deliverer = bot.app.intake.deliverer
    monkeypatch.setattr(deliverer, "_file_copies", lambda sent: None)
    bot.poll()
    monkeypatch.undo()
    outbox = bot.outbox()
    assert len(outbox) == 6 and all(o["status"] == "sent" for o in outbox)
    assert "Sent" not in dovecot_mailbox.folders(), "no copy filed before the stop"
    with bot.app.sessions() as session:
        flagged = session.scalars(select(Outbox).where(Outbox.copy_pending).order_by(Outbox.id)).all()
        assert len(flagged) == 6
        # One copy did reach the folder before the stop (killed after the APPEND, before the flags).
        with dovecot_mailbox.client() as client:
            client.create_folder("Sent")
        dovecot_mailbox.append(flagged[0].raw, folder="Sent", flags=[b"\\Seen"])

    bot.app.intake.deliver_outbox()

    copies = dovecot_mailbox.flags("Sent")
    assert len(copies) == 6, "each missing copy filed, the one already there not again"
    assert all(b"\\Seen" in flags for flags in copies.values())
    with bot.app.sessions() as session:
        assert session.scalars(select(Outbox.id).where(Outbox.copy_pending)).all() == []
    arrived = [m.message["Message-ID"] for m in smtp_sink.messages]
    assert len(arrived) == 6 == len(set(arrived)), "filing copies sends nothing again"
