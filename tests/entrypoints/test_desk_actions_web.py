"""Every row of the desk-action table is reachable from the workbench (the web half of test_desk_actions).

For each row: the page of its target shows its form (its button label), and
a logged-in clerk's POST to its route reaches the handler (the row's event is
recorded on the case as the clerk, or the quarantined mail is resolved by
the clerk). A new row needs a scenario here: the test says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailbot.entrypoints.web import desk as web_desk
from mailbot.entrypoints.web.app import create_app
from mailbot.service import views
from mailbot.service.commands import Cancel
from mailbot.service.desk_actions import DESK_ACTIONS, DeskAction
from tests.entrypoints.test_web_thread import confirmed
from tests.fixtures.bot import Harness, rebuild, unis_row
from tests.service.test_desk import answer as reply_in_thread
from tests.service.test_desk import events, request, returned_case

PASSWORD = "correct-horse-battery"
CLERK = "yamada"

# What the clerk types into each field, by the field's name.
VALUES: dict[str, Any] = {
    "note": "電話で確認",
    "text": "支店に電話済み",
    "reason": "重複のため",
    "defects": ["manager_cc_missing"],
    "p_number": "P1234567890123",
    "code": "123456789",
    "line": "C0001/001",
    "template": "05_received",
}


@dataclass(frozen=True)
class Scenario:
    """Puts a target in a state where the action is offered; returns the target's id and its page."""

    prepare: Callable[[Harness], tuple[str | int, str]]


def _returned(h: Harness) -> tuple[str, str]:
    case_no = returned_case(h)
    return case_no, f"/cases/{case_no}"


def _accepted(h: Harness) -> tuple[str, str]:
    case_no, page = _returned(h)
    h.app.desk.accept(case_no, by="山田")
    return case_no, page


def _entered(h: Harness) -> tuple[str, str]:
    case_no, page = _accepted(h)
    h.app.desk.entered(case_no, "P9999999999999", by="山田")
    return case_no, page


def _questioned(h: Harness) -> tuple[str, str]:
    case_no, page = _returned(h)
    reply_in_thread(h, case_no, body="工事日はいつ頃になりますか?")
    h.poll()
    return case_no, page


def _closed(h: Harness) -> tuple[str, str]:
    case_no, page = _returned(h)
    h.app.desk.close(case_no, by="山田", reason="取り下げ")
    return case_no, page


def _without_code(h: Harness) -> tuple[str, str]:
    case_no = returned_case(h, body="お疲れ様です。\n新規のお客様です。\n")
    return case_no, f"/cases/{case_no}"


def _bound_to_another_line(h: Harness) -> tuple[str, str]:
    h.import_unis([unis_row(), unis_row(line="002")])
    h.deliver(request())
    h.poll()
    [case] = h.cases()
    return str(case["case_no"]), f"/cases/{case['case_no']}"


def _quarantined(h: Harness) -> tuple[int, str]:
    h.import_unis()
    h.deliver(request(sender="営業 <sales@partner.example.com>", subject="フレッツエスカ 渋谷支店 社外"))
    h.poll()
    with h.app.sessions() as session:
        [row] = views.quarantine_rows(session)
    return int(row["id"]), f"/quarantine/{row['id']}"


def _pending_mail(h: Harness) -> tuple[int, str]:
    h.import_unis()
    h.deliver(request())
    h.app.intake.poll_once(deliver=False)
    [mail] = [o for o in h.outbox("receipt") if o["status"] == "pending"]
    return int(mail["id"]), "/outbox"


def _held_back_mail(h: Harness) -> tuple[int, str]:
    text = h.config_path.read_text(encoding="utf-8").replace("[desk]", "[desk]\nmax_replies_per_sender_per_hour = 1")
    h.config_path.write_text(text, encoding="utf-8")
    rebuild(h)
    h.import_unis([unis_row(line=f"{n:03d}") for n in range(2)])
    for i in range(2):
        h.deliver(request(subject=f"フレッツエスカ 渋谷支店 {i}"))
    h.poll()
    [held] = [o for o in h.outbox("receipt") if o["status"] == "suppressed"]
    return int(held["id"]), "/outbox"


SCENARIOS: dict[tuple[str, str], Callable[[Harness], tuple[Any, str]]] = {
    ("case", "accept"): _returned,
    ("case", "return"): _accepted,
    ("case", "enter"): _accepted,
    ("case", "correct_p_number"): _entered,
    ("case", "set_customer"): _without_code,
    ("case", "bind"): _bound_to_another_line,
    ("case", "note"): _returned,
    ("case", "close"): _returned,
    ("case", "reopen"): _closed,
    ("case", "answer"): _questioned,
    ("case", "handled"): _questioned,
    ("quarantine", "release"): _quarantined,
    ("quarantine", "discard"): _quarantined,
    ("outbox", "resend"): _held_back_mail,
    ("outbox", "cancel"): _pending_mail,
}
PATHS = {"case": "/cases/{}/{}", "quarantine": "/quarantine/{}/{}", "outbox": "/outbox/{}/{}"}


