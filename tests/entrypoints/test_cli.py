import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from mailbot.entrypoints.cli import main
from tests.domain.builders import FORM
from tests.fixtures.bot import CUSTOMER, DESK, GOOD_UNIS_ROW, SHIBUYA_MGR, UNIS_HEADER, Harness
from tests.mailfactory import build_mail
from tests.required import need_corpus


def cli(harness: Harness, *args: str) -> int:
    return main(["--config", str(harness.config_path), *args])


def cli_json(harness: Harness, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    capsys.readouterr()
    assert cli(harness, *args, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_poll_and_the_json_listings_describe_every_message_case_and_mail(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    export = tmp_path / "unis.csv"
    export.write_bytes(("\r\n".join([UNIS_HEADER, GOOD_UNIS_ROW]) + "\r\n").encode("cp932"))
    assert cli(harness, "unis", "import", str(export), "--as-of", "2026-11-24T09:00+09:00") == 0
    harness.deliver(
        build_mail(
            subject="フレッツエスカ 渋谷支店",
            sender="taro@usen.co.jp",
            to=[DESK],
            cc=[SHIBUYA_MGR],
            body=f"顧客CD:{CUSTOMER}",
            attachments=[FORM],
            message_id="<req-1@usen.co.jp>",
        )
    )
    harness.deliver(
        build_mail(subject="請求書の件", sender="keiri@usen.co.jp", to=[DESK], message_id="<other@usen.co.jp>")
    )
    assert cli(harness, "poll", "--once") == 0
    assert "processed 2 message(s)" in capsys.readouterr().out

    [case] = cli_json(harness, capsys, "cases", "list")
    assert {k: case[k] for k in ("case_no", "branch", "status", "customer_code", "defects", "message_ids")} == {
        "case_no": "FE-2026-00001",
        "branch": "渋谷支店",
        "status": "accepted",
        "customer_code": CUSTOMER,
        "defects": [],
        "message_ids": ["<req-1@usen.co.jp>"],
    }
    messages = cli_json(harness, capsys, "messages", "list")
    assert [(m["message_id"], m["disposition"], m["reason"], m["case_no"]) for m in messages] == [
        ("<req-1@usen.co.jp>", "case", "new_request", "FE-2026-00001"),
        ("<other@usen.co.jp>", "ignored", "not_request", None),
    ]
    assert messages[0]["subject"] == "フレッツエスカ 渋谷支店"
    outbox = cli_json(harness, capsys, "outbox", "list")
    receipt = next(o for o in outbox if o["kind"] == "receipt")
    assert receipt["case_no"] == "FE-2026-00001"
    assert receipt["to"] == ["taro@usen.co.jp"] and receipt["cc"] == [SHIBUYA_MGR]
    assert receipt["in_reply_to"] == "<req-1@usen.co.jp>"
    assert receipt["references"] == ["<req-1@usen.co.jp>"]
    assert receipt["status"] == "sent"
    assert set(receipt) >= {
        "kind",
        "case_no",
        "to",
        "cc",
        "subject",
        "message_id",
        "in_reply_to",
        "references",
        "status",
    }


def test_a_bad_unis_file_is_refused_with_its_line_and_exit_code_2(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    export = tmp_path / "unis.csv"
    export.write_bytes(("\r\n".join([UNIS_HEADER, GOOD_UNIS_ROW, "1,2,3"]) + "\r\n").encode("cp932"))
    assert cli(harness, "unis", "import", str(export)) == 2
    assert "line 3" in capsys.readouterr().err


def test_a_config_error_is_one_clear_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[desk]\naddress = 1\n", encoding="utf-8")
    assert main(["--config", str(path), "poll", "--once"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailbot: error: ") and "[desk] address" in err and str(path) in err


def test_every_real_world_corpus_message_goes_through_one_poll(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    files = need_corpus()
    assert len(files) >= 100
    for index, path in enumerate(files):
        shutil.copyfile(path, harness.maildir / "new" / f"{1700000000 + index}.corpus{index}.test")
    assert cli(harness, "poll", "--once") == 0
    out = capsys.readouterr().out
    assert f"processed {len(files)} message(s)" in out and "failed 0" in out
    messages = harness.messages()
    assert len(messages) == len(files)
    assert {m["disposition"] for m in messages} <= {"case", "ignored", "quarantined"}
    assert not list((harness.maildir / "new").iterdir())
    # Nothing from the outside world is ever answered.
    for row in harness.outbox():
        assert all(a.endswith("@usen.co.jp") for a in row["to"] + row["cc"])


def test_unis_import_leaves_deciding_and_sending_to_a_running_bot(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from mailbot.adapters.database.lock import PollerLock

    harness.import_unis([], as_of=harness.clock() - timedelta(hours=3))
    harness.deliver(
        build_mail(
            subject="フレッツエスカ 渋谷支店",
            sender="taro@usen.co.jp",
            to=[DESK],
            cc=[SHIBUYA_MGR],
            body=f"顧客CD:{CUSTOMER}",
            attachments=[FORM],
        )
    )
    harness.poll()
    assert harness.cases()[0]["status"] == "waiting_unis"
    sent_before = [o["message_id"] for o in harness.outbox() if o["status"] == "sent"]
    export = tmp_path / "unis.csv"
    export.write_bytes(("\r\n".join([UNIS_HEADER, GOOD_UNIS_ROW]) + "\r\n").encode("cp932"))
    running = PollerLock(harness.app.config.database_url, harness.app.intake.source.name)
    assert running.try_acquire()
    try:
        capsys.readouterr()
        assert cli(harness, "unis", "import", str(export), "--as-of", "2030-01-01T00:00+09:00") == 0
        assert "mailbot run holds the mailbox" in capsys.readouterr().out
        assert harness.cases()[0]["status"] == "waiting_unis"
        assert [o["message_id"] for o in harness.outbox() if o["status"] == "sent"] == sent_before
    finally:
        running.release()
    assert cli(harness, "unis", "import", str(export), "--as-of", "2030-01-01T00:00+09:00") == 0
    assert "1 waiting case(s) decided, 2 mail(s) sent" in capsys.readouterr().out
    assert harness.cases()[0]["status"] == "accepted"


def test_poll_once_exits_1_with_one_line_when_the_mailbox_cannot_be_read(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.maildir.rename(harness.root / "elsewhere")
    assert cli(harness, "poll", "--once") == 1
    err = capsys.readouterr().err
    assert "mailbot: error: mailbox unavailable" in err and "not a Maildir" in err


def test_cases_list_takes_a_branch_alias_and_refuses_an_unknown_branch(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.import_unis()
    harness.deliver(
        build_mail(
            subject="フレッツエスカ 渋谷支店",
            sender="taro@usen.co.jp",
            to=[DESK],
            cc=[SHIBUYA_MGR],
            body=f"顧客CD:{CUSTOMER}",
        )
    )
    harness.poll()
    assert [c["branch"] for c in cli_json(harness, capsys, "cases", "list", "--branch", "渋谷")] == ["渋谷支店"]
    assert cli(harness, "cases", "list", "--branch", "札幌支店") == 2
    assert "unknown branch '札幌支店'; configured: 渋谷支店, 新宿支店, 大阪支店" in capsys.readouterr().err
