"""The UNIS order line as the unit (manual §5): binding a request to its line, the registration patterns."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from mailbot.domain.checks import build_submission, not_checked, run_checks
from mailbot.domain.decision import evaluate
from mailbot.domain.model import CaseStatus, Defect
from mailbot.domain.unis import COLUMN_HEADERS, OrderLine, SnapshotLookup, UnisCustomer, code_of, previous_customer
from mailbot.domain.unis_lines import bind_line, pattern_of
from tests.domain.builders import CODE, DIRECTORY, NOW, POLICY, request

ALL = frozenset(COLUMN_HEADERS)
ORDERED_ON = date(2026, 11, 20)


def z_line(contract: str = "C0001", number: str = "002", **values: object) -> OrderLine:
    """A Z200214 line as the branch fills the 契約明細 screen for pattern A/B (manual §5①)."""
    filled: dict[str, object] = {
        "line_process": "2 契約変更",
        "line_contract_kind": "11-99 増設 その他",
        "order_date": ORDERED_ON,
        "start_month": "2026/11",
        "staff": "山田 花子",
        "running": "0",
        "product_class": "0 通常",
        "payment_method": "1 口座振替",
        "billing_period": "1",
    }
    filled.update(values)
    base = OrderLine(contract, number, "Z200214", "NTTフレッツ光取次", "受注", ORDERED_ON, "渋谷支店")
    return replace(base, **filled)  # type: ignore[arg-type]


def bgm_line(contract: str = "C0001", number: str = "001", state: str = "受注") -> OrderLine:
    return OrderLine(contract, number, "B100001", "BGM基本", state, None, "渋谷支店", order_date=ORDERED_ON)


def c_line(**values: object) -> OrderLine:
    """The line of a FLET'S-only customer (pattern C, manual §5②): its contract is UNIS売上対象外."""
    filled: dict[str, object] = {
        "line_process": "0 新設",
        "line_contract_kind": "01-01 新設 新設",
        "product_class": "0 通常",
        "payment_method": "9 UNIS売上対象外",
        "billing_period": "1",
        "staff": "",
    }
    filled.update(values)
    return z_line("C0009", "001", **filled)


def client(*lines: OrderLine, customer_class: str = "1 業務用", status: str = "有効", **values: str) -> UnisCustomer:
    return UnisCustomer(
        CODE,
        "株式会社さくら商事",
        customer_class,
        status,
        lines,
        customer_process=values.get("customer_process", "0 新設"),
        customer_contract_kind=values.get("customer_contract_kind", "01-01 新設 新設"),
        branch="渋谷支店",
    )


def lookup(customer: UnisCustomer, *, columns: frozenset[str] = ALL, held: dict[tuple[str, str], str] | None = None):
    return SnapshotLookup({customer.code: customer}, NOW, columns, {customer.code: held or {}})


def found(customer: UnisCustomer, **kwargs: object) -> list[Defect]:
    submission = build_submission([request()], DIRECTORY, lookup(customer, **kwargs), POLICY)  # type: ignore[arg-type]
    return run_checks(submission, POLICY)


def codes(defects: list[Defect]) -> list[str]:
    return [d.code for d in defects]


# --- what a cell holds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        ("2", "2"),
        ("2 契約変更", "2"),
        ("11-99 増設 その他", "11-99"),
        ("９:未加入店", "9"),
        ("業務用", None),
        ("", None),
    ],
)
def test_a_code_column_is_compared_by_its_code_with_or_without_the_label(cell: str, code: str | None) -> None:
    assert code_of(cell) == code


def test_a_moved_line_names_its_old_customer_in_the_remark() -> None:
    assert previous_customer("加入前顧客コード:012345678") == "012345678"
    assert previous_customer("加入前顧客コード：０１２３４５６７８ 付替") == "012345678"
    assert previous_customer("備考なし") is None


# --- the patterns --------------------------------------------------------------------------------


def test_a_customer_with_a_bgm_contract_is_pattern_a_or_b_and_a_flets_only_one_is_c() -> None:
    assert pattern_of(client(bgm_line(), z_line())) == "A/B"
    assert pattern_of(client(c_line())) == "C"


def test_a_line_registered_as_the_manual_says_under_the_bgm_contract_passes() -> None:
    assert found(client(bgm_line(), z_line())) == []


def test_a_flets_only_customer_registered_as_the_manual_says_passes() -> None:
    assert found(client(c_line())) == []


