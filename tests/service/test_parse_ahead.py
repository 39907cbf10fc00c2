"""A backlog is parsed one batch ahead in a worker process, with the same outcome as in-process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from mailbot.adapters.database.engine import make_engine, upgrade
from mailbot.service.intake import BATCH_SIZE
from tests.domain.builders import FORM
from tests.fixtures.bot import CUSTOMER, DESK, SHIBUYA_MGR, Harness, make_harness
from tests.mailfactory import build_auto_reply, build_mail

BACKLOG = 2 * BATCH_SIZE + 7


def backlog_mail(i: int) -> bytes:
    """A mix: accepted, returned (no manager), an auto-reply and a mail that is no mail at all."""
    if i % 9 == 4:
        return build_auto_reply(
            original_subject=f"フレッツエスカ 渋谷支店 {i}", sender=f"staff{i}@usen.co.jp", to=[DESK]
        )
    if i % 11 == 6:
        return b"\x00\x01 not a mail"
    return build_mail(
        style=("outlook", "gmail", "iphone")[i % 3],
        subject=f"フレッツエスカ 渋谷支店 ㈱テスト{i}",
        sender=f"担当{i} <staff{i}@usen.co.jp>",
        to=[DESK],
        cc=[] if i % 5 == 0 else [SHIBUYA_MGR],
        body=f"お疲れ様です。\n顧客CD:{CUSTOMER}\n",
        attachments=[FORM],
        message_id=f"<ahead-{i}@usen.co.jp>",
    )


def parent_of(pid: int) -> int:
    """The parent process id the kernel has for ``pid``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def outcomes(harness: Harness) -> dict[str, tuple[str, str]]:
    return {m["source_key"]: (m["disposition"], m["reason"]) for m in harness.messages()}


def fill(harness: Harness, start: int = 0, count: int = BACKLOG) -> None:
    for i in range(start, start + count):
        harness.deliver(backlog_mail(i), name=f"{1700000000 + i}.ahead{i}.host")


def test_a_backlog_parsed_by_the_worker_is_decided_as_it_is_in_process(harness: Harness, tmp_path: Path) -> None:
    harness.import_unis()
    fill(harness)
    report = harness.poll()
    assert harness.app.intake.parse_ahead.worker_pids(), "the worker never started"
    assert report.processed == BACKLOG

    # The comparison runs on a database of its own (SQLite: the decisions do not depend on the backend).
    url = f"sqlite:///{tmp_path / 'in-process.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    in_process = make_harness(tmp_path / "in-process", url)
    try:
        in_process.app.intake.parse_ahead.enabled = False
        in_process.import_unis()
        fill(in_process)
        in_process.poll()
        assert not in_process.app.intake.parse_ahead.worker_pids()
        assert outcomes(in_process) == outcomes(harness)
    finally:
        in_process.app.close()
    # The mix reached every kind of outcome: cases, mail left alone, quarantine.
    assert {disposition for disposition, _reason in outcomes(harness).values()} == {"case", "ignored", "quarantined"}


def test_the_worker_listed_is_a_running_child_of_the_bot_until_it_is_closed(harness: Harness) -> None:
    harness.import_unis()
    fill(harness)
    harness.poll()
    ahead = harness.app.intake.parse_ahead

    [pid] = ahead.worker_pids()
    assert pid != os.getpid() and parent_of(pid) == os.getpid()
    ahead.close()
    assert ahead.worker_pids() == []
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_poll_with_a_few_new_mails_parses_them_at_once_without_starting_a_worker(harness: Harness) -> None:
    harness.import_unis()
    fill(harness, count=3)
    assert harness.poll().processed == 3
    assert harness.app.intake.parse_ahead.worker_pids() == []


def test_when_the_worker_dies_the_mail_is_parsed_in_process_and_nothing_is_lost(harness: Harness) -> None:
    harness.import_unis()
    fill(harness)
    harness.poll()
    [pid] = harness.app.intake.parse_ahead.worker_pids()
    os.kill(pid, signal.SIGKILL)
    fill(harness, start=BACKLOG)
    report = harness.poll()
    assert report.processed == BACKLOG and report.failed == 0
    assert len(harness.messages()) == 2 * BACKLOG
    assert not list((harness.maildir / "new").iterdir())


_ORPHAN_SCRIPT = """
import sys, time
from mailbot.service.parse_ahead import ParseAhead
from mailbot.service.ports import SourceItem

ahead = ParseAhead(enabled=True, batch_size=1, max_bytes=10_000_000)
item = SourceItem(key="1", size=10, load=lambda: b"Subject: x\\r\\n\\r\\nbody\\r\\n")
ahead.load([item], lambda keys: set())["1"].message()
print(ahead.worker_pids()[0], flush=True)
time.sleep(600)
"""


def test_a_worker_whose_parent_was_killed_exits_and_holds_none_of_its_output(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    parent.kill()
    # The parent's pipes reach their end although the worker was started with them.
    out, _err = parent.communicate(timeout=60)
    assert out == b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]
