"""The runner when PostgreSQL goes away: the lock is held or nothing is sent, and outages wait.

Each test starts a private PostgreSQL cluster (tests/fixtures/pg_cluster.py)
and stops or restarts it under the bot. Counted, never timed: polls run,
tries of the database, log lines, mails the SMTP sink received.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from mailbot.bootstrap import build_app
from mailbot.config import load_config
from mailbot.entrypoints.scheduler import Runner
from mailbot.service.outages import DATABASE
from tests.entrypoints.test_scheduler import AnnouncingMaildir
from tests.fixtures.bot import CUSTOMER, DESK, SHIBUYA_MGR, Harness, make_harness, rebuild, use_real_servers
from tests.fixtures.pg_cluster import PgCluster
from tests.fixtures.smtp_sink import SmtpSink
from tests.mailfactory import build_mail
from tests.service.test_health import a_request


def _requests(h: Harness, count: int, tag: str) -> None:
    for i in range(count):
        h.deliver(
            build_mail(
                subject=f"フレッツエスカ 渋谷支店 {tag}{i}",
                sender=f"担当{i} <staff{i}@usen.co.jp>",
                to=[DESK],
                cc=[SHIBUYA_MGR],
                body=f"顧客CD:{CUSTOMER}",
                message_id=f"<{tag}-{i}@usen.co.jp>",
            )
        )


def _lines(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


@pytest.fixture
def on_cluster(tmp_path: Path, pg_cluster: PgCluster, smtp_sink: SmtpSink) -> Iterator[Harness]:
    h = make_harness(tmp_path, pg_cluster.url, "[schedule]\npoll_seconds = 3600\n")
    use_real_servers(h, smtp_port=smtp_sink.port)
    yield h
    h.app.close()


def test_after_a_postgresql_restart_the_bot_that_lost_its_lock_sends_nothing_and_a_second_process_sends_each_mail_once(
    on_cluster: Harness, pg_cluster: PgCluster, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    h = on_cluster
    runner = Runner(h.app)
    lock = h.app.poller_lock()
    assert lock.try_acquire()
    runner.lock = lock
    h.app.intake.deliverer.may_send = runner.holds_lock
    _requests(h, 30, "restart")
    h.app.intake.poll_once(deliver=False)
    pending = sum(row["status"] == "pending" for row in h.outbox())
    assert pending >= 30

    pg_cluster.restart()  # the lock's session ends with it; the bot is not told
    other = build_app(load_config(h.config_path), clock=h.clock)
    other_lock = other.poller_lock()
    try:
        assert other_lock.try_acquire(), "the restart freed the lock"
        with caplog.at_level(logging.INFO, logger="mailbot"):
            for _ in range(3):
                runner._wrap("outbox", runner.deliver)()
            assert smtp_sink.messages == [], "a bot without its lock sends nothing"
            assert _lines(caplog, "lost the poller lock") == 1
            other.intake.deliver_outbox()
            other_lock.release()
            runner._wrap("outbox", runner.deliver)()  # takes the lock again; nothing left to send
        assert _lines(caplog, "taken again after") == 1
    finally:
        other_lock.release()
        other.close()
        lock.release()
    arrived = Counter(str(mail.message["Message-ID"]) for mail in smtp_sink.messages)
    assert len(arrived) == pending
    assert [mid for mid, n in arrived.items() if n > 1] == []


def test_a_database_outage_with_idle_on_is_one_try_and_a_few_lines_not_a_busy_loop(
    on_cluster: Harness, pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    h = on_cluster
    h.app.intake.source = AnnouncingMaildir(h.maildir)
    cycles_held_back = threading.Semaphore(0)

    class CountingRunner(Runner):
        def _holding_back(self) -> bool:
            held = super()._holding_back()
            if held:
                cycles_held_back.release()
            return held

    runner = CountingRunner(h.app)
    runner.idle_wait_seconds = 0.05
    polls: list[JobExecutionEvent] = []
    first_poll = threading.Event()

    def count(event: JobExecutionEvent) -> None:
        if event.job_id == "poll":
            polls.append(event)
            first_poll.set()

    scheduler = runner.build(BackgroundScheduler(timezone=runner.tz, executors={"default": ThreadPoolExecutor(1)}))
    scheduler.add_listener(count, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    try:
        with caplog.at_level(logging.INFO, logger="mailbot"):
            scheduler.start()
            assert first_poll.wait(60)
            assert runner.start_watcher()
            pg_cluster.stop()
            before = len(polls)
            h.deliver(a_request(1))  # announced at once, again and again, while the database is away
            # Forty turns of the watcher (the fake clock stands still, so the back-off never ends).
            for _ in range(40):
                assert cycles_held_back.acquire(timeout=60)
            during = len(polls) - before
            records = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert h.app.intake.outages.count(DATABASE) == 1, "one try of the database while its back-off runs"
            assert during == 1, f"{during} polls during the outage"
            assert len(records) <= 3, [r.getMessage() for r in records]
            assert not any(r.exc_info for r in caplog.records), "no tracebacks for an outage"
            assert _lines(caplog, "database unavailable since") == 1

            pg_cluster.start()
            h.clock.advance(seconds=31)  # past the first back-off step
            deadline = time.monotonic() + 120
            while not (h.cases() and _lines(caplog, "available again")) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert len(h.cases()) == 1, "filed once the database was back"
        assert _lines(caplog, "database available again") == 1
    finally:
        runner.stop()
        with runner._work:
            pass


HOOK = """
import os, sys
with open(sys.argv[1], "a", encoding="utf-8") as out:
    out.write(os.environ["MAILBOT_ALERT_EVENT"] + " " + os.environ["MAILBOT_ALERT_WHAT"] + ": " + sys.stdin.read())
