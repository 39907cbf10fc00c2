"""Raw mail in the database or a directory, and the retention policy that removes it.

A real bot on each backend: Maildir, the database, the outbox directory, and
with ``[storage] raw = "directory"`` a directory of raw mail files.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from mailbot.adapters.database.schema import Case, CaseEvent, Inbound, RawMessage
from mailbot.adapters.database.store import Store
from mailbot.service import errors, views
from mailbot.service.errors import DeskError
from mailbot.service.replay import replay_cases
from mailbot.service.retention import RetentionReport, apply_retention
from tests.fixtures.bot import Harness, make_harness
from tests.service.test_intake import request

PDF_NAME = "回線単品申込書_さくら.pdf"
PDF = b"%PDF-1.4\n" + os.urandom(30_000)  # a scanned form: nothing left to compress


def bot(
    tmp_path: Path,
    db_url: str,
    *,
    raw: str = "database",
    raw_days: int | None = 30,
    attachments_days: int | None = None,
) -> Harness:
    toml = f'[storage]\nraw = "{raw}"\npath = "raw"\n' if raw == "directory" else ""
    keys = {"raw_days": raw_days, "attachments_days": attachments_days}
    lines = [f"{key} = {value}" for key, value in keys.items() if value is not None]
    if lines:
        toml += "[retention]\n" + "\n".join(lines) + "\n"
    return make_harness(tmp_path, db_url, extra_toml=toml)


@pytest.fixture(params=["database", "directory"])
def h(request: pytest.FixtureRequest, tmp_path: Path, db_url: str) -> Iterator[Harness]:
    harness = bot(tmp_path, db_url, raw=request.param, raw_days=30, attachments_days=7)
    yield harness
    harness.app.close()


def filed(h: Harness, **overrides: object) -> str:
    """One accepted request with a scanned PDF, received now; its case number."""
    h.import_unis()
    h.deliver(request(attachments=[(PDF_NAME, PDF)], **overrides))
    h.poll()
    return str(h.cases()[-1]["case_no"])


def retention(h: Harness, *, days: float, apply: bool = True) -> RetentionReport:
    return apply_retention(h.app.sessions, h.app.config.retention, now=h.clock() + timedelta(days=days), apply=apply)


def raw_files(h: Harness) -> list[Path]:
    return sorted(p for p in (h.root / "raw").rglob("*.zst"))


def detail(h: Harness, case_no: str) -> dict:
    with h.app.sessions() as session:
        return views.case_detail(
            session, case_no, directory=h.app.config.branches, policy=h.app.config.policy, checks=h.app.intake.checks
        )


def first_inbound(h: Harness) -> int:
    with h.app.sessions() as session:
        return int(session.scalar(select(func.min(Inbound.id))))


# -- where raw mail is kept ---------------------------------------------------------------
def test_raw_mail_goes_to_the_database_by_default_compressed_with_zstd(tmp_path: Path, db_url: str) -> None:
    h = bot(tmp_path, db_url, raw_days=None)
    try:
        filed(h)
        with h.app.sessions() as session:
            [row] = session.scalars(select(RawMessage)).all()
            assert (row.location, row.data[:4]) == ("database", b"\x28\xb5\x2f\xfd")
        assert not (tmp_path / "raw").exists()
    finally:
        h.app.close()


def test_with_the_directory_store_the_database_holds_no_bytes_and_the_file_reads_back(
    tmp_path: Path, db_url: str
) -> None:
    h = bot(tmp_path, db_url, raw="directory", raw_days=None)
    try:
        case_no = filed(h)
        with h.app.sessions() as session:
            [row] = session.scalars(select(RawMessage)).all()
            assert (row.location, row.data) == ("directory", b"")
            [path] = raw_files(h)
            assert path.name == f"{row.sha256}.zst"
        [message] = detail(h, case_no)["messages"]
        assert [a["filename"] for a in message["attachments"]] == [PDF_NAME]
        with h.app.sessions() as session:
            assert views.attachment(session, first_inbound(h), 0).payload == PDF
    finally:
        h.app.close()


def test_a_row_zlib_compressed_before_zstd_is_still_read(harness: Harness) -> None:
    case_no = filed(harness)
    with harness.app.sessions.begin() as session:
        row = session.scalars(select(RawMessage)).one()
        raw = Store(session).raw_of(session.get(Inbound, first_inbound(harness)))
        assert raw is not None
        session.execute(update(RawMessage).where(RawMessage.id == row.id).values(data=zlib.compress(raw, 6)))
    with harness.app.sessions() as session:
        assert views.attachment(session, first_inbound(harness), 0).payload == PDF
    assert detail(harness, case_no)["recheck"] is not None  # the thread was read again


def test_a_directory_mail_whose_commit_failed_leaves_only_an_orphan_file(tmp_path: Path, db_url: str) -> None:
    h = bot(tmp_path, db_url, raw="directory", raw_days=None)
    try:
        with h.app.sessions() as session:
            Store(session).save_raw(request(attachments=[(PDF_NAME, PDF)]))
            session.rollback()  # the crash between the file and the commit
        with h.app.sessions() as session:
            assert session.scalar(select(func.count(RawMessage.id))) == 0
        [orphan] = raw_files(h)
        # The same mail, delivered again, is filed normally over the same name.
        case_no = filed(h)
        assert raw_files(h) == [orphan]
        assert detail(h, case_no)["recheck"] is not None
    finally:
        h.app.close()


# -- retention --------------------------------------------------------------------------------
def test_a_dry_run_lists_what_retention_would_remove_in_japanese_and_removes_nothing(h: Harness) -> None:
    case_no = filed(h)
    report = retention(h, days=31, apply=False)
    assert [i.action for i in report.items] == ["remove"]
    lines = report.lines()
    assert lines[0].startswith(f"{case_no}: 元のメールを削除")
    assert "確認のみ: --apply で実行" in lines[-1]
    with h.app.sessions() as session:
        assert views.attachment(session, first_inbound(h), 0).payload == PDF


def test_mail_younger_than_the_limits_is_kept(h: Harness) -> None:
    filed(h)
    report = retention(h, days=6)
    assert report.items == []
    assert report.lines() == ["保存期間を過ぎたメールはありません"]


def test_after_raw_days_the_raw_mail_goes_and_the_case_its_events_and_text_stay(h: Harness) -> None:
    case_no = filed(h)
    before = detail(h, case_no)
    report = retention(h, days=31)
    assert [(i.action, i.cases) for i in report.items] == [("remove", (case_no,))]
    assert "削除しました" in report.lines()[-1]
    with h.app.sessions() as session:
        row = session.scalars(select(RawMessage)).one()
        assert row.data == b"" and row.removed_at is not None
        assert session.scalar(select(func.count(CaseEvent.id))) == len(before["events"])
        assert session.scalar(select(Case.status)) == "accepted"
    assert raw_files(h) == []
    after = detail(h, case_no)
    [message] = after["messages"]
    assert message["text"] == before["messages"][0]["text"] != ""
    assert "元のメールは保存期間を過ぎたため" in message["original_note"]
    # The recorded verdict stays; only running the checks again needs the original.
    assert after["recheck"] is None and "チェックは再実行できません" in after["checks_note"]
    assert after["checks"] == before["checks"]


def test_retention_run_twice_removes_nothing_the_second_time(h: Harness) -> None:
    filed(h)
    assert len(retention(h, days=31).items) == 1
    assert retention(h, days=31).items == []
    assert retention(h, days=400).items == []


def test_after_attachments_days_only_the_attachments_go_and_the_thread_still_reads(h: Harness) -> None:
    case_no = filed(h)
    before = detail(h, case_no)
    report = retention(h, days=8)
    assert [i.action for i in report.items] == ["strip_attachments"]
    assert "添付ファイルを削除" in report.lines()[0]
    with h.app.sessions() as session:
        row = session.scalars(select(RawMessage)).one()
        assert row.attachments_removed_at is not None and row.removed_at is None
        with pytest.raises(errors.OriginalRemoved, match="添付ファイルは保存期間を過ぎたため"):
            views.attachment(session, first_inbound(h), 0)
    [message] = detail(h, case_no)["messages"]
    assert (message["from"], message["subject"], message["text"]) == (
        before["messages"][0]["from"],
        before["messages"][0]["subject"],
        before["messages"][0]["text"],
    )
    assert [(a["filename"], a["removed"]) for a in message["attachments"]] == [(PDF_NAME, True)]
    assert "添付ファイルは保存期間を過ぎたため" in message["original_note"]
    # Later, the rest goes too; the stripped copy is not stripped again.
    assert [i.action for i in retention(h, days=9).items] == []
    assert [i.action for i in retention(h, days=31).items] == ["remove"]


def test_the_attachment_download_says_the_original_was_removed(h: Harness) -> None:
    filed(h)
    retention(h, days=31)
    with h.app.sessions() as session, pytest.raises(errors.OriginalRemoved, match="元のメールは保存期間を過ぎたため"):
        views.attachment(session, first_inbound(h), 0)


def test_releasing_a_quarantined_mail_whose_original_was_removed_says_so_in_japanese(h: Harness) -> None:
    h.import_unis()
    h.deliver(request(sender="営業 <sales@partner.example.com>", attachments=[(PDF_NAME, PDF)]))
    h.poll()
    with h.app.sessions() as session:
        [row] = views.quarantine_rows(session)
    retention(h, days=8)  # the attachments only: releasing would check it without its documents
    with h.app.sessions() as session:
        assert views.quarantine_detail(session, row["id"])["has_raw"] is False
    with pytest.raises(DeskError, match=f"隔離ID {row['id']} は依頼として処理できません: 添付ファイルは保存期間"):
        h.app.desk.release(row["id"], by="山田")
    retention(h, days=31)
    with pytest.raises(DeskError, match="元のメールは保存期間を過ぎたため"):
        h.app.desk.release(row["id"], by="山田")
    with h.app.sessions() as session:
        item = views.quarantine_detail(session, row["id"])
    assert item["has_raw"] is False and "元のメールは保存期間" in item["original_note"]
    assert h.cases() == []


def test_replay_of_a_case_whose_original_was_removed_says_so_and_changes_nothing(h: Harness) -> None:
    case_no = filed(h)
    retention(h, days=8)
    [change] = replay_cases(
        h.app.sessions,
        h.app.renderer,
        directory=h.app.config.branches,
        policy=h.app.config.policy,
        since=h.clock() - timedelta(days=1),
        now=h.clock() + timedelta(days=8),
        apply=True,
    )
    assert not change.applied and change.left_alone == "retention"
    assert (
        change.describe() == (f"{case_no} 渋谷支店: 再確認できません。" + change.note)
        and "添付ファイルは保存期間を過ぎたため" in change.note
    )
    assert h.cases()[0]["status"] == "accepted"


def test_the_mail_of_a_case_still_waiting_for_unis_is_kept(h: Harness) -> None:
    h.import_unis([])  # a snapshot older than the mail, without the customer: the case waits
    h.clock.advance(minutes=5)
    h.deliver(request(attachments=[(PDF_NAME, PDF)]))
    h.poll()
    assert h.cases()[0]["status"] == "waiting_unis"
    assert retention(h, days=31).items == []


def test_a_resubmission_after_the_attachments_went_is_checked_without_them_not_with_empty_files(
    h: Harness,
) -> None:
    h.import_unis()
    h.deliver(request(cc=[], attachments=[(PDF_NAME, PDF)]))  # returned: the manager is missing
    h.poll()
    [case] = h.cases()
    assert case["status"] == "returned"
    retention(h, days=8)
    h.clock.advance(days=8)
    reply = h.outbox("defect_reply")[-1]["message_id"]
    # The manager now in CC, no new form: the form of the first mail is gone, not an empty file.
    h.deliver(request(subject=f"RE: フレッツエスカ 渋谷支店 [{case['case_no']}]", in_reply_to=reply, attachments=[]))
    h.poll()
    [case] = h.cases()
    assert (case["status"], case["defects"]) == ("returned", ["attachment_missing"])


def test_a_directory_store_that_cannot_take_the_file_stops_the_poll_and_leaves_the_mail_unprocessed(
    tmp_path: Path, db_url: str
) -> None:
    h = bot(tmp_path, db_url, raw="directory", raw_days=None)
    try:
        h.import_unis()
        (tmp_path / "raw").write_text("a file where the directory belongs (a mount that went away)")
        h.deliver(request(attachments=[(PDF_NAME, PDF)]))
        report = h.poll()
        assert report.store_error is not None and "raw mail directory" in report.store_error
        assert report.failed == 0  # not the message's fault: no poison count
        assert len(list((h.maildir / "new").iterdir())) == 1 and h.cases() == []
        (tmp_path / "raw").unlink()
        assert h.poll().dispositions == {"case": 1}
        assert len(raw_files(h)) == 1
    finally:
        h.app.close()


def test_switched_back_to_the_database_the_files_written_before_are_still_read(tmp_path: Path, db_url: str) -> None:
    from tests.fixtures.bot import rebuild

    h = bot(tmp_path, db_url, raw="directory", raw_days=None)
    try:
        first = filed(h)
        text = h.config_path.read_text(encoding="utf-8").replace('raw = "directory"', 'raw = "database"')
        h.config_path.write_text(text, encoding="utf-8")
        rebuild(h)
        h.deliver(request(attachments=[(PDF_NAME, PDF + b"second")], message_id="<second@usen.co.jp>"))
        h.poll()
        with h.app.sessions() as session:
            assert sorted(session.scalars(select(RawMessage.location))) == ["database", "directory"]
            for inbound_id in session.scalars(select(Inbound.id)):
                assert views.attachment(session, inbound_id, 0).payload.startswith(PDF)
        assert detail(h, first)["recheck"] is not None
    finally:
        h.app.close()
