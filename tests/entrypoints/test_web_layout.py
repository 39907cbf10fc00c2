"""The workbench's forms and error pages over HTTP: capped notes with a counter, format hints, refusals that
keep what was typed, and errors drawn in the workbench's frame (menu, user) in Japanese."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailbot.service import views
from mailbot.service.desk_actions import TEXT_MAX
from tests.entrypoints.test_web import PASSWORD, client_for, csrf, login
from tests.fixtures.bot import Harness
from tests.service.test_desk import events, returned_case

MENU = 'href="/outbox"'  # the header's menu is on the page


@pytest.fixture
def site(desk: Harness) -> tuple[Harness, TestClient]:
    """test_web's clerk (yamada) and viewer (miru), as its ``login`` expects them."""
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    desk.app.accounts.add("miru", "viewer", PASSWORD)
    return desk, client_for(desk)


def _form(page: str, action: str) -> str:
    match = re.search(rf'<form method="post" action="[^"]*/{action}".*?</form>', page, re.S)
    assert match, action
    return match.group(0)


def test_every_free_text_field_has_the_cap_as_maxlength_and_a_counter(site: tuple[Harness, TestClient]) -> None:
    h, client = site
    case_no = returned_case(h)
    login(client)
    page = client.get(f"/cases/{case_no}").text
    for action in ("accept", "return", "note", "close"):
        form = _form(page, action)
        assert f'maxlength="{TEXT_MAX}"' in form, action
        assert f'<small class="counter" data-max="{TEXT_MAX}">2,000文字まで</small>' in form, action
    assert '<script src="/static/forms.js" defer></script>' in page
    script = client.get("/static/forms.js")
    assert script.status_code == 200 and "残り " in script.text


def test_the_p_number_field_says_its_format_in_japanese_before_sending(site: tuple[Harness, TestClient]) -> None:
    h, client = site
    case_no = returned_case(h)
    h.app.desk.accept(case_no, by="山田")
    login(client)
    form = _form(client.get(f"/cases/{case_no}").text, "enter")
    p_number = re.search(r'<input name="p_number"[^>]*>', form)
    assert p_number
    assert 'title="P+13桁の数字(例: P1234567890123)"' in p_number.group(0)  # the browser's message on a mismatch
    assert '<small class="hint" id="hint-enter-p_number">P+13桁の数字(例: P1234567890123)</small>' in form


def test_a_note_over_the_cap_is_refused_and_the_form_still_holds_it(site: tuple[Harness, TestClient]) -> None:
    h, client = site
    case_no = returned_case(h)
    token = login(client)
    long_note = "あ" * 9_999 + "末"
    answer = client.post(f"/cases/{case_no}/note", data={"note": long_note, "csrf_token": token})
    assert answer.status_code == 200
    assert "2,000文字以内で入力してください" in answer.text and 'class="flash ng"' in answer.text
    assert f'value="{long_note}"' in _form(answer.text, "note")  # nothing typed is lost
    assert "note" not in [event for event, *_ in events(h, case_no)]


def test_a_refused_action_brings_the_clerk_back_to_the_form_with_what_they_typed(
    site: tuple[Harness, TestClient],
) -> None:
    h, client = site
    case_no = returned_case(h)
    h.app.desk.accept(case_no, by="山田")
    token = login(client)
    # The browser checks the pattern; a refusal by the desk (here a P番号 with too few digits) is drawn the same.
    answer = client.post(
        f"/cases/{case_no}/enter", data={"p_number": "P12345", "note": "NTTの画面で入力済み", "csrf_token": token}
    )
    assert answer.status_code == 200 and answer.url.path == f"/cases/{case_no}/enter"
    assert "P12345" in answer.text and "P+13桁の数字" in answer.text
    form = _form(answer.text, "enter")
    assert 'value="P12345"' in form and 'value="NTTの画面で入力済み"' in form
    assert "NTTの画面で入力済み" not in _form(answer.text, "return")  # only the form it came from
    assert MENU in answer.text
    # The refusal's page carries this session's token: sending again works.
    fixed = client.post(
        f"/cases/{case_no}/enter",
        data={"p_number": "P1234567890123", "note": "NTTの画面で入力済み", "csrf_token": csrf(answer.text)},
        follow_redirects=False,
    )
    assert fixed.status_code == 303
    assert events(h, case_no)[-1][0] == "enter"