@pytest.mark.parametrize(
    ("values", "field", "expected"),
    [
        ({"line_process": "1 新設"}, "明細処理区分", "2 契約変更"),
        ({"line_contract_kind": "11-01 増設 BGM"}, "明細契約種類", "11-99 増設 その他"),
        ({"running": "3,300"}, "ランニング", "0円"),
        ({"staff": ""}, "契約担当者", "回線単品申込書に記載の契約担当者"),
        ({"start_month": "2026/12"}, "開始年月", "2026/11(受注登録日の月)"),
        ({"due_date": date(2026, 12, 24)}, "完成予定日", "2026/11/20(受注登録日)"),
    ],
)
def test_a_wrong_value_under_the_bgm_contract_is_returned_naming_the_value_to_set(
    values: dict[str, object], field: str, expected: str
) -> None:
    [defect] = found(client(bgm_line(), z_line(**values)))
    assert defect.code == "unis_line_values"
    assert (defect.detail["field"], defect.detail["expected"], defect.detail["pattern"]) == (field, expected, "A/B")
    assert defect.detail["line"] == "C0001/002"


@pytest.mark.parametrize(
    ("line_values", "customer_values", "field", "expected"),
    [
        ({"payment_method": "1 口座振替"}, {}, "支払方法", "9 UNIS売上対象外"),
        ({"product_class": "1 特別"}, {}, "商品区分", "0 通常"),
        ({"billing_period": "12"}, {}, "請求期間", "1"),
        ({}, {"customer_process": "1 変更"}, "顧客処理区分", "0 新設"),
        ({}, {"customer_contract_kind": "01-02 新設 移転"}, "顧客契約種類", "01-01 新設 新設"),
        ({"running": "0円"}, {"customer_contract_kind": ""}, "顧客契約種類", "01-01 新設 新設"),
    ],
)
def test_a_wrong_value_of_a_flets_only_customer_is_returned_naming_the_screen_and_value(
    line_values: dict[str, object], customer_values: dict[str, str], field: str, expected: str
) -> None:
    [defect] = found(client(c_line(**line_values), **customer_values))
    assert (defect.code, defect.detail["pattern"]) == ("unis_line_values", "C")
    assert (defect.detail["field"], defect.detail["expected"]) == (field, expected)


def test_a_line_under_a_separate_contract_while_the_customer_has_bgm_is_returned() -> None:
    [defect] = found(client(bgm_line("C0001"), z_line("C0002", "001")))
    assert defect.code == "unis_line_contract"
    assert (defect.detail["contract"], defect.detail["contracts"]) == ("C0002", "C0001")


@pytest.mark.parametrize("customer_class", ["2 事業所", "", "9 未加入店"])
def test_any_customer_class_but_1_is_a_defect(customer_class: str) -> None:
    [defect] = found(client(c_line(), customer_class=customer_class))
    assert defect.code == "unis_customer_class"
    assert ("non_subscriber" in defect.detail) == customer_class.startswith("9")


def test_a_cancelled_customer_is_a_defect() -> None:
    assert codes(found(client(bgm_line(), z_line(), status="解約"))) == ["unis_customer_cancelled"]


# --- an export without the columns -----------------------------------------------------------------


def test_the_standard_export_cannot_check_the_values_and_says_so_instead_of_passing() -> None:
    customer = client(bgm_line(), z_line(line_process="1 新設", running="3,300"))
    base = frozenset({"customer_code", "customer_name", "customer_class", "customer_status", "contract_no",
                      "line_no", "item_code", "item_name", "state", "due_date", "branch"})  # fmt: skip
    submission = build_submission([request()], DIRECTORY, lookup(customer, columns=base), POLICY)
    assert run_checks(submission, POLICY) == []
    [skipped] = not_checked(submission, POLICY)
    assert skipped.check == "unis_line_values"
    assert "明細処理区分" in skipped.why and "ランニング" in skipped.why and "確認していません" in skipped.why


def test_a_missing_running_column_alone_is_named_as_not_checked() -> None:
    submission = build_submission(
        [request()], DIRECTORY, lookup(client(bgm_line(), z_line()), columns=ALL - {"running"}), POLICY
    )
    assert run_checks(submission, POLICY) == []
    [skipped] = not_checked(submission, POLICY)
    assert "ランニング" in skipped.why and "明細処理区分" not in skipped.why


def test_an_accepted_request_carries_what_could_not_be_checked_to_its_receipt() -> None:
    base = ALL - {"line_process", "line_contract_kind"}
    evaluation = evaluate(
        [request()],
        directory=DIRECTORY,
        unis=lookup(client(bgm_line(), z_line()), columns=base),
        policy=POLICY,
        received_at=NOW,
        now=NOW,
    )
    assert evaluation.status is CaseStatus.ACCEPTED
    assert [n.check for n in evaluation.unchecked] == ["unis_line_values"]


