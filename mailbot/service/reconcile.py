"""The UNIS reconciliation: what each new UNIS export says of the cases after acceptance.

Run right after every UNIS import (the CLI and the watch folder). Rules:

* a completed case whose Z200214 line is now 確定 -> ``unis_confirmed``;
* a cancelled case whose Z200214 line is still 受注 ``[reminders] cancel_days``
  after the cancellation -> one reminder to the branch to cancel the UNIS order;
* a customer whose BGM lines are all cancelled (明細状態 解約, or 顧客状態 解約)
  while the Z200214 line is still active -> one reminder to cancel it too (§5⑤);
* a Z200214 line on a new customer whose 明細備考 says 加入前顧客コード:X and
  whose 完成予定日 differs from the old customer's line -> one warning (§5④).

Each reminder is claimed once (a ``job_runs`` row, so across restarts),
recorded as the case's event and listed in the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.store import DbUnisLookup, Store
from mailbot.adapters.database.tables import Case
from mailbot.adapters.templates import Renderer
from mailbot.adapters.unis_remarks import previous_customer, split_remarks, split_remarks_of_file
from mailbot.config_after import AfterConfig
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.lifecycle import Event, Stage
from mailbot.domain.policy import Policy
from mailbot.domain.unis import BROKERAGE_ITEM, LINE_ORDERED, OrderLine, UnisCustomer
from mailbot.service.aftercare import advance, once, today_jst
from mailbot.service.casefile import UnitOfWork

__all__ = [
    "LINE_CANCELLED",
    "LINE_CONFIRMED",
    "ReconcileReport",
    "reconcile",
    "reconcile_app",
    "split_remarks",
    "split_remarks_of_file",
]

LINE_CONFIRMED = "確定"
LINE_CANCELLED = "解約"
CUSTOMER_CANCELLED = "解約"
_REMINDER_JOB = "unis_reminder"


@dataclass
class ReconcileReport:
    confirmed: list[str] = field(default_factory=list)
    reminders: list[dict[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"reconciliation: {len(self.confirmed)} case(s) UNIS確定, {len(self.reminders)} reminder(s)"]
        out += [f"  {c}: unis_confirmed" for c in self.confirmed]
        out += [f"  {r['case_no']}: {r['kind']} ({r['why']})" for r in self.reminders]
        return out

    def as_json(self) -> dict[str, Any]:
        return {"confirmed": self.confirmed, "reminders": self.reminders}


def _brokerage(customer: UnisCustomer) -> list[OrderLine]:
    return [line for line in customer.lines if line.item_code.strip().upper() == BROKERAGE_ITEM]


def _is_bgm(line: OrderLine, settings: AfterConfig) -> bool:
    code = line.item_code.strip().upper()
    if settings.bgm_items:
        return code in settings.bgm_items
    return code != BROKERAGE_ITEM


def _where(line: OrderLine) -> str:
    return f"{line.contract_no} / {line.line_no}"


def _ja(value: date | None) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if value else ""


def reconcile(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    *,
    policy: Policy,
    directory: BranchDirectory,
    settings: AfterConfig,
    clock: Callable[[], datetime],
    remarks: Mapping[tuple[str, str, str], str] | None = None,
) -> ReconcileReport:
    """Apply the rules to the latest UNIS snapshot, in one transaction."""
    report = ReconcileReport()
    with sessions.begin() as session:
        now = clock()
        uow = UnitOfWork(Store(session), renderer, policy, now)
        lookup = DbUnisLookup(session)
        if lookup.as_of is None:
            return report
        today = today_jst(now)
        stages = [Stage.COMPLETED.value, Stage.UNIS_CONFIRMED.value, Stage.CANCELLED.value]
        cases = list(
            session.scalars(
                select(Case).where(Case.stage.in_(stages), Case.customer_code.is_not(None)).order_by(Case.id)
            )
        )

        def remind(case: Case, event: Event, kind: str, key: str, why: str, facts: dict[str, str]) -> None:
            if once(uow, _REMINDER_JOB, f"{kind}:{case.case_no}:{key}", detail=why):
                advance(uow, case, event, directory=directory, settings=settings, note=why, facts=facts,
                        reason="unis_reconcile")  # fmt: skip
                report.reminders.append({"case_no": case.case_no, "kind": kind, "why": why})

        for case in cases:
            customer = lookup.customer(case.customer_code or "")
            if customer is None:
                continue
            lines = _brokerage(customer)
            stage = Stage(case.stage)
            if stage is Stage.COMPLETED and any(line.state.strip() == LINE_CONFIRMED for line in lines):
                confirmed = next(line for line in lines if line.state.strip() == LINE_CONFIRMED)
                advance(uow, case, Event.CONFIRM_UNIS, directory=directory, settings=settings,
                        note=f"UNIS Z200214 確定 ({_where(confirmed)})", reason="unis_reconcile")  # fmt: skip
                report.confirmed.append(case.case_no)
                stage = Stage.UNIS_CONFIRMED
            if stage is Stage.CANCELLED:
                ordered = [line for line in lines if line.state.strip() == LINE_ORDERED]
                since = case.cancelled_date or today
                if ordered and today >= since + timedelta(days=settings.cancel_days):
                    line = ordered[0]
                    why = f"キャンセル後 {settings.cancel_days} 日を過ぎてもUNISのZ200214が受注のまま ({_where(line)})"
                    remind(case, Event.REMIND_UNIS_CANCEL, "unis_cancel_reminder", _where(line), why,
                           {"line": _where(line)})  # fmt: skip
                continue
            bgm = [line for line in customer.lines if _is_bgm(line, settings)]
            customer_gone = CUSTOMER_CANCELLED in customer.status
            bgm_gone = bool(bgm) and all(line.state.strip() == LINE_CANCELLED for line in bgm)
            active = [line for line in lines if line.state.strip() != LINE_CANCELLED]
            if (customer_gone or bgm_gone) and active:
                line = active[0]
                why = f"BGMの明細がすべて解約だがZ200214が{line.state} ({_where(line)})"
                remind(case, Event.REMIND_BGM_CANCEL, "bgm_cancel_reminder", _where(line), why,
                       {"line": _where(line), "state": line.state})  # fmt: skip

        for (new_code, contract_no, line_no), remark in sorted((remarks or {}).items()):
            old_code = previous_customer(remark)
            if old_code is None or old_code == new_code:
                continue
            new_customer, old_customer = lookup.customer(new_code), lookup.customer(old_code)
            if new_customer is None or old_customer is None:
                continue
            new_line = next(
                (li for li in _brokerage(new_customer) if li.contract_no == contract_no and li.line_no == line_no), None
            )
            old_lines = _brokerage(old_customer)
            if new_line is None or not old_lines:
                continue
            old_due = old_lines[0].due_date
            if new_line.due_date == old_due:
                continue
            moved = _case_for(session, old_code) or _case_for(session, new_code)
            if moved is None:
                continue
            why = f"加入後の顧客 {new_code} のZ200214の完成予定日が加入前 {old_code} と異なる"
            remind(moved, Event.WARN_DUE_DATE, "due_date_warning", f"{new_code}:{contract_no}:{line_no}", why,
                   {"old_code": old_code, "new_code": new_code, "old_due": _ja(old_due),
                    "new_due": _ja(new_line.due_date)})  # fmt: skip
    return report


def _case_for(session: Session, customer_code: str) -> Case | None:
    """The customer's latest case that is opened (completed or UNIS確定)."""
    return session.scalars(
        select(Case)
        .where(
            Case.customer_code == customer_code,
            Case.stage.in_([Stage.COMPLETED.value, Stage.UNIS_CONFIRMED.value]),
        )
        .order_by(Case.id.desc())
        .limit(1)
    ).first()


def reconcile_app(app: Any, remarks: Mapping[tuple[str, str, str], str] | None = None) -> ReconcileReport:
    """:func:`reconcile` over a built app's adapters and config (the CLI and the scheduler)."""
    return reconcile(
        app.sessions,
        app.renderer,
        policy=app.config.policy,
        directory=app.config.branches,
        settings=app.config.after,
        clock=app.clock,
        remarks=remarks,
    )
