"""The operations commands, run through `mailbot`'s own main() on a real bot directory."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailbot.domain.schedule import Week
from mailbot.entrypoints.cli.main import build_parser, main
from tests.fixtures.bot import FakeClock, Harness, make_harness
from tests.service.test_health import a_request
from tests.service.test_replay import TWO_DOCUMENTS, seed
from tests.service.test_summaries import seed_week

# The commands read the real clock: summaries are seeded in a week long past.
PAST = Week(2025, 10)


def run(h: Harness, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(h.config_path), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def live(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    """A bot whose clock is the real one, for commands that read the time themselves."""
    h = make_harness(tmp_path, db_url, clock=FakeClock(datetime.now(UTC)))
    yield h
    h.app.close()


def test_every_operations_command_is_registered() -> None:
    parser = build_parser()
    for argv in (
        ["run"],
        ["status", "--json"],
        ["summary", "--week", "2025-W10", "--dry-run"],
        ["replay", "--since", "2026-11-01"],
        ["cases", "show", "FE-2026-00001"],
        ["cases", "list"],
    ):
        assert callable(parser.parse_args(argv).func)


def test_status_exits_0_for_a_bot_that_just_polled(live: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    live.poll()
    code, out, _ = run(live, capsys, "status")
    assert code == 0
    assert ": OK" in out
    assert re.search(r"weekly_summary +mon 08:30", out)


def test_status_exits_1_when_the_last_poll_is_stale(live: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    live.clock.now = datetime.now(UTC) - timedelta(minutes=10)
    live.poll()
    code, out, _ = run(live, capsys, "status", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    assert [p["code"] for p in data["problems"]] == ["stale_poll"]
    assert data["last_successful_poll"] == live.clock.now.isoformat()


def test_status_exits_1_for_an_old_submission_left_in_the_maildir(
    live: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    live.poll()
    name = live.deliver(a_request(9))
    old = (datetime.now(UTC) - timedelta(minutes=5)).timestamp()
    os.utime(live.maildir / "new" / name, (old, old))
    code, out, _ = run(live, capsys, "status")
    assert code == 1
    assert "PROBLEM unprocessed_mail" in out
    assert "1 waiting, 1 never processed" in out


def test_summary_dry_run_prints_the_mails_and_records_nothing(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_week(harness, PAST)
    code, out, _ = run(harness, capsys, "summary", "--week", "2025-W10", "--dry-run")
    assert code == 0
    assert "=== 2025-W10:渋谷支店" in out
    assert "To: shibuya-mgr@usen.co.jp" in out
    assert "Subject: 【週次】フレッツエスカ依頼状況 渋谷支店" in out
    assert "=== 2025-W10:ops" in out
    assert harness.outbox("weekly_branch") == []

    code, out, _ = run(harness, capsys, "summary", "--week", "2025-W10", "--branch", "新宿", "--dry-run")
    assert "=== 2025-W10:新宿支店" in out and "渋谷支店" not in out.split("\n")[0]
    assert "2025-W10:ops" not in out


def test_summary_lists_open_returns_of_the_configured_days_and_counts_the_older(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    h = make_harness(tmp_path, db_url, "[summary]\nlist_open_returns_days = 10\n")
    try:
        seed_week(h, PAST)
        code, out, _ = run(h, capsys, "summary", "--week", "2025-W10", "--branch", "渋谷支店", "--dry-run")
    finally:
        h.app.close()
    assert code == 0
    # The return of the week before (13 days before the week's end) is counted; this week's is listed.
    assert "※このほか、返却から10日を超えている依頼が1件あります(件数のみの記載です)。" in out
    assert "FE-2025-00001" not in out and "FE-2025-00003" in out


def test_summary_sends_a_week_once_and_says_what_was_already_sent(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_week(harness, PAST)
    code, out, _ = run(harness, capsys, "summary", "--week", "2025-W10")
    assert code == 0
    assert "2025-W10 渋谷支店: queued" in out
    assert "2025-W10 大阪支店: not sent (no activity)" in out
    code, out, _ = run(harness, capsys, "summary", "--week", "2025-W10", "--branch", "渋谷支店")
    assert code == 0
    assert "2025-W10 渋谷支店: already sent at" in out
    assert len(harness.outbox("weekly_branch")) == 2


def test_summary_refuses_a_bad_week_or_branch(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(harness, capsys, "summary", "--week", "2026-48")
    assert code == 2
    assert "mailbot: error: --week: '2026-48' is not an ISO week such as 2026-W48" in err
    code, _, err = run(harness, capsys, "summary", "--week", "2025-W10", "--branch", "札幌支店")
    assert code == 2
    assert "--branch: unknown branch '札幌支店'" in err


def test_replay_lists_the_cases_a_new_rule_changes(
    harness: Harness, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(harness)
    changed = make_harness(tmp_path, db_url, TWO_DOCUMENTS, clock=harness.clock)
    changed.app.close()
    # A dry run is the default: nothing is recorded and no mail goes out.
    code, out, _ = run(changed, capsys, "replay", "--since", "2026-11-01")
    assert code == 0
    assert "FE-2026-00001 渋谷支店: would change accepted → returned" in out
    assert "申込書類が添付されていません" in out
    assert "2 case(s) would change (dry run: nothing recorded, no mail); add --apply to apply" in out
    assert [c["status"] for c in changed.cases()] == ["accepted", "returned"]
    code, out, _ = run(changed, capsys, "replay", "--since", "2026-11-01", "--apply")
    assert "FE-2026-00002 新宿支店: changed returned → returned" in out
    assert "queued defect_reply, ops_returned" in out
    assert "FE-2026-00001 渋谷支店: would change accepted → returned" in out
    assert "only a person may return an accepted case (mailbot cases return)" in out
    assert "1 case(s) changed, 2 mail(s) queued" in out
    code, out, _ = run(changed, capsys, "replay", "--since", "2026-11-01")
    assert "FE-2026-00002" not in out


def test_cases_show_gives_the_thread_each_checks_result_and_the_mails(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(harness)
    code, out, _ = run(harness, capsys, "cases", "show", "FE-2026-00002")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "FE-2026-00002  新宿支店  確認中/返却"
    assert any(line.startswith("2026-11-24 11:00  hana@usen.co.jp") and "case/new_request" in line for line in lines)
    manager = lines.index("  ✗ 該当あり 支店長(依頼部署責任者)がCCに入っていない")
    # The facts as the return mail explains them, not the stored keys.
    assert "新宿支店の支店長(shinjuku-mgr@usen.co.jp)" in lines[manager + 1]
    assert "managers=" not in out
    assert "  ✓ 該当なし 必要な申込書類が添付されていない" in lines
    mails = lines[lines.index("送信メール:") :]
    assert any("defect_reply  hana@usen.co.jp" in line and "送信済み" in line for line in mails)
    assert any("ops_returned  ops@usen.co.jp" in line for line in mails)
    assert any(
        line.startswith("2026-11-24 11:00  return") and "mailbot" in line and "new_request" in line
        and "manager_cc_missing" in line
        for line in lines[lines.index("経過:") :]
    )  # fmt: skip
    assert "できる操作: mailbot cases accept FE-2026-00002" in out

    code, out, _ = run(harness, capsys, "cases", "show", "fe-2026-00001", "--json")
    data = json.loads(out)
    assert data["status"] == "accepted"
    assert all(c["ok"] for c in data["checks"])
    assert [m["kind"] for m in data["mails"]] == ["receipt", "ops_accepted"]
    events = [(e["event"], e["status"], e["stage"], e["actor"], e["reason"]) for e in data["events"]]
    assert events == [("accept", "accepted", "accepted", "mailbot", "new_request")]


def test_cases_show_of_an_unknown_case_is_the_same_error_as_a_desk_action_on_it(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(harness, capsys, "cases", "show", "FE-2026-09999")
    assert code == 2
    assert err == "mailbot: error: 受付番号 FE-2026-09999 の案件はありません\n"
    code, _, err_of_action = run(harness, capsys, "cases", "note", "FE-2026-09999", "確認中")
    assert (code, err_of_action) == (2, err)


# -- retention (issue 12) ---------------------------------------------------------------------
@pytest.fixture
def kept_a_day(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    """A bot keeping raw mail one day; its mail arrives on its clock's day, a week before the real one."""
    h = make_harness(tmp_path, db_url, extra_toml="[retention]\nraw_days = 1\n")
    yield h
    h.app.close()


