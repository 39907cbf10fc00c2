"""NTT's progress list: a row 開通 without its 開通日 is reported, never opened with a made-up date."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.bot import OPS, Harness, make_harness
from tests.service.test_after_acceptance import BASE_UNIS, EXTRA, P1, accepted, case, progress, progress_csv
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
