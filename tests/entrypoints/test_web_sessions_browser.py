"""Sessions and logins as a clerk meets them in a real Chromium.

The workbench runs in this process (uvicorn in a thread) over the harness's
app, so the test holds its clock: a locked login is waited out by moving the
clock, not by sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from mailbot.entrypoints.web.app import create_app
from tests.entrypoints.test_web_browser import PASSWORD, log_in
from tests.fixtures.bot import Harness
from tests.fixtures.web import free_port

pytestmark = pytest.mark.services


@contextmanager
def workbench(h: Harness) -> Iterator[str]:
    """The workbench of ``h.app`` (its database, its clock) on a free loopback port; yields its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        create_app(h.app, secret="browser-test-secret"), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the workbench did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def clerk(desk: Harness) -> Harness:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    return desk


@pytest.fixture
def second_browser(chromium: Any) -> Iterator[Any]:
    """Another browser context: someone holding a copy of the clerk's cookie."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, locale="ja-JP")
    yield context
    context.close()


def try_password(page: Any, base: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "yamada")
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()


def test_logging_out_kills_a_copy_of_the_cookie_in_another_browser(
    clerk: Harness, page: Any, second_browser: Any
) -> None:
    with workbench(clerk) as base:
        log_in(page, base, "yamada")
        second_browser.add_cookies(page.context.cookies())
        thief = second_browser.new_page()
        thief.goto(f"{base}/")
        assert thief.locator("table.cases").count() == 1  # the copy works while the session lives
        page.click("form[action='/logout'] button[type=submit]")
        page.wait_for_url(f"{base}/login")
        thief.goto(f"{base}/")
        assert thief.url.startswith(f"{base}/login")
        assert thief.locator("input[name=password]").is_visible()


def test_after_a_password_change_the_old_session_is_sent_to_the_login(clerk: Harness, page: Any) -> None:
    with workbench(clerk) as base:
        log_in(page, base, "yamada")
        clerk.app.accounts.set_password("yamada", "a-new-long-password")
        page.goto(f"{base}/")
        assert page.url.startswith(f"{base}/login")


def test_six_wrong_passwords_lock_the_login_even_for_the_right_one_until_the_clock_moves_on(
    clerk: Harness, page: Any
) -> None:
    with workbench(clerk) as base:
        for _ in range(6):
            try_password(page, base, "wrong-password")
        assert "試行回数が多すぎます" in page.locator("p.flash.ng").inner_text()
        try_password(page, base, PASSWORD)
        assert "試行回数が多すぎます" in page.locator("p.flash.ng").inner_text()
        assert page.locator("table.cases").count() == 0
        clerk.clock.advance(seconds=30)
        try_password(page, base, PASSWORD)
        page.wait_for_selector("table.cases")
    assert len(clerk.outbox("ops_login_locked")) == 1
