"""Answer in the thread and see every mail before it goes, as a clerk does it in a real Chromium.

A real `mailbot web` on a real database; no bot runs, so a queued mail stays
in the outbox (送信待ち) where the tests read it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailbot.service import views
from tests.entrypoints.test_web_browser import PASSWORD, log_in
from tests.fixtures.bot import SHIBUYA_MGR, Harness
from tests.fixtures.web import web_server
from tests.service.test_desk import answer as reply_in_thread
from tests.service.test_desk import request, returned_case

pytestmark = pytest.mark.services


def _clerk(h: Harness) -> None:
    h.app.accounts.add("yamada", "clerk", PASSWORD)


def _questioned(h: Harness) -> str:
    case_no = returned_case(h)
    reply_in_thread(h, case_no, body="工事日はいつ頃になりますか?")
    h.poll()
    return case_no


def _accepted(h: Harness) -> str:
    h.import_unis()
    h.deliver(request())
    h.poll()
    [case] = h.cases()
    return str(case["case_no"])


def _quarantined(h: Harness) -> int:
    h.import_unis()
    h.deliver(request(sender="営業 <sales@partner.example.com>", subject="フレッツエスカ 渋谷支店 社外"))
    h.poll()
    with h.app.sessions() as session:
        [item] = views.quarantine_rows(session)
    return int(item["id"])


def _held_back(h: Harness) -> int:
    h.import_unis()
    h.deliver(request(extra_headers={"X-Auto-Response-Suppress": "All"}))
    h.poll()
    [held] = [m for m in h.outbox() if m["status"] == "suppressed"]
    return int(held["id"])


def _state(h: Harness) -> tuple[list[tuple[int, str]], list[tuple[str, str]], int]:
    """Every outgoing mail with its status, every case's stage and verdict, and how many events there are."""
    mails = [(o["id"], o["status"]) for o in h.outbox()]
    cases = [(c["stage"], c["status"]) for c in h.cases()]
    with h.app.sessions() as session:
        count = sum(len(views.case_detail(session, c["case_no"], directory=h.app.config.branches,
                                          policy=h.app.config.policy, checks=h.app.checks)["events"])
                    for c in h.cases())  # fmt: skip
    return mails, cases, count


# Each mailing action: how to put a target in its place, the page it is on, and how the clerk fills its form.
Prepare = Callable[[Harness], str | int]
ACTIONS: dict[str, tuple[Prepare, Callable[[str | int], str], Callable[[Any], None]]] = {
    "accept": (lambda h: returned_case(h), lambda t: f"/cases/{t}",
               lambda p: p.fill("form[action$='/accept'] input[name=note]", "電話で確認済み")),
    "return": (_accepted, lambda t: f"/cases/{t}",
               lambda p: p.fill("form[action$='/return'] textarea[name=note]", "申込書の印鑑が不鮮明です")),
    "answer": (_questioned, lambda t: f"/cases/{t}",
               lambda p: p.fill("form[action$='/answer'] textarea[name=text]", "工事日は20日の予定です。")),
    "release": (_quarantined, lambda t: f"/quarantine/{t}",
                lambda p: p.fill("form[action$='/release'] input[name=reason]", "UBDからの正式な依頼")),
    "resend": (_held_back, lambda t: "/outbox", lambda p: None),
}  # fmt: skip


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_mailing_action_shows_its_mail_first_cancel_queues_nothing_and_confirm_queues_it_once(
    desk: Harness, page: Any, name: str
) -> None:
    prepare, path, fill = ACTIONS[name]
    target = prepare(desk)
    _clerk(desk)
    before = _state(desk)
    with web_server(desk.config_path) as base:
        log_in(page, base, "yamada")
        page.goto(f"{base}{path(target)}")
        fill(page)
        page.click(f"button[data-action={name}]")
        page.wait_for_selector("form.confirm")
        shown = page.locator("article.preview")
        assert shown.count() >= 1 and "まだ何も送信されていません" in page.inner_text("p.confirm-lead")
        kinds = [shown.nth(i).get_attribute("data-preview") for i in range(shown.count())]
        for i in range(shown.count()):
            article = shown.nth(i).inner_text()
            assert "差出人:" in article and "宛先:" in article and "件名:" in article
        assert _state(desk) == before  # seen, not queued
        page.click(f"a[data-cancel={name}]")
        page.wait_for_load_state()
        assert page.url == f"{base}{path(target)}"
        assert _state(desk) == before  # cancelled: nothing queued, nothing recorded
        fill(page)
        page.click(f"button[data-action={name}]")
        page.click(f"button[data-confirm={name}]")
        page.wait_for_selector("p.flash.ok")
    mails, _, _ = _state(desk)
    queued = [mail for mail in mails if mail not in before[0] and mail[1] == "pending"]
    # Exactly the mails shown, each once: new rows, or (resend) the held-back mail now waiting to be sent.
    assert sorted(o["kind"] for o in desk.outbox() if (o["id"], o["status"]) in queued) == sorted(kinds)
    assert all(a.endswith("@usen.co.jp") for o in desk.outbox() for a in (*o["to"], *o["cc"]))


