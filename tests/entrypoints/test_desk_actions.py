"""Every row of the desk-action table is reachable from the command line and from the workbench.

The CLI's ``cases``/``quarantine``/``outbox`` action subcommands and the web's forms are made from
:data:`mailbot.service.desk_actions.DESK_ACTIONS`; these tests walk the table, so a new row is tested
here as soon as it has a scenario below (a new row without one fails, naming itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailbot.entrypoints.cli.main import build_parser, main
from mailbot.service import views
from mailbot.service.commands import Close, Enter, ShowCase
from mailbot.service.desk_actions import DESK_ACTIONS, DeskAction
from tests.entrypoints.test_web import PASSWORD, client_for, login
from tests.entrypoints.test_web_thread import confirmed
from tests.fixtures.bot import Harness, unis_row
from tests.service.test_desk import answer as reply_in_thread
from tests.service.test_desk import request, returned_case

# A field's value: one text, or several for a repeated field (a return's defects).
Values = dict[str, str | list[str]]


# -- a scenario per row: a target the action is allowed on, and a value for each of its fields -----------
def _accepted_case(h: Harness) -> str:
    h.import_unis()
    h.deliver(request())
    h.poll()
    [case] = h.cases()
    assert case["status"] == "accepted"
    return str(case["case_no"])


def _entered_case(h: Harness) -> str:
    case_no = _accepted_case(h)
    h.app.bus.handle(Enter(case_no, by="佐藤", p_number="P9999999999999"))
    return case_no


def _closed_case(h: Harness) -> str:
    case_no = returned_case(h)
    h.app.bus.handle(Close(case_no, by="佐藤", reason="重複"))
    return case_no


def _case_on_line_002(h: Harness) -> str:
    h.import_unis([unis_row(), unis_row(line="002")])
    h.deliver(request())
    h.poll()
    [case] = h.cases()
    assert case["unis_line"] == "C0001/002"
    return str(case["case_no"])


def _questioned_case(h: Harness) -> str:
    case_no = returned_case(h)
    reply_in_thread(h, case_no, body="工事日はいつ頃になりますか?")
    h.poll()
    return case_no


def _quarantined(h: Harness) -> int:
    h.import_unis()
    h.deliver(request(sender="営業 <sales@partner.example.com>"))
    h.poll()
    with h.app.sessions() as session:
        [item] = views.quarantine_rows(session)
    return int(item["id"])


def _held_back_mail(h: Harness) -> int:
    h.import_unis()
    h.deliver(request(extra_headers={"X-Auto-Response-Suppress": "All"}))
    h.poll()
    [held] = [m for m in h.outbox() if m["status"] == "suppressed"]
    return int(held["id"])


def _pending_mail(h: Harness) -> int:
    h.import_unis()
    h.deliver(request())
    h.app.intake.poll_once(deliver=False)
    [receipt] = h.outbox("receipt")
    assert receipt["status"] == "pending"
    return int(receipt["id"])


SCENARIOS: dict[tuple[str, str], tuple[Callable[[Harness], str | int], Values]] = {
    ("case", "accept"): (returned_case, {"note": "電話で確認済み"}),
    ("case", "return"): (_accepted_case, {"note": "申込書の印鑑が不鮮明です", "defects": ["attachment_unreadable"]}),
    ("case", "enter"): (_accepted_case, {"p_number": "P1234567890123", "note": "NTTに入力"}),
    ("case", "correct_p_number"): (_entered_case, {"p_number": "P1234567890123", "reason": "入力誤り"}),
    ("case", "set_customer"): (returned_case, {"code": "555666777"}),
    ("case", "bind"): (_case_on_line_002, {"line": "C0001/001", "reason": "支店に確認済み"}),
    ("case", "note"): (returned_case, {"text": "支店に電話済み"}),
    ("case", "close"): (returned_case, {"reason": "取り下げ"}),
    ("case", "reopen"): (_closed_case, {"reason": "再依頼"}),
    ("case", "answer"): (_questioned_case, {"text": "20日の予定です。", "template": "05_received"}),
    ("case", "handled"): (_questioned_case, {"note": "電話で回答済み"}),
    ("quarantine", "release"): (_quarantined, {"reason": "UBDからの正式な依頼"}),
    ("quarantine", "discard"): (_quarantined, {"reason": "迷惑メール"}),
    ("outbox", "resend"): (_held_back_mail, {}),
    ("outbox", "cancel"): (_pending_mail, {}),
}

GROUPS = {"case": "cases", "quarantine": "quarantine", "outbox": "outbox"}


def scenario(action: DeskAction) -> tuple[Callable[[Harness], str | int], Values]:
    found = SCENARIOS.get((action.target, action.name))
    assert found is not None, f"desk action {action.target}/{action.name} has no scenario in {__name__}.SCENARIOS"
    prepare, values = found
    assert set(values) == {f.name for f in action.fields}, "a scenario gives a value for every field, no other"
    return prepare, values


def cli_arguments(action: DeskAction, target: str | int, values: Values) -> list[str]:
    argv = [GROUPS[action.target], action.subcommand, str(target)]
    for field in action.fields:
        value = values[field.name]
        if field.positional:
            argv.append(str(value))
        else:
            for one in value if isinstance(value, list) else [value]:
                argv += [field.option, one]
    return argv


def assert_recorded(h: Harness, action: DeskAction, target: str | int, who: str) -> None:
    """The row's event on the case it acted on, by ``who``; a quarantined mail's resolution when it has none."""
    if action.target == "quarantine":
        assert action.event is None  # a quarantined mail has no case yet: its row says who resolved it
        with h.app.sessions() as session:
            item = views.quarantine_detail(session, int(target))
        assert item["resolution"] and item["resolved_by"] == who, item
        return
    assert action.event is not None
    case_no = target if action.target == "case" else next(m["case_no"] for m in h.outbox() if m["id"] == target)
    last = h.app.bus.handle(ShowCase(str(case_no)))["events"][-1]
    assert (last["event"], last["actor"]) == (action.event.value, who)


ROWS = pytest.mark.parametrize("action", DESK_ACTIONS, ids=[f"{a.target}-{a.name}" for a in DESK_ACTIONS])


# -- the command line ------------------------------------------------------------------------------------
@ROWS
def test_every_desk_action_is_a_subcommand_taking_each_of_its_fields(action: DeskAction) -> None:
    _, values = scenario(action)
    target = "FE-2026-00001" if action.target == "case" else 7
    args = build_parser().parse_args([*cli_arguments(action, target, values), "--by", "山田"])
    assert callable(args.func) and args.by == "山田"
    for field in action.fields:
        assert getattr(args, field.name) == values[field.name], field.name


@ROWS
def test_every_desk_action_run_from_the_command_line_records_its_event(
    desk: Harness, action: DeskAction, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare, values = scenario(action)
    target = prepare(desk)
    capsys.readouterr()
    code = main(["--config", str(desk.config_path), *cli_arguments(action, target, values), "--by", "山田"])
    assert code == 0, capsys.readouterr()
    assert_recorded(desk, action, target, "山田")


# -- the workbench -----------------------------------------------------------------------------------------
PAGES = {"case": "/cases/{}", "quarantine": "/quarantine/{}", "outbox": "/outbox"}
POSTS = {"case": "/cases/{}/{}", "quarantine": "/quarantine/{}/{}", "outbox": "/outbox/{}/{}"}


@pytest.fixture
def clerk(desk: Harness) -> tuple[Harness, TestClient]:
    desk.app.accounts.add("yamada", "clerk", PASSWORD)
    return desk, client_for(desk)


@ROWS
def test_every_desk_action_is_reachable_from_the_web(clerk: tuple[Harness, TestClient], action: DeskAction) -> None:
    """The target's page shows the action's form, and a logged-in clerk's POST records its event."""
    h, client = clerk
    prepare, values = scenario(action)
    target = prepare(h)
    token = login(client)
    page = client.get(PAGES[action.target].format(target)).text
    assert f'data-action="{action.name}"' in page
    assert f'action="{POSTS[action.target].format(target, action.name)}"' in page
    form: dict[str, Any] = {field.form_name: values[field.name] for field in action.fields}
    # An action that mails a branch is confirmed on the page that shows its mail first.
    answer = confirmed(client, POSTS[action.target].format(target, action.name), {**form, "csrf_token": token})
    assert answer.status_code == 200, answer.text
    assert_recorded(h, action, target, "yamada")
