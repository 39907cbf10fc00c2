"""NTT's progress list: a row 開通 without its 開通日 is reported, never opened with a made-up date;
the report of a dry run in the desk's words, and applying exactly the report shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.adapters.database.schema import JobRun
from mailbot.adapters.progress_file import ProgressFileError
from mailbot.service.commands import ImportProgress
from mailbot.service.progress import ProgressChanged, ProgressReport, report_sections, report_summary
from tests.fixtures.bot import OPS, Harness, make_harness
from tests.service.test_after_acceptance import (
    BASE_UNIS,
    EXTRA,
    OTHER,
    P1,
    accepted,
    case,
    progress,
    progress_csv,
)
from tests.service.test_desk import events


@pytest.fixture
def listed(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, EXTRA)
    yield h
    h.app.close()


def test_an_opening_without_its_date_does_not_open_the_case_and_is_reported_to_ops_in_japanese(
    listed: Harness,
) -> None:
    listed.import_unis(BASE_UNIS)
    case_no = accepted(listed)
    listed.app.desk.entered(case_no, P1, by="山田")
    history = events(listed, case_no)
    report = progress(listed, progress_csv(f"{P1},,株式会社さくら商事,開通,2026/11/28,,"))
    assert report.applied == [] and [(u["line"], u["case_no"]) for u in report.undated] == [(2, case_no)]
    assert f"  2行目: {case_no}: 開通日の記載がないため開通にしていません" in report.lines()
    row = case(listed, case_no)
    assert (row["stage"], row["completed_date"]) == ("entered", None)
    assert events(listed, case_no) == history and listed.outbox("completed_notice") == []
    assert report.ops_notified
    [notice] = listed.sent_mail("ops_progress_unmatched")
    assert notice["To"] == OPS
    text = notice.get_content()
    assert (
        f"2行目: P番号 {P1} 株式会社さくら商事 進捗「開通」 → {case_no}: 開通日の記載がないため開通にしていません"
        in text
    )
    assert "取込日で代用せず" in text
    again = progress(listed, progress_csv(f"{P1},,株式会社さくら商事,開通,2026/11/28,,"))
    assert not again.ops_notified and len(listed.outbox("ops_progress_unmatched")) == 1
    dated = progress(listed, progress_csv(f"{P1},,株式会社さくら商事,開通,2026/11/28,2026/12/01,"))
    assert [a["to"] for a in dated.applied] == ["completed"]
    assert case(listed, case_no)["completed_date"] == "2026-12-01"


def test_a_dated_opening_beside_an_undated_one_is_applied(listed: Harness) -> None:
    listed.import_unis(BASE_UNIS)
    first = accepted(listed)
    listed.app.desk.entered(first, P1, by="山田")
    report = progress(listed, progress_csv(f"{P1},,,開通,,2026/12/01,", "P5555555555555,,,開通,,,"))
    assert [a["case_no"] for a in report.applied] == [first]
    assert [u["line"] for u in report.unmatched] == [3] and report.undated == []


# -- the workbench's two steps: the report first (a dry run), then exactly that applied ---------------
def _import(h: Harness, data: bytes, **options: Any) -> ProgressReport:
    report = h.app.bus.handle(ImportProgress(data, name="進捗.csv", as_of=h.clock(), **options))
    assert isinstance(report, ProgressReport)
    return report


def _state(h: Harness) -> tuple[Any, ...]:
    with h.app.sessions() as session:
        runs = session.scalars(select(JobRun.key)).all()
    return h.cases(), h.outbox(), runs


def test_a_dry_run_reports_every_kind_of_row_in_japanese_and_changes_and_queues_nothing(listed: Harness) -> None:
    listed.import_unis(BASE_UNIS)
    entered, by_code = accepted(listed), accepted(listed, OTHER)
    listed.app.desk.entered(entered, P1, by="山田")
    history, before = events(listed, entered), _state(listed)
    data = progress_csv(
        f"{P1},,株式会社さくら商事,開通,2026/11/28,2026/12/01,",
        f"P9876543210987,{OTHER},有限会社もみじ,工事日確定,2026/12/03,,",
        "P5555555555555,,知らない会社,キャンセル,,,2026/11/30",
        f"{P1},,,受付,,,",  # an older line of the same order: the case is further already
    )
    report = _import(listed, data, dry_run=True, clerk="山田")
    assert report.dry_run and _state(listed) == before and events(listed, entered) == history
    assert [(a["line"], a["case_no"], a["to"]) for a in report.applied] == [
        (2, entered, "completed"),
        (3, by_code, "construction_scheduled"),
    ]
    assert report_summary(report) == "4行: 案件2件を進めます(開通 1件、工事日確定 1件)、該当なし 1件、変更なし 1件"
    sections = {s.key: s for s in report_sections(report)}
    assert list(sections) == ["applied", "unmatched", "kept"]
    assert [r.text for r in sections["applied"].rows] == [
        "NTT入力済 → 開通(進捗「開通」、株式会社さくら商事、工事日 2026/11/28、開通日 2026/12/01)"
        " メール: 「開通のお知らせ」(支店へ)",
        "受付済 → 工事日確定(進捗「工事日確定」、有限会社もみじ、工事日 2026/12/03、"
        "P番号 P9876543210987 を記録(顧客CDで照合))",
    ]
    [unmatched] = sections["unmatched"].rows
    assert (unmatched.line, unmatched.cases) == (4, ())
    assert unmatched.text == "P番号 P5555555555555 知らない会社: 該当する案件がありません(進捗「キャンセル」)"
    assert [(r.line, r.cases, r.text) for r in sections["kept"].rows] == [(5, (entered,), "すでに「開通」です")]
    # Ops would be told of the unmatched row: said in the report, not sent by a dry run.
    assert report.ops_notified and listed.outbox("ops_progress_unmatched") == []


def test_applying_with_the_reports_digest_applies_exactly_it_and_the_events_say_what_and_who(listed: Harness) -> None:
    listed.import_unis(BASE_UNIS)
    case_no = accepted(listed)
    listed.app.desk.entered(case_no, P1, by="山田")
    data = progress_csv(f"{P1},,株式会社さくら商事,開通,2026/11/28,2026/12/01,")
    shown = _import(listed, data, dry_run=True, clerk="山田")
    applied = _import(listed, data, expect=shown.digest(), clerk="山田")
    assert not applied.dry_run and applied.digest() == shown.digest()
    assert report_sections(applied)[0].title == "反映した行"
    assert case(listed, case_no)["stage"] == "completed"
    assert events(listed, case_no)[-1] == (
        "complete",
        "mailbot",
        "progress_import",
        "進捗リスト 進捗.csv 2行目: 開通; 工事日 2026/11/28; 開通日 2026/12/01; 取込: 山田",
    )
    assert len(listed.outbox("completed_notice")) == 1


def test_a_report_that_changed_since_it_was_shown_is_refused_and_nothing_is_applied(listed: Harness) -> None:
    listed.import_unis(BASE_UNIS)
    case_no = accepted(listed)
    listed.app.desk.entered(case_no, P1, by="山田")
    scheduled = progress_csv(f"{P1},,,工事日確定,2026/11/28,,")
    shown = _import(listed, scheduled, dry_run=True)
    # Someone else imports a list in between: the case is no longer where the report said.
    _import(listed, progress_csv(f"{P1},,,開通,2026/11/28,2026/12/01,"))
    before = _state(listed)
    with pytest.raises(ProgressChanged, match="確認したときから案件の状態が変わった"):
        _import(listed, scheduled, expect=shown.digest())
    assert _state(listed) == before


def test_a_bad_line_is_told_in_one_japanese_line_naming_the_file_and_the_line(listed: Harness) -> None:
    with pytest.raises(ProgressFileError) as refused:
        _import(listed, progress_csv(f"{P1},,,開通,,2026/12/01,", "P12,,,開通,,,"), dry_run=True)
    assert refused.value.japanese == "進捗.csv の3行目: P番号「P12」は「P+13桁の数字」ではありません"
    with pytest.raises(ProgressFileError) as unmapped:
        _import(listed, progress_csv(f"{P1},,,開通済み,,,"), dry_run=True)
    assert unmapped.value.japanese == (
        "進捗.csv の2行目: 進捗「開通済み」は取り込める進捗ではありません"
        "(取り込める進捗: 受付、工事日確定、開通、キャンセル)"
    )
