"""The workbench as a clerk uses it: a real Chromium against a real `mailbot web` on a real database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailbot.entrypoints.demo import DEMO_USERS, run_demo
from tests.fixtures.bot import Harness
from tests.fixtures.web import web_server
from tests.service.test_desk import request, returned_case

PASSWORD = "correct-horse-battery"
pytestmark = pytest.mark.services


def log_in(page: Any, base: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login")  # an unauthenticated page sends you to the login
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_selector("table.cases")


@pytest.fixture
def seeded(desk: Harness) -> Harness:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    desk.app.accounts.add("miru", "viewer", PASSWORD)
    returned_case(desk, body="お疲れ様です。\n株式会社さくら商事様の光回線です。\n顧客CD:123456789\n")
    desk.deliver(request(sender="営業 <sales@partner.example.com>", subject="フレッツエスカ 渋谷支店 社外"))
    desk.poll()
    return desk


def test_a_clerk_finds_a_case_by_customer_name_reads_it_and_accepts_it_with_a_note(seeded: Harness, page: Any) -> None:
    with web_server(seeded.config_path) as base:
        log_in(page, base, "yamada")
        page.fill("input[name=customer]", "さくら")
        page.click("form.filters button[type=submit]")
        row = page.locator("tr[data-case='FE-2026-00001']")
        assert row.count() == 1
        assert "株式会社さくら商事" in row.inner_text()
        row.locator("a").first.click()
        page.wait_for_selector("article.mail.inbound")
        assert "株式会社さくら商事様の光回線です。" in page.locator("article.mail.inbound pre.body").first.inner_text()
        page.fill("form[action$='/accept'] input[name=note]", "副支店長がCCに入っていたため受付")
        page.click("button[data-action=accept]")
        page.click("button[data-confirm=accept]")  # the receipt is shown before it is queued
        page.wait_for_selector("p.flash.ok")
        assert "受付にしました" in page.locator("p.flash").inner_text()
        last_event = page.locator("table.events tbody tr").last
        assert last_event.locator("td.actor").inner_text() == "yamada"
        assert "副支店長がCCに入っていたため受付" in last_event.inner_text()
        receipt = page.locator("article.mail.outbound", has_text="受付").filter(has_text="未送信").first
        assert receipt.is_visible()  # queued for the running bot to send, and none runs here
    [case] = seeded.cases()
    assert (case["status"], case["decided_by"]) == ("accepted", "yamada")
    assert [o["status"] for o in seeded.outbox("receipt")] == ["pending"]


def test_a_clerk_releases_a_quarantined_mail_from_the_quarantine_page(seeded: Harness, page: Any) -> None:
    with web_server(seeded.config_path) as base:
        log_in(page, base, "yamada")
        page.click("header nav a[href='/quarantine']")
        page.locator("tr[data-quarantine] a").first.click()
        assert "sales@partner.example.com" in page.inner_text("dl.summary")
        page.fill("form[action$='/release'] input[name=reason]", "UBDからの正式な依頼")
        page.click("button[data-action=release]")
        page.click("button[data-confirm=release]")  # its mails are shown before they are queued
        page.wait_for_selector("p.flash.ok")
        assert "依頼として処理しました" in page.inner_text("p.flash")
        assert page.url.endswith("/cases/FE-2026-00002")
    assert [c["case_no"] for c in seeded.cases()] == ["FE-2026-00001", "FE-2026-00002"]
    assert all(a.endswith("@usen.co.jp") for o in seeded.outbox() for a in (*o["to"], *o["cc"]))


def test_a_viewer_sees_no_action_and_a_post_without_the_token_is_refused(seeded: Harness, page: Any) -> None:
    with web_server(seeded.config_path) as base:
        log_in(page, base, "miru")
        page.goto(f"{base}/cases/FE-2026-00001")
        assert page.locator("[data-action]").count() == 0
        assert "閲覧のみ" in page.inner_text("header.top")
        refused = page.request.post(f"{base}/cases/FE-2026-00001/accept", form={"note": "x"})
        assert refused.status == 403
        page.context.clear_cookies()
        log_in(page, base, "yamada")
        forged = page.request.post(f"{base}/cases/FE-2026-00001/accept", form={"note": "x", "csrf_token": "forged"})
        assert forged.status == 403
    assert seeded.cases()[0]["status"] == "returned"


def test_the_demo_data_shows_the_board_and_a_case_page(tmp_path: Path, page: Any) -> None:
    """The screenshots of every page are taken by test_web_pages.py (`make screenshots`)."""
    directory = tmp_path / "demo"
    assert run_demo(directory) == 0
    name, _, password = DEMO_USERS[0]
    with web_server(directory / "config.toml") as base:
        log_in(page, base, name, password)
        assert page.locator("tr[data-case]").count() >= 10
        assert page.locator("span.mark").count() >= 1  # cases that need a person are marked
        page.goto(f"{base}/cases/FE-2026-00004")
        assert "ZIPのパスワードは別のメールで送ればよいでしょうか?" in page.inner_text("main")
