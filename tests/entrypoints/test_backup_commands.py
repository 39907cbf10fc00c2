"""mailbot backup and mailbot restore: a backup restored into an empty database and directory is the same data."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mailbot.bootstrap import build_app
from mailbot.config import load_config
from mailbot.entrypoints.cli.main import main
from tests.fixtures.bot import Harness, make_harness
from tests.fixtures.database import ADMIN_URL
from tests.service.test_desk import returned_case
from tests.service.test_intake import request

RAW_IN_A_DIRECTORY = '[storage]\nraw = "directory"\npath = "raw"\n'


@pytest.fixture
def live(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    """A bot with two cases (one returned, one accepted) and its raw mail in a directory."""
    h = make_harness(tmp_path / "live", db_url, RAW_IN_A_DIRECTORY)
    returned_case(h)
    h.deliver(request(subject="フレッツエスカ 渋谷支店 2件目"))
    h.poll()
    yield h
    h.app.close()


@pytest.fixture
def empty_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the same backend with nothing in it, not even the schema."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/restored/mailbot.sqlite3"
        return
    name = f"mailbot_restore_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def rows(url: str, table: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
    finally:
        engine.dispose()


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def restored_config(live: Harness, url: str, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("Maildir/new", "Maildir/cur", "Maildir/tmp", "outbox"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    text_ = live.config_path.read_text(encoding="utf-8").replace(live.app.config.database_url, url)
    path = root / "config.toml"
    path.write_text(text_, encoding="utf-8")
    return path


def test_a_backup_restored_into_an_empty_database_and_directory_has_the_same_cases_events_and_raw_mail(
    live: Harness, empty_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = live.app.config.database_url
    assert rows(url, "cases") and rows(url, "case_events") and files(live.root / "raw")
    assert main(["--config", str(live.config_path), "backup", str(tmp_path / "backup")]) == 0
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["cases"] == 2 and manifest["raw"]["files"] == len(files(live.root / "raw"))
    assert "backup written to" in capsys.readouterr().out

    config = restored_config(live, empty_url, tmp_path / "restored")
    assert main(["--config", str(config), "restore", str(tmp_path / "backup")]) == 0
    assert "restored from" in capsys.readouterr().out
    for table in ("cases", "case_events", "inbound", "raw_messages", "outbox"):
        assert rows(empty_url, table) == rows(url, table), table
    assert files(tmp_path / "restored" / "raw") == files(live.root / "raw")
    # The restored bot reads it: the same cases, and the raw mail of each message.
    restored = build_app(load_config(config))
    try:
        from mailbot.service import views

        with restored.sessions() as session:
            assert views.case_rows(session) == live.cases()
            assert views.message_rows(session) == live.messages()
    finally:
        restored.close()


def test_a_restore_refuses_a_database_that_is_not_empty(
    live: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(live.config_path), "backup", str(tmp_path / "backup")]) == 0
    capsys.readouterr()
    assert main(["--config", str(live.config_path), "restore", str(tmp_path / "backup")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailbot: error: ") and "restore only into" in err and err.count("\n") == 1


def test_a_backup_refuses_a_directory_that_is_not_empty_and_a_restore_a_damaged_dump(
    live: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "something").write_text("x")
    assert main(["--config", str(live.config_path), "backup", str(tmp_path / "old")]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert main(["--config", str(live.config_path), "backup", str(tmp_path / "backup")]) == 0
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text(encoding="utf-8"))
    with (tmp_path / "backup" / manifest["database"]["file"]).open("ab") as dump:
        dump.write(b"\0")
    capsys.readouterr()
    assert main(["--config", str(live.config_path), "restore", str(tmp_path / "backup")]) == 2
    assert "does not match the manifest's checksum" in capsys.readouterr().err
