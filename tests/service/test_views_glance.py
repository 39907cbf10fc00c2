"""The read models behind the pages a clerk reads at a glance: the check table, the quick filters, quarantine links."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from mailbot.adapters.database.schema import Case, Outbox
from mailbot.service import views
from mailbot.service.defect_titles import defect_facts
from mailbot.service.mail_samples import _SAMPLE_DEFECTS
from mailbot.service.unis_import import import_unis
from tests.fixtures.bot import DEFAULT_UNIS_ROWS, OTHER_UNIS_ROW, UNIS_HEADER, Harness
from tests.service.test_desk import answer, detail, events, request, returned_case

SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


def rows(h: Harness, case_no: str) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in detail(h, case_no)["checks"]}


def unis_without_rechecking(h: Harness, rows: tuple[str, ...], *, hours: float = 0) -> None:
    """A UNIS export lands, and nothing is decided again (the returned cases keep their verdict)."""
    data = ("\r\n".join([UNIS_HEADER, *rows]) + "\r\n").encode("cp932")
    import_unis(h.app.sessions, data, name="unis.csv", as_of=h.clock() + timedelta(hours=hours), now=h.clock())


def board(h: Harness, **filters: Any) -> list[str]:
    with h.app.sessions() as session:
        result = views.case_board(session, now=h.clock(), wait_hours=48, **filters)
    return [row["case_no"] for row in result["rows"]]


# -- the check table -----------------------------------------------------------------------------------------


def test_the_check_table_says_問題なし_or_the_recorded_defect_and_agrees_with_the_current_defects(
    desk: Harness,
) -> None:
    case_no = returned_case(desk)  # no manager in CC
    case = detail(desk, case_no)
    table = rows(desk, case_no)
    assert table["manager_cc_missing"]["verdict"] == "defect"
    assert table["manager_cc_missing"]["topic"] == "支店長(依頼部署責任者)のCC"
    # One source: the rows' defects are 現在の不備, the rows 未確認 are the case's 未確認 notes.
    assert {d["code"] for r in table.values() for d in r["defects"]} == {d["code"] for d in case["defects"]}
    assert {n for n, r in table.items() if r["verdict"] == "unchecked"} == {u["check"] for u in case["unchecked"]}
    assert {r["verdict"] for n, r in table.items() if n != "manager_cc_missing"} <= {"ok", "unchecked"}
    assert case["recheck"] == {"unis_as_of": case["recheck"]["unis_as_of"], "rows": []}


def test_a_fresh_run_that_would_differ_is_said_apart_and_never_changes_the_recorded_row(desk: Harness) -> None:
    unis_without_rechecking(desk, (OTHER_UNIS_ROW,), hours=1)  # newer than the mail: its verdict stands
    desk.deliver(request())
    desk.poll()
    [case] = desk.cases()
    assert (case["status"], case["defects"]) == ("returned", ["unis_customer_missing"])
    unis_without_rechecking(desk, DEFAULT_UNIS_ROWS, hours=2)  # the customer is registered since
    found = detail(desk, case["case_no"])
    row = {r["name"]: r for r in found["checks"]}["unis_customer_missing"]
    assert row["verdict"] == "defect"  # what the case records, as 現在の不備 says
    assert "UNIS " in defect_facts(row["defects"][0]) and "時点" in defect_facts(row["defects"][0])
    again = {r["name"]: r for r in found["recheck"]["rows"]}
    assert again["unis_customer_missing"]["verdict"] == "ok"


def test_a_case_waiting_for_unis_shows_its_rows_as_waiting_not_as_returned(desk: Harness) -> None:
    unis_without_rechecking(desk, (OTHER_UNIS_ROW,), hours=-1)  # older than the mail: the request waits
    desk.deliver(request())
    desk.poll()
    [case] = desk.cases()
    assert case["status"] == "waiting_unis"
    assert rows(desk, case["case_no"])["unis_customer_missing"]["verdict"] == "waiting"


def test_what_the_review_could_not_check_is_未確認_never_問題なし(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request())
    desk.poll()
    [case] = desk.cases()
    with desk.app.sessions.begin() as session:
        why = "UNISの登録内容(開始年月)は確認していません"
        session.execute(update(Case).values(unchecked=[{"check": "unis_line_values", "why": why}]))
    row = rows(desk, case["case_no"])["unis_line_values"]
    assert (row["verdict"], row["verdict_label"], row["unchecked"]) == ("unchecked", "未確認", why)
    assert detail(desk, case["case_no"])["unchecked"] == [{"check": "unis_line_values", "why": why}]


def test_a_case_accepted_despite_defects_records_none_and_the_fresh_run_names_them(desk: Harness) -> None:
    case_no = returned_case(desk)
    desk.app.desk.accept(case_no, by="山田", note="副支店長がCCに入っていたため")
    found = detail(desk, case_no)
    assert found["defects"] == [] and found["decided_by"] == "山田"
    assert [r["name"] for r in found["checks"] if r["defects"]] == []
    assert [r["name"] for r in found["recheck"]["rows"] if r["defects"]] == ["manager_cc_missing"]


def test_every_defects_facts_read_in_japanese_with_the_unis_moment_in_jst() -> None:
    for defect in _SAMPLE_DEFECTS:
        facts = defect_facts({"code": defect.code, "detail": dict(defect.detail)})
        assert not SNAKE.search(facts), (defect.code, facts)
        assert "=" not in facts
    assert (
        defect_facts(
            {
                "code": "unis_customer_missing",
                "detail": {"customer_code": "1", "unis_as_of": "2026-12-07T00:00:00+00:00"},
            }
        )
        == "顧客CD 1、UNIS 12/07 09:00時点"
    )
    assert (
        defect_facts({"code": "customer_code_missing", "detail": {"digits": "9", "pdf": "1"}})
        == "顧客CD 9桁、添付PDFあり"
    )
    assert "デスクが選んだ" in defect_facts({"code": "subject_form", "detail": {"by_person": "1"}})


# -- quick filters -------------------------------------------------------------------------------------------


def test_returned_today_is_the_returns_of_the_desks_day_in_japan_time(desk: Harness) -> None:
    case_no = returned_case(desk)
    assert board(desk, quick=views.Quick("returned_today", desk.clock(), 48)) == [case_no]
    tomorrow = desk.clock() + timedelta(days=1)
    assert board(desk, quick=views.Quick("returned_today", tomorrow, 48)) == []


def test_a_return_closed_since_is_not_among_todays_returns(desk: Harness) -> None:
    case_no = returned_case(desk)
    desk.app.desk.close(case_no, by="山田", reason="取り下げ")
    assert board(desk, quick=views.Quick("returned_today", desk.clock(), 48)) == []


def test_要対応_keeps_a_question_a_note_did_not_settle_and_drops_it_once_answered(desk: Harness) -> None:
    case_no = returned_case(desk)
    answer(desk, case_no, body="工事日はいつ頃になりますか?")
    desk.poll()
    attention = views.Quick("attention", desk.clock(), 48)
    assert board(desk, quick=attention) == [case_no]
    desk.app.desk.note(case_no, "支店に電話する予定", by="山田")
    assert board(desk, quick=attention) == [case_no]  # as the case page's mark says: a note settles nothing
    desk.app.desk.handled(case_no, by="山田", note="電話で回答")
    assert board(desk, quick=attention) == []


def test_要対応_lists_an_unanswered_question_and_a_failed_mail_until_a_person_acts(desk: Harness) -> None:
    first = returned_case(desk)
    desk.deliver(request(subject="フレッツエスカ 新宿支店", cc=["shinjuku-mgr@usen.co.jp"]))
    desk.poll()
    second = desk.cases()[-1]["case_no"]
    attention = views.Quick("attention", desk.clock(), 48)
    assert board(desk, quick=attention) == []
    with desk.app.sessions.begin() as session:
        session.execute(update(Outbox).where(Outbox.id == 1).values(status="failed"))
    assert board(desk, quick=attention) == [first]
    desk.app.desk.note(first, "支店に電話済み", by="山田")
    assert board(desk, quick=attention) == [first]  # the failed mail still waits for a person
    assert second not in board(desk, quick=attention)


def test_the_verdict_filter_leaves_closed_cases_out_unless_asked(desk: Harness) -> None:
    case_no = returned_case(desk)
    desk.app.desk.close(case_no, by="山田", reason="取り下げ")
    assert board(desk, status="returned", open_only=True) == []
    assert board(desk, status="returned") == [case_no]


# -- quarantine ----------------------------------------------------------------------------------------------


def test_a_released_mail_links_to_its_case_whose_history_starts_with_the_reason_and_the_clerk(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request(sender="営業 <sales@partner.example.com>"))
    desk.poll()
    with desk.app.sessions() as session:
        [row] = views.quarantine_rows(session)
    assert row["case_no"] is None
    desk.app.desk.release(row["id"], by="山田", reason="UBDからの正式な依頼")
    with desk.app.sessions() as session:
        [done] = views.quarantine_rows(session, include_resolved=True)
        item = views.quarantine_detail(session, row["id"])
    assert done["case_no"] == item["case_no"] == "FE-2026-00001"
    [(event, actor, reason, note)] = events(desk, "FE-2026-00001")[:1]
    assert event == "accept"
    assert (actor, reason) == ("山田", "released")
    assert note is not None and "UBDからの正式な依頼" in note
    [first] = detail(desk, "FE-2026-00001")["events"][:1]
    assert first["reason_label"] == "隔離から依頼として処理"


def test_every_fact_a_check_records_has_a_label_or_is_said_by_another() -> None:
    import ast
    from pathlib import Path

    from mailbot.domain import checks
    from mailbot.service.defect_titles import FACT_LABELS, UNSHOWN_FACTS

    tree = ast.parse(Path(checks.__file__).read_text(encoding="utf-8"))
    keys = {
        k.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for k in node.keys
        if isinstance(k, ast.Constant) and isinstance(k.value, str)
    }
    assert {"customer_code", "unis_as_of", "digits"} <= keys  # the scan finds the details
    assert sorted(keys - set(FACT_LABELS) - UNSHOWN_FACTS) == []
