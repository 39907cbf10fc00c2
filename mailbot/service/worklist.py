"""事務センター's worklist: opened lines whose Z200214 line UNIS does not show 確定 yet.

Each row carries exactly what the manual says to enter in UNIS: 顧客CD, 顧客名,
契約品目 (Z200214), 開始年月 (the month of processing), 完成予定日 (the
フレッツ完成日), シリアルNO (the P番号) and 確定日 (the processing date).
"""

from __future__ import annotations

import email
import email.policy
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.store import DbUnisLookup, Store
from mailbot.adapters.database.tables import Case, Outbox
from mailbot.adapters.templates import Renderer
from mailbot.config_after import AfterConfig
from mailbot.domain.decision import MailIntent
from mailbot.domain.lifecycle import Stage
from mailbot.domain.policy import Policy
from mailbot.domain.unis import BROKERAGE_ITEM
from mailbot.service.aftercare import once, today_jst
from mailbot.service.casefile import UnitOfWork, write_mails

__all__ = ["FIELDS", "WorklistRow", "send_worklist", "worklist_rows", "worklist_text", "worklist_xlsx"]

FIELDS = ("顧客CD", "顧客名", "契約品目", "開始年月", "完成予定日", "シリアルNO", "確定日")
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@dataclass(frozen=True)
class WorklistRow:
    case_no: str
    customer_code: str
    customer_name: str
    item: str
    start_month: str
    due_date: date | None
    serial_no: str
    confirm_date: date

    def values(self) -> list[str]:
        return [
            self.customer_code,
            self.customer_name,
            self.item,
            self.start_month,
            self.due_date.strftime("%Y/%m/%d") if self.due_date else "",
            self.serial_no,
            self.confirm_date.strftime("%Y/%m/%d"),
        ]

    def as_json(self) -> dict[str, str]:
        return {"case_no": self.case_no, **dict(zip(FIELDS, self.values(), strict=True))}


def _month(text: str | None, today: date) -> str:
    if not text:
        return f"{today.year:04d}/{today.month:02d}"
    year, _, month = text.replace("/", "-").partition("-")
    if not (year.isdigit() and month.isdigit() and len(year) == 4 and 1 <= int(month) <= 12):
        raise ValueError(f"--month: {text!r} is not a month such as 2026-12")
    return f"{int(year):04d}/{int(month):02d}"


def worklist_rows(session: Session, *, today: date, month: str | None = None) -> list[WorklistRow]:
    """Completed cases whose customer's Z200214 line is not 確定 in the latest UNIS export."""
    start = _month(month, today)
    lookup = DbUnisLookup(session)
    rows = []
    for case in session.scalars(select(Case).where(Case.stage == Stage.COMPLETED.value).order_by(Case.id)):
        customer = lookup.customer(case.customer_code) if case.customer_code else None
        if customer is not None and any(
            line.item_code.strip().upper() == BROKERAGE_ITEM and line.state.strip() == "確定" for line in customer.lines
        ):
            continue  # the reconciliation moves it on
        rows.append(
            WorklistRow(
                case_no=case.case_no,
                customer_code=case.customer_code or "",
                customer_name=(customer.name if customer else None) or case.customer_name or "",
                item=BROKERAGE_ITEM,
                start_month=start,
                due_date=case.completed_date,
                serial_no=case.p_number or "",
                confirm_date=today,
            )
        )
    return rows


def worklist_text(rows: list[WorklistRow]) -> str:
    if not rows:
        return "(対象の案件はありません)"
    table = [["受付番号", *FIELDS]] + [[r.case_no, *r.values()] for r in rows]
    widths = [max(_width(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip() for row in table
    )


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def worklist_xlsx(rows: list[WorklistRow]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "UNIS確定"
    sheet.append(list(FIELDS))
    for row in rows:
        sheet.append(row.values())
    for column, width in zip("ABCDEFG", (12, 30, 10, 10, 12, 18, 12), strict=True):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def send_worklist(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    *,
    policy: Policy,
    settings: AfterConfig,
    clock: Callable[[], datetime],
    month: str | None = None,
    once_key: str | None = None,
) -> int:
    """Queue the worklist mail (with the .xlsx) to [jimu_center] recipients; the number of rows (0: nothing sent).

    With ``once_key`` (the scheduler's week) it is sent at most once for that key.
    """
    if not settings.jimu_recipients:
        raise ValueError("[jimu_center] recipients is not configured")
    with sessions.begin() as session:
        now = clock()
        today = today_jst(now)
        rows = worklist_rows(session, today=today, month=month)
        if not rows:
            return 0
        uow = UnitOfWork(Store(session), renderer, policy, now)
        if once_key is not None and not once(uow, "jimu_worklist", once_key):
            return 0
        filename = f"UNIS確定作業リスト_{today:%Y%m%d}.xlsx"
        facts = {
            "month": rows[0].start_month,
            "count": str(len(rows)),
            "rows_text": worklist_text(rows),
            "filename": filename,
        }
        write_mails(uow, [MailIntent("jimu_worklist", settings.jimu_recipients, facts=facts)], None, None, None, None)
        session.flush()
        mail = session.scalars(select(Outbox).where(Outbox.kind == "jimu_worklist").order_by(Outbox.id.desc())).first()
        assert mail is not None
        message = email.message_from_bytes(mail.raw, policy=email.policy.SMTP)
        message.add_attachment(worklist_xlsx(rows), maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=filename)
        mail.raw = message.as_bytes()
        return len(rows)
