"""Each desk action through the bus: the command reaches the desk and its event is recorded.

The same scenarios as tests/service/test_desk.py, but built as commands and
handed to ``app.bus``, the one way in of the CLI, the web, the scheduler and the demo.
"""

from __future__ import annotations

import pytest

from mailbot.domain.checks import CHECKS
from mailbot.domain.schedule import Week
from mailbot.service import views
from mailbot.service.commands import (
    Accept,
    Bind,
    Cancel,
    Close,
    DeliverIfFree,
    DeliverOutbox,
    Discard,
    Enter,
    Note,
    Poll,
    PreviewWeekly,
    Release,
    Reopen,
    Resend,
    Return,
    SetCustomer,
    ShowCase,
    SummarizeWeek,
)
from mailbot.service.desk import ActionResult
from mailbot.service.desk_actions import DESK_ACTIONS
from mailbot.service.errors import CaseNotFound, DeskError
from tests.fixtures.bot import CUSTOMER, Harness, unis_row
from tests.service.test_desk import events, returned_case
from tests.service.test_intake import request


def test_each_case_action_through_the_bus_records_its_event(desk: Harness) -> None:
    case_no = returned_case(desk)
    steps = [
        Note(case_no, by="山田", text="支店に電話済み"),
        Return(case_no, by="山田", note="申込書を添付してください"),
        Accept(case_no, by="佐藤", note="副支店長がCCに入っていたため受付"),
        Bind(case_no, by="山田", line="C0001/002", reason="支店に確認済み"),
        SetCustomer(case_no, by="山田", code=CUSTOMER),
        Enter(case_no, by="山田", p_number="P1234567890123"),
        Close(case_no, by="山田", reason="取り下げ"),
        Reopen(case_no, by="山田", reason="誤って終了"),
    ]
    for command in steps:
        before = len(events(desk, case_no))
        result = desk.app.bus.handle(command)
        assert isinstance(result, ActionResult) and result.case_no == case_no
        recorded = events(desk, case_no)[before:]
        [row] = [a for a in DESK_ACTIONS if a.command is type(command)]
        assert row.event is not None
        event = row.event
        assert (event.value, command.by) in [(e[0], e[1]) for e in recorded], (command, recorded)
    desk.app.bus.handle(DeliverOutbox())
    assert desk.sent_mail("receipt")  # the acceptance's receipt went out


def test_a_desk_actions_refusal_reaches_the_caller(desk: Harness) -> None:
    case_no = returned_case(desk)
    with pytest.raises(DeskError, match="返却の理由"):
        desk.app.bus.handle(Return(case_no, by="山田", note=" "))
    with pytest.raises(DeskError, match="FE-2026-09999"):
        desk.app.bus.handle(Accept("FE-2026-09999", by="山田"))


def test_quarantine_actions_through_the_bus(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request(sender="営業 <sales@partner.example.com>"))
    desk.deliver(request(sender="spam@example.com", subject="フレッツエスカ 新宿支店"))
    desk.poll()
    with desk.app.sessions() as session:
        outsider, spam = views.quarantine_rows(session)
    released = desk.app.bus.handle(Release(outsider["id"], by="山田", reason="UBDからの正式な依頼"))
    assert released.case_no == "FE-2026-00001"
    assert events(desk, released.case_no)[0][1] == "山田"
    desk.app.bus.handle(Discard(spam["id"], by="山田", reason="迷惑メール"))
    with desk.app.sessions() as session:
        assert views.quarantine_rows(session) == []
        # Both stay listed as resolved; the released one names the case it became.
        release_row, done = views.quarantine_rows(session, include_resolved=True)
    assert (done["id"], done["resolution"], done["resolved_by"]) == (spam["id"], "discarded", "山田")
    assert (release_row["id"], release_row["resolution"], release_row["case_no"]) == (
        outsider["id"],
        "released",
        "FE-2026-00001",
    )


def test_outbox_actions_through_the_bus_record_their_events(desk: Harness) -> None:
    cap = desk.app.config.policy.max_replies_per_sender_per_hour
    desk.import_unis([unis_row(line=f"{n:03d}") for n in range(cap + 2)])  # a line for each request
    for i in range(cap + 1):
        desk.deliver(request(subject=f"フレッツエスカ 渋谷支店 {i}"))
    desk.poll()
    [held] = [o for o in desk.outbox("receipt") if o["status"] == "suppressed"]
    desk.app.bus.handle(Resend(held["id"], by="山田"))
    assert events(desk, held["case_no"])[-1][:2] == ("mail_resent", "山田")
    assert "1 mail(s) sent" in desk.app.bus.handle(DeliverIfFree())

    desk.deliver(request(subject="フレッツエスカ 渋谷支店 最後", sender="other.shibuya@usen.co.jp"))
    desk.app.bus.handle(Poll(deliver=False))
    [pending] = [o for o in desk.outbox("receipt") if o["status"] == "pending"]
    desk.app.bus.handle(Cancel(pending["id"], by="山田"))
    assert events(desk, pending["case_no"])[-1][:2] == ("mail_cancelled", "山田")


def test_the_reads_that_need_the_config_go_through_the_bus_too(desk: Harness) -> None:
    case_no = returned_case(desk)
    shown = desk.app.bus.handle(ShowCase(case_no))
    with desk.app.sessions() as session:
        assert shown == views.case_detail(
            session, case_no, directory=desk.app.config.branches, policy=desk.app.config.policy, checks=CHECKS
        )
    with pytest.raises(CaseNotFound):
        desk.app.bus.handle(ShowCase("FE-2026-09999"))
    week = Week.containing(desk.clock.advance(hours=1))
    report, plan = desk.app.bus.handle(SummarizeWeek(week))
    assert report.totals["received"] == 1 and plan
    previews = desk.app.bus.handle(PreviewWeekly(week))
    assert [mail.key for mail, _, _ in previews] == [mail.key for mail in plan]