"""


def _with_hook(h: Harness, tmp_path: Path) -> Path:
    """[alerts] after 10 minutes, with a command hook that appends what it hears to a file."""
    script, heard = tmp_path / "hook.py", tmp_path / "heard.txt"
    script.write_text(HOOK, encoding="utf-8")
    text = h.config_path.read_text(encoding="utf-8")
    head, _, branches = text.partition("[[branches]]")
    alerts = f'[alerts]\nafter_minutes = 10\ncommand = "{sys.executable} {script} {heard}"\n'
    h.config_path.write_text(head + alerts + "\n[[branches]]" + branches, encoding="utf-8")
    rebuild(h)
    return heard


def _subjects(sink: SmtpSink) -> list[str]:
    return [str(make_header(decode_header(str(m.message["Subject"])))) for m in sink.messages]


def test_a_database_outage_longer_than_after_minutes_is_one_alert_mailed_past_the_outbox_and_one_all_clear(
    on_cluster: Harness, pg_cluster: PgCluster, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    h = on_cluster
    heard = _with_hook(h, tmp_path)
    runner = Runner(h.app)
    runner._wrap("poll", runner.poll)()
    pg_cluster.stop()
    runner._wrap("poll", runner.poll)()  # the outage begins
    h.clock.advance(minutes=5)
    runner._wrap("outbox", runner.deliver)()
    assert smtp_sink.messages == [], "not yet after_minutes"
    for _ in range(3):
        h.clock.advance(minutes=4)
        runner._wrap("outbox", runner.deliver)()
    assert _subjects(smtp_sink) == ["[mailbot] 警告 データベースに接続できません"]
    assert smtp_sink.messages[0].rcpt_tos == ("ops@usen.co.jp",)

    pg_cluster.start()
    h.clock.advance(minutes=5)  # past the back-off
    runner._wrap("poll", runner.poll)()
    runner._wrap("outbox", runner.deliver)()
    runner._wrap("outbox", runner.deliver)()
    assert _subjects(smtp_sink) == [
        "[mailbot] 警告 データベースに接続できません",
        "[mailbot] 解消 データベースに接続できません",
    ]
    told = heard.read_text(encoding="utf-8").splitlines()
    assert [line.split(":")[0] for line in told] == ["raised database", "cleared database"]


def test_a_relay_that_refuses_for_long_is_told_to_stderr_and_the_hook_never_by_mail_and_so_is_its_end(
    tmp_path: Path, db_url: str, smtp_sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    h = make_harness(tmp_path, db_url, "[schedule]\npoll_seconds = 3600\n")
    use_real_servers(h, smtp_port=smtp_sink.port)
    heard = _with_hook(h, tmp_path)
    try:
        runner = Runner(h.app)
        _requests(h, 3, "relay")
        h.app.intake.poll_once(deliver=False)
        smtp_sink.refuse_always(451, "4.3.0 Try again later")
        runner._wrap("outbox", runner.deliver)()
        for _ in range(4):
            h.clock.advance(minutes=4)
            runner._wrap("outbox", runner.deliver)()
        # Lines of their own (a log handler another test left on stderr may echo the log line too).
        err = capsys.readouterr().err.splitlines()
        assert sum(line.startswith("mailbot alert: relay unavailable since") for line in err) == 1
        assert smtp_sink.messages == []

        smtp_sink.accept()
        h.clock.advance(hours=2)  # past the relay's and each mail's back-off
        runner._wrap("outbox", runner.deliver)()
        runner._wrap("outbox", runner.deliver)()
        assert all(row["status"] == "sent" for row in h.outbox())
        err = capsys.readouterr().err.splitlines()
        assert sum(line.startswith("mailbot all-clear: relay available again") for line in err) == 1
        told = heard.read_text(encoding="utf-8").splitlines()
        assert [line.split(":")[0] for line in told] == ["raised relay", "cleared relay"]
        assert not any("警告" in s for s in _subjects(smtp_sink)), "no alert mail about the relay"
    finally:
        h.app.close()


def test_a_job_failing_the_same_unexpected_way_again_keeps_one_traceback(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(tmp_path, db_url)
    try:
        runner = Runner(h.app)

        def broken() -> str:
            raise ValueError("a bug, not an outage")

        with caplog.at_level(logging.INFO, logger="mailbot.scheduler"):
            for _ in range(5):
                runner._wrap("recheck", broken)()
        failures = [r for r in caplog.records if "job recheck failed" in r.getMessage()]
        assert len(failures) == 5
        assert [bool(r.exc_info) for r in failures] == [True, False, False, False, False]
        assert "failed again (5 times in a row" in failures[-1].getMessage()
    finally:
        h.app.close()
