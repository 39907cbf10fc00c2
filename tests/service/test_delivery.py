"""Delivery: each outbox row is claimed before it goes to the relay, and copies wait for the mailbox.

Two apps on one database deliver the same backlog at the same time, with no
poller lock between them (as after a lost lock); the SMTP sink counts what
arrived. A claim left by a process that is gone from this host is taken at
once; one held by a live claimer elsewhere waits for its lease.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mailbot.adapters.database.schema import Outbox
from mailbot.bootstrap import build_app
from mailbot.config import load_config
from mailbot.service.delivery import LEASE, DeliveryReport
from tests.domain.builders import FORM
from tests.fixtures.bot import CUSTOMER, DESK, SHIBUYA_MGR, Harness, make_harness, use_real_servers
from tests.fixtures.dovecot import DovecotMailbox
from tests.fixtures.smtp_sink import SmtpSink
from tests.mailfactory import build_mail
from tests.service.test_imap_intake import request


def _backlog(h: Harness, count: int) -> int:
    """File ``count`` requests without delivering; return how many rows wait in the outbox."""
    for i in range(count):
        h.deliver(
            build_mail(
                subject=f"フレッツエスカ 渋谷支店 {i}",
                sender=f"担当{i} <staff{i}@usen.co.jp>",
                to=[DESK],
                cc=[SHIBUYA_MGR],
                body=f"顧客CD:{CUSTOMER}",
                attachments=[FORM],
                message_id=f"<claim-{i}@usen.co.jp>",
            )
        )
    h.app.intake.poll_once(deliver=False)
    return sum(1 for row in h.outbox() if row["status"] == "pending")


def _message_ids(sink: SmtpSink) -> Counter[str]:
    return Counter(str(mail.message["Message-ID"]) for mail in sink.messages)


def test_two_processes_delivering_the_same_backlog_at_once_send_every_mail_exactly_once(
    tmp_path: Path, db_url: str, smtp_sink: SmtpSink
) -> None:
    h = make_harness(tmp_path, db_url)
    use_real_servers(h, smtp_port=smtp_sink.port)
    other = build_app(load_config(h.config_path), clock=h.clock)
    try:
        pending = _backlog(h, 40)
        assert pending >= 40
        reports: list[DeliveryReport] = []
        start = threading.Barrier(2)

        def deliver(intake_app: object) -> None:
            start.wait()
            reports.append(intake_app.intake.deliver_outbox())  # type: ignore[attr-defined]

        threads = [threading.Thread(target=deliver, args=(app,)) for app in (h.app, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # What one of them skipped (claimed by the other, or its case held back) the next round sends.
        h.app.intake.deliver_outbox()
        other.intake.deliver_outbox()
    finally:
        other.close()
    arrived = _message_ids(smtp_sink)
    assert len(arrived) == pending
    assert [mid for mid, n in arrived.items() if n > 1] == []
    assert all(row["status"] == "sent" for row in h.outbox())
    assert sum(r.sent for r in reports) <= pending


def _claim_first(h: Harness, claimer: str) -> int:
    with h.app.sessions.begin() as session:
        first = min(row.id for row in session.query(Outbox).filter(Outbox.status == "pending"))
        session.execute(
            update(Outbox).where(Outbox.id == first).values(claimed_by=claimer, claimed_until=h.clock() + LEASE)
        )
    return first


def test_a_row_claimed_by_a_live_deliverer_elsewhere_waits_for_its_lease_to_run_out(
    tmp_path: Path, db_url: str, smtp_sink: SmtpSink
) -> None:
    h = make_harness(tmp_path, db_url)
    use_real_servers(h, smtp_port=smtp_sink.port)
    pending = _backlog(h, 3)
    first = _claim_first(h, "another-host:4242:abcd1234")

    h.app.intake.deliver_outbox()
    status = {row["id"]: row["status"] for row in h.outbox()}
    assert status[first] == "pending"
    assert len(smtp_sink.messages) < pending

    h.clock.advance(seconds=LEASE.total_seconds() + 1)
    h.app.intake.deliver_outbox()
    assert all(row["status"] == "sent" for row in h.outbox())
    arrived = _message_ids(smtp_sink)
    assert len(arrived) == pending and max(arrived.values()) == 1


def test_a_row_claimed_by_a_process_gone_from_this_host_is_sent_at_once(
    tmp_path: Path, db_url: str, smtp_sink: SmtpSink
) -> None:
    import socket

    h = make_harness(tmp_path, db_url)
    use_real_servers(h, smtp_port=smtp_sink.port)
    pending = _backlog(h, 2)
    dead = subprocess.Popen(["true"])
    dead.wait()
    _claim_first(h, f"{socket.gethostname()}:{dead.pid}:deadbeef")

    h.app.intake.deliver_outbox()
    assert all(row["status"] == "sent" for row in h.outbox())
    assert len(_message_ids(smtp_sink)) == pending


@pytest.fixture
def bot(
    tmp_path: Path, db_url: str, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    """The bot on Dovecot and the SMTP sink, filing copies of sent mail in Sent."""
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot_mailbox.password)
    harness = make_harness(tmp_path, db_url)
    imap = (dovecot_mailbox.port, dovecot_mailbox.user, "MAILBOT_TEST_IMAP_PASSWORD")
    use_real_servers(harness, smtp_port=smtp_sink.port, imap=imap)
    yield harness
    harness.app.close()


def test_copies_the_mailbox_could_not_take_stay_pending_and_a_later_delivery_files_each_once(
    bot: Harness, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    bot.import_unis()
    for i in range(3):
        dovecot_mailbox.append(request(message_id=f"<away-{i}@usen.co.jp>", sender=f"担当{i} <s{i}@usen.co.jp>"))
    bot.app.intake.poll_once(deliver=False)
    dovecot_mailbox.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="mailbot"):
            bot.app.intake.deliver_outbox()
            bot.app.intake.deliver_outbox()  # still away: the copies wait, one line for the outage
    finally:
        dovecot_mailbox.start()
    outbox = bot.outbox()
    assert len(outbox) == 6 and all(o["status"] == "sent" for o in outbox), "the mails went out"
    with bot.app.sessions() as session:
        assert len(session.scalars(select(Outbox.id).where(Outbox.copy_pending)).all()) == 6
    assert sum("Sent folder unavailable since" in r.getMessage() for r in caplog.records) == 1

    bot.app.intake.deliver_outbox()
    bot.app.intake.deliver_outbox()  # nothing left: no copy twice

    copies = dovecot_mailbox.flags("Sent")
    assert len(copies) == 6
    with bot.app.sessions() as session:
        assert session.scalars(select(Outbox.id).where(Outbox.copy_pending)).all() == []
    arrived = [m.message["Message-ID"] for m in smtp_sink.messages]
    assert len(arrived) == 6 == len(set(arrived)), "filing copies later sends nothing again"
