"""The workbench's answer in the thread and its confirmation before any mail to a branch (HTTP level).

``confirmed`` is the helper the other web tests use to get past the
confirmation page: it posts the form that page shows, as a clerk's click would.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from httpx import Response
from starlette.testclient import TestClient

from mailbot.service.desk_actions import DESK_ACTIONS
from tests.entrypoints.test_web import PASSWORD, client_for, login
from tests.fixtures.bot import SHIBUYA_MGR, Harness
from tests.service.test_desk import answer, events, returned_case

__all__ = ["confirm_form", "confirmed"]


def confirm_form(page: str) -> dict[str, list[str]]:
    """The hidden fields of the confirmation page's form (what its 「送信する」 posts)."""
    form = re.search(r'<form method="post" action="[^"]+" class="confirm">(.*?)</form>', page, re.S)
    assert form, "the page is the confirmation page"
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1)):
        fields.setdefault(html.unescape(name), []).append(html.unescape(value))
    return fields


def confirmed(client: TestClient, path: str, data: dict[str, Any], **kwargs: Any) -> Response:
    """Post an action; when it answers the confirmation page, post that page's form (送信する)."""
    first = client.post(path, data=data, **kwargs)
    if first.status_code != 200 or 'class="confirm"' not in first.text:
        return first
    return client.post(path, data=confirm_form(first.text), **kwargs)


@pytest.fixture
def site(desk: Harness) -> tuple[Harness, TestClient]:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    return desk, client_for(desk)


def _questioned(h: Harness) -> str:
    case_no = returned_case(h)
    answer(h, case_no, body="工事日はいつ頃になりますか?")
    h.poll()
    return case_no


def test_every_action_that_mails_a_branch_is_marked_as_such_on_its_button() -> None:
    rows = {row.name for row in DESK_ACTIONS if row.mails_branch}
    assert rows == {"accept", "return", "answer", "release", "resend"}


def test_a_mailing_action_first_shows_the_mail_and_queues_nothing(site: tuple[Harness, TestClient]) -> None:
    h, client = site
    case_no = _questioned(h)
    token = login(client)
    before = len(h.outbox())
    page = client.post(f"/cases/{case_no}/answer", data={"text": "20日の予定です。", "csrf_token": token})
    assert page.status_code == 200 and 'class="confirm"' in page.text
    assert "まだ何も送信されていません" in page.text
    assert "宛先: taro@usen.co.jp" in page.text and SHIBUYA_MGR in page.text
    assert f"件名: RE: フレッツエスカ 渋谷支店 [{case_no}]" in page.text and "20日の予定です。" in page.text
    assert "担当: yamada" in page.text
    assert f'href="/cases/{case_no}" data-cancel="answer"' in page.text
    assert len(h.outbox()) == before and events(h, case_no)[-1][0] != "answer"
    # The form posts the same fields back, with the fingerprint of what was shown.
    fields = confirm_form(page.text)
    assert fields["text"] == ["20日の予定です。"] and fields["confirmed"] == ["1"]
    done = client.post(f"/cases/{case_no}/answer", data=fields)
    assert done.status_code == 200 and "支店に回答しました" in done.text
    assert [m["kind"] for m in h.outbox()[before:]] == ["answer"]


def test_a_confirmation_with_a_stale_fingerprint_is_refused_and_queues_nothing(
    site: tuple[Harness, TestClient],
) -> None:
    h, client = site
    case_no = returned_case(h)
    token = login(client)
    before = len(h.outbox())
    fields = {"note": "確認済み", "csrf_token": token, "confirmed": "1", "fingerprint": "0" * 64}
    page = client.post(f"/cases/{case_no}/accept", data=fields)
    assert "確認したときから変わりました" in page.text
    assert len(h.outbox()) == before and h.cases()[0]["status"] == "returned"


def test_the_case_page_marks_the_question_offers_the_templates_and_handled_clears_it(
    site: tuple[Harness, TestClient],
) -> None:
    h, client = site
    case_no = _questioned(h)
    token = login(client)
    page = client.get(f"/cases/{case_no}").text
    assert 'data-mark="question"' in page and 'data-action="handled"' in page
    assert 'class="mails"' in page  # the buttons that mail look apart from メモを残す
    assert '<option value="05_received">確認中のご連絡</option>' in page
    # A template read into the answer's text, to edit before it is sent.
    filled = client.get(f"/cases/{case_no}?answer=05_received").text
    assert "内容を確認しております" in filled and '<option value="05_received" selected>' in filled
    board = client.get("/").text
    assert re.search(rf'<tr data-case="{case_no}"[^>]*>.*?data-mark="question"', board, re.S)
    done = client.post(f"/cases/{case_no}/handled", data={"note": "電話で回答", "csrf_token": token})
    assert done.status_code == 200 and "対応済にしました" in done.text
    assert 'data-mark="question"' not in done.text and 'data-action="handled"' not in done.text
    assert not re.search(rf'<tr data-case="{case_no}"[^>]*>[^\n]*?data-mark="question"', client.get("/").text)


def test_a_second_click_on_send_queues_nothing_more(site: tuple[Harness, TestClient]) -> None:
    h, client = site
    case_no = _questioned(h)
    token = login(client)
    page = client.post(f"/cases/{case_no}/answer", data={"text": "回答です。", "csrf_token": token})
    fields = confirm_form(page.text)
    client.post(f"/cases/{case_no}/answer", data=fields)
    again = client.post(f"/cases/{case_no}/answer", data=fields)
    assert "確認したときから変わりました" in again.text
    assert len(h.outbox("answer")) == 1