def test_a_refused_return_keeps_the_defects_ticked_as_the_clerk_ticked_them(site: tuple[Harness, TestClient]) -> None:
    h, client = site
    case_no = returned_case(h)
    token = login(client)
    page = client.get(f"/cases/{case_no}").text
    ticked_first = re.findall(r'value="([a-z_]+)" checked', _form(page, "return"))
    offered = re.findall(r'name="defect" value="([a-z_]+)"', _form(page, "return"))
    chosen = next(code for code in offered if code not in ticked_first)
    answer = client.post(f"/cases/{case_no}/return", data={"defect": chosen, "note": "  ", "csrf_token": token})
    assert 'class="flash ng"' in answer.text
    assert re.findall(r'value="([a-z_]+)" checked', _form(answer.text, "return")) == [chosen]


def test_an_expired_form_comes_back_with_what_was_typed_and_a_fresh_token(site: tuple[Harness, TestClient]) -> None:
    h, client = site
    case_no = returned_case(h)
    login(client)
    answer = client.post(f"/cases/{case_no}/note", data={"note": "電話で確認しました", "csrf_token": "stale"})
    assert answer.status_code == 403
    assert "フォームの有効期限が切れています" in answer.text and MENU in answer.text
    assert 'value="電話で確認しました"' in _form(answer.text, "note")
    assert "note" not in [event for event, *_ in events(h, case_no)]
    again = client.post(f"/cases/{case_no}/note", data={"note": "電話で確認しました", "csrf_token": csrf(answer.text)})
    assert again.status_code == 200 and 'class="flash ok"' in again.text


def test_a_form_sent_after_the_session_ended_shows_what_was_typed_to_copy(site: tuple[Harness, TestClient]) -> None:
    h, client = site
    case_no = returned_case(h)
    answer = client.post(f"/cases/{case_no}/note", data={"note": "長いメモ\n二行目", "csrf_token": "old"})
    assert answer.status_code == 403
    assert "フォームの有効期限が切れています" in answer.text
    assert '<textarea class="typed" readonly rows="3">長いメモ\n二行目</textarea>' in answer.text
    assert 'href="/login"' in answer.text


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/no-such-page", "お探しのページは見つかりません"),
        ("/cases/FE-2099-00001", "受付番号 FE-2099-00001 の案件はありません。"),
        ("/quarantine/999", "隔離ID 999 のメールはありません。"),
        ("/messages/999/attachments/0", "添付ファイルが見つかりません。"),
    ],
)
def test_a_404_is_a_page_of_the_workbench_in_japanese(site: tuple[Harness, TestClient], path: str, words: str) -> None:
    _, client = site
    login(client)
    answer = client.get(path)
    assert answer.status_code == 404
    assert words in answer.text and MENU in answer.text and 'data-user="yamada"' in answer.text
    assert "Not Found" not in answer.text


def test_a_viewers_post_is_refused_on_a_page_with_the_menu(site: tuple[Harness, TestClient]) -> None:
    h, client = site
    case_no = returned_case(h)
    token = login(client, "miru")
    answer = client.post(f"/cases/{case_no}/accept", data={"note": "x", "csrf_token": token})
    assert answer.status_code == 403
    assert "閲覧のみの権限のため" in answer.text and MENU in answer.text and 'data-user="miru"' in answer.text


def test_a_failure_on_a_page_is_a_500_page_with_the_menu(
    site: tuple[Harness, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = site
    login(client)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the board's query failed")

    monkeypatch.setattr(views, "case_board", broken)
    answer = client.get("/")
    assert answer.status_code == 500
    assert "システムでエラーが発生しました" in answer.text and MENU in answer.text
    assert "RuntimeError" not in answer.text and "query failed" not in html.unescape(answer.text)


def test_a_failure_outside_every_page_is_still_a_japanese_500_with_the_security_headers(
    site: tuple[Harness, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, _ = site
    from mailbot.entrypoints.web.routes import login as login_routes

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the login page failed")

    monkeypatch.setattr(login_routes, "csrf_token", broken)
    answer = client_for(h, raise_server_exceptions=False).get("/login")
    assert answer.status_code == 500
    assert "システムでエラーが発生しました" in answer.text and "Internal Server Error" not in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in answer.headers["content-security-policy"]
