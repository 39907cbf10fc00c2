"""`mailbot demo`: what `make demo` shows a new user."""

from pathlib import Path

import pytest

from mailbot.domain.checks import CHECKS
from mailbot.entrypoints.cli.main import main


def test_the_demo_shows_every_defect_and_disposition_and_writes_the_replies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "demo"
    assert main(["demo", "--dir", str(target)]) == 0
    out = capsys.readouterr().out
    for check in CHECKS:
        assert check.name in out, check.name
    for shown in ("案件", "対象外", "隔離", "resubmission", "duplicate", "auto_reply", "outside_domain"):
        assert shown in out
    written = sorted((target / "outbox").glob("*.eml"))
    assert written and f"{len(written)} mails written" in out
    assert "今週の状況" in out  # the week's summary closes the demo
    # Past reception: NTT entry, the progress list (an opening, a cancellation), the worklist, a reminder.
    assert "entered -> completed" in out and "entered -> cancelled" in out and "no case for P番号" in out
    assert "シリアルNO" in out and "P1000000000001" in out and (target / "unis_worklist.xlsx").exists()
    assert ": UNIS確定にしました" in out and "unis_cancel_reminder" in out
    assert "顧客CD 300000002: 完成予定日引継ぎの注意" in out  # §5④ on a customer with no case
    assert "受付後: 開通 1件 / キャンセル 1件" in out
    assert "\ufffd" not in out
    # Running it again replaces the previous demo.
    assert main(["demo", "--dir", str(target)]) == 0


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--dir", str(tmp_path)]) == 2
    assert "not a demo directory" in capsys.readouterr().out
    assert (tmp_path / "precious.txt").exists()
