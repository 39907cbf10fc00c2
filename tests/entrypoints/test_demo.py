"""`mailbot demo`: what `make demo` shows a new user."""

from pathlib import Path

import pytest

from mailbot.domain.checks import CHECKS
from mailbot.entrypoints.cli import main


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
    assert "\ufffd" not in out
    # Running it again replaces the previous demo.
    assert main(["demo", "--dir", str(target)]) == 0


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--dir", str(tmp_path)]) == 2
    assert "not a demo directory" in capsys.readouterr().out
    assert (tmp_path / "precious.txt").exists()
