"""Pages read at a glance, over HTTP: the check table, the board's quick filters, the quarantine's links."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mailbot.service import views
from tests.entrypoints.test_web import PASSWORD, client_for, login
from tests.fixtures.bot import Harness
from tests.service.test_desk import request, returned_case


@pytest.fixture
def web(desk: Harness) -> Iterator[tuple[Harness, TestClient]]:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    yield desk, client_for(desk)


def section(page: str, start: str, end: str) -> str:
    return page[page.index(start) : page.index(end, page.index(start))]


def text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def test_the_check_table_says_問題なし_per_passed_check_and_the_defect_in_plain_words(
    web: tuple[Harness, TestClient],
) -> None:
    h, client = web
    case_no = returned_case(h)
    login(client)
    page = client.get(f"/cases/{case_no}").text
    checks = section(page, '<table class="checks">', "</table>")
    cc = re.search(r'<tr [^>]*data-check="manager_cc_missing".*?</tr>', checks, re.S)
    assert cc is not None
    assert "支店長(依頼部署責任者)のCC" in text(cc.group(0))
    assert "支店長(依頼部署責任者)がCCに入っていません" in text(cc.group(0))
    assert "支店 渋谷支店、支店長 shibuya-mgr@usen.co.jp" in text(cc.group(0))  # the facts, in Japanese
    unis = re.search(r'<tr [^>]*data-check="unis_customer_missing".*?</tr>', checks, re.S)
    assert unis is not None and text(unis.group(0)) == "UNISの顧客登録 問題なし"
    # A passed check never reads like its defect, and no fact is shown as key=value.
    assert "✓" not in checks and "顧客CDがUNISに登録されていない" not in checks and "managers=" not in checks
    assert "再チェックしても、結果は同じです" in page


def test_a_quick_filter_lists_todays_returns_and_shows_itself_active(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = returned_case(h)
    login(client)
    page = client.get("/?view=returned_today").text
    assert f'data-case="{case_no}"' in page
    active = r'<a href="/\?view=returned_today" data-quick="returned_today" class="quick active" aria-current="page">'
    assert re.search(active + "今日の返却</a>", page)
    assert "今日の返却: 1件" in text(page)
    assert 'name="view" value="returned_today"' in page  # the search keeps the quick filter
    for key in ("attention", "waiting_unis", "awaiting_completion", "awaiting_confirm"):
        assert f'data-case="{case_no}"' not in client.get(f"/?view={key}").text, key
    everything = client.get("/?view=no_such_filter").text  # an unknown filter filters nothing
    assert f'data-case="{case_no}"' in everything and "aria-current" in section(everything, "quick-filters", "</nav>")


def test_the_verdict_filter_leaves_closed_cases_out_unless_the_clerk_asks(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    case_no = returned_case(h)
    h.app.desk.close(case_no, by="山田", reason="取り下げ")
    login(client)
    assert f'data-case="{case_no}"' not in client.get("/?status=returned").text
    shown = client.get("/?status=returned&closed=1").text
    assert f'data-case="{case_no}"' in shown
    assert re.search(r'name="closed" value="1"\s+checked', shown)
    assert f'data-case="{case_no}"' in client.get("/?status=returned&stage=closed").text


def test_a_released_mail_links_to_its_case_and_the_case_history_gives_the_reason_and_the_clerk(
    web: tuple[Harness, TestClient],
) -> None:
    h, client = web
    h.import_unis()
    h.deliver(request(sender="営業 <sales@partner.example.com>"))
    h.poll()
    with h.app.sessions() as session:
        [item] = views.quarantine_rows(session)
    login(client)
    before = client.get(f"/quarantine/{item['id']}").text
    assert "社外からのメール" in before and "outside_domain" not in before and "/cases/" not in before
    h.app.desk.release(item["id"], by="yamada", reason="UBDからの正式な依頼")
    after = client.get(f"/quarantine/{item['id']}").text
    assert '<a class="case-link" href="/cases/FE-2026-00001">FE-2026-00001</a>' in after
    assert "依頼として処理(yamada" in text(after) and "released" not in text(after)
    listed = client.get("/quarantine?all=1").text
    assert 'href="/cases/FE-2026-00001">FE-2026-00001</a>' in listed and "依頼として処理(yamada)" in listed
    history = section(client.get("/cases/FE-2026-00001").text, '<table class="events', "</table>")
    first = text(re.findall(r"<tr data-event.*?</tr>", history, re.S)[0])
    assert "yamada" in first and "隔離から依頼として処理" in first and "UBDからの正式な依頼" in first


def test_the_weekly_page_names_each_week_by_its_days(web: tuple[Harness, TestClient]) -> None:
    h, client = web
    returned_case(h)
    login(client)
    page = client.get("/weekly").text
    assert re.search(r"<h2>\d+月\d+日〜(\d+月)?\d+日\(今週・集計中\)</h2>", page)
    assert "-W" not in text(page)
