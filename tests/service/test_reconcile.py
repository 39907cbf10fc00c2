"""The UNIS reconciliation, line by line (manual §5, §6), from exports as the manual's screens fill them.

Each rule runs on the full export (every column of the manual) and, where the
rule needs no more, on the standard 11 columns. A real bot throughout: the
mails are the .eml files delivered, the history is the case's events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mailbot.adapters.database.schema import Case, JobRun
from tests.fixtures.bot import CUSTOMER, OPS, SHIBUYA_MGR, Harness, make_harness, rebuild
from tests.fixtures.unis_export import FULL_HEADER, HEADER, bgm, brokerage, customer, load
from tests.service.test_after_acceptance import EXTRA, P1, P2, accepted, case, progress, progress_csv
from tests.service.test_desk import events

HEADERS = pytest.mark.parametrize("header", [FULL_HEADER, HEADER], ids=["full", "eleven"])
OLD = "300000001"  # a 未加入店 registered before Sept 2017, with no mailbot case
NEW = "300000002"  # the same shop as a BGM subscriber, its FLET'S line moved to it (§5④)
SAKURA = customer(CUSTOMER)  # a BGM subscriber: pattern A/B
SAKURA_C = customer(CUSTOMER, pattern_c=True)  # FLET'S only: pattern C


@pytest.fixture
def after(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, EXTRA)
    yield h
    h.app.close()


def open_case(h: Harness, case_no: str, p_number: str, opened: str = "2026/12/01") -> None:
    h.app.desk.entered(case_no, p_number, by="山田")
    progress(h, progress_csv(f"{p_number},,株式会社さくら商事,開通,2026/11/28,{opened},"))


def bound(h: Harness, case_no: str) -> tuple[str | None, str | None]:
    with h.app.sessions() as session:
        row = session.scalars(select(Case).where(Case.case_no == case_no)).one()
        return row.contract_no, row.line_no


def kinds(report: Any) -> list[tuple[str, str, str]]:
    return [(r["case_no"], r["kind"], r["line"]) for r in report.reminders]


# -- 確定: only the bound line moves the case ----------------------------------------------------------------
@HEADERS
def test_an_old_confirmed_line_does_not_confirm_the_case_bound_to_the_new_ordered_line(
    after: Harness, header: Sequence[str]
) -> None:
    old_line = brokerage(SAKURA, "C1001", "001", "確定", ordered="2024/05/10", serial=P2, confirmed="2024/06/01")
    rows = [bgm(SAKURA, "C1001", "003"), old_line, brokerage(SAKURA, "C1001", "002")]
    load(after, rows, header)
    case_no = accepted(after)
    assert bound(after, case_no) == ("C1001", "002")
    open_case(after, case_no, P1)
    report = load(after, rows, header)
    assert report.confirmed == [] and case(after, case_no)["stage"] == "completed"
    now_confirmed = [*rows[:2], brokerage(SAKURA, "C1001", "002", "確定", serial=P1, confirmed="2026/12/03")]
    report = load(after, now_confirmed, header)
    assert report.confirmed == [case_no] and case(after, case_no)["stage"] == "unis_confirmed"
    assert "C1001/002" in (events(after, case_no)[-1][3] or "")


@HEADERS
def test_two_live_cases_of_one_customer_each_follow_their_own_line(after: Harness, header: Sequence[str]) -> None:
    rows = [bgm(SAKURA, "C1001", "001"), brokerage(SAKURA, "C1001", "002"), brokerage(SAKURA, "C1001", "003")]
    load(after, rows, header)
    first, second = accepted(after), accepted(after)
    lines = {bound(after, first), bound(after, second)}
    assert lines == {("C1001", "002"), ("C1001", "003")}
    open_case(after, first, P1)
    after.app.desk.entered(second, P2, by="山田")
    progress(after, progress_csv(f"{P2},,,キャンセル,,,2026/11/24"))
    second_line = "/".join(x or "" for x in bound(after, second))
    first_line = "/".join(x or "" for x in bound(after, first))
    after.clock.advance(days=7)
    report = load(after, rows, header)
    # §6: the cancelled case's own line, never the opened case's line of the same customer.
    assert kinds(report) == [(second, "unis_cancel_reminder", second_line)]
    [reminder] = after.sent_mail("unis_cancel_reminder")
    assert second_line in reminder.get_content() and first_line not in reminder.get_content()
    confirmed = [brokerage(SAKURA, "C1001", first_line[-3:], "確定", serial=P1) if r.get("line_no") == first_line[-3:]
                 else r for r in rows]  # fmt: skip
    report = load(after, confirmed, header)
    assert report.confirmed == [first] and kinds(report) == []
    assert (case(after, first)["stage"], case(after, second)["stage"]) == ("unis_confirmed", "cancelled")


def test_an_unbound_completed_case_is_confirmed_only_when_its_customer_has_one_z200214_line(after: Harness) -> None:
    rows = [brokerage(SAKURA_C, "C1001", "001", pattern_c=True)]
    load(after, rows)
    case_no = accepted(after)
    open_case(after, case_no, P1)
    with after.app.sessions.begin() as session:  # a case accepted before cases were bound
        session.execute(update(Case).where(Case.case_no == case_no).values(contract_no=None, line_no=None))
    two = [brokerage(SAKURA_C, "C1001", "001", "確定", serial=P1, pattern_c=True),
           brokerage(SAKURA_C, "C1002", "001", pattern_c=True)]  # fmt: skip
    report = load(after, two)
    assert report.confirmed == [] and any(case_no in n and "この明細に紐付ける" in n for n in report.notes)
    report = load(after, two[:1])
    assert report.confirmed == [case_no]


# -- §6 ----------------------------------------------------------------------------------------------------------
@HEADERS
def test_a_cancelled_case_whose_line_is_already_cancelled_in_unis_gets_no_reminder(
    after: Harness, header: Sequence[str]
) -> None:
    load(after, [brokerage(SAKURA_C, "C1001", "001", pattern_c=True)], header)
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    progress(after, progress_csv(f"{P1},,,キャンセル,,,2026/11/20"))
    after.clock.advance(days=8)
    voided = brokerage(SAKURA_C, "C1001", "001", "キャンセル", cancelled="2026/11/27", pattern_c=True)
    report = load(after, [voided], header)
    assert report.reminders == [] and after.outbox("unis_cancel_reminder") == []


# -- §5⑤ -------------------------------------------------------------------------------------------------------
@HEADERS
def test_a_customer_with_no_case_whose_bgm_is_cancelled_gets_one_mail_to_its_branch_and_ops(
    after: Harness, header: Sequence[str]
) -> None:
    shop = customer(OLD, "喫茶みなと")
    rows = [bgm(shop, "C2001", "001", "解約", cancelled="2026/11/15", reason="01-01 閉店"),
            brokerage(shop, "C2001", "002", "確定", serial=P2, confirmed="2020/03/01")]  # fmt: skip
    report = load(after, rows, header)
    assert kinds(report) == [("", "bgm_cancel_reminder", "C2001/002")]
    assert report.reminders[0]["customer_code"] == OLD
    [mail] = after.sent_mail("bgm_cancel_reminder")
    assert mail["To"] == SHIBUYA_MGR and mail["Cc"] == OPS
    text = mail.get_content()
    assert OLD in text and "C2001/002" in text and "§5⑤" in text and "受付番号" not in text
    assert f"顧客CD {OLD}" in mail["Subject"]
    rebuild(after)
    assert load(after, rows, header).reminders == []
    with after.app.sessions() as session:
        assert session.scalar(select(JobRun.key).where(JobRun.job == "unis_reminder")) == (
            f"bgm_cancel_reminder:{OLD}:C2001/002"
        )


@HEADERS
def test_a_cancelled_z200214_line_is_not_active_so_a_cancelled_bgm_customer_is_left_alone(
    after: Harness, header: Sequence[str]
) -> None:
    shop = customer(OLD, "喫茶みなと", status="解約")
    rows = [bgm(shop, "C2001", "001", "解約", cancelled="2026/11/15"),
            brokerage(shop, "C2001", "002", "キャンセル", cancelled="2026/11/15"),
            brokerage(shop, "C2001", "003", "解約", cancelled="2026/11/15")]  # fmt: skip
    assert load(after, rows, header).reminders == []
    assert after.outbox("bgm_cancel_reminder") == []


def test_a_bgm_cancellation_on_a_line_bound_to_a_case_is_the_cases_event_and_ops_are_copied(after: Harness) -> None:
    rows = [bgm(SAKURA, "C1001", "001"), brokerage(SAKURA, "C1001", "002")]
    load(after, rows)
    case_no = accepted(after)
    open_case(after, case_no, P1)
    gone = [bgm(SAKURA, "C1001", "001", "解約", cancelled="2026/12/02"), brokerage(SAKURA, "C1001", "002", "確定")]
    report = load(after, gone)
    assert kinds(report) == [(case_no, "bgm_cancel_reminder", "C1001/002")]
    assert [e[0] for e in events(after, case_no)].count("remind_bgm_cancel") == 1
    [mail] = after.sent_mail("bgm_cancel_reminder")
    assert OPS in mail["Cc"] and SHIBUYA_MGR in mail["Cc"] and case_no in mail["Subject"]


def test_the_bgm_candidates_come_from_one_aggregate_and_a_live_bgm_line_keeps_the_customer_out(
    after: Harness,
) -> None:
    shop = customer(OLD, "喫茶みなと")
    rows = [bgm(shop, "C2001", "001", "解約"), bgm(shop, "C2001", "003", "確定", item="K500001"),
            brokerage(shop, "C2001", "002", "確定")]  # fmt: skip
    assert load(after, rows).reminders == []


# -- §5③ -------------------------------------------------------------------------------------------------------
def test_a_non_subscriber_case_whose_customer_takes_bgm_before_the_opening_is_asked_to_change_the_class(
    after: Harness,
) -> None:
    shop = customer(CUSTOMER, klass="1 業務用", pattern_c=True)
    load(after, [brokerage(shop, "C1001", "001", pattern_c=True)])
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    non_subscriber = customer(CUSTOMER, klass="9 未加入店", pattern_c=True)
    report = load(after, [brokerage(non_subscriber, "C1001", "001", pattern_c=True)])
    assert report.reminders == []  # no BGM line yet: nothing to change
    rows = [brokerage(non_subscriber, "C1001", "001", pattern_c=True), bgm(non_subscriber, "C1002", "001", "受注")]
    report = load(after, rows)
    assert kinds(report) == [(case_no, "class_change_reminder", "C1001/001")]
    [mail] = after.sent_mail("class_change_reminder")
    assert mail["To"] == "taro@usen.co.jp" and case_no in mail["Subject"]
    assert "「1 業務用(=加入店)」へ" in mail.get_content() and "§5③" in mail.get_content()
    assert events(after, case_no)[-1][0] == "remind_class_change"
    assert load(after, rows).reminders == []


# -- §5④ -------------------------------------------------------------------------------------------------------
def _moved(due: str, *, state: str = "受注", staff: str = "田中 次郎", serial: str = P1, remark: bool = True,
           old_status: str = "有効", reason: str = "") -> list[dict[str, str]]:  # fmt: skip
    old = customer(OLD, "喫茶みなと", klass="9 未加入店", status=old_status)
    new = customer(NEW, "喫茶みなと")
    old_state = "解約" if old_status == "解約" else "確定"
    return [
        brokerage(old, "C3001", "001", old_state, ordered="2016/04/01", staff="田中 次郎", serial=P1,
                  confirmed="2016/05/10", cancelled="2026/12/05" if reason else "", reason=reason),
        bgm(new, "C3002", "001", "受注", ordered="2026/11/20"),
        brokerage(new, "C3002", "002", state, ordered="2026/11/20", due=due, staff=staff, serial=serial,
                  remark=f"加入前顧客コード:{OLD}" if remark else ""),
    ]  # fmt: skip


def test_a_moved_line_of_a_customer_without_a_case_is_warned_once_when_its_values_differ(after: Harness) -> None:
    rows = _moved("2026/11/20", staff="鈴木 三郎")
    report = load(after, rows)
    assert kinds(report) == [("", "due_date_warning", "C3002/002")]
    [mail] = after.sent_mail("due_date_warning")
    assert mail["To"] == SHIBUYA_MGR and mail["Cc"] == OPS
    text = mail.get_content()
    assert "2016年4月1日" in text and "2026年11月20日" in text and "二重に計上" in text
    assert "契約担当者: 加入前 田中 次郎 / 加入後 鈴木 三郎" in text
    assert load(after, rows).reminders == []
    fixed = _moved("2016/04/01")
    assert load(after, fixed).reminders == []


def test_a_moved_line_that_kept_its_values_is_not_warned(after: Harness) -> None:
    assert load(after, _moved("2016/04/01")).reminders == []


def test_the_eleven_columns_with_the_remark_column_compare_the_due_date(after: Harness) -> None:
    header = (*HEADER, "明細備考")
    report = load(after, _moved("2026/11/20"), header)
    assert kinds(report) == [("", "due_date_warning", "C3002/002")]
    text = after.sent_mail("due_date_warning")[0].get_content()
    assert "完成予定日: 加入前 2016年4月1日 / 加入後 2026年11月20日" in text
    assert "契約担当者:" not in text  # the eleven columns carry no 契約担当者: not compared


def test_once_the_moved_line_is_confirmed_the_old_customer_is_reminded_weekly_until_cancelled_with_90_00(
    after: Harness,
) -> None:
    confirmed = _moved("2016/04/01", state="確定")
    report = load(after, confirmed)
    assert kinds(report) == [("", "old_customer_cancel_reminder", "C3002/002")]
    [mail] = after.sent_mail("old_customer_cancel_reminder")
    assert OLD in mail.get_content() and "90-00" in mail.get_content()
    assert load(after, confirmed).reminders == []  # the same week
    after.clock.advance(days=7)
    assert [r["kind"] for r in load(after, confirmed).reminders] == ["old_customer_cancel_reminder"]
    wrong_reason = _moved("2016/04/01", state="確定", old_status="解約", reason="01-01 閉店")
    after.clock.advance(days=7)
    assert [r["kind"] for r in load(after, wrong_reason).reminders] == ["old_customer_cancel_reminder"]
    done = _moved("2016/04/01", state="確定", old_status="解約", reason="90-00 契約変更時の事務処理上の解約")
    after.clock.advance(days=7)
    assert load(after, done).reminders == []


def test_a_line_moved_without_the_remark_is_flagged_by_its_serial_number_once(after: Harness) -> None:
    rows = _moved("2016/04/01", remark=False)
    report = load(after, rows)
    assert kinds(report) == [("", "moved_line_flag", "")]
    [mail] = after.sent_mail("moved_line_flag")
    text = mail.get_content()
    assert OLD in text and NEW in text and P1 in text and "加入前顧客コード" in text
    assert load(after, rows).reminders == []


def test_a_remark_naming_a_customer_missing_from_the_export_is_a_note(after: Harness) -> None:
    rows = _moved("2016/04/01")[1:]
    report = load(after, rows)
    assert report.reminders == [] and any(OLD in n for n in report.notes)


def test_the_report_reads_in_japanese_for_the_desk(after: Harness) -> None:
    report = load(after, _moved("2026/11/20"))
    lines = report.lines()
    assert lines[0] == "UNIS照合: UNIS確定 0件、お願い・注意のメール 1件"
    assert lines[1].startswith(f"  顧客CD {NEW}: 完成予定日引継ぎの注意 (")


def test_a_reminder_claimed_under_the_key_used_before_binding_is_not_sent_again(after: Harness) -> None:
    load(after, [brokerage(SAKURA_C, "C1001", "001", pattern_c=True)])
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    progress(after, progress_csv(f"{P1},,,キャンセル,,,2026/11/20"))
    with after.app.sessions.begin() as session:  # sent by the per-customer reconciliation, before the upgrade
        key = f"unis_cancel_reminder:{case_no}:C1001 / 001"
        session.add(JobRun(job="unis_reminder", key=key, done_at=after.clock()))
    after.clock.advance(days=8)
    assert load(after, [brokerage(SAKURA_C, "C1001", "001", pattern_c=True)]).reminders == []
    assert after.outbox("unis_cancel_reminder") == []


def test_an_unbound_cancelled_case_is_not_reminded_of_the_line_a_newer_case_is_bound_to(after: Harness) -> None:
    rows = [brokerage(SAKURA_C, "C1001", "001", pattern_c=True)]
    load(after, rows)
    cancelled = accepted(after)
    after.app.desk.entered(cancelled, P1, by="山田")
    progress(after, progress_csv(f"{P1},,,キャンセル,,,2026/11/20"))
    with after.app.sessions.begin() as session:  # cancelled before cases were bound
        session.execute(update(Case).where(Case.case_no == cancelled).values(contract_no=None, line_no=None))
    again = accepted(after)  # the branch asks again; UNIS keeps the one 受注 line for it
    assert bound(after, again) == ("C1001", "001")
    after.clock.advance(days=8)
    assert load(after, rows).reminders == []


def test_a_customer_of_a_branch_not_in_the_directory_is_written_to_ops_to_pass_on(after: Harness) -> None:
    shop = customer(OLD, "喫茶みなと", branch="札幌支店")
    rows = [bgm(shop, "C2001", "001", "解約"), brokerage(shop, "C2001", "002", "受注")]
    assert kinds(load(after, rows)) == [("", "bgm_cancel_reminder", "C2001/002")]
    [mail] = after.sent_mail("bgm_cancel_reminder")
    assert mail["To"] == OPS and mail["Cc"] is None
    assert "支店「札幌支店」が支店一覧にないため、納品デスクにお送りしています" in mail.get_content()
