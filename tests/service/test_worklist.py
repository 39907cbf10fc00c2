"""事務センター's worklist, line by line (manual §5 事務センターの処理内容, cases 2 to 4)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from mailbot.service.worklist import (
    FIELDS,
    HELD_FIELDS,
    PARTIAL,
    held_rows,
    send_worklist,
    worklist_rows,
    worklist_text,
    worklist_xlsx,
)
from tests.fixtures.bot import SHIBUYA_MGR, Harness, make_harness
from tests.fixtures.unis_export import FULL_HEADER, HEADER, bgm, brokerage, customer, load
from tests.service.test_after_acceptance import EXTRA, JIMU, P1, P2, accepted, progress, progress_csv
from tests.service.test_intake import request

HEADERS = pytest.mark.parametrize("header", [FULL_HEADER, HEADER], ids=["full", "eleven"])
SAKURA = customer("123456789")
SAKURA_C = customer("123456789", pattern_c=True)


@pytest.fixture
def jimu(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, EXTRA + '\n[ubd]\ndomains = ["ubd-net.example.jp"]\n')
    yield h
    h.app.close()


def rows_of(h: Harness) -> list[dict[str, str]]:
    with h.app.sessions() as session:
        return [r.as_json() for r in worklist_rows(session, today=h.clock().date())]


def open_case(h: Harness, case_no: str, p_number: str = P1) -> None:
    h.app.desk.entered(case_no, p_number, by="山田")
    progress(h, progress_csv(f"{p_number},,,開通,2026/11/28,2026/12/01,"))


@HEADERS
def test_a_case_stays_on_the_worklist_until_its_own_line_is_confirmed_whatever_an_older_line_says(
    jimu: Harness, header: Sequence[str]
) -> None:
    older = brokerage(SAKURA, "C1001", "001", "確定", ordered="2024/05/10", serial=P2, confirmed="2024/06/01")
    rows = [bgm(SAKURA, "C1001", "003"), older, brokerage(SAKURA, "C1001", "002")]
    load(jimu, rows, header)
    case_no = accepted(jimu)
    open_case(jimu, case_no)
    load(jimu, rows, header)
    [row] = rows_of(jimu)
    assert row == {
        "case_no": case_no,
        "顧客CD": "123456789",
        "顧客名": "株式会社さくら商事",
        "契約No": "C1001",
        "明細No": "002",
        "契約品目": "Z200214",
        "開始年月": "処理日",
        "完成予定日": "2026/12/01",
        "シリアルNO": P1,
        "確定日": "処理日",
        "備考": "",
    }
    load(jimu, [*rows[:2], brokerage(SAKURA, "C1001", "002", "確定", serial=P1)], header)
    assert rows_of(jimu) == []


@HEADERS
def test_a_flets_line_opened_before_the_bgm_line_is_marked_for_a_partial_confirmation(
    jimu: Harness, header: Sequence[str]
) -> None:
    # Manual case 2: FLET'S and BGM ordered together, FLET'S opened first; BGM still 受注.
    rows = [bgm(SAKURA, "C1001", "001", "受注", ordered="2026/11/20"), brokerage(SAKURA, "C1001", "002")]
    load(jimu, rows, header)
    case_no = accepted(jimu)
    open_case(jimu, case_no)
    [row] = rows_of(jimu)
    assert (row["明細No"], row["備考"]) == ("002", PARTIAL)


def test_a_flets_only_customer_who_added_bgm_before_the_opening_is_marked_for_a_partial_confirmation(
    jimu: Harness,
) -> None:
    # Manual case 4: FLET'S alone (pattern C), then a BGM contract added, FLET'S opened first.
    load(jimu, [brokerage(SAKURA_C, "C1001", "001", pattern_c=True)])
    case_no = accepted(jimu)
    open_case(jimu, case_no)
    assert rows_of(jimu)[0]["備考"] == ""
    load(jimu, [brokerage(SAKURA_C, "C1001", "001", pattern_c=True), bgm(SAKURA_C, "C1002", "001", "受注")])
    assert rows_of(jimu)[0]["備考"] == PARTIAL


def test_a_confirmed_bgm_line_before_the_opening_puts_the_flets_line_on_the_list_to_leave_ordered(
    jimu: Harness,
) -> None:
    # Manual case 3: BGM opened first and confirmed; the Z200214 line stays 受注 until FLET'S opens.
    rows = [bgm(SAKURA, "C1001", "001", "確定"), brokerage(SAKURA, "C1001", "002")]
    load(jimu, rows)
    case_no = accepted(jimu)
    with jimu.app.sessions() as session:
        [held] = held_rows(session)
        assert worklist_rows(session, today=jimu.clock().date()) == []
    assert (held.case_no, held.contract_no, held.line_no) == (case_no, "C1001", "002")
    assert "受注のまま" in held.note and "C1001/001" in held.note
    text = worklist_text([], [held])
    assert text.startswith("(対象の案件はありません)") and "■ 確定しない明細" in text and case_no in text
    app = jimu.app
    sent = send_worklist(app.sessions, app.renderer, policy=app.config.policy, settings=app.config.after,
                         clock=jimu.clock)  # fmt: skip
    assert sent == 1
    app.intake.deliver_outbox()
    [mail] = jimu.sent_mail("jimu_worklist")
    assert mail["To"] == JIMU
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "ケース3" in body and case_no in body
    [attachment] = list(mail.iter_attachments())
    book = load_workbook(io.BytesIO(attachment.get_content()))
    assert book.sheetnames == ["UNIS確定", "確定しない明細"]
    values = [list(r) for r in book["確定しない明細"].iter_rows(values_only=True)]
    assert values[0] == list(HELD_FIELDS) and values[1][:5] == [
        case_no,
        "123456789",
        "株式会社さくら商事",
        "C1001",
        "002",
    ]
    open_case(jimu, case_no)
    with jimu.app.sessions() as session:
        assert held_rows(session) == []
        assert [r.line_no for r in worklist_rows(session, today=jimu.clock().date())] == ["002"]


def test_a_ubd_case_without_a_customer_code_never_appears(jimu: Harness) -> None:
    load(jimu, [brokerage(SAKURA_C, "C1001", "001", pattern_c=True)])
    ubd = "partner@ubd-net.example.jp"
    jimu.deliver(request(sender=ubd, cc=[SHIBUYA_MGR], body="お疲れ様です。\n", message_id="u1@ubd"))
    jimu.poll()
    [case] = [c for c in jimu.cases() if c["sender"] == ubd]
    assert (case["status"], case["customer_code"]) == ("accepted", None)
    open_case(jimu, case["case_no"])
    assert next(c for c in jimu.cases() if c["sender"] == ubd)["stage"] == "completed"
    assert rows_of(jimu) == []


def test_the_xlsx_has_the_manuals_fields_with_the_line_and_the_processing_day(jimu: Harness) -> None:
    load(jimu, [bgm(SAKURA, "C1001", "001", "受注"), brokerage(SAKURA, "C1001", "002")])
    case_no = accepted(jimu)
    open_case(jimu, case_no)
    with jimu.app.sessions() as session:
        rows = worklist_rows(session, today=jimu.clock().date())
    sheet = load_workbook(io.BytesIO(worklist_xlsx(rows))).active
    assert sheet is not None
    values: list[list[Any]] = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values == [
        list(FIELDS),
        ["123456789", "株式会社さくら商事", "C1001", "002", "Z200214", "処理日", "2026/12/01", P1, "処理日", PARTIAL],
    ]
