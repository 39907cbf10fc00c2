"""The benches' scratch database: made empty, dropped afterwards, skipped in one line without a server."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from bench import scratch
from tests.fixtures.database import ADMIN_URL, backends


def _databases() -> set[str]:
    admin = create_engine(ADMIN_URL)
    with admin.connect() as connection:
        names = {str(n) for n in connection.scalars(text("SELECT datname FROM pg_database"))}
    admin.dispose()
    return names


@pytest.mark.skipif("postgresql" not in backends(), reason="MAILBOT_TEST_DB does not name postgresql")
def test_a_scratch_database_is_made_empty_and_dropped_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scratch, "ADMIN_URL", ADMIN_URL)
    name = f"mailbot_scratch_{uuid.uuid4().hex[:10]}"

    url = scratch.create_scratch(name, "test")
    assert url is not None
    engine = create_engine(url)  # its pool keeps the connection open, as a bench that crashed would
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT current_database()")) == name
        connection.execute(text("CREATE TABLE leftover (id int)"))
        connection.commit()
    # The next run under the same name starts from an empty database.
    url = scratch.create_scratch(name, "test")
    assert url is not None
    engine.dispose()
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'")) == 0

    scratch.drop_scratch(name)
    engine.dispose()

    assert name not in _databases()


def test_without_a_server_the_bench_says_skipped_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(scratch, "ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2")

    assert scratch.create_scratch("mailbot_scratch_never", "unis import postgresql") is None

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("unis import postgresql: skipped (OperationalError: ")
