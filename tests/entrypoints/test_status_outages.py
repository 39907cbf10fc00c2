"""`mailbot status` during outages: exit 1 with one line per problem, none at a healthy start or after recovery.

Run through `mailbot`'s own main() on a real bot directory, the relay an SMTP
sink that refuses, the database a private PostgreSQL cluster that the test
stops.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from mailbot.adapters.database.schema import Outbox
from mailbot.service.health import clear_runner, mark_runner
from tests.entrypoints.test_ops_commands import run
from tests.fixtures.bot import FakeClock, Harness, make_harness, use_real_servers
from tests.fixtures.pg_cluster import PgCluster
from tests.fixtures.smtp_sink import SmtpSink
from tests.service.test_health import a_request


def _problems(out: str) -> list[str]:
    return [line.split(":")[0].removeprefix("PROBLEM ") for line in out.splitlines() if line.startswith("PROBLEM ")]


@pytest.fixture
def live_smtp(tmp_path: Path, db_url: str, smtp_sink: SmtpSink) -> Harness:
    h = make_harness(tmp_path, db_url, clock=FakeClock(datetime.now(UTC)))
    use_real_servers(h, smtp_port=smtp_sink.port)
    return h


def test_a_refusing_relay_and_mail_pending_too_long_are_one_line_each_and_clear_once_sent(
    live_smtp: Harness, smtp_sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    h = live_smtp
    try:
        h.deliver(a_request(1))
        smtp_sink.refuse_always(451, "4.3.0 Try again later")
        h.poll()
        code, out, _ = run(h, capsys, "status")
        assert code == 1
        assert _problems(out) == ["relay_refusing"]
        with h.app.sessions.begin() as session:
            # As if the relay had refused for an hour: the rows were written then.
            session.execute(update(Outbox).values(created_at=datetime.now(UTC) - timedelta(hours=1)))
        code, out, _ = run(h, capsys, "status")
        assert _problems(out) == ["relay_refusing", "outbox_stale"]

        smtp_sink.accept()
        h.clock.advance(hours=2)
        h.app.intake.outages.recovered("relay")  # a new process would not know of the back-off
        h.app.intake.deliver_outbox()
        code, out, _ = run(h, capsys, "status")
        assert (code, _problems(out)) == (0, [])
    finally:
        h.app.close()


def test_copies_still_to_file_long_after_their_mails_went_out_are_a_problem(
    live_smtp: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = live_smtp
    try:
        h.deliver(a_request(2))
        h.poll()
        with h.app.sessions.begin() as session:
            session.execute(update(Outbox).values(copy_pending=True, sent_at=datetime.now(UTC) - timedelta(minutes=30)))
        code, out, _ = run(h, capsys, "status")
        assert code == 1 and _problems(out) == ["copies_pending"]
    finally:
        h.app.close()


def test_an_unreachable_mailbox_is_a_problem_at_once_not_three_intervals_later(
    live_smtp: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = live_smtp
    try:
        h.poll()
        code, out, _ = run(h, capsys, "status")
        assert (code, _problems(out)) == (0, [])
        shutil.rmtree(h.maildir)
        code, out, _ = run(h, capsys, "status")
        assert code == 1 and _problems(out) == ["mailbox_unreachable"]
    finally:
        h.app.close()


def test_a_run_that_died_without_a_clean_stop_is_a_problem_and_a_clean_stop_is_not(
    live_smtp: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = live_smtp
    try:
        h.poll()
        mark_runner(h.app.sessions, "mailbot run (pid 4242)", datetime.now(UTC))
        code, out, _ = run(h, capsys, "status")
        assert code == 1 and _problems(out) == ["bot_not_running"]
        lock = h.app.poller_lock()
        assert lock.try_acquire()
        try:
            code, out, _ = run(h, capsys, "status")
            assert (code, _problems(out)) == (0, []), "a bot holding the lock is running"
            assert "on the running bot's own schedule" in out
        finally:
            lock.release()
        clear_runner(h.app.sessions)
        code, out, _ = run(h, capsys, "status")
        assert (code, _problems(out)) == (0, [])
    finally:
        h.app.close()


def test_an_unreachable_database_is_one_line_and_exit_1(
    tmp_path: Path, pg_cluster: PgCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    h = make_harness(tmp_path, pg_cluster.url, clock=FakeClock(datetime.now(UTC)))
    h.poll()
    h.app.close()
    pg_cluster.stop()
    code, out, err = run(h, capsys, "status")
    assert code == 1
    assert err.startswith("mailbot: error: database unavailable") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err
