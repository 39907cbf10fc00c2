"""ImportUnis: the one way a UNIS export comes in (CLI, watch folder, demo)."""

from __future__ import annotations

from pathlib import Path

from mailbot.service.commands import ImportUnis
from tests.fixtures.bot import OPS, make_harness
from tests.fixtures.unis_export import HEADER, bgm, brokerage, customer, export

OLD, NEW = "300000001", "300000002"


def test_the_import_reads_the_configured_headers_and_reconciles_what_it_read(tmp_path: Path, db_url: str) -> None:
    h = make_harness(tmp_path, db_url, '[unis.columns]\nremark = "備考"\ndue_date = "完成日"\n')
    try:
        old = customer(OLD, "喫茶みなと", klass="9 未加入店")
        new = customer(NEW, "喫茶みなと")
        rows = [brokerage(old, "C3001", "001", "確定", ordered="2016/04/01", serial="P1234567890123"),
                bgm(new, "C3002", "001", "受注"),
                brokerage(new, "C3002", "002", ordered="2026/11/20", serial="P1234567890123",
                          remark=f"加入前顧客コード:{OLD}")]  # fmt: skip
        data = export(rows, rename={"明細備考": "備考", "完成予定日": "完成日"})
        done = h.app.bus.handle(ImportUnis(data, name="unis.csv", as_of=h.clock()))
        assert done.result.rows == 3 and done.result.missing_columns == ()
        assert [r["kind"] for r in done.reconciled.reminders] == ["due_date_warning"]
        lines = done.lines()
        assert lines[0].startswith("imported 3 row(s), 2 customer(s)")
        assert "UNIS照合: UNIS確定 0件、お願い・注意のメール 1件" in lines
        h.app.intake.deliver_outbox()
        [mail] = h.sent_mail("due_date_warning")
        assert mail["Cc"] == OPS
    finally:
        h.app.close()


def test_an_export_without_the_manuals_columns_says_which_it_lacks(tmp_path: Path, db_url: str) -> None:
    h = make_harness(tmp_path, db_url)
    try:
        data = export([brokerage(customer("123456789"), "C1001")], (*HEADER, "契約担当者"))
        done = h.app.bus.handle(ImportUnis(data, name="unis.csv", as_of=h.clock()))
        [missing] = [line for line in done.lines() if line.startswith("  not in this export")]
        assert "明細備考" in missing and "支店" not in missing and "契約担当者" not in missing
    finally:
        h.app.close()
