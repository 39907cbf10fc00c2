"""Importing NTT's progress list: each row finds its case and moves it, all or nothing.

A row finds its case by P番号, else by 顧客CD among accepted cases without a
P番号 (the P番号 is then recorded on the case). Rows that match no case or
several are reported, and ops gets one notice for them (once per distinct set
of rows, so importing the same file again changes nothing and sends nothing).
A row 開通 without its 開通日 does not open the case: the 開通日 is what
事務センター enters as the line's 完成予定日 (manual §5), so it is never made
up from the import's day; the row is reported like an unmatched one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import Case
from mailbot.adapters.database.store import Store
from mailbot.adapters.progress_file import ProgressRow, read_progress
from mailbot.adapters.templates import Renderer
from mailbot.config_after import AfterConfig
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.clock import local_date
from mailbot.domain.decision import MailIntent
from mailbot.domain.jobs import JobName
from mailbot.domain.lifecycle import STAGES, Actor, Event, Stage, TransitionNotAllowed, step
from mailbot.domain.model import CaseStatus
from mailbot.domain.policy import Policy
from mailbot.service.aftercare import advance, once
from mailbot.service.casefile import RecordContext, write_mails

__all__ = ["ProgressReport", "import_progress"]

# The stage a progress status leads to -> the lifecycle event that gets it there.
_EVENT_OF_STAGE = {
    Stage.ENTERED: Event.ENTER,
    Stage.CONSTRUCTION_SCHEDULED: Event.SCHEDULE,
    Stage.COMPLETED: Event.COMPLETE,
    Stage.CANCELLED: Event.CANCEL,
}
# How far along a case is; a row never moves a case back.
_ORDER = {
    Stage.ACCEPTED: 0,
    Stage.ENTERED: 1,
    Stage.CONSTRUCTION_SCHEDULED: 2,
    Stage.COMPLETED: 3,
    Stage.UNIS_CONFIRMED: 4,
    Stage.CANCELLED: 5,
}


@dataclass
class ProgressReport:
    source: str
    rows: int = 0
    applied: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    # Rows 開通 without 開通日: the case is not opened.
    undated: list[dict[str, Any]] = field(default_factory=list)
    ops_notified: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "applied": self.applied,
            "unchanged": self.unchanged,
            "unmatched": self.unmatched,
            "ambiguous": self.ambiguous,
            "skipped": self.skipped,
            "undated": self.undated,
            "ops_notified": self.ops_notified,
        }

    def lines(self) -> list[str]:
        out = [
            f"{self.source}: {self.rows} row(s); {len(self.applied)} case change(s), {self.unchanged} unchanged, "
            f"{len(self.unmatched)} unmatched, {len(self.ambiguous)} ambiguous, {len(self.skipped)} skipped, "
            f"{len(self.undated)} 開通日なし"
        ]
        out += [f"  line {a['line']}: {a['case_no']} {a['from']} -> {a['to']}" for a in self.applied]
        out += [f"  line {u['line']}: no case for {_who(u)} ({u['status']})" for u in self.unmatched]
        out += [
            f"  line {u['line']}: several cases for {_who(u)}: {', '.join(u['cases'])} ({u['status']})"
            for u in self.ambiguous
        ]
        out += [f"  line {s['line']}: {s['case_no']}: {s['reason']}" for s in self.skipped]
        out += [f"  {u['line']}行目: {u['case_no']}: 開通日の記載がないため開通にしていません" for u in self.undated]
        if self.ops_notified:
            out.append("  ops were told of the unmatched rows")
        return out


def _who(row: dict[str, Any]) -> str:
    parts = [f"P番号 {row['p_number']}" if row.get("p_number") else "", f"顧客CD {row['customer_code']}"
             if row.get("customer_code") else "", row.get("customer_name") or ""]  # fmt: skip
    return " ".join(p for p in parts if p)


def _problem(row: dict[str, Any]) -> str:
    if row.get("undated"):
        return f"{row['case_no']}: 開通日の記載がないため開通にしていません"
    if row.get("cases"):
        return f"候補が複数: {', '.join(row['cases'])}"
    return "該当する案件なし"


def _row_json(row: ProgressRow) -> dict[str, Any]:
    return {
        "line": row.line,
        "p_number": row.p_number,
        "customer_code": row.customer_code,
        "customer_name": row.customer_name,
        "status": row.status,
    }


def _find(session: Session, row: ProgressRow) -> tuple[list[Case], bool]:
    """The candidate cases and whether they were found by 顧客CD (the P番号 is then to be recorded)."""
    if row.p_number:
        by_p = list(session.scalars(select(Case).where(Case.p_number == row.p_number)))
        if by_p:
            return by_p, False
    if row.customer_code:
        by_code = list(
            session.scalars(
                select(Case)
                .where(
                    Case.customer_code == row.customer_code,
                    Case.p_number.is_(None),
                    Case.stage == Stage.ACCEPTED.value,
                )
                .order_by(Case.id)
            )
        )
        return by_code, True
    return [], False


def import_progress(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    *,
    policy: Policy,
    directory: BranchDirectory,
    settings: AfterConfig,
    data: bytes,
    name: str,
    as_of: datetime,
    clock: Callable[[], datetime],
) -> ProgressReport:
    """Read the whole list (ProgressFileError on a bad line), then apply it in one transaction."""
    rows = read_progress(data, name, settings.progress.columns, settings.progress.status)
    report = ProgressReport(source=name, rows=len(rows))
    day = local_date(as_of, policy.tz)
    with sessions.begin() as session:
        uow = RecordContext(Store(session), renderer, policy, clock())
        for row in rows:
            cases, by_code = _find(session, row)
            if not cases:
                report.unmatched.append(_row_json(row))
                continue
            if len(cases) > 1:
                report.ambiguous.append({**_row_json(row), "cases": [c.case_no for c in cases]})
                continue
            _apply(uow, cases[0], row, by_code, settings.progress.status[row.status], day, report,
                   directory=directory, settings=settings, source=name)  # fmt: skip
        problems = report.unmatched + report.ambiguous + report.undated
        if problems and policy.ops_recipients:
            text = "\n".join(f"  {p['line']}行目: {_who(p)} 進捗「{p['status']}」 → {_problem(p)}" for p in problems)
            digest = hashlib.sha256(("\n".join(sorted(_who(p) + p["status"] for p in problems))).encode()).hexdigest()
            if once(uow, JobName.PROGRESS_UNMATCHED, digest, detail=name):
                facts = {"source": name, "count": str(len(problems)), "rows_text": text}
                intent = MailIntent("ops_progress_unmatched", tuple(policy.ops_recipients), facts=facts)
                write_mails(uow, [intent], None, None, None, None)
                report.ops_notified = True
    return report


def _apply(
    uow: RecordContext,
    case: Case,
    row: ProgressRow,
    by_code: bool,
    target: Stage,
    day: date,
    report: ProgressReport,
    *,
    directory: BranchDirectory,
    settings: AfterConfig,
    source: str,
) -> None:
    stage = Stage(case.stage)
    before = stage.value
    if stage not in _ORDER:
        report.skipped.append(
            {"line": row.line, "case_no": case.case_no, "reason": f"the case is {STAGES[stage].label} ({stage.value})"}
        )
        return
    rescheduled = (
        target is Stage.CONSTRUCTION_SCHEDULED
        and stage is Stage.CONSTRUCTION_SCHEDULED
        and row.construction_date is not None
        and row.construction_date != case.construction_date
    )
    if (_ORDER[stage] >= _ORDER[target] or stage is Stage.CANCELLED) and not rescheduled:
        # Already there (or further): importing the same list again changes nothing.
        report.unchanged += 1
        return
    if target is Stage.COMPLETED and row.completed_date is None:
        # The 開通日 becomes the line's 完成予定日 in UNIS: never the import's day.
        report.undated.append({**_row_json(row), "case_no": case.case_no, "undated": True})
        return
    event = _EVENT_OF_STAGE[target]
    try:
        step(stage, CaseStatus(case.status), event, Actor.BOT)
    except TransitionNotAllowed:
        report.skipped.append(
            {"line": row.line, "case_no": case.case_no, "reason": f"{event.value} is not allowed from {stage.value}"}
        )
        return
    notes = [f"進捗リスト {source} {row.line}行目: {row.status}"]
    if by_code and row.p_number and case.p_number is None:
        case.p_number = row.p_number
        notes.append(f"P番号 {row.p_number} を記録(顧客CDで照合)")
    if row.construction_date:
        case.construction_date = row.construction_date
    if target is Stage.COMPLETED:
        case.completed_date = row.completed_date
    if target is Stage.CANCELLED:
        case.cancelled_date = row.cancelled_date or day
    advance(uow, case, event, directory=directory, settings=settings, note="; ".join(notes),
            facts={"source": source}, reason="progress_import")  # fmt: skip
    report.applied.append({"line": row.line, "case_no": case.case_no, "from": before, "to": case.stage})
