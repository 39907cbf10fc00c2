"""The outbox, the case's mails and 稼働状況 say in plain words whether the bot runs and when each mail goes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mailbot.service import health
from tests.entrypoints.test_web import PASSWORD, client_for, login
from tests.entrypoints.test_web_thread import confirmed
from tests.fixtures.bot import Harness
from tests.service.test_desk import returned_case

# Text a clerk would not read: the scheduler's job ids, its English schedule, the poll's jargon.
JARGON = re.compile(r"ポーリング|\b(poll|outbox|recheck|weekly_summary\w*|unis_watch|retention|mon \d\d:\d\d)\b")


@pytest.fixture
def web(desk: Harness) -> Iterator[tuple[Harness, TestClient]]:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    yield desk, client_for(desk)


def visible(html: str) -> str:
    """The page's text, without its tags and attributes (ids and classes may be code)."""
    return re.sub(r"<[^>]+>", " ", html)


def accepted_with_the_bot(h: Harness, client: TestClient, *, running: bool) -> str:
    case_no = returned_case(h)
    h.poll()  # the last check: 2026-11-24 10:00 JST
    if running:
        health.mark_runner(h.app.sessions, "mailbot run (pid 4242)", h.clock.now)
    token = login(client)
    answer = confirmed(client, f"/cases/{case_no}/accept", data={"note": "", "csrf_token": token})
    assert answer.status_code == 200 and "受付にしました" in answer.text  # confirmed: the receipt is queued
    return case_no


def test_with_the_bot_stopped_a_queued_mail_says_so_with_the_last_check(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = accepted_with_the_bot(h, client, running=False)
    case = client.get(f"/cases/{case_no}").text
    shown = r'data-when="stopped"[^>]*>ボットが停止中のため未送信</span> <span class="sub when">最終確認 11/24 10:00'
    assert re.search(shown, case)
    outbox = visible(client.get("/outbox").text)
    assert "ボットは 停止中 です(最終確認 11/24 10:00)。" in outbox
    assert "画面から送ったメールは、ボットが再開するまで送信されません。" in outbox
    assert "ボットが停止中のため未送信" in outbox
    assert "送信済み" in outbox, "the defect mail the poll sent, with its time"


def test_with_the_bot_running_a_queued_mail_goes_soon(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = accepted_with_the_bot(h, client, running=True)
    case = client.get(f"/cases/{case_no}").text
    assert 'data-when="soon"' in case and "まもなく送信" in case
    assert "ボットが停止中" not in case
    outbox = visible(client.get("/outbox").text)
    assert "ボットは 稼働中 です" in outbox and "すぐに送信されます" in outbox


def test_the_status_page_says_stopped_at_once_after_a_clean_stop_and_within_a_poll_interval_after_a_crash(
    web: tuple[Harness, TestClient],
) -> None:
    h, client = web
    h.poll()
    health.mark_runner(h.app.sessions, "mailbot run (pid 4242)", h.clock.now)
    login(client)
    running = client.get("/status").text
    assert 'data-bot="running"' in running and 'data-problem="bot_stopped"' not in running
    assert "正常" in running
    h.clock.advance(seconds=61)  # no heartbeat for one poll interval (60 s): the bot died
    crashed = client.get("/status").text
    assert 'data-bot="stopped"' in crashed and 'data-problem="bot_stopped"' in crashed
    assert "要確認" in crashed and "応答がありません" in crashed
    health.beat(h.app.sessions, "mailbot run (pid 4242)", h.clock.now)
    assert 'data-bot="running"' in client.get("/status").text
    health.clear_runner(h.app.sessions, h.clock.now)
    stopped = client.get("/status").text
    assert 'data-bot="stopped"' in stopped and "に停止しました" in stopped
    assert "ボットの再開後" in stopped  # when it next looks at the mailbox
    next_runs = re.findall(r'<tr data-job="[^"]+">(?:<td>[^<]*</td>){2}<td>([^<]*)</td>', stopped)
    assert next_runs and set(next_runs) == {"ボットの再開後"}, "no job runs while the bot is stopped"


def test_the_status_page_names_jobs_and_schedules_in_japanese_and_no_jargon(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    h.poll()
    health.mark_runner(h.app.sessions, "mailbot run (pid 4242)", h.clock.now)
    login(client)
    page = visible(client.get("/status").text)
    for words in ("最後にメールを確認した時刻", "1分ごとに確認", "次にメールを確認する時刻", "メールの確認と送信"):
        assert words in page, words
    assert "毎週月曜 8:30" in page
    assert not JARGON.search(page), JARGON.search(page)
