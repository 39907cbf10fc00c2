"""The database failing under a poll: nothing is marked, nothing is lost, the next poll recovers."""

import os
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import event

from mailbot.bootstrap import build_app
from mailbot.config import load_config
from mailbot.entrypoints.cli.main import main
from tests.domain.builders import pdf
from tests.fixtures.bot import CUSTOMER, DESK, SHIBUYA_MGR, Harness
from tests.mailfactory import build_mail


def request(attachment: bytes = pdf()) -> bytes:
    return build_mail(
        subject="フレッツエスカ 渋谷支店",
        sender="taro@usen.co.jp",
        to=[DESK],
        cc=[SHIBUYA_MGR],
        body=f"顧客CD:{CUSTOMER}",
        attachments=[("回線単品申込書.pdf", attachment)],
    )


def test_an_unreachable_database_marks_nothing_and_the_next_poll_files_the_mail(harness: Harness) -> None:
    harness.import_unis()
    harness.deliver(request())
    config = load_config(harness.config_path)
    down = build_app(
        replace(config, database_url="postgresql+psycopg://nobody@127.0.0.1:9/none"), clock=harness.clock, check=False
    )
    report = down.intake.poll_once()
    down.close()
    assert report.store_error is not None and report.processed == 0
    assert len(list((harness.maildir / "new").iterdir())) == 1
    assert harness.messages() == []
    report = harness.poll()
    assert report.dispositions == {"case": 1}
    assert not list((harness.maildir / "new").iterdir())


def test_poll_once_exits_1_with_one_line_when_the_database_is_down(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    harness.deliver(request())
    broken = harness.config_path.read_text(encoding="utf-8")
    url_line = next(line for line in broken.splitlines() if line.startswith("url = "))
    broken = broken.replace(url_line, 'url = "postgresql+psycopg://nobody@127.0.0.1:9/none"')
    config = tmp_path / "broken.toml"
    config.write_text(broken, encoding="utf-8")
    assert main(["--config", str(config), "poll", "--once"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mailbot: error: database unavailable") and "127.0.0.1" in err
    assert len(list((harness.maildir / "new").iterdir())) == 1


def test_a_full_disk_while_storing_a_message_leaves_it_unprocessed(harness: Harness) -> None:
    if not harness.app.config.database_url.startswith("sqlite"):
        pytest.skip("SQLite's max_page_count stands in for a full disk")
    harness.import_unis()
    engine = harness.app.engine
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()

    def full(dbapi_connection, _record):  # the file may not grow any more: a real SQLITE_FULL
        dbapi_connection.execute("PRAGMA journal_mode = DELETE")
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    engine.dispose()
    event.listen(engine, "connect", full)
    harness.deliver(request(b"%PDF-1.4\n" + os.urandom(300_000)))  # incompressible
    report = harness.poll()
    assert report.store_error is not None and "full" in report.store_error
    assert len(list((harness.maildir / "new").iterdir())) == 1
    event.remove(engine, "connect", full)
    engine.dispose()
    report = harness.poll()
    assert report.dispositions == {"case": 1}
    assert harness.cases()[0]["status"] == "accepted"
