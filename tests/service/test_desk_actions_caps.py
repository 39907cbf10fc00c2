"""The desk-action table's caps: a note or a reason longer than its field's ``max_length`` is refused by the
bus (so the CLI and the web alike), saying so in Japanese, and nothing is recorded."""

from __future__ import annotations

import re

import pytest

from mailbot.service import commands as c
from mailbot.service.desk_actions import DESK_ACTIONS, TEXT_MAX, desk_action
from mailbot.service.errors import DeskError
from tests.fixtures.bot import Harness
from tests.service.test_desk import events, returned_case


def test_every_field_of_the_table_is_capped_at_two_thousand_characters_unless_it_says_otherwise() -> None:
    assert TEXT_MAX == 2000
    assert all(f.max_length == TEXT_MAX for row in DESK_ACTIONS for f in row.fields)


def test_a_note_of_exactly_the_cap_is_recorded(desk: Harness) -> None:
    case_no = returned_case(desk)
    desk.app.bus.handle(c.Note(case_no, by="山田", text="あ" * TEXT_MAX))
    assert events(desk, case_no)[-1][0] == "note" and events(desk, case_no)[-1][3] == "あ" * TEXT_MAX


@pytest.mark.parametrize(
    "command",
    [
        lambda case_no: c.Note(case_no, by="山田", text="あ" * 10_000),
        lambda case_no: c.Accept(case_no, by="山田", note="x" * (TEXT_MAX + 1)),
        lambda case_no: c.Return(case_no, by="山田", note="長" * (TEXT_MAX + 1)),
        lambda case_no: c.Close(case_no, by="山田", reason="理" * (TEXT_MAX + 1)),
    ],
    ids=["note", "accept", "return", "close"],
)
def test_a_text_over_the_cap_is_refused_in_japanese_and_nothing_is_recorded(desk: Harness, command: object) -> None:
    case_no = returned_case(desk)
    before = events(desk, case_no)
    outbox = desk.outbox()
    with pytest.raises(DeskError) as refused:
        desk.app.bus.handle(command(case_no))  # type: ignore[operator]
    assert "長すぎます" in str(refused.value) and "2,000文字以内で入力してください" in str(refused.value)
    assert events(desk, case_no) == before and desk.outbox() == outbox
    assert desk.cases()[0]["status"] == "returned"


def test_the_refusal_names_the_field_and_how_long_it_was(desk: Harness) -> None:
    case_no = returned_case(desk)
    label = desk_action("case", "note").fields[0].label
    with pytest.raises(DeskError, match=rf"^{re.escape(label)}が長すぎます\(10,000文字\)"):
        desk.app.bus.handle(c.Note(case_no, by="山田", text="あ" * 10_000))


def test_the_p_number_field_explains_its_format_in_japanese() -> None:
    [p_number] = [f for f in desk_action("case", "enter").fields if f.name == "p_number"]
    assert p_number.hint == "P+13桁の数字(例: P1234567890123)"