def test_a_clerk_answers_a_question_in_the_thread_and_sees_the_queued_mails_headers(desk: Harness, page: Any) -> None:
    case_no = _questioned(desk)
    _clerk(desk)
    question_id = desk.messages()[-1]["message_id"]
    with web_server(desk.config_path) as base:
        log_in(page, base, "yamada")
        row = page.locator(f"tr[data-case='{case_no}']")
        assert row.locator("[data-mark=question]").count() == 1  # 要対応 on the board
        row.locator("a").first.click()
        assert page.locator("p.attention-marks [data-mark=question]").count() == 1  # and on the case
        # The clerk reads a template into the answer, edits it and sends it.
        page.click("a[data-answer='01_progress']")
        text = page.locator("form[action$='/answer'] textarea[name=text]")
        assert "工事日は確定しておりません" in text.input_value()
        text.fill(text.input_value() + "\n12月20日頃の見込みです。")
        page.click("button[data-action=answer]")
        preview = page.locator("article.preview[data-preview=answer]")
        assert "宛先: taro@usen.co.jp" in preview.inner_text() and SHIBUYA_MGR in preview.inner_text()
        assert f"件名: RE: フレッツエスカ 渋谷支店 [{case_no}]" in preview.inner_text()
        assert "12月20日頃の見込みです。" in preview.inner_text() and "担当: yamada" in preview.inner_text()
        page.click("button[data-confirm=answer]")
        page.wait_for_selector("p.flash.ok")
        assert "支店に回答しました" in page.inner_text("p.flash")
        mail = page.locator("article.mail.outbound", has_text="デスクからの回答")
        assert "未送信" in mail.inner_text() and "taro@usen.co.jp" in mail.inner_text()
        assert page.locator("p.attention-marks [data-mark=question]").count() == 0
        assert page.locator("table.events tbody tr").last.locator("td.actor").inner_text() == "yamada"
        page.goto(f"{base}/")
        assert page.locator(f"tr[data-case='{case_no}'] [data-mark=question]").count() == 0
    [queued] = desk.outbox("answer")
    assert queued["status"] == "pending" and queued["to"] == ["taro@usen.co.jp"] and SHIBUYA_MGR in queued["cc"]
    assert queued["in_reply_to"] == question_id and question_id in queued["references"]
    assert queued["subject"] == f"RE: フレッツエスカ 渋谷支店 [{case_no}]"


def test_a_question_handled_by_phone_is_cleared_without_a_mail(desk: Harness, page: Any) -> None:
    case_no = _questioned(desk)
    _clerk(desk)
    before = len(desk.outbox())
    with web_server(desk.config_path) as base:
        log_in(page, base, "yamada")
        page.goto(f"{base}/cases/{case_no}")
        page.fill("form[action$='/handled'] input[name=note]", "電話で回答済み")
        page.click("button[data-action=handled]")
        page.wait_for_selector("p.flash.ok")
        assert "対応済にしました" in page.inner_text("p.flash")
        assert page.locator("button[data-action=handled]").count() == 0
    assert len(desk.outbox()) == before