def test_retention_is_a_dry_run_by_default_and_removes_with_apply(
    kept_a_day: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    kept_a_day.import_unis()
    kept_a_day.deliver(a_request(1))
    kept_a_day.poll()
    [case] = kept_a_day.cases()
    code, out, _ = run(kept_a_day, capsys, "retention")
    assert code == 0
    assert out.startswith(f"{case['case_no']}: 元のメールを削除(")
    assert "元のメール 1 通、添付ファイルのみ 0 通を削除します(確認のみ: --apply で実行)" in out
    code, out, _ = run(kept_a_day, capsys, "retention", "--apply")
    assert code == 0 and "元のメール 1 通、添付ファイルのみ 0 通を削除しました" in out
    code, out, _ = run(kept_a_day, capsys, "retention", "--apply")
    assert out == "保存期間を過ぎたメールはありません\n"
    code, out, _ = run(kept_a_day, capsys, "cases", "show", case["case_no"])
    assert code == 0
    assert "受信のメール: 元のメールは保存期間を過ぎたため" in out
    assert "(保存期間を過ぎて元のメールまたは添付ファイルが削除されたため、チェックは再実行できません)" in out
    code, out, _ = run(kept_a_day, capsys, "replay", "--since", "2026-11-01", "--apply")
    assert code == 0 and f"{case['case_no']} 渋谷支店: 再確認できません。元のメールは保存期間を過ぎたため" in out


def test_retention_without_a_policy_says_nothing_is_removed(live: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(live, capsys, "retention", "--apply")
    assert code == 0
    assert out == "保存期間が設定されていません([retention] raw_days / attachments_days)。何も削除しません\n"
