"""The whole bot on each real IMAP server (Dovecot, Courier without keywords, Cyrus with INBOX.)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.entrypoints.cli.main import main
from mailbot.service.health import collect_status
from tests.fixtures.bot import DESK, OPS, Harness, make_harness, use_real_servers
from tests.fixtures.bot import rebuild as restart
from tests.fixtures.dovecot import DovecotMailbox
from tests.fixtures.imap_servers import ServerMailbox
from tests.fixtures.smtp_sink import SmtpSink
from tests.mailfactory import build_mail
from tests.service.test_imap_intake import request

pytestmark = pytest.mark.services

Mailbox = DovecotMailbox | ServerMailbox


def _bot(tmp_path: Path, db_url: str, box: Mailbox, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", box.password)
    harness = make_harness(tmp_path, db_url)
    use_real_servers(harness, smtp_port=sink.port, imap=(box.port, box.user, "MAILBOT_TEST_IMAP_PASSWORD"))
    return harness


@pytest.fixture
def server_bot(
    tmp_path: Path, db_url: str, imap_mailbox: Mailbox, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    harness = _bot(tmp_path, db_url, imap_mailbox, smtp_sink, monkeypatch)
    yield harness
    harness.app.close()


def cursor_of(bot: Harness) -> dict[str, int] | None:
    source = bot.app.intake.source
    raw = source._cursor.get(source.name)  # type: ignore[attr-defined]
    return json.loads(raw) if raw else None


def test_on_every_server_each_request_is_filed_once_and_moved_sent_mail_filed_once_and_a_second_poll_does_nothing(
    server_bot: Harness, imap_mailbox: Mailbox, smtp_sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    bot, box = server_bot, imap_mailbox
    bot.import_unis()
    box.append(request(message_id="<ok-1@usen.co.jp>"))
    box.append(request(style="gmail", cc=[], sender="花子 <hanako@usen.co.jp>", message_id="<ng-1@usen.co.jp>"))
    box.append(request(sender="営業 <sales@example.com>", message_id="<out-1@example.com>"))
    box.append(build_mail(subject="請求書の件", sender="keiri@usen.co.jp", to=[DESK], message_id="<q-1@usen.co.jp>"))

    first = bot.poll()
    assert first.source_error is None and first.failed == 0
    assert sorted(first.dispositions.items()) == [("case", 2), ("ignored", 1), ("quarantined", 1)]

    keywords = box.kind != "courier"
    filed = [("受付済", b"$Mailbot-Accepted"), ("返却", b"$Mailbot-Returned"), ("隔離", b"$Mailbot-Quarantined")]
    for folder, keyword in filed:
        [flags] = box.flags(folder).values()
        assert (keyword in flags) is keywords, folder
    assert len(box.uids()) == 1, "only the enquiry stays in INBOX"
    sent = box.flags("Sent")
    assert len(sent) == len(bot.outbox()) == 5
    assert {o["status"] for o in bot.outbox()} == {"sent"}
    cursor = cursor_of(bot)
    assert cursor is not None and cursor["last_uid"] == 4

    mails = len(smtp_sink.messages)
    second = bot.poll()
    assert (second.processed, second.marked_again, second.failed) == (0, 0, 0)
    assert len(smtp_sink.messages) == mails and len(box.flags("Sent")) == 5
    assert len(bot.messages()) == 4

    assert main(["--config", str(bot.config_path), "check-connection"]) == 0
    out = capsys.readouterr().out
    assert "[NG]" not in out
    if keywords:
        assert "custom keywords are kept" in out
    else:
        assert "refuses custom keywords" in out
    if box.prefix:
        assert "INBOX.受付済" in out and "INBOX.Sent" in out


def test_a_mark_the_server_refuses_never_stalls_the_mailbox_is_reported_once_and_done_when_possible(
    server_bot: Harness, imap_mailbox: Mailbox, smtp_sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailbot.entrypoints.scheduler import Runner

    bot, box = server_bot, imap_mailbox
    text = bot.config_path.read_text(encoding="utf-8")
    # Dovecot refuses to create a folder whose name starts with "~", Courier and Cyrus one holding "/".
    refused = "~受付済" if box.kind == "dovecot" else "受付/済"
    bot.config_path.write_text(text.replace('accepted = "受付済"', f'accepted = "{refused}"'), encoding="utf-8")
    restart(bot)
    bot.import_unis()
    box.append(request(message_id="<stuck-1@usen.co.jp>"))
    runner = Runner(bot.app)
    runner.poll()
    assert [m["message_id"] for m in bot.messages()] == ["<stuck-1@usen.co.jp>"]
    assert cursor_of(bot) == {"uidvalidity": box.uidvalidity(), "last_uid": 1}, "the cursor moved on"

    box.append(request(message_id="<next-1@usen.co.jp>"))
    bot.clock.advance(minutes=1)
    runner.poll()
    assert sorted(m["message_id"] for m in bot.messages()) == ["<next-1@usen.co.jp>", "<stuck-1@usen.co.jp>"]
    assert cursor_of(bot) == {"uidvalidity": box.uidvalidity(), "last_uid": 2}
    for _ in range(4):
        bot.clock.advance(minutes=4)
        report = bot.poll()
        assert report.source_error is None and report.marked_again == 0
        runner.check_health()
    alerts = [o for o in bot.outbox() if o["kind"] == "ops_alert"]
    assert len(alerts) == 1 and "移動" in alerts[0]["subject"]
    status = collect_status(
        sessions=bot.app.sessions,
        source=bot.app.intake.source,
        poll_seconds=60,
        max_message_bytes=bot.app.config.policy.limits.max_message_bytes,
        now=bot.clock(),
    )
    assert [p.code for p in status.problems if p.code == "marks_pending"] == ["marks_pending"]
    assert len(status.marks_pending) == 2
    capsys.readouterr()
    assert main(["--config", str(bot.config_path), "status"]) == 1
    assert "marks pending" in capsys.readouterr().out
    assert len(box.uids()) == 2, "both still in INBOX"

    # Once the folder can be made, the marks go through and ops hear that it cleared.
    bot.config_path.write_text(text, encoding="utf-8")
    restart(bot)
    runner = Runner(bot.app)
    bot.clock.advance(hours=1)
    runner.poll()
    assert box.uids() == [] and len(box.uids("受付済")) == 2
    assert [o["kind"] for o in bot.outbox() if o["kind"].startswith("ops_alert")] == ["ops_alert", "ops_alert_cleared"]
    assert OPS in {r for m in smtp_sink.messages for r in m.rcpt_tos}


def test_after_a_relay_hiccup_the_outbox_is_sent_once_on_every_server_and_not_deferred_for_good(
    server_bot: Harness, imap_mailbox: Mailbox, smtp_sink: SmtpSink
) -> None:
    bot, box = server_bot, imap_mailbox
    bot.import_unis()
    box.append(request(message_id="<hiccup-1@usen.co.jp>"))
    smtp_sink.refuse_always(code=451, text="4.3.0 try again later")
    bot.poll()
    assert {o["status"] for o in bot.outbox()} == {"pending"}
    smtp_sink.accept()
    bot.clock.advance(minutes=5)
    bot.poll()  # looks in Sent first (none there yet), then sends
    assert {o["status"] for o in bot.outbox()} == {"sent"}
    assert len(smtp_sink.messages) == 2
    assert len(box.flags("Sent")) == 2
