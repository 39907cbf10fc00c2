"""After acceptance in a real Chromium: the progress list (report, then applied), the worklist, the P番号 correction."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from mailbot.service.worklist import FIELDS
from tests.entrypoints.test_web_browser import PASSWORD, log_in
from tests.fixtures.bot import CUSTOMER, Harness, make_harness
from tests.fixtures.web import web_server
from tests.service.test_after_acceptance import BASE_UNIS, EXTRA, P1, PROGRESS_HEADER, accepted, case, opened

pytestmark = pytest.mark.services


@pytest.fixture
def after(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path / "bot", db_url, EXTRA)
    h.app.accounts.add("yamada", "clerk", PASSWORD)
    h.import_unis(BASE_UNIS)
    yield h
    h.app.close()


def progress_xlsx(path: Path, *rows: list[Any]) -> Path:
    """NTT's list as the desk receives it: an Excel sheet with the default headers."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(PROGRESS_HEADER.split(","))
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_a_clerk_uploads_the_progress_list_reads_its_report_then_applies_it(
    after: Harness, page: Any, tmp_path: Path
) -> None:
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    listing = progress_xlsx(
        tmp_path / "進捗リスト_1201.xlsx",
        [P1, None, "株式会社さくら商事", "開通", "2026/11/28", "2026/12/01", None],
        ["P5555555555555", None, "知らない会社", "キャンセル", None, None, "2026/11/30"],
    )
    with web_server(after.config_path) as base:
        log_in(page, base, "yamada")
        page.click("header nav a[href='/progress']")
        page.set_input_files("input[name=file]", str(listing))
        page.click("button[data-action=upload-progress]")
        page.wait_for_selector("section.progress-check")
        summary = page.inner_text("p.progress-summary")
        assert summary == "2行: 案件1件を進めます(開通 1件)、該当なし 1件"
        moved = page.locator("table[data-section=applied] tr[data-line='2']")
        assert case_no in moved.inner_text() and "NTT入力済 → 開通" in moved.inner_text()
        assert "該当する案件がありません" in page.inner_text("table[data-section=unmatched]")
        assert "row(s)" not in page.inner_text("main") and "no case for" not in page.inner_text("main")
        assert case(after, case_no)["stage"] == "entered"  # seen, not applied
        page.click("button[data-action=apply-progress]")
        page.wait_for_selector("p.flash.ok")
        assert "進捗リスト_1201.xlsx を反映しました" in page.inner_text("p.flash")
        assert "反映した行" in page.inner_text("section.progress-done")
        page.locator("section.progress-done a", has_text=case_no).click()
        page.wait_for_selector("table.events")
        assert "開通" in page.inner_text("h1 .badge")
        last = page.locator("table.events tbody tr").last
        assert "開通日 2026/12/01" in last.inner_text() and "取込: yamada" in last.inner_text()
    assert case(after, case_no)["stage"] == "completed"


def test_the_worklist_page_shows_the_rows_and_its_xlsx_download_opens_with_them(after: Harness, page: Any) -> None:
    case_no = opened(after)
    with web_server(after.config_path) as base:
        log_in(page, base, "yamada")
        page.click("header nav a[href='/worklist']")
        row = page.locator(f"table.worklist tr[data-case='{case_no}']")
        assert CUSTOMER in row.inner_text() and P1 in row.inner_text()
        with page.expect_download() as caught:
            page.click("a[data-action=download-worklist]")
        download = caught.value
        assert download.suggested_filename.startswith("UNIS確定作業リスト_")
        sheet = load_workbook(io.BytesIO(Path(download.path()).read_bytes())).worksheets[0]
        header, first = list(sheet.iter_rows(values_only=True))[:2]
        assert list(header) == list(FIELDS)
        assert (first[0], first[6], first[7]) == (CUSTOMER, "2026/12/01", P1)
        page.click("button[data-action=send-worklist]")
        page.wait_for_selector("p.flash.ok")
        assert "宛ての作業リスト(UNIS確定 1件" in page.inner_text("p.flash")
    assert [m["status"] for m in after.outbox("jimu_worklist")] == ["pending"]


def test_a_clerk_corrects_a_p_number_and_the_history_shows_who_why_and_the_old_value(after: Harness, page: Any) -> None:
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    with web_server(after.config_path) as base:
        log_in(page, base, "yamada")
        page.goto(f"{base}/cases/{case_no}")
        form = page.locator("form[action$='/correct_p_number']")
        form.locator("input[name=p_number]").fill("P1111111111111")
        form.locator("input[name=note]").fill("NTTの受注画面と照合")
        page.click("button[data-action=correct_p_number]")
        page.wait_for_selector("p.flash.ok")
        assert f"P番号を {P1} から P1111111111111 に訂正しました" in page.inner_text("p.flash")
        last = page.locator("table.events tbody tr").last
        assert "P番号の訂正" in last.inner_text() and last.locator("td.actor").inner_text() == "yamada"
        assert f"P番号 {P1}→P1111111111111(理由: NTTの受注画面と照合)" in last.inner_text()
        assert "P1111111111111" in page.inner_text("dl.summary")
    assert case(after, case_no)["p_number"] == "P1111111111111"
