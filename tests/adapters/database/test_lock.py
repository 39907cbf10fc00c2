import os
import signal
import subprocess
import sys

from mailbot.adapters.database.lock import PollerLock
from tests.fixtures.bot import CUSTOMER, DESK, SHIBUYA_MGR, Harness
from tests.mailfactory import build_mail

HOLDER = """
import sys, time
from mailbot.adapters.database.lock import PollerLock
lock = PollerLock(sys.argv[1], sys.argv[2])
lock.acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_lock_on_the_same_mailbox_is_refused_until_the_first_is_released(db_url: str) -> None:
    first, second = PollerLock(db_url, "maildir:/srv/a"), PollerLock(db_url, "maildir:/srv/a")
    other_mailbox = PollerLock(db_url, "maildir:/srv/b")
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        if not db_url.startswith("sqlite"):
            # Advisory locks are per mailbox; the SQLite lock file is per database.
            assert other_mailbox.try_acquire()
        first.release()
        assert second.try_acquire()
    finally:
        for lock in (first, second, other_mailbox):
            lock.release()


def test_a_waiting_poller_takes_over_when_the_holder_dies(harness: Harness) -> None:
    harness.import_unis()
    harness.deliver(
        build_mail(
            subject="フレッツエスカ 渋谷支店",
            sender="taro@usen.co.jp",
            to=[DESK],
            cc=[SHIBUYA_MGR],
            body=f"顧客CD:{CUSTOMER}",
        )
    )
    url, mailbox = harness.app.config.database_url, harness.app.intake.source.name
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, mailbox], stdout=subprocess.PIPE, text=True)
    poller = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        poller = subprocess.Popen(
            [sys.executable, "-m", "mailbot.entrypoints.cli", "--config", str(harness.config_path), "poll", "--once"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        # Event, not a sleep: the second poller says it waits for the lock (pytest-timeout bounds this).
        assert poller.stderr is not None
        said = [poller.stderr.readline()]
        while "waiting" not in said[-1] and said[-1]:
            said.append(poller.stderr.readline())
        assert "waiting" in said[-1], "".join(said)
        assert poller.poll() is None, "the second poller must wait while the lock is held"
        assert harness.messages() == []
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        out, err = poller.communicate(timeout=60)
        assert poller.returncode == 0, err
        assert "waiting" in "".join(said) + err
        assert "processed 1 message(s)" in out
        assert len(harness.messages()) == 1
    finally:
        for process in (holder, poller):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_a_held_lock_says_so_and_a_released_one_does_not(db_url: str) -> None:
    lock = PollerLock(db_url, "maildir:/srv/held")
    try:
        assert not lock.held()
        assert lock.try_acquire()
        assert lock.held()
        lock.release()
        assert not lock.held()
    finally:
        lock.release()


def test_a_postgresql_lock_whose_session_ended_is_lost_and_another_poller_may_take_it(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        return  # the SQLite lock file lives as long as its holder's process
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    first, second = PollerLock(db_url, "maildir:/srv/ended"), PollerLock(db_url, "maildir:/srv/ended")
    admin = create_engine(db_url, poolclass=NullPool)
    try:
        assert first.try_acquire() and first.held()
        assert first._connection is not None
        backend = first._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        first._connection.commit()
        with admin.begin() as connection:
            # What a server restart does to the holder's session, without telling it.
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        assert not first.held()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()
        admin.dispose()
