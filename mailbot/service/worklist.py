"""事務センター's worklist: the bound lines of opened cases that UNIS does not show 確定 yet.

Each row carries what the manual (§5①②, 事務センターの処理内容) says to enter on
that line in UNIS: 顧客CD, 顧客名, the line (契約No/明細No), 契約品目 Z200214,
開始年月 and 確定日 (written 「処理日」: the day 事務センター processes it, not
the day the list is made; ``--month`` still fixes 開始年月), 完成予定日 (the
progress list's 開通日, the case's completed_date) and シリアルNO (the P番号).

* The line is the case's bound line (manual §5: the line is the unit): an older
  確定 Z200214 line of the customer does not take the case off the list, only
  its own line's 確定 does. An unbound case (accepted before binding) uses the
  customer's only Z200214 line; with several it is listed without 契約No/明細No
  and a note to bind it.
* 備考 ``部分確定`` when other lines of the customer are still 受注 (manual cases
  2 and 4): 事務センター confirms the FLET'S line alone.
* A case without a 顧客CD (a UBD request before its code) is never listed.
* The lines to *leave* 受注 (manual case 3: the BGM line is 確定 before the
  opening, the Z200214 line stays 受注 until it): :func:`held_rows`, shown
  below the rows in the text, the mail and a second sheet of the .xlsx, since
  事務センター confirms the BGM customer and must not take the FLET'S line along.
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

from mailbot.adapters.database.schema import Case, Outbox
from mailbot.adapters.database.store import DbUnisLookup, Store
from mailbot.adapters.templates import Renderer
from mailbot.config_after import AfterConfig
from mailbot.domain.clock import local_date
from mailbot.domain.decision import MailIntent
from mailbot.domain.jobs import JobName
from mailbot.domain.lifecycle import AT_NTT, Stage
from mailbot.domain.policy import Policy
from mailbot.domain.unis import BROKERAGE_ITEM
from mailbot.service.aftercare import once
from mailbot.service.casefile import RecordContext, write_mails
from mailbot.service.reconcile import bound_line

__all__ = [
    "FIELDS",
    "HELD_FIELDS",
    "PARTIAL",
    "PROCESSING_DAY",
    "HeldRow",
    "WorklistRow",
    "held_rows",
    "send_worklist",
    "worklist_filename",
    "worklist_rows",
    "worklist_text",
    "worklist_xlsx",
]

FIELDS = ("顧客CD", "顧客名", "契約No", "明細No", "契約品目", "開始年月", "完成予定日", "シリアルNO", "確定日", "備考")
HELD_FIELDS = ("受付番号", "顧客CD", "顧客名", "契約No", "明細No", "状況")
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
# 開始年月 and 確定日: the day 事務センター processes the line (manual: 運用月, UNIS処理日).
PROCESSING_DAY = "処理日"
PARTIAL = "部分確定"
# Before the opening: the lifecycle's stages at NTT (domain/lifecycle.py), as stored in Case.stage.
_BEFORE_OPENING = tuple(s.value for s in AT_NTT)


@dataclass(frozen=True)
class WorklistRow:
    case_no: str
    customer_code: str
    customer_name: str
    contract_no: str
    line_no: str
    item: str
    start_month: str
    due_date: date | None
    serial_no: str
    confirm_date: str
    note: str = ""

    def values(self) -> list[str]:
        return [
            self.customer_code,
            self.customer_name,
            self.contract_no,
            self.line_no,
            self.item,
            self.start_month,
            self.due_date.strftime("%Y/%m/%d") if self.due_date else "",
            self.serial_no,
            self.confirm_date,
            self.note,
        ]

    def as_json(self) -> dict[str, str]:
        return {"case_no": self.case_no, **dict(zip(FIELDS, self.values(), strict=True))}


@dataclass(frozen=True)
class HeldRow:
    """A case not opened yet whose customer's BGM line is 確定: its Z200214 line stays 受注 (manual case 3)."""

    case_no: str
    customer_code: str
    customer_name: str
    contract_no: str
    line_no: str
    note: str

    def values(self) -> list[str]:
        return [self.case_no, self.customer_code, self.customer_name, self.contract_no, self.line_no, self.note]


def _month(text: str | None) -> str:
    if not text:
        return PROCESSING_DAY
    year, _, month = text.replace("/", "-").partition("-")
    if not (year.isdigit() and month.isdigit() and len(year) == 4 and 1 <= int(month) <= 12):
        raise ValueError(f"--month: {text!r} is not a month such as 2026-12")
    return f"{int(year):04d}/{int(month):02d}"


