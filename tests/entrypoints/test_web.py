"""The workbench's rules, over HTTP without a browser: who may see, who may act, what is sent back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailbot.entrypoints.web.app import create_app
from tests.domain.builders import FORM
from tests.fixtures.bot import Harness, make_harness, rebuild, unis_row
from tests.service.test_desk import request, returned_case
from tests.service.test_summaries import jst, seed_week_48

PASSWORD = "correct-horse-battery"


def client_for(h: Harness, **kwargs: Any) -> TestClient:
    return TestClient(create_app(h.app, secret="test-secret"), **kwargs)


@pytest.fixture
def web(desk: Harness) -> Iterator[tuple[Harness, TestClient]]:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    desk.app.accounts.add("miru", "viewer", PASSWORD)
    yield desk, client_for(desk)


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def login(client: TestClient, name: str = "yamada") -> str:
    token = csrf(client.get("/login").text)
    answer = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token, "next": "/"})
    assert answer.status_code == 200, answer.text
    return csrf(answer.text)


def test_an_unauthenticated_page_redirects_to_the_login(web: tuple[Harness, TestClient]) -> None:
    _, client = web
    answer = client.get("/cases/FE-2026-00001", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/cases/FE-2026-00001"


def test_a_board_filter_at_the_calendars_edge_is_left_out_not_a_server_error(web: tuple[Harness, TestClient]) -> None:
    _, client = web
    login(client)
    for query in ("since=0001-01-01", "until=9999-12-31", "since=0001-01-01&until=9999-12-31"):
        answer = client.get(f"/?{query}")
        assert answer.status_code == 200, (query, answer.status_code)
        assert "案件一覧" in answer.text


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(web: tuple[Harness, TestClient]) -> None:
    _, client = web
    token = csrf(client.get("/login").text)
    for name in ("yamada", "nobody"):
        answer = client.post("/login", data={"username": name, "password": "wrong-password", "csrf_token": token})
        assert answer.status_code == 401
        assert "ユーザー名またはパスワードが違います" in answer.text


def test_every_page_carries_the_security_headers_and_is_never_cached(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    returned_case(h)
    login(client)
    for path in ("/", "/cases/FE-2026-00001", "/quarantine", "/outbox", "/status", "/weekly", "/login"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = returned_case(h)
    login(client)
    answer = client.post(f"/cases/{case_no}/accept", data={"note": "x"}, follow_redirects=False)
    assert answer.status_code == 403
    assert h.cases()[0]["status"] == "returned"
    answer = client.post(f"/cases/{case_no}/accept", data={"note": "x", "csrf_token": "forged"})
    assert answer.status_code == 403


def test_a_viewer_sees_the_case_but_has_no_buttons_and_cannot_act(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = returned_case(h)
    token = login(client, "miru")
    page = client.get(f"/cases/{case_no}").text
    assert case_no in page and "data-action" not in page
    answer = client.post(f"/cases/{case_no}/accept", data={"note": "x", "csrf_token": token})
    assert answer.status_code == 403
    assert h.cases()[0]["status"] == "returned"


def test_a_clerks_action_is_recorded_as_the_logged_in_user(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = returned_case(h)
    token = login(client)
    from tests.entrypoints.test_web_thread import confirm_form  # it builds on this module's helpers

    page = client.post(f"/cases/{case_no}/accept", data={"note": "電話で確認", "csrf_token": token})
    assert 'data-confirm="accept"' in page.text and h.cases()[0]["status"] == "returned"  # seen before it goes
    answer = client.post(f"/cases/{case_no}/accept", data=confirm_form(page.text))
    assert answer.status_code == 200
    assert "受付にしました" in answer.text and "送信待ち" in answer.text
    assert h.cases()[0]["decided_by"] == "yamada"
    assert "yamada" in answer.text  # the history shows who did it


def test_an_attachment_is_a_download_with_a_safe_name_never_a_page(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    h.import_unis()
    h.deliver(request(attachments=[FORM, ("<script>alert(1)</script>.html", b"<script>alert(1)</script>")]))
    h.poll()
    login(client)
    inbound = h.messages()[0]
    page = client.get("/cases/FE-2026-00001").text
    links = re.findall(r'href="(/messages/\d+/attachments/\d+)"', page)
    assert len(links) == 2, inbound
    pdf = client.get(links[0])
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("attachment;")
    html = client.get(links[1])
    assert html.headers["content-type"] == "application/octet-stream"
    disposition = html.headers["content-disposition"]
    assert re.match(r'attachment; filename="[A-Za-z0-9._-]+"; filename\*=UTF-8\'\'[^"<>]+$', disposition), disposition
    assert html.headers["content-security-policy"] == "sandbox"


def test_with_header_auth_only_the_trusted_proxy_is_believed(desk: Harness) -> None:
    text = desk.config_path.read_text(encoding="utf-8")
    desk.config_path.write_text(
        text.replace("[mailbox]", '[web]\nauth = "header"\ntrusted_proxies = ["127.0.0.9"]\n\n[mailbox]'),
        encoding="utf-8",
    )
    rebuild(desk)
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    trusted = TestClient(create_app(desk.app, secret="s"), client=("127.0.0.9", 5000))
    stranger = TestClient(create_app(desk.app, secret="s"), client=("127.0.0.5", 5000))
    assert trusted.get("/", headers={"X-Remote-User": "yamada"}).status_code == 200
    assert stranger.get("/", headers={"X-Remote-User": "yamada"}, follow_redirects=False).status_code == 303
    # Someone the proxy vouches for but without an account may look, not act.
    page = trusted.get("/", headers={"X-Remote-User": "guest"}).text
    assert "閲覧のみ" in page


def test_a_disabled_account_is_logged_out_on_its_next_request(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    login(client)
    assert client.get("/", follow_redirects=False).status_code == 200
    h.app.accounts.disable("yamada")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_every_notice_to_ops_links_to_the_case_page_when_base_url_is_set(desk: Harness) -> None:
    text = desk.config_path.read_text(encoding="utf-8")
    desk.config_path.write_text(
        text.replace("[mailbox]", '[web]\nbase_url = "https://desk.usen.co.jp/mailbot/"\n\n[mailbox]'), encoding="utf-8"
    )
    rebuild(desk)
    case_no = returned_case(desk)
    [notice] = desk.sent_mail("ops_returned")
    assert f"案件画面: https://desk.usen.co.jp/mailbot/cases/{case_no}" in notice.get_content()
    [reply] = desk.sent_mail("defect_reply")
    assert "desk.usen.co.jp/mailbot" not in reply.get_content()  # branches do not get the desk's tool


def test_a_clerk_records_the_ntt_order_number_from_the_case_page(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = returned_case(h)
    h.app.desk.accept(case_no, by="山田")
    token = login(client)
    page = client.get(f"/cases/{case_no}").text
    assert 'data-action="enter"' in page
    answer = client.post(f"/cases/{case_no}/enter", data={"p_number": "P1234567890123", "csrf_token": token})
    assert answer.status_code == 200
    [case] = h.cases()
    assert (case["stage"], case["p_number"]) == ("entered", "P1234567890123")
    bad = client.post(f"/cases/{case_no}/enter", data={"p_number": "P12", "csrf_token": token})
    assert "P+13桁" in bad.text  # refused with the reason, nothing changed


def test_the_case_page_shows_the_bound_unis_line_what_was_not_checked_and_rebinds_it(
    web: tuple[Harness, TestClient],
) -> None:
    h, client = web
    h.import_unis([unis_row(), unis_row(line="002")])
    h.deliver(request())
    h.poll()
    [case] = h.cases()
    token = login(client)
    page = client.get(f"/cases/{case['case_no']}").text
    assert "<dt>UNIS明細</dt><dd>C0001/002</dd>" in page
    assert "未確認: UNISの登録内容(" in page  # the standard export: the manual's values were not checked
    assert 'data-action="bind"' in page
    answer = client.post(
        f"/cases/{case['case_no']}/bind", data={"line": "C0001/001", "note": "支店に確認", "csrf_token": token}
    )
    assert "C0001/001 に紐付けました" in answer.text
    assert h.cases()[0]["unis_line"] == "C0001/001"
    bad = client.post(f"/cases/{case['case_no']}/bind", data={"line": "C9", "note": "x", "csrf_token": token})
    assert "契約No/明細No" in bad.text and h.cases()[0]["unis_line"] == "C0001/001"


def test_after_retention_the_case_page_names_the_removed_attachment_and_its_old_link_says_why(
    web: tuple[Harness, TestClient],
) -> None:
    from datetime import timedelta

    from mailbot.config import RetentionConfig
    from mailbot.service.retention import apply_retention

    h, client = web
    h.import_unis()
    h.deliver(request(attachments=[FORM]))
    h.poll()
    login(client)
    [link] = re.findall(r'href="(/messages/\d+/attachments/\d+)"', client.get("/cases/FE-2026-00001").text)
    apply_retention(h.app.sessions, RetentionConfig(attachments_days=7), now=h.clock() + timedelta(days=8), apply=True)
    page = client.get("/cases/FE-2026-00001").text
    assert re.findall(r'href="(/messages/\d+/attachments/\d+)"', page) == []
    assert f'{FORM[0]} <span class="sub">PDF, 削除済み</span>' in page
    assert "添付ファイルは保存期間を過ぎたため" in page
    assert "チェックは再実行できません" in page
    gone = client.get(link)
    assert gone.status_code == 410
    assert "添付ファイルは保存期間を過ぎたため" in gone.text and "削除されました" in gone.text
    assert 'href="/outbox"' in gone.text  # said on a page of the workbench, with its menu


def test_the_weekly_page_shows_the_summaries_with_the_configured_days(tmp_path: Path, db_url: str) -> None:
    h = make_harness(tmp_path, db_url, "[summary]\nlist_open_returns_days = 10\n")
    try:
        h.app.accounts.add("yamada", "clerk", PASSWORD)
        seed_week_48(h)
        h.clock.now = jst(2026, 11, 30, 8, 30)
        client = client_for(h)
        login(client)
        page = client.get("/weekly").text
    finally:
        h.app.close()
    assert "※このほか、返却から10日を超えている依頼が1件あります(件数のみの記載です)。" in page
    assert "渋谷支店: 1件" in page


# -- /healthz and the session cookie --------------------------------------------------------------
def test_healthz_answers_200_without_a_login_while_the_bot_polls(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    h.poll()
    polled_at = h.clock.now
    h.clock.advance(seconds=90)
    answer = client.get("/healthz", follow_redirects=False)
    assert answer.status_code == 200
    body = answer.json()
    assert datetime.fromisoformat(body.pop("last_poll")) == polled_at
    assert body == {"ok": True, "database": "ok", "last_poll_age_seconds": 90, "poll_seconds": 60}


def test_healthz_answers_503_when_the_bot_never_polled_or_stopped_polling(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    never = client.get("/healthz")
    assert never.status_code == 503
    assert never.json()["last_poll"] is None and never.json()["database"] == "ok"
    h.poll()
    h.clock.advance(minutes=3, seconds=1)  # three intervals of 60 s: what `mailbot status` calls stale
    stale = client.get("/healthz")
    assert stale.status_code == 503
    assert stale.json()["ok"] is False and stale.json()["last_poll_age_seconds"] == 181


def test_healthz_answers_503_naming_only_the_database_when_it_does_not_answer(
    desk: Harness, db_url: str, tmp_path: Path
) -> None:
    from dataclasses import replace

    from sqlalchemy.engine import make_url

    from mailbot.bootstrap import build_app

    if db_url.startswith("sqlite"):
        missing = f"sqlite:///{tmp_path}/no-such-directory/mailbot.sqlite3"
    else:
        missing = make_url(db_url).set(database="mailbot_no_such_database").render_as_string(hide_password=False)
    down = build_app(replace(desk.app.config, database_url=missing), clock=desk.clock, check=False)
    try:
        answer = TestClient(create_app(down, secret="test-secret")).get("/healthz")
    finally:
        down.close()
    assert answer.status_code == 503
    assert answer.json() == {"ok": False, "database": "unavailable"}


@pytest.mark.parametrize(("base_url", "secure"), [("https://desk.usen.co.jp/mailbot", True), ("", False)])
def test_the_session_cookie_is_secure_when_the_workbench_is_reached_over_https(
    desk: Harness, base_url: str, secure: bool
) -> None:
    if base_url:
        text = desk.config_path.read_text(encoding="utf-8")
        desk.config_path.write_text(text.replace("[mailbox]", f'[web]\nbase_url = "{base_url}"\n\n[mailbox]'), "utf-8")
        rebuild(desk)
    answer = TestClient(create_app(desk.app, secret="test-secret")).get("/login")
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("mailbot_session=")
    assert ("; secure" in cookie) is secure


def test_mail_recorded_as_out_of_scope_is_listed_with_its_reason_in_japanese(web: tuple[Harness, TestClient]) -> None:
    from tests.mailfactory import build_mail

    h, client = web
    h.deliver(
        build_mail(subject="会議室の予約について", sender="taro@usen.co.jp", to=[h.app.config.policy.desk_address])
    )
    h.poll()
    login(client)
    assert "対象外のメール" in client.get("/quarantine").text
    page = client.get("/quarantine?view=out_of_scope").text
    assert "会議室の予約について" in page
    assert "対象外: 件名が依頼の形ではありません" in page


def test_a_clerk_records_a_customer_code_from_the_case_page(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = returned_case(h)
    token = login(client)
    assert 'data-action="set_customer"' in client.get(f"/cases/{case_no}").text
    answer = client.post(
        f"/cases/{case_no}/set_customer", data={"customer_code": "５５５６６６７７７", "csrf_token": token}
    )
    assert answer.status_code == 200 and "顧客CD 555666777 を登録しました" in answer.text
    assert h.cases()[0]["customer_code"] == "555666777"


def test_a_case_waiting_for_the_desk_is_marked_on_the_board_and_filtered_as_needs_review(
    web: tuple[Harness, TestClient],
) -> None:
    from tests.mailfactory import build_mail

    h, client = web
    h.import_unis()
    desk = h.app.config.policy.desk_address
    scan = ("scan0001.pdf", b"%PDF-1.7\n" + b"\x00scan" * 100)
    raw = build_mail(
        subject="フレッツエスカ 渋谷支店",
        sender="taro@usen.co.jp",
        to=[desk],
        cc=["shibuya-mgr@usen.co.jp"],
        body="顧客CD:123456789\n",
        attachments=[scan],
    )
    h.deliver(raw)
    h.poll()
    login(client)
    board = client.get("/?status=needs_review").text
    assert 'data-mark="needs_review"' in board and "要確認" in board


def test_a_failed_check_on_the_case_page_reads_as_the_return_mail_explains_it(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = returned_case(h)
    login(client)
    page = client.get(f"/cases/{case_no}").text
    checks = page[page.index('<table class="checks">') :]
    assert "CCを残したまま「全員に返信」で再送してください" in checks
    assert "managers=" not in checks and "branch=" not in checks
