"""After acceptance through `mailbot`'s own main() and the scheduler's jobs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from mailbot.entrypoints.cli.main import main
from mailbot.entrypoints.scheduler import Runner, build_scheduler, import_watched, import_watched_progress
from tests.fixtures.bot import CUSTOMER, UNIS_HEADER, Harness, make_harness
from tests.service.test_after_acceptance import BASE_UNIS, EXTRA, P1, accepted, progress_csv, unis_row


@pytest.fixture
def after(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    drop = tmp_path / "progress-drop"
    h = make_harness(tmp_path, db_url, EXTRA + f'[progress]\nwatch_dir = "{drop}"\n')
    yield h
    h.app.close()


def run(h: Harness, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(h.config_path), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_clerk_records_the_p_number_and_cases_list_json_shows_it(
    after: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    code, out, _ = run(after, capsys, "cases", "entered", case_no, "--p-number", P1, "--by", "山田")
    assert (code, out.splitlines()[0]) == (0, f"{case_no}: NTT入力済にしました(P番号 {P1})")
    code, out, _ = run(after, capsys, "cases", "list", "--stage", "entered", "--json")
    [row] = json.loads(out)
    assert (row["case_no"], row["p_number"], row["stage_label"]) == (case_no, P1, "NTT入力済")
    code, _, err = run(after, capsys, "cases", "entered", case_no, "--p-number", "P12")
    assert code == 2 and "P+13桁" in err


def entered_and_listed(h: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[str, Path]:
    """A case entered at NTT from the command line, and a list opening it beside a row matching no case."""
    h.import_unis(BASE_UNIS)
    case_no = accepted(h)
    run(h, capsys, "cases", "entered", case_no, "--p-number", P1)
    listing = tmp_path / "progress-good.csv"
    listing.write_bytes(progress_csv(f"{P1},,,開通,,2026/12/01,", "P5555555555555,,,受付,,,"))
    return case_no, listing


def test_progress_import_reports_as_json_and_a_bad_file_is_one_line_naming_its_line(
    after: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, good = entered_and_listed(after, capsys, tmp_path)
    code, out, _ = run(after, capsys, "progress", "import", str(good), "--json")
    data = json.loads(out)
    assert code == 0 and [a["to"] for a in data["applied"]] == ["completed"]
    assert [u["line"] for u in data["unmatched"]] == [3] and data["ops_notified"]
    bad = tmp_path / "progress-bad.csv"
    bad.write_bytes(progress_csv(f"{P1},,,開通,,2026/13/01,"))
    code, _, err = run(after, capsys, "progress", "import", str(bad))
    assert code == 2
    assert err.strip() == (
        f"mailbot: error: {bad}: line 2: 開通日 '2026/13/01' is not a date (YYYY/MM/DD) (nothing was applied)"
    )


def test_a_progress_import_dry_run_prints_the_report_and_keeps_and_sends_nothing_and_a_correction_is_recorded(
    after: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    case_no, listing = entered_and_listed(after, capsys, tmp_path)
    before = (after.cases(), after.outbox())
    code, out, _ = run(after, capsys, "progress", "import", str(listing), "--dry-run", "--json")
    data = json.loads(out)
    assert code == 0 and data["dry_run"] and [a["to"] for a in data["applied"]] == ["completed"]
    assert data["delivery"] == "dry run: nothing was applied"
    assert (after.cases(), after.outbox()) == before
    code, out, _ = run(after, capsys, "cases", "correct-p-number", case_no, "--p-number", "P1111111111111",
                       "--reason", "入力誤り", "--by", "山田")  # fmt: skip
    assert (code, out.splitlines()[0]) == (0, f"{case_no}: P番号を {P1} から P1111111111111 に訂正しました")


def test_unis_import_reconciles_and_the_worklist_is_a_table_an_xlsx_and_a_mail(
    after: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    run(after, capsys, "cases", "entered", case_no, "--p-number", P1)
    listing = tmp_path / "progress.csv"
    listing.write_bytes(progress_csv(f"{P1},,,開通,,2026/12/01,"))
    run(after, capsys, "progress", "import", str(listing))
    code, out, _ = run(after, capsys, "unis", "worklist", "--month", "2026-12", "--json")
    [row] = json.loads(out)["rows"]
    assert (row["シリアルNO"], row["開始年月"], row["完成予定日"]) == (P1, "2026/12", "2026/12/01")
    sheet_file = tmp_path / "worklist.xlsx"
    code, out, _ = run(after, capsys, "unis", "worklist", "--xlsx", str(sheet_file), "--send")
    assert code == 0 and P1 in out and "wrote" in out
    sheet = load_workbook(sheet_file).active
    assert sheet is not None and sheet["H2"].value == P1  # シリアルNO, after 契約No/明細No
    assert len(after.sent_mail("jimu_worklist")) == 1
    export = tmp_path / "unis.csv"
    export.write_bytes(("\r\n".join([UNIS_HEADER, unis_row(CUSTOMER, "確定")]) + "\r\n").encode("cp932"))
    code, out, _ = run(after, capsys, "unis", "import", str(export))
    assert "UNIS照合: UNIS確定 1件、お願い・注意のメール 0件" in out and f"{case_no}: UNIS確定にしました" in out
    code, out, _ = run(after, capsys, "unis", "worklist")
    assert out.strip() == "(対象の案件はありません)"


def test_the_progress_watch_folder_is_a_job_and_a_dropped_list_is_applied_and_moved(after: Harness) -> None:
    jobs = {job.id for job in build_scheduler(after.app).get_jobs()}
    assert "progress_watch" in jobs
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    drop = after.root / "progress-drop"
    drop.mkdir()
    (drop / "進捗_1201.csv").write_bytes(progress_csv(f"{P1},,,キャンセル,,,2026/11/30"))
    (drop / "broken.csv").write_bytes(b"nothing,here\r\n")
    old = time.time() - 60
    for path in drop.iterdir():
        os.utime(path, (old, old))
    detail = import_watched_progress(after.app, drop, now=after.clock())
    assert "1 case change(s)" in detail
    assert (drop / "processed" / "進捗_1201.csv").exists() and (drop / "failed" / "broken.csv").exists()
    assert next(c for c in after.cases() if c["case_no"] == case_no)["stage"] == "cancelled"


def test_a_watched_unis_export_is_reconciled_too(after: Harness, tmp_path: Path) -> None:
    after.import_unis(BASE_UNIS)
    drop = tmp_path / "unis-drop"
    drop.mkdir()
    export = drop / "unis.csv"
    export.write_bytes(("\r\n".join([UNIS_HEADER, *BASE_UNIS]) + "\r\n").encode("cp932"))
    old = time.time() - 60
    os.utime(export, (old, old))
    assert "UNIS照合: UNIS確定 0件" in import_watched(after.app, drop, now=after.clock())


def test_the_weekly_job_mails_the_worklist_to_jimu_center_once_a_week(after: Harness, tmp_path: Path) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    listing = tmp_path / "p.csv"
    listing.write_bytes(progress_csv(f"{P1},,,開通,,2026/12/01,"))
    main(["--config", str(after.config_path), "progress", "import", str(listing)])
    runner = Runner(after.app)
    after.clock.now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday after Monday's time
    assert "UNIS worklist: 1 row(s) sent" in runner.weekly_summary()
    assert "UNIS worklist: nothing new" in runner.weekly_summary()
    assert len(after.sent_mail("jimu_worklist")) == 1
