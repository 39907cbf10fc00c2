"""The demo past reception: NTT entry, a progress list, 事務センター's worklist, UNIS reminders by line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailbot.bootstrap import App
from mailbot.domain.clock import local_date
from mailbot.entrypoints.demo_unis import moved_rows
from mailbot.service import views, worklist
from mailbot.service.commands import DeliverOutbox, Enter, ImportProgress, ImportUnis, SendWorklist

__all__ = ["after_acceptance_demo"]

PROGRESS_HEADER = "P番号,顧客CD,お客様名,進捗,工事日,開通日,キャンセル日"


def after_acceptance_demo(app: App, directory: Path, unis_header: str, unis_rows: Sequence[str], step: int) -> str:
    """Steps ``step``.. of the demo; returns a case number worth showing."""
    with app.sessions() as session:
        accepted = [c for c in views.case_rows(session, stage="accepted") if c["customer_code"]]
    codes: dict[str, str] = {}
    for case in accepted:
        codes.setdefault(case["customer_code"], case["case_no"])
    opened_no, cancelled_no = list(codes.values())[:2]
    numbers = {opened_no: "P1000000000001", cancelled_no: "P1000000000002"}
    for case_no, p_number in numbers.items():
        result = app.bus.handle(Enter(case_no, by="山田", p_number=p_number))
        print(f"{step}) mailbot cases entered {case_no} --p-number {p_number}: {result.summary}")
        step += 1

    today = local_date(app.clock(), app.config.policy.tz)
    ten_days_ago = today - timedelta(days=10)
    listing = directory / "ntt_progress.csv"
    listing.write_bytes(
        (
            "\r\n".join(
                [
                    PROGRESS_HEADER,
                    f"P1000000000001,,,開通,{ten_days_ago:%Y/%m/%d},{today:%Y/%m/%d},",
                    f"P1000000000002,,,キャンセル,,,{ten_days_ago:%Y/%m/%d}",
                    "P1999999999999,199999999,株式会社みしらぬ,工事日確定,2026/12/24,,",
                ]
            )
            + "\r\n"
        ).encode("cp932")
    )
    print(f"{step}) NTT's progress list imported: mailbot progress import {listing.name}")
    report = app.bus.handle(ImportProgress(listing.read_bytes(), name=listing.name, as_of=datetime.now(UTC)))
    print("\n".join("   " + line for line in report.lines()))
    app.bus.handle(DeliverOutbox())
    step += 1

    with app.sessions() as session:
        rows = worklist.worklist_rows(session, today=today)
        held = worklist.held_rows(session)
    sheet = directory / "unis_worklist.xlsx"
    sheet.write_bytes(worklist.worklist_xlsx(rows, held))
    print(f"{step}) 事務センター's worklist: mailbot unis worklist --xlsx {sheet.name} --send")
    print("\n".join("   " + line for line in worklist.worklist_text(rows, held).splitlines()))
    if app.config.after.jimu_recipients:
        app.bus.handle(SendWorklist())
        app.bus.handle(DeliverOutbox())
    step += 1

    # Next UNIS export: 事務センター confirmed the opened line; the cancelled order is still 受注.
    # A shop registered before Sept 2017 (no case) took BGM, and its FLET'S line was moved to the
    # new customer without the old 完成予定日 (manual §5④, the 明細備考 column says from where).
    opened_code = next(code for code, no in codes.items() if no == opened_no)
    later = [row.replace(",受注,", ",確定,") if row.startswith(opened_code + ",") else row for row in unis_rows]
    export = directory / "unis_next_week.csv"
    export.write_bytes(("\r\n".join([unis_header, *later, *moved_rows(today)]) + "\r\n").encode("cp932"))
    done = app.bus.handle(ImportUnis(export, name=export.name, as_of=datetime.now(UTC)))
    print(f"{step}) the next UNIS export imported, and reconciled: mailbot unis import {export.name}")
    print("\n".join("   " + line for line in done.lines()))
    app.bus.handle(DeliverOutbox())
    return cancelled_no
