"""`mailbot run`: the jobs and their triggers, the jobs themselves, and a graceful stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from mailbot.adapters.database.schema import JobRun
from mailbot.adapters.maildir import MaildirSource
from mailbot.bootstrap import build_app
from mailbot.config import ConfigError, load_config
from mailbot.entrypoints.scheduler import Runner, build_scheduler, import_watched
from mailbot.service.schedule import next_run_times
from tests.fixtures.bot import GOOD_UNIS_ROW, SHIBUYA_MGR, UNIS_HEADER, Harness, make_harness, use_real_servers
from tests.fixtures.dovecot import DovecotMailbox
from tests.fixtures.smtp_sink import SmtpSink
from tests.mailfactory import build_mail
from tests.service.test_health import a_request
from tests.service.test_summaries import jst, parse, seed_week_48, summary_rows

SCHEDULE = """
[schedule]
poll_seconds = 20
outbox_retry_seconds = 120
recheck_minutes = 15
weekly_summary = "mon 08:30"
"""


def with_watch_dir(h: Harness, folder: Path) -> Harness:
    """The same bot, its config naming a UNIS watch folder."""
    text = h.config_path.read_text(encoding="utf-8").replace("[unis]\n", f'[unis]\nwatch_dir = "{folder}"\n', 1)
    h.config_path.write_text(text, encoding="utf-8")
    h.app.close()
    h.app = build_app(load_config(h.config_path), clock=h.clock)
    return h


@pytest.fixture
def scheduled(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, SCHEDULE)
    yield h
    h.app.close()


def test_the_scheduler_has_each_job_with_its_trigger_in_tokyo_time(scheduled: Harness) -> None:
    scheduler = build_scheduler(scheduled.app)
    jobs = {job.id: job for job in scheduler.get_jobs()}

    assert set(jobs) == {"poll", "outbox", "recheck", "weekly_summary", "weekly_summary_retry"}
    assert jobs["weekly_summary_retry"].trigger.interval == timedelta(hours=1)
    assert str(scheduler.timezone) == "Asia/Tokyo"
    poll = jobs["poll"]
    assert isinstance(poll.trigger, IntervalTrigger)
    assert poll.trigger.interval == timedelta(seconds=20)
    assert str(poll.trigger.timezone) == "Asia/Tokyo"
    assert (poll.max_instances, poll.coalesce) == (1, True)
    assert jobs["outbox"].trigger.interval == timedelta(seconds=120)
    assert jobs["recheck"].trigger.interval == timedelta(minutes=15)
    weekly = jobs["weekly_summary"].trigger
    assert isinstance(weekly, CronTrigger)
    assert str(weekly.timezone) == "Asia/Tokyo"
    fields = {f.name: str(f) for f in weekly.fields}
    assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("mon", "8", "30")
    # Next Monday 08:30 Tokyo time after a Tuesday.
    assert weekly.get_next_fire_time(None, jst(2026, 11, 24, 10, 0)) == jst(2026, 11, 30, 8, 30)


def test_a_unis_watch_folder_adds_its_import_job(scheduled: Harness, tmp_path: Path) -> None:
    with_watch_dir(scheduled, tmp_path / "drop")
    jobs = {job.id: job for job in build_scheduler(scheduled.app).get_jobs()}
    assert isinstance(jobs["unis_watch"].trigger, IntervalTrigger)
    assert jobs["unis_watch"].trigger.interval == timedelta(seconds=20)


def test_status_computes_next_run_times_from_the_triggers_alone(scheduled: Harness) -> None:
    runs = {r["job"]: r for r in next_run_times(scheduled.app.config, jst(2026, 11, 24, 10, 0))}
    assert runs["weekly_summary"]["next_run"] == jst(2026, 11, 30, 8, 30).isoformat()
    assert runs["poll"]["every_seconds"] == 20


@pytest.mark.parametrize("value", ["monday 8:30", "mon 25:00", "08:30"])
def test_a_bad_weekly_summary_setting_is_reported_by_its_name(tmp_path: Path, db_url: str, value: str) -> None:
    h = make_harness(tmp_path, db_url, f'[schedule]\nweekly_summary = "{value}"\n')
    try:
        with pytest.raises(ConfigError, match=r"\[schedule\] weekly_summary: .*mon 08:30"):
            build_scheduler(h.app)
    finally:
        h.app.close()


def test_a_bad_timezone_is_reported_by_its_name(tmp_path: Path, db_url: str) -> None:
    h = make_harness(tmp_path, db_url, '[schedule]\ntimezone = "Asia/Nowhere"\n')
    try:
        with pytest.raises(ConfigError, match=r"\[schedule\] timezone"):
            build_scheduler(h.app)
    finally:
        h.app.close()


def test_the_summary_job_lists_open_returns_of_the_configured_days_only(tmp_path: Path, db_url: str) -> None:
    h = make_harness(tmp_path, db_url, SCHEDULE + "[summary]\nlist_open_returns_days = 10\n")
    try:
        seed_week_48(h)
        h.clock.now = jst(2026, 11, 30, 8, 30)
        assert "queued" in Runner(h.app).weekly_summary()
        bodies = {tuple(r.to_addrs): parse(r.raw).get_content() for r in summary_rows(h, "weekly_branch")}
    finally:
        h.app.close()
    # FE-2026-00001 was returned 13 days before the week's end: counted, not listed.
    assert "※このほか、返却から10日を超えている依頼が1件あります(件数のみの記載です)。" in bodies[(SHIBUYA_MGR,)]
    assert "FE-2026-00001" not in bodies[(SHIBUYA_MGR,)]


def test_the_summary_job_catches_up_last_week_after_downtime_and_only_once(scheduled: Harness) -> None:
    seed_week_48(scheduled)
    runner = Runner(scheduled.app)

    scheduled.clock.now = jst(2026, 11, 30, 8, 0)  # before this week's time: nothing due
    assert runner.weekly_summary().startswith("not due yet")
    assert summary_rows(scheduled, "weekly_ops") == []

    scheduled.clock.now = jst(2026, 12, 2, 14, 0)  # down on Monday, back on Wednesday
    assert "queued" in runner.weekly_summary()
    assert len(summary_rows(scheduled, "weekly_branch")) == 2
    assert len(summary_rows(scheduled, "weekly_ops")) == 1
    assert scheduled.sent_mail("weekly_ops"), "the catch-up is delivered too"

    restarted = Runner(build_app(load_config(scheduled.config_path), clock=scheduled.clock))
    try:
        assert "already sent" in restarted.weekly_summary()
    finally:
        restarted.app.close()
    assert len(summary_rows(scheduled, "weekly_ops")) == 1


def unis_csv(rows: list[str]) -> bytes:
    return ("\r\n".join([UNIS_HEADER, *rows]) + "\r\n").encode("cp932")


def test_a_dropped_unis_export_is_imported_and_moved_to_processed(scheduled: Harness, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    good = drop / "unis_20261124.csv"
    good.write_bytes(unis_csv([GOOD_UNIS_ROW]))
    bad = drop / "broken.CSV"
    bad.write_bytes(b"not,a,unis,export\r\n")
    young = drop / "still_writing.csv"
    young.write_bytes(unis_csv([GOOD_UNIS_ROW]))
    old = time.time() - 60
    for path in (good, bad):
        os.utime(path, (old, old))

    detail = import_watched(scheduled.app, drop, now=scheduled.clock())

    assert "unis_20261124.csv imported (1 rows)" in detail
    assert (drop / "processed" / "unis_20261124.csv").exists()
    assert (drop / "failed" / "broken.CSV").exists()
    reason = (drop / "failed" / "broken.CSV.reason.txt").read_text(encoding="utf-8")
    assert "UnisFileError" in reason and "header" in reason
    assert young.exists(), "a file still being written is left for the next run"
    with scheduled.app.sessions() as session:
        from mailbot.adapters.database.store import Store

        snapshot = Store(session).latest_snapshot()
        assert snapshot is not None and snapshot.source_name == "unis_20261124.csv"


def test_ops_hear_once_when_polling_fails_for_long_and_once_when_it_recovers(scheduled: Harness) -> None:
    runner = Runner(scheduled.app)
    runner.poll()
    assert scheduled.outbox("ops_alert") == []

    hidden = scheduled.root / "Maildir.away"
    scheduled.maildir.rename(hidden)  # the mailbox is gone: polls fail
    scheduled.clock.advance(seconds=30)
    runner.poll()
    assert scheduled.outbox("ops_alert") == [], "not yet three intervals"
    scheduled.clock.advance(seconds=60)
    runner.poll()
    scheduled.clock.advance(seconds=60)
    runner.poll()
    (alert,) = scheduled.outbox("ops_alert")
    assert alert["subject"] == "[mailbot] 警告 メールボックスの確認が止まっています"
    assert alert["to"] == ["ops@usen.co.jp"]

    hidden.rename(scheduled.maildir)
    scheduled.clock.advance(seconds=130)  # past the mailbox back-off (30, 60, then 120 s)
    runner.poll()
    runner.poll()
    (cleared,) = scheduled.outbox("ops_alert_cleared")
    assert cleared["subject"] == "[mailbot] 解消 メールボックスの確認が止まっています"
    assert len(scheduled.outbox("ops_alert")) == 1
    with scheduled.app.sessions() as session:
        assert list(session.scalars(select(JobRun).where(JobRun.job == "alert"))) == []


def test_a_stop_lets_the_job_in_hand_finish_and_skips_the_rest(scheduled: Harness) -> None:
    runner = Runner(scheduled.app)
    build = runner.build()
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow() -> str:
        started.set()
        release.wait(5)
        finished.append("slow")
        return "done"

    job = runner._wrap("slow", slow)
    worker = threading.Thread(target=job)
    worker.start()
    assert started.wait(5)
    runner.stop(signal.SIGTERM)
    assert scheduled.app.intake.stopping is True

    def poll() -> str:
        finished.append("poll")
        return ""

    runner._wrap("poll", poll)()  # a job due after the stop
    release.set()
    worker.join(5)
    assert finished == ["slow"]
    assert build is runner.scheduler


def test_sigterm_stops_the_running_bot_promptly_with_exit_0(tmp_path: Path, db_url: str) -> None:
    h = make_harness(tmp_path, db_url, "[schedule]\npoll_seconds = 5\n")
    h.app.close()
    mailbot = Path(sys.executable).with_name("mailbot")
    if not mailbot.exists():
        found = shutil.which("mailbot")
        assert found, "the mailbot console script is installed"
        mailbot = Path(found)
    process = subprocess.Popen(
        [str(mailbot), "--config", str(h.config_path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    polled = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "job poll done" in line:
                polled.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert polled.wait(60), "".join(lines)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(5)
    output = "".join(lines)
    assert code == 0, output
    assert "SIGTERM received" in output
    assert "mailbot stopped" in output
    assert "Traceback" not in output


class AnnouncingMaildir(MaildirSource):
    """A Maildir that, like IMAP IDLE, can wait for new mail and say when some came."""

    def wait_for_new(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any((self.path / "new").iterdir()):
                return True
            time.sleep(0.05)
        return False


def test_a_source_that_announces_new_mail_brings_the_next_poll_forward(tmp_path: Path, db_url: str) -> None:
    h = make_harness(tmp_path, db_url, "[schedule]\npoll_seconds = 3600\n")
    runner = None
    try:
        h.app.intake.source = AnnouncingMaildir(h.maildir)
        runner = Runner(h.app)
        runner.idle_wait_seconds = 0.5
        scheduler = runner.build(BackgroundScheduler(timezone=runner.tz, executors={"default": ThreadPoolExecutor(1)}))
        scheduler.start()
        assert runner.start_watcher()
        h.deliver(a_request(1))
        # Wait for the event (the case is filed) with a deadline that is generous
        # on a loaded CI machine and still far below the hourly poll it must beat.
        deadline = time.monotonic() + 240
        while not h.cases() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [c["branch"] for c in h.cases()] == ["渋谷支店"], "polled long before the hourly poll"
    finally:
        if runner is not None:
            runner.stop()
            with runner._work:
                pass
        h.app.close()


def test_a_plain_maildir_gets_no_watcher(scheduled: Harness) -> None:
    assert Runner(scheduled.app).start_watcher() is False


class _Bot:
    """A `mailbot run` subprocess whose output lines are collected as they come."""

    def __init__(self, config: Path) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mailbot.entrypoints.cli", "--config", str(config), "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 240) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def test_a_second_bot_on_the_same_mailbox_waits_and_takes_over_when_the_first_dies(tmp_path: Path, db_url: str) -> None:
    from tests.fixtures.bot import DESK

    h = make_harness(tmp_path, db_url, "[schedule]\npoll_seconds = 5\n")
    first = _Bot(h.config_path)
    second = None
    try:
        assert first.wait_for("job poll done"), "".join(first.lines)
        second = _Bot(h.config_path)
        assert second.wait_for("waiting to take over"), "".join(second.lines)
        assert not any("job poll" in line for line in second.lines)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
        assert second.wait_for("job poll done"), "".join(second.lines)
        h.deliver(build_mail(subject="請求書の件", sender="keiri@usen.co.jp", to=[DESK]))
        deadline = time.monotonic() + 240  # generous: the event, not the time, ends the wait
        while time.monotonic() < deadline and not h.messages():
            time.sleep(0.2)
        assert [m["reason"] for m in h.messages()] == ["not_request"]
    finally:
        first.end()
        if second is not None:
            second.end()
        h.app.close()


def test_a_monday_summary_run_that_failed_is_sent_by_the_hourly_retry(scheduled: Harness) -> None:
    seed_week_48(scheduled)
    runner = Runner(scheduled.app)
    # The Monday 08:30 run did not happen or failed; an hour later the retry job runs the same check.
    scheduled.clock.now = jst(2026, 11, 30, 9, 30)
    runner.build(BackgroundScheduler(timezone="Asia/Tokyo"))
    job = runner.scheduler.get_job("weekly_summary_retry")
    job.func()
    assert len(summary_rows(scheduled, "weekly_branch")) == 2
    job.func()
    assert len(summary_rows(scheduled, "weekly_branch")) == 2, "and only once"


# -- retention (issue 12) ---------------------------------------------------------------------
def test_the_retention_job_runs_daily_at_0315_tokyo_only_when_retention_is_configured(
    tmp_path: Path, db_url: str
) -> None:
    h = make_harness(tmp_path, db_url, SCHEDULE + "[retention]\nraw_days = 30\n")
    try:
        jobs = {job.id: job for job in build_scheduler(h.app).get_jobs()}
        trigger = jobs["retention"].trigger
        assert isinstance(trigger, CronTrigger) and str(trigger.timezone) == "Asia/Tokyo"
        fields = {f.name: str(f) for f in trigger.fields}
        assert (fields["hour"], fields["minute"], fields["day_of_week"]) == ("3", "15", "*")
        runs = {r["job"]: r for r in next_run_times(h.app.config, jst(2026, 11, 24, 10, 0))}
        assert runs["retention"]["cron"] == "daily 03:15"
        assert runs["retention"]["next_run"] == jst(2026, 11, 25, 3, 15).isoformat()
    finally:
        h.app.close()


def test_without_retention_there_is_no_retention_job(scheduled: Harness) -> None:
    assert "retention" not in {job.id for job in build_scheduler(scheduled.app).get_jobs()}


def test_the_retention_job_removes_old_raw_mail_once_and_then_nothing(tmp_path: Path, db_url: str) -> None:
    from mailbot.adapters.database.schema import RawMessage

    h = make_harness(tmp_path, db_url, SCHEDULE + "[retention]\nraw_days = 30\n")
    try:
        h.import_unis([GOOD_UNIS_ROW])
        h.deliver(a_request(1))
        h.poll()
        runner = Runner(h.app)
        assert runner.retention() == "0 raw mail(s) removed, attachments removed from 0"
        h.clock.advance(days=31)
        assert runner.retention() == "1 raw mail(s) removed, attachments removed from 0"
        assert runner.retention() == "0 raw mail(s) removed, attachments removed from 0"
        with h.app.sessions() as session:
            assert session.scalars(select(RawMessage.removed_at)).one() is not None
        assert len(h.cases()) == 1
    finally:
        h.app.close()


def _reply_to(sink: SmtpSink, message_id: str, timeout: float) -> bool:
    """Wait for the mail the sink got In-Reply-To ``message_id``; False at the deadline."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        try:
            mails = sink.wait_for(seen + 1, timeout=max(deadline - time.monotonic(), 0.01))
        except AssertionError:
            return False
        if any((m.message.get("In-Reply-To") or "").strip() == message_id for m in mails):
            return True
        seen = len(mails)
    return False


