"""Sessions and logins of the workbench over HTTP: ended on the server, slowed when guessed, logged."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from mailbot.entrypoints.cli.main import main
from mailbot.entrypoints.web.middleware import SESSION_COOKIE
from mailbot.service.login_throttle import TOO_MANY
from tests.entrypoints.test_web import PASSWORD, client_for, csrf, login
from tests.fixtures.bot import Harness, make_harness, rebuild


@pytest.fixture
def web(desk: Harness) -> Iterator[tuple[Harness, TestClient]]:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    yield desk, client_for(desk)


def try_login(client: TestClient, name: str, password: str) -> httpx.Response:
    token = csrf(client.get("/login").text)
    answer: httpx.Response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    return answer


def copy_of(h: Harness, client: TestClient) -> TestClient:
    """A second browser holding a copy of the first one's session cookie."""
    thief = client_for(h)
    thief.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    return thief


def logout(client: TestClient) -> None:
    token = csrf(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303


def test_a_copied_cookie_is_refused_once_the_session_is_logged_out(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    login(client)
    thief = copy_of(h, client)
    assert thief.get("/", follow_redirects=False).status_code == 200  # the copy works while the session lives
    logout(client)
    answer = thief.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert h.app.web_sessions.open_count("yamada") == 0


def test_a_new_password_set_on_the_command_line_ends_every_session_of_the_account(
    web: tuple[Harness, TestClient], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    h, client = web
    login(client)
    monkeypatch.setattr("sys.stdin", io.StringIO("another-long-password\n"))
    assert main(["--config", str(h.config_path), "users", "password", "yamada"]) == 0
    assert "1 open session(s) ended" in capsys.readouterr().out
    assert client.get("/", follow_redirects=False).status_code == 303
    assert try_login(client, "yamada", PASSWORD).status_code == 401
    assert try_login(client, "yamada", "another-long-password").status_code == 303


def test_the_cookie_holds_a_session_id_and_the_csrf_token_never_the_users_name(
    web: tuple[Harness, TestClient],
) -> None:
    _, client = web
    login(client)
    payload = client.cookies[SESSION_COOKIE].split(".")[0]
    data = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(data) == {"sid", "csrf"}
    assert "yamada" not in json.dumps(data)


def test_a_sixth_wrong_password_is_refused_with_429_and_even_the_right_one_until_the_delay_is_over(
    web: tuple[Harness, TestClient],
) -> None:
    h, client = web
    statuses = [try_login(client, "yamada", "wrong-password").status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    refused = try_login(client, "yamada", PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert TOO_MANY in refused.text
    h.clock.advance(seconds=29)
    assert try_login(client, "yamada", PASSWORD).headers["retry-after"] == "1"
    h.clock.advance(seconds=1)
    assert try_login(client, "yamada", PASSWORD).status_code == 303


def test_the_refusal_of_a_locked_login_reads_the_same_for_a_name_that_is_no_account(desk: Harness) -> None:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    answers: dict[str, tuple[int, str, str]] = {}
    for name in ("yamada", "nobody"):
        client = client_for(desk, client=(f"192.0.2.{len(answers) + 1}", 5000))
        for _ in range(5):
            try_login(client, name, "wrong-password")
        answer = try_login(client, name, "wrong-password")
        text = re.sub(r'value="[^"]*"', "", answer.text)
        answers[name] = (answer.status_code, answer.headers["retry-after"], text.replace(name, "NAME"))
    assert answers["yamada"] == answers["nobody"]


def test_wrong_passwords_for_many_names_from_one_address_lock_that_address(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    for n in range(10):
        try_login(client, f"guess-{n}", "wrong-password")
    assert try_login(client, "yamada", PASSWORD).status_code == 429
    elsewhere = client_for(h, client=("198.51.100.20", 5000))
    assert try_login(elsewhere, "yamada", PASSWORD).status_code == 303


def test_a_locked_account_is_reported_to_ops_once(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    for _ in range(7):
        try_login(client, "yamada", "wrong-password")
    h.clock.advance(seconds=30)
    try_login(client, "yamada", "wrong-password")  # locked again, for longer
    [notice] = h.outbox("ops_login_locked")
    assert notice["subject"].endswith("ログインの一時停止 yamada")


def test_a_success_resets_the_accounts_count(web: tuple[Harness, TestClient]) -> None:
    _, client = web
    for _ in range(4):
        try_login(client, "yamada", "wrong-password")
    assert try_login(client, "yamada", PASSWORD).status_code == 303
    logout(client)
    statuses = [try_login(client, "yamada", "wrong-password").status_code for _ in range(4)]
    assert statuses == [401] * 4


HTTPS = '[web]\nbase_url = "https://desk.usen.co.jp/mailbot"'


@pytest.mark.parametrize(("web_table", "secure"), [(HTTPS, True), ("", False)])
def test_the_session_cookie_after_login_is_httponly_samesite_lax_and_secure_over_https(
    tmp_path: Path, db_url: str, web_table: str, secure: bool
) -> None:
    desk = make_harness(tmp_path, db_url, extra_toml=web_table)
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    # An https client, so that a Secure cookie from the login page is sent back with the form.
    client = client_for(desk, base_url="https://testserver")
    answer = try_login(client, "yamada", PASSWORD)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    attributes = {part.strip().split("=")[0] for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= attributes
    assert "samesite=lax" in cookie
    assert ("secure" in attributes) is secure
    desk.app.close()


def test_each_request_is_logged_once_with_the_user_and_never_the_password_query_or_cookie(
    web: tuple[Harness, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = web
    caplog.set_level(logging.INFO, logger="mailbot.web.access")
    login(client)
    cookie = client.cookies[SESSION_COOKIE]
    caplog.clear()
    client.get("/?customer=さくら&secret=hunter2")
    try_login(client, "yamada", "wrong-password-xyz")
    lines = [r.getMessage() for r in caplog.records if r.name == "mailbot.web.access"]
    assert len(lines) == 3  # the board, the login page, the refused login
    assert re.fullmatch(r"GET / 200 yamada testclient \d+ms", lines[0]), lines[0]
    assert re.fullmatch(r"POST /login 401 - testclient \d+ms", lines[2]), lines[2]
    everything = "\n".join(lines)
    for secret in ("hunter2", "さくら", "wrong-password-xyz", cookie, PASSWORD):
        assert secret not in everything


def test_the_access_log_names_the_address_a_trusted_proxy_forwarded(
    desk: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    text = desk.config_path.read_text(encoding="utf-8")
    desk.config_path.write_text(
        text.replace("[mailbox]", '[web]\ntrusted_proxies = ["127.0.0.9"]\n\n[mailbox]'), "utf-8"
    )
    rebuild(desk)
    caplog.set_level(logging.INFO, logger="mailbot.web.access")
    proxied = client_for(desk, client=("127.0.0.9", 5000))
    proxied.get("/login", headers={"X-Forwarded-For": "10.9.9.9, 192.0.2.44"})
    direct = client_for(desk, client=("192.0.2.7", 5000))
    direct.get("/login", headers={"X-Forwarded-For": "10.1.1.1"})
    lines = [r.getMessage() for r in caplog.records if r.name == "mailbot.web.access"]
    assert " - 192.0.2.44 " in lines[0]
    assert " - 192.0.2.7 " in lines[1]  # only a trusted proxy is believed


def test_a_login_form_whose_token_expired_is_the_login_page_again_with_the_name_kept(
    web: tuple[Harness, TestClient],
) -> None:
    _, client = web
    answer = client.post("/login", data={"username": "yamada", "password": PASSWORD, "csrf_token": "stale"})
    assert answer.status_code == 403
    assert "フォームの有効期限が切れています" in answer.text
    assert 'value="yamada"' in answer.text and PASSWORD not in answer.text
    assert "/logout" not in answer.text  # nobody was logged in
