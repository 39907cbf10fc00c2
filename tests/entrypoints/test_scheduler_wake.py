"""Mail a clerk queues leaves at once: the desk's command wakes the running `mailbot run` (issue #21, item 3).

The bot polls hourly and retries the outbox hourly here, so only the wake-up
can deliver within the tests' deadlines; the tests assert the wake-up itself
(the bot's log line and its ``wakeup`` job), not a time.
"""

from __future__ import annotations

import re
import signal
import time
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.adapters.database.schema import JobRun
from mailbot.service.commands import Accept, DeliverIfFree
from mailbot.service.health import bot_state
from tests.entrypoints.test_scheduler import _Bot
from tests.fixtures.bot import Harness, make_harness, rebuild, use_real_servers
from tests.fixtures.smtp_sink import ReceivedMail, SmtpSink
from tests.service.test_desk import returned_case

pytestmark = pytest.mark.services

HOURLY = "[schedule]\npoll_seconds = 3600\noutbox_retry_seconds = 3600\n"


def hourly_bot(tmp_path: Path, db_url: str, smtp_sink: SmtpSink) -> tuple[Harness, str]:
    """A returned case (its defect mail already at the relay) and the config of an hourly bot."""
    h = make_harness(tmp_path, db_url, HOURLY)
    use_real_servers(h, smtp_port=smtp_sink.port)
    case_no = returned_case(h)
    smtp_sink.wait_for(1)
    return h, case_no


def mail_about(sink: SmtpSink, case_no: str, after: int, bot: _Bot, timeout: float = 120) -> ReceivedMail:
    """The first mail about ``case_no`` the relay got after its first ``after`` ones (AssertionError if none came)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            mails = sink.wait_for(after + 1, timeout=max(deadline - time.monotonic(), 0.01))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the bot said:\n{''.join(bot.lines)}") from None
        found = [m for m in mails[after:] if case_no in str(make_header(decode_header(m.message["Subject"])))]
        if found:
            return found[0]
        after = len(mails)


def running_bot(h: Harness) -> _Bot:
    h.app.close()
    bot = _Bot(h.config_path)
    # The first poll has sent what was queued before (the weekly summaries it caught up, too).
    if not bot.wait_for("job poll done"):
        bot.end()
        raise AssertionError("".join(bot.lines))
    rebuild(h)  # the desk's side: the web or the CLI, its own process in real life
    return bot


def stop(bot: _Bot) -> str:
    bot.process.send_signal(signal.SIGTERM)
    assert bot.process.wait(timeout=60) == 0
    bot.reader.join(5)
    return "".join(bot.lines)


def test_a_clerks_acceptance_is_sent_at_once_because_the_desk_woke_the_hourly_bot(
    tmp_path: Path, db_url: str, smtp_sink: SmtpSink
) -> None:
    h, case_no = hourly_bot(tmp_path, db_url, smtp_sink)
    bot = running_bot(h)
    try:
        before = len(smtp_sink.messages)
        h.app.bus.handle(Accept(case_no, by="yamada"))
        # Generous for a loaded machine, and far below the hourly poll and retry.
        mail_about(smtp_sink, case_no, before, bot)
        assert bot.wait_for("job wakeup done"), "".join(bot.lines)
        output = stop(bot)
    finally:
        bot.end()
        h.app.close()
    assert output.count("mail queued at the desk; delivering now") == 1, output
    assert re.search(r"job wakeup done in \d+ ms: woken by the desk: sent [1-9]", output), output
    assert output.count("job poll done") == 1, "no second poll sent it"
    assert "Traceback" not in output


def test_a_cli_command_that_finds_the_bot_running_wakes_it_instead_of_waiting_for_the_poll(
    tmp_path: Path, db_url: str, smtp_sink: SmtpSink
) -> None:
    h, _ = hourly_bot(tmp_path, db_url, smtp_sink)
    bot = running_bot(h)
    try:
        answer = h.app.bus.handle(DeliverIfFree())
        assert "woken" in answer
        assert bot.wait_for("job wakeup done"), "".join(bot.lines)
        output = stop(bot)
    finally:
        bot.end()
        h.app.close()
    assert "woken by the desk: sent 0" in output


def test_the_running_bot_beats_and_a_clean_stop_is_recorded_at_once(
    tmp_path: Path, db_url: str, smtp_sink: SmtpSink
) -> None:
    h, _ = hourly_bot(tmp_path, db_url, smtp_sink)
    bot = running_bot(h)
    try:
        with h.app.sessions() as session:
            running = bot_state(session, now=datetime.now(UTC), poll_seconds=3600)
        assert running.running and running.heartbeat is not None
        stop(bot)
    finally:
        bot.end()
    with h.app.sessions() as session:
        stopped = bot_state(session, now=datetime.now(UTC), poll_seconds=3600)
        keys = set(session.scalars(select(JobRun.key).where(JobRun.job == "health")))
    h.app.close()
    assert not stopped.running and stopped.stopped_at is not None
    assert "heartbeat" not in keys and "stopped" in keys
