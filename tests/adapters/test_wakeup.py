"""The wake-up adapters on the real things: a UNIX datagram socket, and PostgreSQL's LISTEN/NOTIFY."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from mailbot.adapters.wakeup import NoWakeup, PostgresWakeup, SocketWakeup, socket_path
from mailbot.bootstrap import make_wakeup


def test_the_socket_sits_beside_the_sqlite_database() -> None:
    assert socket_path(Path("/var/lib/mailbot/mailbot.sqlite3")) == Path("/var/lib/mailbot/mailbot.sqlite3.wake")


def test_a_nudge_reaches_the_listening_bot_once_however_many_were_sent(tmp_path: Path) -> None:
    bot = SocketWakeup(tmp_path / "db.wake")
    bot.listen()
    try:
        assert bot.wait(0.01) is False
        for _ in range(5):
            SocketWakeup(tmp_path / "db.wake").notify()
        assert bot.wait(5) is True
        assert bot.wait(0.01) is False, "the five nudges were one wake-up"
    finally:
        bot.close()
    assert not (tmp_path / "db.wake").exists(), "a clean stop leaves no socket behind"


def test_a_nudge_with_no_bot_or_a_dead_bots_socket_is_harmless(tmp_path: Path) -> None:
    SocketWakeup(tmp_path / "none.wake").notify()  # no socket at all
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(tmp_path / "db.wake"))
    dead.close()  # the bot died: the file stays, nobody reads it
    assert (tmp_path / "db.wake").exists()
    SocketWakeup(tmp_path / "db.wake").notify()
    # The next bot replaces the stale socket and hears the next nudge.
    bot = SocketWakeup(tmp_path / "db.wake")
    try:
        bot.listen()
        SocketWakeup(tmp_path / "db.wake").notify()
        assert bot.wait(5) is True
    finally:
        bot.close()


def test_a_nudge_while_the_bots_queue_is_full_does_not_block_the_desk(tmp_path: Path) -> None:
    bot = SocketWakeup(tmp_path / "db.wake")
    bot.listen()
    try:
        for _ in range(5000):  # far more than a datagram queue holds; never read meanwhile
            SocketWakeup(tmp_path / "db.wake").notify()
        assert bot.wait(1) is True
    finally:
        bot.close()


def test_a_state_directory_deeper_than_a_socket_address_allows_still_works(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "mailbot.sqlite3.wake"
    assert len(str(path)) > 108
    bot = SocketWakeup(path)
    try:
        bot.listen()
        assert path.exists()
        SocketWakeup(path).notify()
        assert bot.wait(5) is True
    finally:
        bot.close()


def test_the_wiring_picks_the_socket_for_sqlite_and_notify_for_postgresql(tmp_path: Path) -> None:
    sqlite = create_engine(f"sqlite:///{tmp_path}/mailbot.sqlite3")
    chosen = make_wakeup(sqlite)
    assert isinstance(chosen, SocketWakeup) and chosen.path == tmp_path / "mailbot.sqlite3.wake"
    postgres = create_engine("postgresql+psycopg://mailbot@127.0.0.1/mailbot")
    assert isinstance(make_wakeup(postgres), PostgresWakeup)
    sqlite.dispose()
    postgres.dispose()


@pytest.fixture
def pg_engine(db_url: str) -> Iterator[Engine]:
    if not db_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def test_postgresql_notify_reaches_the_listening_bot(pg_engine: Engine) -> None:
    bot = PostgresWakeup(pg_engine)
    bot.listen()
    try:
        assert bot.wait(0.05) is False
        PostgresWakeup(pg_engine).notify()
        PostgresWakeup(pg_engine).notify()
        assert bot.wait(10) is True
        assert bot.wait(0.05) is False, "both nudges were one wake-up"
    finally:
        bot.close()


def test_postgresql_notify_with_no_bot_listening_is_harmless(pg_engine: Engine) -> None:
    PostgresWakeup(pg_engine).notify()


def test_a_lost_listening_connection_is_made_again_and_counts_as_a_nudge(pg_engine: Engine) -> None:
    bot = PostgresWakeup(pg_engine)
    bot.listen()
    try:
        with pg_engine.connect() as admin:
            admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN mailbot_wake%'"
                )
            )
            admin.commit()
        assert bot.wait(0.5) is False  # the connection broke: said once, not raised
        assert bot.wait(0.5) is True, "a nudge may have come while it was down"
        PostgresWakeup(pg_engine).notify()
        assert bot.wait(10) is True
    finally:
        bot.close()


def test_an_in_memory_database_has_no_one_else_to_wake_but_a_stop_still_ends_the_wait() -> None:
    memory = create_engine("sqlite://")
    nobody = make_wakeup(memory)
    assert isinstance(nobody, NoWakeup)
    assert nobody.wait(0.01) is False
    nobody.notify()
    assert nobody.wait(5) is True
    assert nobody.wait(0.01) is False
    memory.dispose()
