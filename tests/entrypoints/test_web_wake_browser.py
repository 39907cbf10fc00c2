"""A clerk's mail leaves at once: Chromium, a real `mailbot web`, a real `mailbot run` and a real SMTP relay.

The bot polls and retries hourly, so the mail reaching the relay within the
deadline is the wake-up's doing; the test asserts the wake-up itself (the
bot's log line), and what the page then says (送信済み), not a time.
"""

from __future__ import annotations

import signal
import time
from email.header import decode_header, make_header
from typing import Any

import pytest

from tests.entrypoints.test_scheduler import _Bot
from tests.entrypoints.test_web_browser import PASSWORD, log_in
from tests.fixtures.bot import Harness, use_real_servers
from tests.fixtures.smtp_sink import SmtpSink
from tests.fixtures.web import web_server
from tests.service.test_desk import returned_case

pytestmark = pytest.mark.services

HOURLY = "\n[schedule]\npoll_seconds = 3600\noutbox_retry_seconds = 3600\n"


def a_returned_case(desk: Harness, smtp_sink: SmtpSink) -> str:
    """The desk's bot, hourly, sending through the relay; a returned case whose defect mail went out."""
    text = desk.config_path.read_text(encoding="utf-8")
    head, _, branches = text.partition("[[branches]]")
    desk.config_path.write_text(head + HOURLY + "\n[[branches]]" + branches, encoding="utf-8")
    use_real_servers(desk, smtp_port=smtp_sink.port)
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    case_no = returned_case(desk)
    smtp_sink.wait_for(1)
    return case_no


def accept(page: Any, base: str, case_no: str) -> Any:
    """Accept the case on its page; the receipt's article on the page after."""
    page.goto(f"{base}/cases/{case_no}")
    page.click("button[data-action=accept]")
    page.click("button[data-confirm=accept]")  # the receipt, seen before it is queued
    page.wait_for_selector("p.flash.ok")
    return page.locator("article.mail.outbound[data-status]", has_text="受付").last


def test_a_clerks_acceptance_is_sent_by_the_woken_bot_and_the_page_says_sent(
    desk: Harness, smtp_sink: SmtpSink, page: Any
) -> None:
    case_no = a_returned_case(desk, smtp_sink)
    desk.app.close()
    bot = _Bot(desk.config_path)
    try:
        assert bot.wait_for("job poll done"), "".join(bot.lines)
        with web_server(desk.config_path) as base:
            log_in(page, base, "yamada")
            page.goto(f"{base}/outbox")
            assert page.locator("p.bot[data-bot=running]").is_visible()
            assert "稼働中" in page.inner_text("p.bot")
            accept(page, base, case_no)
            # Generous for a loaded machine, far below the hourly poll: the wake-up ends the wait.
            assert bot.wait_for("job wakeup done", timeout=120), "".join(bot.lines)
            receipt = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                page.goto(f"{base}/cases/{case_no}")
                receipt = page.locator("article.mail.outbound", has_text="受付").last
                if receipt.get_attribute("data-status") == "sent":
                    break
                time.sleep(0.2)
            assert receipt is not None and receipt.get_attribute("data-status") == "sent"
            badge = receipt.locator("[data-when]")
            assert badge.inner_text() == "送信済み"
            assert "送信 " in receipt.inner_text()  # with its time
        bot.process.send_signal(signal.SIGTERM)
        assert bot.process.wait(timeout=60) == 0
    finally:
        bot.end()
    output = "".join(bot.lines)
    assert output.count("mail queued at the desk; delivering now") == 1, output
    assert output.count("job poll done") == 1, "the hourly poll did not send it"
    subjects = [str(make_header(decode_header(m.message["Subject"]))) for m in smtp_sink.messages[1:]]
    assert any(case_no in subject for subject in subjects), subjects


def test_with_no_bot_the_page_says_the_mail_waits_and_the_status_page_says_stopped(
    desk: Harness, smtp_sink: SmtpSink, page: Any
) -> None:
    case_no = a_returned_case(desk, smtp_sink)
    with web_server(desk.config_path) as base:
        log_in(page, base, "yamada")
        receipt = accept(page, base, case_no)
        badge = receipt.locator("[data-when]")
        assert badge.inner_text() == "ボットが停止中のため未送信"
        assert "最終確認 11/24 10:00" in receipt.inner_text()  # the harness's poll, in JST
        page.click("header nav a[href='/status']")
        assert page.locator("h1 .badge").inner_text() == "要確認"
        assert page.locator("[data-bot=stopped]").is_visible()
        assert "停止中" in page.inner_text("[data-bot=stopped]")
        assert "ボットが停止しています" in page.inner_text("[data-problem=bot_stopped]")
        assert page.inner_text("[data-next-check]") == "ボットの再開後"
    assert [o["status"] for o in desk.outbox("receipt")] == ["pending"]