# --- binding ---------------------------------------------------------------------------------------


def test_a_request_is_bound_to_the_new_ordered_line_not_the_customers_old_confirmed_one() -> None:
    old = z_line("C0001", "002", state="確定", order_date=date(2024, 4, 1))
    new = z_line("C0001", "003")
    submission = build_submission([request()], DIRECTORY, lookup(client(bgm_line(), old, new)), POLICY)
    assert submission.line == new


def test_a_line_another_live_case_holds_is_skipped() -> None:
    first, second = z_line("C0001", "002"), z_line("C0001", "003")
    held = {("C0001", "002"): "FE-2026-00013"}
    submission = build_submission([request()], DIRECTORY, lookup(client(bgm_line(), first, second), held=held), POLICY)
    assert submission.line == second


def test_the_cases_own_line_is_not_held_by_another_case() -> None:
    only = z_line("C0001", "002")
    held = {("C0001", "002"): "FE-2026-00013"}
    customer = lookup(client(bgm_line(), only), held=held)
    submission = build_submission([request()], DIRECTORY, customer, POLICY, case_no="FE-2026-00013")
    assert submission.line == only


def test_a_customer_whose_every_ordered_line_is_held_is_returned_naming_the_cases() -> None:
    held = {("C0001", "002"): "FE-2026-00013"}
    [defect] = found(client(bgm_line(), z_line("C0001", "002")), held=held)
    assert defect.code == "unis_order_taken"
    assert defect.detail["lines"] == "C0001/002(FE-2026-00013)"


def test_of_several_free_lines_the_newest_registered_before_the_mail_is_taken() -> None:
    older = z_line("C0001", "002", order_date=date(2026, 11, 1))
    newest = z_line("C0001", "003", order_date=date(2026, 11, 22))
    later = z_line("C0001", "004", order_date=date(2026, 11, 30))
    arrived = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 2026-11-24 00:00 JST
    assert bind_line(client(bgm_line(), older, later, newest), {}, arrived) == newest


def test_the_arrival_day_is_the_desks_day_in_japan() -> None:
    today_jst = z_line("C0001", "002", order_date=date(2026, 11, 24))
    yesterday = z_line("C0001", "003", order_date=date(2026, 11, 23))
    arrived = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 00:30 JST on the 24th
    assert bind_line(client(bgm_line(), yesterday, today_jst), {}, arrived) == today_jst


def test_lines_without_a_registration_date_come_after_dated_ones_the_last_exported_first() -> None:
    undated_a = z_line("C0001", "002", order_date=None)
    undated_b = z_line("C0001", "003", order_date=None)
    assert bind_line(client(bgm_line(), undated_a, undated_b), {}, NOW) == undated_b
    dated = z_line("C0001", "004", order_date=date(2026, 11, 1))
    assert bind_line(client(bgm_line(), undated_a, dated, undated_b), {}, NOW) == dated


def test_the_line_a_case_holds_already_is_kept_while_it_is_a_free_ordered_line() -> None:
    older = z_line("C0001", "002", order_date=date(2026, 11, 1))
    newest = z_line("C0001", "003", order_date=date(2026, 11, 22))
    customer = client(bgm_line(), older, newest)
    assert bind_line(customer, {}, NOW, keep=older.key) == older
    assert bind_line(customer, {older.key: "FE-2026-00009"}, NOW, keep=older.key) == newest
    confirmed = client(bgm_line(), replace(older, state="確定"), newest)
    assert bind_line(confirmed, {}, NOW, keep=older.key) == newest


def test_a_cancelled_or_voided_line_is_never_bound() -> None:
    voided = z_line("C0001", "002", state="キャンセル")
    assert bind_line(client(bgm_line(), voided), {}, NOW) is None
    assert codes(found(client(bgm_line(), voided))) == ["unis_order_missing"]


def test_the_outcome_names_the_bound_line() -> None:
    evaluation = evaluate(
        [request()],
        directory=DIRECTORY,
        unis=lookup(client(bgm_line(), z_line())),
        policy=POLICY,
        received_at=NOW,
        now=NOW,
    )
    assert evaluation.submission.line is not None
    assert evaluation.submission.line.where == "C0001/002"


@pytest.mark.parametrize(
    ("state", "ordered"), [("受注", True), ("1 受注", True), ("受注済み", False), ("確定取消", False)]
)
def test_a_line_state_is_compared_as_a_whole_word_with_or_without_its_code(state: str, ordered: bool) -> None:
    line = z_line(state=state)
    assert line.ordered is ordered
    assert line.confirmed is False