def worklist_rows(session: Session, *, today: date, month: str | None = None) -> list[WorklistRow]:
    """Completed cases whose bound Z200214 line is not 確定 in the latest UNIS export.

    ``today`` is kept for the callers; the dates 事務センター enters are the day it processes them.
    """
    start = _month(month)
    lookup = DbUnisLookup(session)
    rows = []
    query = select(Case).where(Case.stage == Stage.COMPLETED.value, Case.customer_code.is_not(None)).order_by(Case.id)
    for case in session.scalars(query):
        if not case.customer_code:
            continue  # a UBD request without its 顧客CD: nothing to confirm yet
        customer = lookup.customer(case.customer_code)
        line = bound_line(case, customer, lookup.held_lines(case.customer_code) if case.contract_no is None else None)
        if line is not None and line.confirmed:
            continue  # the reconciliation moves it on
        notes = []
        if line is None and case.contract_no is None and customer is not None and customer.brokerage_lines():
            notes.append("明細未紐付け(デスクが紐付けます)")
        if customer is not None and any(
            other.ordered and not other.ended for other in customer.lines if line is None or other.key != line.key
        ):
            notes.append(PARTIAL)
        where = line.key if line is not None else (case.contract_no or "", case.line_no or "")
        rows.append(
            WorklistRow(
                case_no=case.case_no,
                customer_code=case.customer_code,
                customer_name=(customer.name if customer else None) or case.customer_name or "",
                contract_no=where[0],
                line_no=where[1],
                item=BROKERAGE_ITEM,
                start_month=start,
                due_date=case.completed_date,
                serial_no=case.p_number or "",
                confirm_date=PROCESSING_DAY,
                note=" ".join(notes),
            )
        )
    return rows


def held_rows(session: Session) -> list[HeldRow]:
    """Cases before their opening whose Z200214 line is 受注 while a BGM line of the customer is 確定 (case 3)."""
    lookup = DbUnisLookup(session)
    rows = []
    query = select(Case).where(Case.stage.in_(_BEFORE_OPENING), Case.customer_code.is_not(None)).order_by(Case.id)
    for case in session.scalars(query):
        customer = lookup.customer(case.customer_code or "")
        held = lookup.held_lines(case.customer_code or "") if case.contract_no is None else None
        line = bound_line(case, customer, held)
        if customer is None or line is None or not line.ordered or line.ended:
            continue
        confirmed = [o for o in customer.other_lines() if o.confirmed]
        if not confirmed:
            continue
        note = f"BGM明細 {confirmed[0].where} は確定済み。Z200214はフレッツ開通まで受注のまま(確定しない)"
        rows.append(HeldRow(case.case_no, customer.code, customer.name, line.contract_no, line.line_no, note))
    return rows


def _table(table: list[list[str]]) -> str:
    widths = [max(_width(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip() for row in table
    )


def worklist_text(rows: list[WorklistRow], held: list[HeldRow] | None = None) -> str:
    """The rows as a text table; with ``held``, the lines to leave 受注 below them."""
    text = (
        _table([["受付番号", *FIELDS]] + [[r.case_no, *r.values()] for r in rows])
        if rows
        else "(対象の案件はありません)"
    )
    if held:
        text += "\n\n■ 確定しない明細(BGMは確定済み、フレッツは開通前: Z200214は受注のまま)\n"
        text += _table([list(HELD_FIELDS)] + [r.values() for r in held])
    return text


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def worklist_xlsx(rows: list[WorklistRow], held: list[HeldRow] | None = None) -> bytes:
    """The rows on a sheet "UNIS確定" (the manual's fields); ``held`` on a second sheet "確定しない明細"."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "UNIS確定"
    sheet.append(list(FIELDS))
    for row in rows:
        sheet.append(row.values())
    for column, width in zip("ABCDEFGHIJ", (12, 30, 10, 8, 10, 10, 12, 18, 10, 12), strict=True):
        sheet.column_dimensions[column].width = width
    if held:
        other = book.create_sheet("確定しない明細")
        other.append(list(HELD_FIELDS))
        for held_row in held:
            other.append(held_row.values())
        for column, width in zip("ABCDEF", (16, 12, 30, 10, 8, 70), strict=True):
            other.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def worklist_filename(today: date) -> str:
    """The .xlsx's name, the mail's attachment and the workbench's download alike."""
    return f"UNIS確定作業リスト_{today:%Y%m%d}.xlsx"


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

    The rows to confirm and the lines to leave 受注 both count: a list with
    only the latter is sent too (事務センター confirms the BGM customer then).
    With ``once_key`` (the scheduler's week) it is sent at most once for that key.
    """
    if not settings.jimu_recipients:
        raise ValueError("[jimu_center] recipients is not configured")
    with sessions.begin() as session:
        now = clock()
        today = local_date(now)
        rows = worklist_rows(session, today=today, month=month)
        held = held_rows(session)
        if not rows and not held:
            return 0
        uow = RecordContext(Store(session), renderer, policy, now)
        if once_key is not None and not once(uow, JobName.JIMU_WORKLIST, once_key):
            return 0
        filename = worklist_filename(today)
        facts = {
            "month": f"{today:%Y/%m}",
            "count": str(len(rows)),
            "held": str(len(held)),
            "partial": str(sum(1 for r in rows if PARTIAL in r.note)),
            "rows_text": worklist_text(rows, held),
            "filename": filename,
        }
        write_mails(uow, [MailIntent("jimu_worklist", settings.jimu_recipients, facts=facts)], None, None, None, None)
        session.flush()
        mail = session.scalars(select(Outbox).where(Outbox.kind == "jimu_worklist").order_by(Outbox.id.desc())).first()
        assert mail is not None
        message = email.message_from_bytes(mail.raw, policy=email.policy.SMTP)
        attachment = worklist_xlsx(rows, held)
        message.add_attachment(attachment, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=filename)
        mail.raw = message.as_bytes()
        return len(rows) + len(held)
