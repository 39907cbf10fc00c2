import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from mailbot.domain.lifecycle import Event
from mailbot.entrypoints.cli.cases import action_hints
from mailbot.entrypoints.cli.main import main
from mailbot.service.desk_actions import DESK_ACTIONS
from tests.domain.builders import FORM
from tests.fixtures.bot import CUSTOMER, DESK, GOOD_UNIS_ROW, OPS, SHIBUYA_MGR, UNIS_HEADER, Harness, unis_row
from tests.mailfactory import build_mail
from tests.required import need_corpus
from tests.service.test_desk import request, returned_case


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


# --- issue 12: a year of cases is listed from its newest end ------------------------


def _cases(harness: Harness, count: int) -> list[str]:
    """``count`` requests filed as cases (returned: no form attached); their numbers, oldest first."""
    for i in range(count):
        harness.deliver(
            build_mail(
                subject=f"フレッツエスカ 渋谷支店 ㈱リスト{i}",
                sender=f"staff{i}@usen.co.jp",
                to=[DESK],
                cc=[SHIBUYA_MGR],
                body=f"顧客CD:{100000000 + i}",
                message_id=f"<list-{i}@usen.co.jp>",
            )
        )
    harness.poll()
    return [c["case_no"] for c in harness.cases()]


def test_cases_list_shows_the_newest_fifty_cases_and_says_how_many_older_ones_there_are(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = _cases(harness, 52)
    assert len(numbers) == 52
    capsys.readouterr()
    assert cli(harness, "cases", "list") == 0
    out = capsys.readouterr().out
    assert [n for n in numbers if n in out] == numbers[2:]
    assert out.rstrip().endswith("ほかに古い案件が 2 件あります。全件は --all、件数は --limit で指定できます)")


def test_cases_list_limit_shows_the_newest_n_oldest_first_and_all_shows_every_case(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = _cases(harness, 3)
    capsys.readouterr()
    assert cli(harness, "cases", "list", "--limit", "2") == 0
    out = capsys.readouterr().out
    assert out.index(numbers[1]) < out.index(numbers[2]) and numbers[0] not in out
    assert "新しい 2 件を表示しています。ほかに古い案件が 1 件あります" in out
    assert cli(harness, "cases", "list", "--all") == 0
    out = capsys.readouterr().out
    assert all(n in out for n in numbers) and "ほかに" not in out
    assert cli(harness, "cases", "list", "--limit", "3") == 0
    assert "ほかに" not in capsys.readouterr().out


def test_cases_list_json_holds_the_same_newest_cases_and_tells_the_rest_on_stderr(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = _cases(harness, 3)
    capsys.readouterr()
    assert cli(harness, "cases", "list", "--limit", "2", "--json") == 0
    captured = capsys.readouterr()
    assert [c["case_no"] for c in json.loads(captured.out)] == numbers[1:]
    assert "ほかに古い案件が 1 件あります" in captured.err
    assert [c["case_no"] for c in cli_json(harness, capsys, "cases", "list", "--all")] == numbers


def test_cases_list_counts_the_older_cases_that_match_the_filters_only(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = _cases(harness, 4)
    capsys.readouterr()
    assert cli(harness, "cases", "list", "--limit", "1", "--sender", "staff1@") == 0
    out = capsys.readouterr().out
    assert numbers[1] in out and "ほかに" not in out
    assert cli(harness, "cases", "list", "--limit", "1", "--sender", "@usen.co.jp") == 0
    assert "ほかに古い案件が 3 件あります" in capsys.readouterr().out


@pytest.mark.parametrize("args", [("--limit", "0"), ("--limit", "-5"), ("--limit", "5", "--all")])
def test_cases_list_refuses_a_limit_below_one_or_beside_all(
    harness: Harness, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    assert cli(harness, "cases", "list", *args) == 2
    assert "--limit" in capsys.readouterr().err


# --- issue 9: templates are checked by every command and by check-config ------------


def _harness_with_own_templates(tmp_path: Path, db_url: str) -> Harness:
    from mailbot.resources import templates_dir
    from tests.fixtures.bot import make_harness

    shutil.copytree(templates_dir(), tmp_path / "templates")
    return make_harness(tmp_path, db_url, extra_toml='[templates]\npath = "templates"\n')


def test_check_config_says_ok_for_the_shipped_templates(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = _harness_with_own_templates(tmp_path, db_url)
    assert cli(harness, "check-config") == 0
    out = capsys.readouterr().out
    assert "[OK] config:" in out and "[OK] templates:" in out and "weekly_ops" in out
    harness.app.close()


@pytest.mark.parametrize(
    "command",
    [("check-config",), ("poll", "--once"), ("cases", "list"), ("db", "upgrade"), ("check-connection",), ("status",)],
)
def test_a_template_saved_in_cp932_stops_every_command_with_one_line_and_exit_2(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    harness = _harness_with_own_templates(tmp_path, db_url)
    template = tmp_path / "templates" / "receipt.j2"
    template.write_bytes(template.read_text(encoding="utf-8").encode("cp932"))
    capsys.readouterr()
    assert cli(harness, *command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mailbot: error: ")
    assert f"{template}: not UTF-8" in err and "CP932" in err
    harness.app.close()


def test_check_config_finds_a_misspelt_variable_and_a_deleted_weekly_template(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = _harness_with_own_templates(tmp_path, db_url)
    receipt = tmp_path / "templates" / "receipt.j2"
    receipt.write_text(receipt.read_text(encoding="utf-8").replace("{{ case_no }}", "{{ case_number }}"))
    assert cli(harness, "check-config") == 2
    assert "'case_number' is undefined" in capsys.readouterr().err
    shutil.copyfile(Path(__file__).resolve().parents[2] / "templates" / "receipt.j2", receipt)
    (tmp_path / "templates" / "weekly_ops.j2").unlink()
    assert cli(harness, "check-config") == 2
    assert "weekly_ops.j2: template missing" in capsys.readouterr().err
    harness.app.close()


# --- issue 9: the one-line errors of docs/operations.md, with their exit codes ----------------------


def _config_with(harness: Harness, old: str, new: str) -> Path:
    path = harness.root / "changed.toml"
    path.write_text(harness.config_path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    return path


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("mailbot: error: ") and err.count("\n") == 1, err
    return err


def test_a_delivery_path_that_is_a_file_is_a_config_error(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    (harness.root / "a-file").write_text("x")
    config = _config_with(harness, 'path = "outbox"', 'path = "a-file"')
    assert main(["--config", str(config), "poll", "--once"]) == 2
    assert "[delivery] path: expected a directory:" in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:////etc/passwd/x", "/etc/passwd is a file, not a directory"),
        ("postgresql+pg8000://localhost/test", "the driver 'postgresql+pg8000' is not installed"),
    ],
)
def test_an_unusable_database_url_is_a_config_error(
    harness: Harness, capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    text = harness.config_path.read_text(encoding="utf-8")
    current = next(line for line in text.splitlines() if line.startswith("url = "))
    config = _config_with(harness, current, f'url = "{url}"')
    for command in (("db", "upgrade"), ("poll", "--once")):
        assert main(["--config", str(config), *command]) == 2
        assert message in _one_line_error(capsys)


def test_a_huge_poll_interval_is_a_config_error(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    config = harness.root / "changed.toml"
    config.write_text(harness.config_path.read_text(encoding="utf-8") + "\n[schedule]\npoll_seconds = 99999999999999\n")
    assert main(["--config", str(config), "run"]) == 2
    assert "[schedule] poll_seconds: must be from 5 to 86400" in _one_line_error(capsys)


@pytest.mark.parametrize(
    "args",
    [
        ("summary", "--week", "9999-W52", "--dry-run"),
        ("summary", "--week", "0001-W01", "--dry-run"),
        ("cases", "list", "--since", "0001-01-01T00:00+14:00"),
        ("cases", "list", "--since", "9999-12-31T23:59:59-12:00"),
        ("unis", "import", "{export}", "--as-of", "9999-12-31T23:59:59-12:00"),
        ("unis", "import", "{export}", "--as-of", "0001-01-01T00:00+14:00"),
    ],
)
def test_dates_at_the_edge_of_the_calendar_are_one_line_errors_with_exit_2(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    export = tmp_path / "unis.csv"
    export.write_bytes(("\r\n".join([UNIS_HEADER, GOOD_UNIS_ROW]) + "\r\n").encode("cp932"))
    assert cli(harness, *(a.format(export=export) for a in args)) == 2
    assert "out of range" in _one_line_error(capsys)


def test_sqlites_unable_to_open_names_the_database_file(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    from mailbot.adapters.database.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path}")  # a directory: SQLite cannot open it
    with pytest.raises(OperationalError, match=rf"unable to open database file: {tmp_path}"):
        engine.connect()
    engine.dispose()


def test_a_unis_import_that_runs_out_of_memory_is_one_line(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbot.service import unis_import

    def exhausted(*_args: object, **_kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(unis_import, "_replace_snapshot", exhausted)
    export = tmp_path / "unis.csv"
    export.write_bytes(("\r\n".join([UNIS_HEADER, GOOD_UNIS_ROW]) + "\r\n").encode("cp932"))
    assert cli(harness, "unis", "import", str(export)) == 2
    assert f"{export}: out of memory" in _one_line_error(capsys)


def test_status_piped_into_head_keeps_its_exit_code_when_the_reader_leaves(harness: Harness) -> None:
    import subprocess
    import sys

    # No poll has run: status is PROBLEM, exit 1, also when the reader closes the pipe at once.
    process = subprocess.Popen(
        [sys.executable, "-m", "mailbot.entrypoints.cli", "--config", str(harness.config_path), "status", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    assert process.wait(timeout=60) == 1
    assert b"Traceback" not in process.stderr.read()


def test_unis_import_says_how_many_customer_codes_it_zero_padded(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    export = tmp_path / "unis.csv"
    # 012345678 saved through Excel comes back as 12345678.
    rows = [GOOD_UNIS_ROW, "12345678" + GOOD_UNIS_ROW[len(CUSTOMER) :]]
    export.write_bytes(("\r\n".join([UNIS_HEADER, *rows]) + "\r\n").encode("cp932"))
    assert cli(harness, "unis", "import", str(export), "--as-of", "2026-11-24T09:00+09:00") == 0
    out = capsys.readouterr().out
    assert "imported 2 row(s), 2 customer(s)" in out
    assert "repaired: 1 顧客CD zero-padded to the configured digits" in out
    [notice] = harness.outbox("ops_unis_import")
    assert notice["status"] == "sent" and notice["to"] == [OPS]
    [mail] = harness.sent_mail("ops_unis_import")
    text = mail.get_content()
    assert "顧客CDの桁数が足りないため、先頭に0を補いました: 1件(行 3)" in text
    assert "完成予定日が日付として読めない" not in text


def test_the_ops_notice_of_an_import_names_every_repair_it_was_sent_for(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    header = UNIS_HEADER + ",受注登録日"
    rows = [GOOD_UNIS_ROW + ",未定", GOOD_UNIS_ROW.replace(",受注,", ",受注済み,") + ",2026/11/20"]
    export = tmp_path / "unis.csv"
    export.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("cp932"))
    assert cli(harness, "unis", "import", str(export), "--as-of", "2026-11-24T09:00+09:00") == 0
    [mail] = harness.sent_mail("ops_unis_import")
    text = mail.get_content()
    assert "受注登録日: 1件(行 2)" in text
    assert "いずれでもない明細がありました: 1件(受注済み、行 3)" in text
    assert "顧客CDの桁数" not in text and "完成予定日が日付として読めない" not in text


# --- issue 12: check-config says where raw mail goes and how long it is kept ---------
def test_check_config_names_the_raw_mail_directory_and_the_retention(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fixtures.bot import make_harness

    extra = '[storage]\nraw = "directory"\npath = "raw"\n[retention]\nraw_days = 365\nattachments_days = 90\n'
    harness = make_harness(tmp_path, db_url, extra_toml=extra)
    try:
        capsys.readouterr()
        assert cli(harness, "check-config") == 0
        out = capsys.readouterr().out
        assert f"[OK] raw mail: directory store {tmp_path.resolve() / 'raw'} (created with the first mail)" in out
        assert "[OK] retention: raw mail kept 365 days, attachments 90 days; decisions, cases" in out
        (tmp_path / "raw").mkdir()
        assert cli(harness, "check-config") == 0
        assert f"[OK] raw mail: directory store {tmp_path.resolve() / 'raw'}\n" in capsys.readouterr().out
    finally:
        harness.app.close()


def test_check_config_says_raw_mail_is_in_the_database_and_kept_for_ever_by_default(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli(harness, "check-config") == 0
    out = capsys.readouterr().out
    assert "[OK] raw mail: in the database (" in out
    assert "[OK] retention: raw mail kept for ever, attachments as long as the raw mail" in out


def test_a_database_file_that_is_no_database_is_one_line_and_exit_1(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = harness.root / "junk.sqlite3"
    junk.write_bytes(b"these are not the tables you are looking for\n" * 100)
    text = harness.config_path.read_text(encoding="utf-8")
    config = harness.root / "junk.toml"
    config.write_text(re.sub(r'(?m)^url = ".*"$', f'url = "sqlite:///{junk}"', text, count=1), encoding="utf-8")
    for command in (["db", "upgrade"], ["status"]):
        capsys.readouterr()
        assert main(["--config", str(config), *command]) == 1
        assert "file is not a database" in _one_line_error(capsys)


def test_a_schema_made_by_a_newer_mailbot_is_refused_without_advising_an_upgrade(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import text

    engine = harness.app.engine
    with engine.connect() as connection:
        ours = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    try:
        for command in (["db", "upgrade"], ["status"]):
            capsys.readouterr()
            assert cli(harness, *command) == 2
            error = _one_line_error(capsys)
            assert "schema 0099" in error and "newer mailbot" in error and "run `mailbot db upgrade`" not in error
    finally:
        # The PostgreSQL test database outlives this test.
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :ours"), {"ours": ours})


def test_db_upgrade_says_from_which_schema_to_which(
    harness: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from alembic.script import ScriptDirectory

    from mailbot.adapters.database.engine import alembic_config, make_engine, upgrade

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    database = tmp_path / "old.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine, "0006")
    engine.dispose()
    text = harness.config_path.read_text(encoding="utf-8")
    config = harness.root / "old.toml"
    config.write_text(re.sub(r'(?m)^url = ".*"$', f'url = "sqlite:///{database}"', text, count=1), encoding="utf-8")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert f"schema upgraded from 0006 to {head}" in capsys.readouterr().out


def test_a_missing_option_is_one_line_naming_it_and_exit_2(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli(harness, "cases", "close", "FE-2026-00001")
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "mailbot cases close: error: the following arguments are required: --reason\n"


# -- PID 1 in a container ----------------------------------------------------------------------
def test_as_pid_1_a_sigterm_ends_the_command_through_its_cleanup_and_elsewhere_nothing_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import signal

    import mailbot.entrypoints.cli.main as cli

    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        cli._end_on_sigterm_as_pid_1()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # not PID 1: the default stays
        monkeypatch.setattr(os, "getpid", lambda: 1)
        cli._end_on_sigterm_as_pid_1()
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        # The kernel gives PID 1 no default action for SIGTERM: without this, `docker stop` waits and kills.
        with pytest.raises(SystemExit) as stopped:
            handler(signal.SIGTERM, None)
        assert stopped.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- issue 20: a token or password command that cannot run is refused by check-config --------------------


def test_check_config_refuses_a_missing_token_command_in_one_line_naming_the_key(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    text = harness.config_path.read_text(encoding="utf-8")
    imap = (
        'kind = "imap"\nhost = "outlook.office365.com"\nusername = "f-desk@usen.co.jp"\n'
        'oauth2_token_command = "/usr/local/bin/no-such-m365-token --tenant usen"'
    )
    harness.config_path.write_text(text.replace('kind = "maildir"\npath = "Maildir"', imap), encoding="utf-8")
    capsys.readouterr()

    assert cli(harness, "check-config") == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err == (
        f"mailbot: error: {harness.config_path}: [mailbox] oauth2_token_command: cannot be run: "
        "/usr/local/bin/no-such-m365-token does not exist\n"
    )


def _hints(harness: Harness, capsys: pytest.CaptureFixture[str], case_no: str) -> list[str]:
    capsys.readouterr()
    assert cli(harness, "cases", "show", case_no) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("できる操作: ")]
    return line.removeprefix("できる操作: ").split(", ")


def test_cases_show_names_every_desk_action_the_case_allows_now_as_it_is_typed(
    desk: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two lines of the customer's order in UNIS: the case may be bound to the other one.
    desk.import_unis([unis_row(), unis_row(line="002")])
    desk.deliver(request())
    desk.poll()
    [case] = desk.cases()
    no = case["case_no"]
    capsys.readouterr()
    assert cli(desk, "cases", "show", no, "--json") == 0
    allowed = json.loads(capsys.readouterr().out)["actions"]
    assert "bind" in allowed
    hints = _hints(desk, capsys, no)
    assert f'mailbot cases bind {no} --line "契約No/明細No" --reason "理由"' in hints
    assert f'mailbot cases note {no} "メモ"' in hints
    assert f'mailbot cases close {no} --reason "理由"' in hints
    # One hint per allowed action the table has, in the table's order.
    rows = [row for row in DESK_ACTIONS if row.target == "case" and row.event and row.event.value in allowed]
    assert [hint.split()[2] for hint in hints] == [row.subcommand for row in rows]


def test_cases_show_offers_set_customer_to_a_case_without_a_customer_code(
    desk: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    no = returned_case(desk, body="お疲れ様です。\n新規のお客様です。\n")
    assert f'mailbot cases set-customer {no} "顧客CD"' in _hints(desk, capsys, no)


def test_the_hints_keep_the_spelling_of_each_actions_required_arguments() -> None:
    every = [e.value for e in Event]
    assert action_hints("FE-2026-00001", every) == [
        "mailbot cases accept FE-2026-00001",
        'mailbot cases return FE-2026-00001 --note "理由"',
        "mailbot cases entered FE-2026-00001 --p-number P1234567890123",
        'mailbot cases set-customer FE-2026-00001 "顧客CD"',
        'mailbot cases bind FE-2026-00001 --line "契約No/明細No" --reason "理由"',
        'mailbot cases correct-p-number FE-2026-00001 --p-number P1234567890123 --reason "理由"',
        'mailbot cases note FE-2026-00001 "メモ"',
        'mailbot cases close FE-2026-00001 --reason "理由"',
        "mailbot cases reopen FE-2026-00001",
        'mailbot cases answer FE-2026-00001 --text "回答の本文"',
        "mailbot cases handled FE-2026-00001",
    ]
