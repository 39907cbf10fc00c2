"""The desk-action table: each row builds its command, records a lifecycle event a person may cause."""

from __future__ import annotations

import dataclasses

import pytest

from mailbot.domain.lifecycle import PERSON, TRANSITIONS
from mailbot.service.accounts import ACTING_ROLES
from mailbot.service.desk_actions import DESK_ACTIONS, TARGET_IDS, DeskAction, desk_action
from mailbot.service.handlers import HANDLERS

ROWS = pytest.mark.parametrize("action", DESK_ACTIONS, ids=lambda a: f"{a.target}-{a.name}")


@ROWS
def test_each_rows_command_has_the_fields_the_row_declares(action: DeskAction) -> None:
    fields = [f for f in dataclasses.fields(action.command)]
    names = [f.name for f in fields]
    # The target's id first, then who acts: command(<target id>, by=..., **fields).
    assert names[:2] == [TARGET_IDS[action.target], "by"]
    declared = [f.name for f in action.fields]
    assert sorted(declared) == sorted(names[2:])
    required = {f.name for f in fields[2:] if f.default is dataclasses.MISSING}
    # A field the command cannot do without is required on the form and the command line too.
    assert required <= {f.name for f in action.fields if f.required}
    assert all(f.label and f.form_name and f.option for f in action.fields)
    assert action.command in HANDLERS


@ROWS
def test_each_rows_command_can_be_built_from_the_row(action: DeskAction) -> None:
    target_id: object = "FE-2026-00001" if action.target == "case" else 1
    values = {f.name: (("manager_cc_missing",) if f.many else "x") for f in action.fields}
    command = action.command(target_id, by="山田", **values)
    assert getattr(command, action.target_id) == target_id and command.by == "山田"


@ROWS
def test_each_rows_event_is_one_a_person_may_cause_in_the_lifecycle_table(action: DeskAction) -> None:
    if action.event is None:
        assert action.target == "quarantine"  # a quarantined mail has no case yet
        return
    assert any(row.event is action.event and row.actors & PERSON for row in TRANSITIONS)
    if action.target == "case":
        # The case page offers the actions the lifecycle allows (views' ``actions``: event values) by name.
        assert action.name == action.event.value


@ROWS
def test_each_row_has_its_words_and_its_roles(action: DeskAction) -> None:
    assert action.label and action.help
    assert action.roles == ACTING_ROLES


def test_names_and_subcommands_are_unique_per_target() -> None:
    for target in TARGET_IDS:
        rows = [a for a in DESK_ACTIONS if a.target == target]
        assert rows, target
        assert len({a.name for a in rows}) == len(rows)
        assert len({a.subcommand for a in rows}) == len(rows)
        assert all(desk_action(target, a.name) is a for a in rows)


def test_every_desk_action_of_today_is_in_the_table() -> None:
    assert {(a.target, a.name) for a in DESK_ACTIONS} == {
        *(("case", n) for n in ("accept", "return", "note", "close", "reopen", "enter", "bind", "set_customer")),
        ("case", "correct_p_number"),
        ("case", "answer"),
        ("case", "handled"),
        ("quarantine", "release"),
        ("quarantine", "discard"),
        ("outbox", "resend"),
        ("outbox", "cancel"),
    }
    # Today's CLI spellings are kept.
    assert desk_action("case", "enter").subcommand == "entered"
    assert desk_action("case", "set_customer").subcommand == "set-customer"
    assert desk_action("case", "correct_p_number").subcommand == "correct-p-number"
    assert [f.option for f in desk_action("case", "return").fields] == ["--defect", "--note"]
    assert [f.positional for f in desk_action("case", "note").fields] == [True]


def test_an_unknown_action_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        desk_action("case", "release")
    with pytest.raises(KeyError):
        desk_action("board", "accept")