def _login(h: Harness) -> tuple[TestClient, str]:
    h.app.accounts.add(CLERK, "clerk", PASSWORD)
    client = TestClient(create_app(h.app, secret="test-secret"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.post(
        "/login", data={"username": CLERK, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"}
    )
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', answer.text)
    assert answer.status_code == 200 and fresh, answer.text
    return client, fresh.group(1)


def _case_no_of(h: Harness, row: DeskAction, target_id: Any) -> str:
    if row.target == "case":
        return str(target_id)
    [mail] = [o for o in h.outbox() if o["id"] == target_id]
    return str(mail["case_no"])


def test_every_row_has_a_scenario() -> None:
    assert {(row.target, row.name) for row in DESK_ACTIONS} == set(SCENARIOS)


@pytest.mark.parametrize("row", DESK_ACTIONS, ids=lambda row: f"{row.target}-{row.name}")
def test_a_clerk_finds_the_rows_form_on_its_page_and_its_post_reaches_the_handler(
    desk: Harness, row: DeskAction
) -> None:
    h = desk
    target_id, page_path = SCENARIOS[(row.target, row.name)](h)
    client, token = _login(h)

    page = client.get(page_path).text
    assert f'data-action="{row.name}"' in page and f">{row.label}</button>" in page, (page_path, row.name)
    for field in row.fields:
        assert f'name="{field.form_name}"' in page, (row.name, field.name)

    form: dict[str, Any] = {"csrf_token": token}
    for field in row.fields:
        form[field.form_name] = VALUES[field.name]
    # An action that mails a branch is confirmed on the page that shows its mail first.
    answer = confirmed(client, PATHS[row.target].format(target_id, row.name), form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    flash = client.get(answer.headers["location"]).text
    assert 'class="flash ok"' in flash, flash

    if row.event is not None:
        event, actor, _, _ = events(h, _case_no_of(h, row, target_id))[-1]
        assert (event, actor) == (row.event.value, CLERK)
    else:
        with h.app.sessions() as session:
            item = views.quarantine_detail(session, int(target_id))
        assert item["resolved_by"] == CLERK and item["resolution"]


def test_an_action_the_table_does_not_have_is_answered_404(desk: Harness) -> None:
    case_no, _ = _returned(desk)
    client, token = _login(desk)
    for path in (f"/cases/{case_no}/delete", "/quarantine/1/delete", "/outbox/1/delete"):
        answer = client.post(path, data={"csrf_token": token})
        assert answer.status_code == 404, path
        assert "不明な操作です。" in answer.text and 'href="/outbox"' in answer.text, path  # with the menu


def _buttons_of_mail(page: str, mail_id: int) -> list[str]:
    """The data-action of each button in the outbox page's row of ``mail_id``."""
    row = re.search(rf'<tr data-mail="{mail_id}".*?</tr>', page, re.S)
    assert row, mail_id
    return re.findall(r'<button type="submit" data-action="([a-z_]+)"', row.group(0))


@pytest.mark.parametrize("scenario", [_pending_mail, _held_back_mail], ids=["pending", "held-back"])
def test_the_outbox_pages_buttons_are_the_rows_that_take_the_mails_status(
    desk: Harness, scenario: Callable[[Harness], tuple[int, str]]
) -> None:
    mail_id, _ = scenario(desk)
    client, _ = _login(desk)
    [mail] = [o for o in desk.outbox() if o["id"] == mail_id]
    expected = [row.name for row in DESK_ACTIONS if row.target == "outbox" and mail["status"] in row.mail_statuses]
    assert expected and _buttons_of_mail(client.get("/outbox").text, mail_id) == expected


def test_a_new_outbox_row_gets_its_button_on_the_outbox_page(desk: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = DeskAction(
        "hold", "outbox", Cancel, None, "保留する", "hold a mail back", (),
        mails_branch=False, mail_statuses=frozenset({"pending"}),
    )  # fmt: skip
    monkeypatch.setattr(web_desk, "DESK_ACTIONS", (*DESK_ACTIONS, extra))
    mail_id, _ = _pending_mail(desk)
    client, _ = _login(desk)
    page = client.get("/outbox").text
    assert _buttons_of_mail(page, mail_id) == ["cancel", "hold"]
    assert f'action="/outbox/{mail_id}/hold"' in page and ">保留する</button>" in page
