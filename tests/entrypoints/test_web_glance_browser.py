"""The pages a clerk reads at a glance, in a real Chromium: the check table, a quick filter, the quarantine's link."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mailbot.service import views
from tests.entrypoints.test_web_browser import PASSWORD, log_in
from tests.fixtures.bot import Harness
from tests.fixtures.web import web_server
from tests.service.test_desk import request, returned_case

pytestmark = pytest.mark.services


@pytest.fixture
def clerk(desk: Harness) -> Harness:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    return desk


def test_the_check_table_reads_問題なし_or_the_defect_with_its_facts(clerk: Harness, page: Any) -> None:
    case_no = returned_case(clerk)  # no manager in CC
    with web_server(clerk.config_path) as base:
        log_in(page, base, "yamada")
        page.goto(f"{base}/cases/{case_no}")
        cc = page.locator("table.checks tr[data-check=manager_cc_missing]")
        assert cc.get_attribute("data-verdict") == "defect"
        assert "支店長(依頼部署責任者)がCCに入っていません" in cc.inner_text()
        assert "支店長 shibuya-mgr@usen.co.jp" in cc.locator("small.facts").inner_text()
        explanation = cc.locator("details")
        assert "全員に返信" not in cc.inner_text()  # the branch-facing text waits behind its summary
        explanation.locator("summary").click()
        assert "CCを残したまま「全員に返信」で再送してください" in explanation.inner_text()
        passed = page.locator("table.checks tr[data-check=unis_customer_missing]")
        assert passed.inner_text().split() == ["UNISの顧客登録", "問題なし"]
        defects = page.locator("dl.summary span.defect").all_inner_texts()
        in_table = page.locator("table.checks tr[data-verdict=defect] span.verdict").all_inner_texts()
        assert defects == in_table  # the table and 現在の不備 say the same


def test_a_quick_filter_narrows_the_board_and_shows_which_is_active(clerk: Harness, page: Any) -> None:
    clerk.clock.now = datetime.now(UTC)  # `mailbot web` runs on the real clock: "today" is today
    case_no = returned_case(clerk)
    clerk.deliver(request(subject="フレッツエスカ 新宿支店", cc=["shinjuku-mgr@usen.co.jp"]))
    clerk.poll()
    other = clerk.cases()[-1]["case_no"]
    with web_server(clerk.config_path) as base:
        log_in(page, base, "yamada")
        assert page.locator("tr[data-case]").count() == 2
        page.click("nav.quick-filters a[data-quick=returned_today]")
        page.wait_for_url("**/?view=returned_today")
        assert page.locator("tr[data-case]").all_inner_texts()[0].startswith(case_no)
        assert page.locator(f"tr[data-case='{other}']").count() == 0
        assert page.locator("nav.quick-filters a[aria-current=page]").inner_text() == "今日の返却"
        assert "今日の返却: 1件" in page.inner_text("h1")
        page.click("nav.quick-filters a[data-quick=attention]")
        page.wait_for_url("**/?view=attention")
        assert page.locator("tr[data-case]").count() == 0
        assert page.locator("nav.quick-filters a[aria-current=page]").inner_text() == "要対応"


def test_a_released_mail_links_to_its_case_where_the_release_opens_the_history(clerk: Harness, page: Any) -> None:
    clerk.import_unis()
    clerk.deliver(request(sender="営業 <sales@partner.example.com>"))
    clerk.poll()
    with clerk.app.sessions() as session:
        [item] = views.quarantine_rows(session)
    clerk.app.desk.release(item["id"], by="yamada", reason="UBDからの正式な依頼")
    with web_server(clerk.config_path) as base:
        log_in(page, base, "yamada")
        page.goto(f"{base}/quarantine?all=1")
        page.click(f"tr[data-quarantine='{item['id']}'] a[href='/quarantine/{item['id']}']")
        assert "依頼として処理(yamada" in page.inner_text("dl.summary")
        page.click("a.case-link")
        page.wait_for_url("**/cases/FE-2026-00001")
        first = page.locator("table.events tbody tr").first
        assert first.locator("td.actor").inner_text() == "yamada"
        assert "隔離から依頼として処理" in first.inner_text()
        assert "UBDからの正式な依頼" in first.inner_text()
