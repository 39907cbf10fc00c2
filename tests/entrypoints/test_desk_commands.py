"""The desk's actions through `mailbot`'s own main(), as a clerk types them."""

from __future__ import annotations

import json

import pytest

from mailbot.entrypoints.cli.main import main
from tests.fixtures.bot import Harness
from tests.service.test_desk import events, request, returned_case


def run(h: Harness, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(h.config_path), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_clerk_accepts_from_the_command_line_and_cases_show_json_names_them(
    desk: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    case_no = returned_case(desk)
    code, out, _ = run(desk, capsys, "cases", "accept", case_no, "--note", "電話で確認済み", "--by", "山田")
    assert code == 0
    assert f"{case_no}: 受付にしました" in out and "送信予定: receipt, ops_accepted" in out
    assert "1 mail(s) sent" in out or "2 mail(s) sent" in out
    code, out, _ = run(desk, capsys, "cases", "show", case_no, "--json")
    data = json.loads(out)
    assert data["status"] == "accepted" and data["decided_by"] == "山田"
    last = data["events"][-1]
    assert (last["event"], last["actor"], last["note"]) == ("accept", "山田", "電話で確認済み")
    assert {"at", "reason", "status", "stage", "defects"} <= set(last)
    assert [m["kind"] for m in data["mails"]][-2:] == ["receipt", "ops_accepted"]
    assert data["messages"][0]["text"].startswith("お疲れ様です。")


def test_without_by_the_os_user_is_recorded(desk: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    import getpass

    case_no = returned_case(desk)
    assert run(desk, capsys, "cases", "note", case_no, "確認中")[0] == 0
    _, out, _ = run(desk, capsys, "cases", "show", case_no, "--json")
    assert json.loads(out)["events"][-1]["actor"] == getpass.getuser()


def test_an_action_the_lifecycle_does_not_allow_is_a_one_line_error(
    desk: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    case_no = returned_case(desk)
    assert run(desk, capsys, "cases", "close", case_no, "--reason", "重複", "--by", "山田")[0] == 0
    code, _, err = run(desk, capsys, "cases", "close", case_no, "--reason", "重複", "--by", "山田")
    assert code == 2
    assert err.count("\n") == 1 and "終了" in err and "Traceback" not in err
    code, _, err = run(desk, capsys, "cases", "accept", "FE-2026-09999", "--by", "山田")
    assert code == 2 and "FE-2026-09999" in err


def test_quarantine_list_json_gives_each_item_with_its_fields_and_release_files_it(
    desk: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    desk.import_unis()
    desk.deliver(request(sender="partner@example.com"))
    desk.poll()
    code, out, _ = run(desk, capsys, "quarantine", "list", "--json")
    [item] = json.loads(out)
    assert {"id", "message_id", "sender", "subject", "reason", "received_at"} <= set(item)
    code, out, _ = run(desk, capsys, "quarantine", "show", str(item["id"]))
    assert code == 0 and "partner@example.com" in out and "顧客CD:123456789" in out
    code, out, _ = run(desk, capsys, "quarantine", "release", str(item["id"]), "--by", "山田")
    assert code == 0 and "FE-2026-00001" in out
    assert json.loads(run(desk, capsys, "quarantine", "list", "--json")[1]) == []


def test_outbox_resend_and_cancel_take_the_id_that_outbox_list_shows(
    desk: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    desk.import_unis()
    desk.deliver(request(extra_headers={"X-Auto-Response-Suppress": "All"}))
    desk.poll()
    code, out, _ = run(desk, capsys, "outbox", "list", "--json")
    [held] = [m for m in json.loads(out) if m["status"] == "suppressed"]
    code, out, _ = run(desk, capsys, "outbox", "list")
    assert any(line.startswith(f"{held['id']} ") and "送信保留" in line for line in out.splitlines())
    code, out, _ = run(desk, capsys, "outbox", "resend", str(held["id"]), "--by", "山田")
    assert code == 0 and "送信待ちにしました" in out
    [after] = [m for m in json.loads(run(desk, capsys, "outbox", "list", "--json")[1]) if m["id"] == held["id"]]
    assert after["status"] == "sent"
    code, _, err = run(desk, capsys, "outbox", "cancel", str(held["id"]), "--by", "山田")
    assert code == 2 and "送信済み" in err


def test_cases_list_finds_by_customer_name_and_shows_customer_and_sender(
    desk: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    desk.import_unis()
    desk.deliver(request())
    desk.poll()
    code, out, _ = run(desk, capsys, "cases", "list", "--customer", "さくら")
    assert code == 0
    assert "株式会社さくら商事" in out and "taro@usen.co.jp" in out and "受付済/受付" in out
    code, out, _ = run(desk, capsys, "cases", "list", "--customer", "みどり", "--json")
    assert json.loads(out) == []


def test_a_note_over_the_cap_is_refused_on_the_command_line_as_on_the_web(
    desk: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    case_no = returned_case(desk)
    code, out, err = run(desk, capsys, "cases", "note", case_no, "あ" * 2001, "--by", "山田")
    assert code != 0
    assert "2,000文字以内で入力してください" in out + err
    assert "note" not in [event for event, *_ in events(desk, case_no)]
