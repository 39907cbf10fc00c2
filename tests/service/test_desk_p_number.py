"""Correcting a wrong P番号: who, why and the old value in the case's history; never a number another case holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.service.commands import CorrectPNumber
from mailbot.service.errors import DeskError
from tests.fixtures.bot import Harness, make_harness
from tests.service.test_after_acceptance import (
    BASE_UNIS,
    EXTRA,
    OTHER,
    P1,
    P2,
    accepted,
    case,
    progress,
    progress_csv,
)
from tests.service.test_desk import events


@pytest.fixture
def entered(tmp_path: Path, db_url: str) -> Iterator[tuple[Harness, str]]:
    h = make_harness(tmp_path, db_url, EXTRA)
    h.import_unis(BASE_UNIS)
    case_no = accepted(h)
    h.app.desk.entered(case_no, P1, by="山田")
    yield h, case_no
    h.app.close()


def test_a_clerk_corrects_the_p_number_and_the_history_keeps_who_why_and_the_old_value(
    entered: tuple[Harness, str],
) -> None:
    h, case_no = entered
    mails = h.outbox()
    wide = "ｐ９８７６５４３２１０９８７"  # typed as the enter form takes it: any width
    result = h.app.bus.handle(CorrectPNumber(case_no, by="佐藤", p_number=wide, reason="桁の入力誤り"))
    assert result.summary == f"{case_no}: P番号を {P1} から {P2} に訂正しました"
    row = case(h, case_no)
    assert (row["p_number"], row["stage"]) == (P2, "entered")
    assert events(h, case_no)[-1] == ("correct_p_number", "佐藤", "desk", f"P番号 {P1}→{P2}(理由: 桁の入力誤り)")
    assert h.outbox() == mails  # bookkeeping: no mail to anyone
    # NTT's list now finds the case by the right number.
    report = progress(h, progress_csv(f"{P2},,,開通,,2026/12/01,"))
    assert [(a["case_no"], a["to"]) for a in report.applied] == [(case_no, "completed")]


def test_a_p_number_another_case_holds_is_refused_and_nothing_changes(entered: tuple[Harness, str]) -> None:
    h, case_no = entered
    other = accepted(h, OTHER)
    h.app.desk.entered(other, P2, by="山田")
    history = events(h, case_no)
    with pytest.raises(DeskError, match=f"P番号 {P2} は {other} に記録済みです"):
        h.app.bus.handle(CorrectPNumber(case_no, by="佐藤", p_number=P2, reason="取り違え"))
    assert case(h, case_no)["p_number"] == P1 and events(h, case_no) == history


@pytest.mark.parametrize(
    ("p_number", "reason", "message"),
    [
        ("P123", "入力誤り", "P\\+13桁"),
        (P1, "入力誤り", f"すでに {P1} です"),
        (P2, "  ", "訂正する理由"),
    ],
)
def test_a_malformed_or_unchanged_number_or_a_missing_reason_is_refused(
    entered: tuple[Harness, str], p_number: str, reason: str, message: str
) -> None:
    h, case_no = entered
    with pytest.raises(DeskError, match=message):
        h.app.bus.handle(CorrectPNumber(case_no, by="佐藤", p_number=p_number, reason=reason))
    assert case(h, case_no)["p_number"] == P1


def test_a_case_without_a_p_number_has_nothing_to_correct(entered: tuple[Harness, str]) -> None:
    h, _ = entered
    other = accepted(h, OTHER)
    with pytest.raises(DeskError, match="まだP番号がありません"):
        h.app.bus.handle(CorrectPNumber(other, by="佐藤", p_number=P2, reason="入力誤り"))
    assert case(h, other)["p_number"] is None