def test_with_imap_idle_each_request_is_answered_at_once_even_one_arriving_as_the_last_reply_goes_out(
    tmp_path: Path, db_url: str, dovecot_mailbox: DovecotMailbox, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The poll runs hourly, so only IDLE can bring the replies within the deadlines below.
    h = make_harness(tmp_path, db_url, "[schedule]\npoll_seconds = 3600\n")
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot_mailbox.password)
    use_real_servers(
        h, smtp_port=smtp_sink.port, imap=(dovecot_mailbox.port, dovecot_mailbox.user, "MAILBOT_TEST_IMAP_PASSWORD")
    )
    text = h.config_path.read_text(encoding="utf-8").replace(
        "timeout_seconds = 10\n", "timeout_seconds = 10\nidle = true\n"
    )
    h.config_path.write_text(text, encoding="utf-8")
    h.import_unis()
    h.app.close()
    bot = _Bot(h.config_path)
    try:
        assert bot.wait_for("job poll done"), "".join(bot.lines)
        with dovecot_mailbox.client() as client:
            for n in range(1, 4):
                # Appended the moment the previous reply reached the relay: the bot is
                # still in that poll (the ops notice, the health check's look at the
                # mailbox), and that look must not make this mail old news for IDLE.
                client.append("INBOX", a_request(n))
                # Generous for a loaded machine, and far below the hourly poll.
                assert _reply_to(smtp_sink, f"<health{n}@usen.co.jp>", timeout=240), "".join(bot.lines)
        bot.process.send_signal(signal.SIGTERM)
        assert bot.process.wait(timeout=60) == 0
    finally:
        bot.end()
        h.app.close()
    output = "".join(bot.lines)
    assert output.count("new mail announced") == 3, output
    assert "skipped: maximum number of running instances" not in output, "each announcement is one poll"
    assert "Traceback" not in output
