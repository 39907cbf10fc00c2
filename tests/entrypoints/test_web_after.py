"""The after-acceptance pages over HTTP: the progress list's two steps, the worklist, the P番号 correction."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from mailbot.config import state_dir
from mailbot.service.commands import CorrectPNumber, ImportProgress
from mailbot.service.worklist import FIELDS
from tests.entrypoints.test_web import PASSWORD, client_for, login
from tests.fixtures.bot import CUSTOMER, Harness, make_harness
from tests.service.test_after_acceptance import (
    BASE_UNIS,
    EXTRA,
    JIMU,
    OTHER,
    P1,
    P2,
    accepted,
    case,
    opened,
    progress,
    progress_csv,
    unis,
    unis_row,
)
from tests.service.test_desk import events

# What the CLI's English report says; never on a page.
ENGLISH = re.compile(r"row\(s\)|no case for|several cases|unchanged|skipped|line \d")


@pytest.fixture
def after_web(tmp_path: Path, db_url: str) -> Iterator[tuple[Harness, TestClient]]:
    h = make_harness(tmp_path, db_url, EXTRA)
    h.app.accounts.add("yamada", "clerk", PASSWORD)
    h.app.accounts.add("miru", "viewer", PASSWORD)
    h.import_unis(BASE_UNIS)
    yield h, client_for(h)
    h.app.close()


@pytest.fixture
def entered(after_web: tuple[Harness, TestClient]) -> tuple[Harness, TestClient, str, str]:
    """A case entered at NTT with P1, and a clerk logged in: the harness, the client, the case, the CSRF token."""
    h, client = after_web
    return h, client, entered_case(h), login(client)


def entered_case(h: Harness) -> str:
    """A case entered at NTT with P1: what the progress list moves."""
    case_no = accepted(h)
    h.app.desk.entered(case_no, P1, by="山田")
    return case_no


def uploads(h: Harness) -> list[str]:
    folder = state_dir(h.config_path.parent) / "uploads" / "progress"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def upload(client: TestClient, token: str, data: bytes, name: str = "進捗リスト.csv") -> str:
    """Upload a list; the page the clerk lands on (the report, or the refusal)."""
    answer = client.post("/progress/upload", data={"csrf_token": token}, files={"file": (name, data, "text/csv")})
    assert answer.status_code == 200, answer.text
    return answer.text


def apply_form(html: str) -> dict[str, str]:
    form = html[html.index('action="/progress/apply"') :]
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form[: form.index("</form>")]))
    return fields


def test_an_uploaded_list_shows_its_japanese_report_and_changes_nothing_until_applied(
    entered: tuple[Harness, TestClient, str, str],
) -> None:
    h, client, case_no, token = entered
    page = upload(client, token, progress_csv(f"{P1},,株式会社さくら商事,開通,2026/11/28,2026/12/01,",
                                              "P5555555555555,,知らない会社,開通,,2026/12/01,"))  # fmt: skip
    assert "進捗リスト.csv を読み込みました(まだ反映していません)" in page
    assert "2行: 案件1件を進めます(開通 1件)、該当なし 1件" in page
    assert (
        "NTT入力済 → 開通(進捗「開通」、株式会社さくら商事、工事日 2026/11/28、開通日 2026/12/01)"
        " メール: 「開通のお知らせ」(支店へ)" in page
    )
    assert "P番号 P5555555555555 知らない会社: 該当する案件がありません(進捗「開通」)" in page
    assert f'href="/cases/{case_no}"' in page and not ENGLISH.search(page)
    assert case(h, case_no)["stage"] == "entered" and h.outbox("completed_notice") == []
    assert len(uploads(h)) == 2  # the list and what was checked of it, kept on the server
    done = client.post("/progress/apply", data=apply_form(page))
    assert done.status_code == 200
    assert "進捗リスト.csv を反映しました。2行: 案件1件を進めました(開通 1件)、該当なし 1件" in done.text
    assert "反映した行" in done.text and not ENGLISH.search(done.text)
    assert case(h, case_no)["stage"] == "completed" and len(h.outbox("completed_notice")) == 1
    assert (
        events(h, case_no)[-1][3]
        == "進捗リスト 進捗リスト.csv 2行目: 開通; 工事日 2026/11/28; 開通日 2026/12/01; 取込: yamada"
    )
    assert uploads(h) == []
    # Posting the same form again applies nothing twice.
    again = client.post("/progress/apply", data=apply_form(page))
    assert "確認した進捗リストが見つかりません" in again.text
    assert len(h.outbox("completed_notice")) == 1


def test_a_list_that_cannot_be_read_is_refused_in_one_japanese_line_and_nothing_is_kept(
    after_web: tuple[Harness, TestClient],
) -> None:
    h, client = after_web
    token = login(client)
    page = upload(client, token, progress_csv(f"{P1},,,開通,,2026/12/01,", f"{P2},,,開通,,12月1日,"))
    assert "進捗リスト.csv の3行目: 開通日「12月1日」は日付(例: 2026/12/01)として読めません" in page
    assert 'class="flash ng"' in page and 'action="/progress/apply"' not in page and not ENGLISH.search(page)
    assert uploads(h) == []


def test_a_list_changed_on_the_server_after_its_check_is_refused(entered: tuple[Harness, TestClient, str, str]) -> None:
    h, client, case_no, token = entered
    page = upload(client, token, progress_csv(f"{P1},,,工事日確定,2026/11/28,,"))
    folder = state_dir(h.config_path.parent) / "uploads" / "progress"
    [stored] = folder.glob("*.bin")
    stored.write_bytes(progress_csv(f"{P1},,,キャンセル,,,2026/11/30"))
    answer = client.post("/progress/apply", data=apply_form(page))
    assert "確認のときから変わっているため、反映していません" in answer.text
    assert case(h, case_no)["stage"] == "entered" and uploads(h) == []


def test_a_report_outdated_by_another_import_is_refused_and_shown_again_as_it_is_now(
    entered: tuple[Harness, TestClient, str, str],
) -> None:
    h, client, case_no, token = entered
    data = progress_csv(f"{P1},,,工事日確定,2026/11/28,,")
    page = upload(client, token, data)
    assert "NTT入力済 → 工事日確定" in page
    h.app.bus.handle(ImportProgress(progress_csv(f"{P1},,,開通,2026/11/28,2026/12/01,"), "別の.csv", h.clock()))
    answer = client.post("/progress/apply", data=apply_form(page))
    assert "確認したときから案件の状態が変わったため反映していません" in answer.text
    assert "すでに「開通」です" in answer.text  # the report as it is now, to check again
    assert case(h, case_no)["stage"] == "completed"


def test_the_token_of_another_session_applies_nothing_and_a_viewer_cannot_upload(
    after_web: tuple[Harness, TestClient],
) -> None:
    h, client = after_web
    case_no = entered_case(h)
    page = upload(client, login(client), progress_csv(f"{P1},,,工事日確定,2026/11/28,,"))
    other = client_for(h)
    answer = other.post("/progress/apply", data={**apply_form(page), "csrf_token": login(other)})
    assert "確認した進捗リストが見つかりません" in answer.text
    assert case(h, case_no)["stage"] == "entered"
    viewer = client_for(h)
    refused = viewer.post(
        "/progress/upload",
        data={"csrf_token": login(viewer, "miru")},
        files={"file": ("a.csv", progress_csv(f"{P1},,,開通,,2026/12/01,"), "text/csv")},
    )
    assert refused.status_code == 403


def test_the_worklist_page_lists_the_rows_downloads_the_mails_xlsx_and_sends_it_now(
    after_web: tuple[Harness, TestClient],
) -> None:
    h, client = after_web
    case_no = opened(h)
    token = login(client)
    page = client.get("/worklist").text
    assert "ワークリスト" in page and f'data-case="{case_no}"' in page and "2026/12/01" in page
    assert all(f"<th>{f}</th>" in page for f in FIELDS)
    download = client.get("/worklist.xlsx")
    assert download.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "UNIS%E7%A2%BA%E5%AE%9A" in download.headers["content-disposition"]  # UNIS確定作業リスト_….xlsx
    sheet = load_workbook(io.BytesIO(download.content)).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(FIELDS) and rows[1][0] == CUSTOMER and rows[1][7] == P1
    sent = client.post("/worklist/send", data={"csrf_token": token})
    assert f"事務センター({JIMU})宛ての作業リスト(UNIS確定 1件、添付 UNIS確定作業リスト_" in sent.text
    [mail] = h.outbox("jimu_worklist")
    assert mail["to"] == [JIMU] and mail["status"] == "pending"


def test_a_p_number_is_corrected_from_the_case_page_and_its_history_shows_the_old_value(
    after_web: tuple[Harness, TestClient],
) -> None:
    h, client = after_web
    case_no, other = accepted(h), accepted(h, OTHER)
    token = login(client)
    assert 'data-action="correct_p_number"' not in client.get(f"/cases/{case_no}").text  # no P番号 yet
    h.app.desk.entered(case_no, P1, by="山田")
    h.app.desk.entered(other, P2, by="山田")
    assert 'data-action="correct_p_number"' in client.get(f"/cases/{case_no}").text
    taken = client.post(
        f"/cases/{case_no}/correct_p_number", data={"csrf_token": token, "p_number": P2, "note": "誤り"}
    )
    assert f"P番号 {P2} は {other} に記録済みです" in taken.text
    right = "P1111111111111"
    answer = client.post(
        f"/cases/{case_no}/correct_p_number", data={"csrf_token": token, "p_number": right, "note": "NTT画面と照合"}
    )
    assert f"{case_no}: P番号を {P1} から {right} に訂正しました" in answer.text
    assert f"P番号 {P1}→{right}(理由: NTT画面と照合)" in answer.text and "P番号の訂正" in answer.text
    assert case(h, case_no)["p_number"] == right


def test_every_stage_change_after_acceptance_is_a_readable_row_of_the_case_pages_history(
    after_web: tuple[Harness, TestClient],
) -> None:
    h, client = after_web
    case_no, cancelled = accepted(h), accepted(h, OTHER)
    h.app.desk.entered(case_no, P1, by="山田")
    h.app.desk.entered(cancelled, P2, by="山田")
    progress(h, progress_csv(f"{P1},,,工事日確定,2026/11/28,,", f"{P2},,,キャンセル,,,2026/11/30"))
    progress(h, progress_csv(f"{P1},,,開通,2026/11/28,2026/12/01,"))
    h.app.bus.handle(CorrectPNumber(case_no, by="山田", p_number="P1111111111111", reason="入力誤り"))
    unis(h, [unis_row(CUSTOMER, "確定"), unis_row(OTHER)])
    login(client)

    def history(no: str) -> list[tuple[str, str, str, str]]:
        page = client.get(f"/cases/{no}").text
        table = page[page.index('<table class="events') :]
        rows = re.findall(r'<tr data-event="\w+">(.*?)</tr>', table[: table.index("</table>")], re.S)
        cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
        return [(c[1], c[2], c[3], c[4]) for c in cells]  # 出来事, 実施者, きっかけ, メモ

    bot, listed = "mailbot(自動)", "進捗リスト progress.csv"
    after = [row for row in history(case_no) if row[0] != "受付"]
    assert after == [
        ("NTT入力", "山田", "デスクの操作", f"P番号 {P1}"),
        (
            "工事日確定",
            "mailbot(自動)",
            "進捗リスト取込",
            "進捗リスト progress.csv 2行目: 工事日確定; 工事日 2026/11/28",
        ),
        ("開通", "mailbot(自動)", "進捗リスト取込", "進捗リスト progress.csv 2行目: 開通; 開通日 2026/12/01"),
        ("P番号の訂正", "山田", "デスクの操作", f"P番号 {P1}→P1111111111111(理由: 入力誤り)"),
        ("UNIS確定", bot, "UNIS取込の照合", "UNIS Z200214 確定 (C1234/001)"),
    ]
    assert history(cancelled)[-1] == (
        "キャンセル", bot, "進捗リスト取込", f"{listed} 3行目: キャンセル; キャンセル日 2026/11/30"
    )  # fmt: skip
