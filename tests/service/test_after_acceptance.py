"""After acceptance: NTT entry, the progress list, the notices, the UNIS reconciliation, the worklist.

A real bot throughout (Maildir, each backend's database, the outbox directory):
the mails are the .eml files delivered, the history is what `cases show` reads.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from mailbot.adapters.progress_file import ProgressFileError
from mailbot.service.commands import ImportUnis
from mailbot.service.errors import DeskError
from mailbot.service.progress import ProgressReport, import_progress
from mailbot.service.reconcile import ReconcileReport
from mailbot.service.worklist import FIELDS, send_worklist, worklist_rows, worklist_text
from tests.fixtures.bot import CUSTOMER, OPS, SHIBUYA_MGR, UNIS_HEADER, Harness, make_harness, rebuild
from tests.service.test_desk import detail, events
from tests.service.test_intake import request

JIMU = "jimu-center@usen.co.jp"
OTHER = "222333444"
P1 = "P1234567890123"
P2 = "P9876543210987"
PROGRESS_HEADER = "P番号,顧客CD,お客様名,進捗,工事日,開通日,キャンセル日"
EXTRA = f"""
[jimu_center]
recipients = ["{JIMU}"]
"""


def unis_row(code: str, state: str = "受注", *, item: str = "Z200214", line: str = "001", due: str = "2026/12/10",
             status: str = "有効", name: str = "株式会社さくら商事") -> str:  # fmt: skip
    item_name = "NTTフレッツ光取次" if item == "Z200214" else "BGM"
    return f"{code},{name},1,{status},C{code[:4]},{line},{item},{item_name},{state},{due},渋谷支店"


BASE_UNIS = [unis_row(CUSTOMER), unis_row(OTHER, name="有限会社もみじ")]


@pytest.fixture
def after(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, EXTRA)
    yield h
    h.app.close()


_requests = iter(range(1, 1000))


def accepted(h: Harness, code: str = CUSTOMER) -> str:
    """A new request for ``code`` accepted by the checks; its case number."""
    n = next(_requests)
    h.deliver(request(body=f"お疲れ様です。\n顧客CD:{code}\n", message_id=f"req{n}@usen.co.jp"))
    h.poll()
    case = [c for c in h.cases() if c["customer_code"] == code and c["stage"] == "accepted"][-1]
    return str(case["case_no"])


def progress_csv(*rows: str, encoding: str = "cp932", bom: bool = False) -> bytes:
    data = ("\r\n".join([PROGRESS_HEADER, *rows]) + "\r\n").encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def progress(h: Harness, data: bytes, name: str = "progress.csv") -> ProgressReport:
    report = import_progress(
        h.app.sessions,
        h.app.renderer,
        policy=h.app.config.policy,
        directory=h.app.config.branches,
        settings=h.app.config.after,
        data=data,
        name=name,
        as_of=h.clock(),
        clock=h.clock,
    )
    h.app.intake.deliver_outbox()
    return report


def unis(h: Harness, rows: Sequence[str], *, remarks_column: bool = False) -> ReconcileReport:
    """A UNIS import as `mailbot unis import` does it: the snapshot, then the reconciliation."""
    header = UNIS_HEADER + (",明細備考" if remarks_column else "")
    data = ("\r\n".join([header, *rows]) + "\r\n").encode("cp932")
    report = h.app.bus.handle(ImportUnis(data, name="unis.csv", as_of=h.clock())).reconciled
    h.app.intake.deliver_outbox()
    return report


def case(h: Harness, case_no: str) -> dict[str, Any]:
    return next(c for c in h.cases() if c["case_no"] == case_no)


def opened(h: Harness, code: str = CUSTOMER, p_number: str = P1) -> str:
    """A case entered at NTT and opened on 2026-12-01 by the progress list."""
    case_no = accepted(h, code)
    h.app.desk.entered(case_no, p_number, by="山田")
    progress(h, progress_csv(f"{p_number},{code},株式会社さくら商事,開通,2026/11/28,2026/12/01,"))
    return case_no


# -- NTT entry ---------------------------------------------------------------------------------------
def test_the_desk_records_the_ntt_order_number_and_the_case_is_entered(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    result = after.app.desk.entered(case_no, "Ｐ１２３４５６７８９０１２３", by="山田")
    assert result.summary == f"{case_no}: NTT入力済にしました(P番号 {P1})"
    row = case(after, case_no)
    assert (row["stage"], row["stage_label"], row["p_number"]) == ("entered", "NTT入力済", P1)
    assert events(after, case_no)[-1] == ("enter", "山田", "desk", f"P番号 {P1}")


@pytest.mark.parametrize("bad", ["P123", "Q1234567890123", "P12345678901234", ""])
def test_an_order_number_that_is_not_p_and_13_digits_is_refused(after: Harness, bad: str) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    with pytest.raises(DeskError, match="P\\+13桁"):
        after.app.desk.entered(case_no, bad, by="山田")
    assert case(after, case_no)["stage"] == "accepted"


def test_an_order_number_already_on_another_case_is_refused(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    first, second = accepted(after), accepted(after, OTHER)
    after.app.desk.entered(first, P1, by="山田")
    with pytest.raises(DeskError, match=f"{first} に記録済み"):
        after.app.desk.entered(second, P1, by="山田")


def test_a_returned_case_cannot_be_entered_at_ntt(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    after.deliver(request(cc=[]))
    after.poll()
    [row] = after.cases()
    with pytest.raises(DeskError, match="確認中"):
        after.app.desk.entered(row["case_no"], P1, by="山田")


# -- the progress list --------------------------------------------------------------------------------
def test_a_cp932_progress_list_schedules_then_opens_a_case_found_by_its_p_number(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    report = progress(after, progress_csv(f"{P1},,株式会社さくら商事,工事日確定,2026/11/28,,"))
    assert [(a["case_no"], a["to"]) for a in report.applied] == [(case_no, "construction_scheduled")]
    assert case(after, case_no)["construction_date"] == "2026-11-28"
    progress(after, progress_csv(f"{P1},,株式会社さくら商事,開通,2026/11/28,2026/12/01,"))
    row = case(after, case_no)
    assert (row["stage"], row["completed_date"]) == ("completed", "2026-12-01")
    [notice] = after.sent_mail("completed_notice")
    assert notice["To"] == "taro@usen.co.jp" and SHIBUYA_MGR in notice["Cc"]
    assert notice["In-Reply-To"].strip() == after.messages()[0]["message_id"]
    text = notice.get_content()
    assert "開通しました" in text and "完成日: 2026年12月1日" in text and f"P番号: {P1}" in text


def test_an_xlsx_progress_list_finds_an_accepted_case_by_its_customer_code_and_records_the_p_number(
    after: Harness,
) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(PROGRESS_HEADER.split(","))
    sheet.append([P2, int(CUSTOMER), "株式会社さくら商事", "受付", None, None, None])
    out = io.BytesIO()
    book.save(out)
    report = progress(after, out.getvalue(), name="進捗リスト.xlsx")
    assert [(a["line"], a["case_no"], a["to"]) for a in report.applied] == [(2, case_no, "entered")]
    assert case(after, case_no)["p_number"] == P2
    assert "P番号 P9876543210987 を記録(顧客CDで照合)" in (events(after, case_no)[-1][3] or "")


def test_a_utf8_list_with_a_bom_and_configured_columns_and_statuses_is_read(tmp_path: Path, db_url: str) -> None:
    extra = EXTRA + '[progress.columns]\np_number = "NTT受注番号"\nstatus = "状況"\n'
    extra += '[progress.status]\n"完了" = "completed"\n'
    h = make_harness(tmp_path, db_url, extra)
    try:
        h.import_unis(BASE_UNIS)
        case_no = accepted(h)
        h.app.desk.entered(case_no, P1, by="山田")
        data = b"\xef\xbb\xbf" + f"NTT受注番号,状況,開通日\r\n{P1},完了,2026/12/01\r\n".encode()
        report = progress(h, data)
        assert [a["to"] for a in report.applied] == ["completed"]
    finally:
        h.app.close()


def test_unmatched_and_ambiguous_rows_are_reported_and_ops_get_one_notice_and_a_reimport_changes_nothing(
    after: Harness,
) -> None:
    after.import_unis([*BASE_UNIS, unis_row(CUSTOMER, line="002")])  # a 受注 line for each request
    accepted(after), accepted(after)  # two accepted cases of one customer, neither with a P番号
    data = progress_csv(
        f"{P1},{CUSTOMER},株式会社さくら商事,受付,,,",
        "P5555555555555,999999999,知らない会社,開通,,2026/12/01,",
    )
    report = progress(after, data)
    assert [u["line"] for u in report.unmatched] == [3]
    assert [(a["line"], a["cases"]) for a in report.ambiguous] == [(2, ["FE-2026-00001", "FE-2026-00002"])]
    assert report.ops_notified and not report.applied
    [notice] = after.sent_mail("ops_progress_unmatched")
    assert notice["To"] == OPS
    text = notice.get_content()
    assert "2行目" in text and "FE-2026-00001, FE-2026-00002" in text and "3行目" in text and "該当する案件なし" in text
    before = (after.cases(), after.outbox())
    again = progress(after, data)
    assert not again.ops_notified and not again.applied
    assert (after.cases(), after.outbox()) == before


def test_importing_the_same_list_again_changes_no_case_and_sends_nothing(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    case_no = opened(after)
    history, mails = events(after, case_no), after.outbox()
    report = progress(after, progress_csv(f"{P1},{CUSTOMER},株式会社さくら商事,開通,2026/11/28,2026/12/01,"))
    assert (report.applied, report.unchanged) == ([], 1)
    assert (events(after, case_no), after.outbox()) == (history, mails)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("P12,,,開通,,,", "line 3: P番号 'P12' is not P \\+ 13 digits"),
        (f"{P2},,,開通済み,,,", "line 3: 進捗 '開通済み' is not mapped in \\[progress.status\\]"),
        (f"{P2},,,開通,,12月1日,", "line 3: 開通日 '12月1日' is not a date"),
    ],
)
def test_a_bad_progress_list_is_refused_with_its_line_and_nothing_is_applied(
    after: Harness, line: str, message: str
) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    with pytest.raises(ProgressFileError, match=message):
        progress(after, progress_csv(f"{P1},,,開通,,2026/12/01,", line))
    assert case(after, case_no)["stage"] == "entered"


def test_a_list_without_the_p_number_column_is_refused_naming_the_config_key(after: Harness) -> None:
    with pytest.raises(ProgressFileError, match=r"line 1: no column 'P番号' \(\[progress.columns\] p_number\)"):
        progress(after, "顧客CD,進捗\r\n123456789,開通\r\n".encode("cp932"))


# -- who is told what ------------------------------------------------------------------------------------
def test_a_cancellation_tells_the_branch_to_cancel_the_unis_order_and_tells_ops(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    progress(after, progress_csv(f"{P1},,株式会社さくら商事,キャンセル,,,2026/11/30"))
    row = case(after, case_no)
    assert (row["stage"], row["cancelled_date"]) == ("cancelled", "2026-11-30")
    [notice] = after.sent_mail("cancel_notice")
    assert notice["To"] == "taro@usen.co.jp" and SHIBUYA_MGR in notice["Cc"]
    assert "受注状態をキャンセル処理してください" in notice.get_content()
    [ops] = after.sent_mail("ops_cancelled")
    assert ops["To"] == OPS and case_no in ops["Subject"]


def test_with_notices_completed_false_the_branch_is_not_told_of_the_opening(tmp_path: Path, db_url: str) -> None:
    h = make_harness(tmp_path, db_url, EXTRA + "[notices]\ncompleted = false\n")
    try:
        h.import_unis(BASE_UNIS)
        case_no = opened(h)
        assert case(h, case_no)["stage"] == "completed"
        assert h.outbox("completed_notice") == []
    finally:
        h.app.close()


# -- the UNIS reconciliation --------------------------------------------------------------------------------
def test_a_completed_case_whose_z200214_line_is_now_confirmed_is_unis_confirmed(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    case_no = opened(after)
    report = unis(after, [unis_row(CUSTOMER, "確定"), unis_row(OTHER)])
    assert report.confirmed == [case_no]
    assert case(after, case_no)["stage"] == "unis_confirmed"
    assert events(after, case_no)[-1][:3] == ("confirm_unis", "mailbot", "unis_reconcile")


def test_a_cancelled_case_still_ordered_in_unis_after_cancel_days_gets_one_reminder_across_restarts(
    after: Harness,
) -> None:
    after.import_unis(BASE_UNIS)
    case_no = accepted(after)
    after.app.desk.entered(case_no, P1, by="山田")
    progress(after, progress_csv(f"{P1},,,キャンセル,,,2026/11/24"))
    assert unis(after, BASE_UNIS).reminders == []  # not 7 days yet
    after.clock.advance(days=7)
    report = unis(after, BASE_UNIS)
    assert [(r["case_no"], r["kind"]) for r in report.reminders] == [(case_no, "unis_cancel_reminder")]
    rebuild(after)
    assert unis(after, BASE_UNIS).reminders == []
    [reminder] = after.sent_mail("unis_cancel_reminder")
    assert reminder["To"] == "taro@usen.co.jp" and "受注状態をキャンセル処理してください" in reminder.get_content()
    assert [e[0] for e in events(after, case_no)].count("remind_unis_cancel") == 1


def test_a_customer_whose_bgm_lines_are_all_cancelled_is_reminded_once_to_cancel_z200214(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    opened(after)
    rows = [unis_row(CUSTOMER, "確定"), unis_row(CUSTOMER, "解約", item="B100001", line="002"), unis_row(OTHER)]
    report = unis(after, rows)
    assert [r["kind"] for r in report.reminders] == ["bgm_cancel_reminder"]
    assert unis(after, rows).reminders == []
    [reminder] = after.sent_mail("bgm_cancel_reminder")
    assert "Z200214の明細も解約してください" in reminder.get_content()


def test_a_customer_cancelled_in_unis_with_an_active_z200214_line_is_reminded(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    case_no = opened(after)
    report = unis(after, [unis_row(CUSTOMER, status="解約"), unis_row(OTHER)])
    assert [(r["case_no"], r["kind"]) for r in report.reminders] == [(case_no, "bgm_cancel_reminder")]


def test_a_line_moved_to_a_new_customer_without_its_due_date_gets_one_warning(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    case_no = opened(after)
    rows = [
        unis_row(CUSTOMER, "確定", due="2026/12/01") + ",",
        unis_row(OTHER, due="2026/12/20") + f",加入前顧客コード:{CUSTOMER}",
    ]
    report = unis(after, rows, remarks_column=True)
    assert [(r["case_no"], r["kind"]) for r in report.reminders] == [(case_no, "due_date_warning")]
    assert unis(after, rows, remarks_column=True).reminders == []
    [warning] = after.sent_mail("due_date_warning")
    text = warning.get_content()
    assert "2026年12月1日" in text and "2026年12月20日" in text and OTHER in text


def test_a_moved_line_that_kept_its_due_date_gets_no_warning(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    opened(after)
    rows = [unis_row(CUSTOMER, "確定") + ",", unis_row(OTHER) + f",加入前顧客コード:{CUSTOMER}"]
    assert unis(after, rows, remarks_column=True).reminders == []


# -- 事務センター's worklist ------------------------------------------------------------------------------------
def test_the_worklist_lists_opened_lines_not_yet_confirmed_with_exactly_the_manuals_fields(after: Harness) -> None:
    after.import_unis(BASE_UNIS)
    case_no = opened(after)
    with after.app.sessions() as session:
        rows = worklist_rows(session, today=after.clock().date(), month="2026-12")
    assert [r.as_json() for r in rows] == [
        {
            "case_no": case_no,
            "顧客CD": CUSTOMER,
            "顧客名": "株式会社さくら商事",
            "契約No": "C1234",
            "明細No": "001",
            "契約品目": "Z200214",
            "開始年月": "2026/12",
            "完成予定日": "2026/12/01",
            "シリアルNO": P1,
            "確定日": "処理日",
            "備考": "",
        }
    ]
    assert worklist_text(rows).splitlines()[0].split() == ["受付番号", *FIELDS]
    unis(after, [unis_row(CUSTOMER, "確定"), unis_row(OTHER)])
    with after.app.sessions() as session:
        assert worklist_rows(session, today=after.clock().date()) == []


def test_the_worklist_mail_goes_to_jimu_center_with_the_xlsx_and_the_scheduler_key_sends_it_once(
    after: Harness,
) -> None:
    after.import_unis(BASE_UNIS)
    opened(after)
    settings, app = after.app.config.after, after.app
    kwargs: dict[str, Any] = {"policy": app.config.policy, "settings": settings, "clock": after.clock}
    assert send_worklist(app.sessions, app.renderer, once_key="2026-W48", **kwargs) == 1
    assert send_worklist(app.sessions, app.renderer, once_key="2026-W48", **kwargs) == 0
    app.intake.deliver_outbox()
    [mail] = after.sent_mail("jimu_worklist")
    assert mail["To"] == JIMU
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename().endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(attachment.get_content())).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    row = [CUSTOMER, "株式会社さくら商事", "C1234", "001", "Z200214", "処理日", "2026/12/01", P1, "処理日", None]
    assert values == [list(FIELDS), row]
    assert P1 in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_an_empty_worklist_sends_no_mail(after: Harness) -> None:
    app = after.app
    sent = send_worklist(app.sessions, app.renderer, policy=app.config.policy, settings=app.config.after,
                         clock=after.clock)  # fmt: skip
    assert sent == 0 and after.outbox("jimu_worklist") == []
    assert detail  # the case views stay importable for the desk's tests


# -- the weekly summaries ---------------------------------------------------------------------------------------
def test_the_weekly_summary_lists_the_weeks_openings_cancellations_and_lines_waiting_for_confirmation(
    after: Harness,
) -> None:
    from mailbot.domain.schedule import Week
    from mailbot.service.summaries import build_week_report

    after.import_unis(BASE_UNIS)
    opened_no = opened(after)
    cancelled_no = accepted(after, OTHER)
    after.app.desk.entered(cancelled_no, P2, by="山田")
    progress(after, progress_csv(f"{P2},,,キャンセル,,,2026/11/25"))
    after.clock.advance(hours=1)
    with after.app.sessions() as session:
        report = build_week_report(session, Week(2026, 48), now=after.clock(), directory=after.app.config.branches)
    after_section = report.after_for()
    assert [c["case_no"] for c in after_section["opened"]] == [opened_no]
    assert [c["case_no"] for c in after_section["cancelled"]] == [cancelled_no]
    assert [c["case_no"] for c in after_section["waiting_confirm"]] == [opened_no]
    context = {"week": report.week_context(), "as_of": "", "as_of_is_end": False, "desk": {"address": "x"},
               "case_no": "", "rows": [], "totals": report.totals, "top_defects": [], "oldest_open": [],
               "older_open": [], "listed_days": None, "after": after_section}  # fmt: skip
    body = after.app.renderer.render("weekly_ops", context).body
    assert "■ 受付後の状況(開通 1 / キャンセル 1 / UNIS確定待ち 1)" in body
    assert f"開通 12/1  {opened_no}" in body and f"キャンセル 11/25  {cancelled_no}" in body
