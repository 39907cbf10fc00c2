"""Importing NTT's progress list: each row finds its case and moves it, all or nothing.

A row finds its case by P番号, else by 顧客CD among accepted cases without a
P番号 (the P番号 is then recorded on the case). Rows that match no case or
several are reported, and ops gets one notice for them (once per distinct set
of rows, so importing the same file again changes nothing and sends nothing).
A row 開通 without its 開通日 does not open the case: the 開通日 is what
事務センター enters as the line's 完成予定日 (manual §5), so it is never made
up from the import's day; the row is reported like an unmatched one.

The workbench shows a list's report before applying it: a dry run is the
same import with its transaction rolled back, and applying it passes the
digest of the report the clerk saw, so that what is applied is exactly what
was shown (another import in between refuses it with :class:`ProgressChanged`).
"""

from __future__ import annotations

import hashlib
import json
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
from mailbot.domain.lifecycle import MAIL_KINDS, STAGES, Actor, Event, Stage, TransitionNotAllowed, step
from mailbot.domain.model import CaseStatus
from mailbot.domain.policy import Policy
from mailbot.service.aftercare import advance, once
from mailbot.service.casefile import RecordContext, write_mails
from mailbot.service.errors import ServiceError

__all__ = [
    "ProgressChanged",
    "ProgressReport",
    "ReportRow",
    "ReportSection",
    "import_progress",
    "report_sections",
    "report_summary",
]


class ProgressChanged(ServiceError):
    """The list would now do something else than the report the clerk saw: nothing was applied."""


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
    # The rows whose case is already there (``unchanged`` counts them): line, case_no, stage.
    kept: list[dict[str, Any]] = field(default_factory=list)
    ops_notified: bool = False
    # A dry run: nothing was kept.
    dry_run: bool = False

    def digest(self) -> str:
        """What the list does, as a fingerprint: the same list on the same cases gives the same digest."""
        what = {k: v for k, v in self.as_json().items() if k not in ("ops_notified", "dry_run")}
        return hashlib.sha256(json.dumps(what, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

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
            "kept": self.kept,
            "ops_notified": self.ops_notified,
            "dry_run": self.dry_run,
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


@dataclass(frozen=True)
class ReportSection:
    """One group of rows of a report as the desk reads it: a title and one Japanese line per row."""

    key: str  # applied, kept, unmatched, ambiguous, undated, skipped
    title: str
    rows: tuple[ReportRow, ...]


@dataclass(frozen=True)
class ReportRow:
    line: int
    cases: tuple[str, ...]  # the cases it concerns (links on the page)
    text: str


def _applied_text(a: dict[str, Any]) -> str:
    before, after = STAGES[Stage(a["from"])].label, STAGES[Stage(a["to"])].label
    move = f"工事日の変更({before}のまま)" if a.get("rescheduled") else f"{before} → {after}"
    facts = [f"進捗「{a['status']}」"] if a.get("status") else []
    if a.get("customer_name"):
        facts.append(a["customer_name"])
    dates = (("工事日", "construction_date"), ("開通日", "completed_date"), ("キャンセル日", "cancelled_date"))
    facts += [f"{label} {a[key].replace('-', '/')}" for label, key in dates if a.get(key)]
    if a.get("p_number"):
        facts.append(f"P番号 {a['p_number']} を記録(顧客CDで照合)")
    text = f"{move}({'、'.join(facts)})" if facts else move
    # The mails the move queues (the branch's notice, ops' copy): said before the clerk applies it.
    mails = [f"「{MAIL_KINDS[k].label}」({_AUDIENCE[MAIL_KINDS[k].audience]})" for k in a.get("mails", ())]
    return text + (f" メール: {'、'.join(mails)}" if mails else "")


_AUDIENCE = {"branch": "支店へ", "ops": "デスクへ", "jimu": "事務センターへ", "managers": "支店の管理者へ"}


def report_sections(report: ProgressReport) -> list[ReportSection]:
    """The report in the desk's words, group by group (empty groups left out), for the workbench."""
    sections = [
        ReportSection("applied", "案件が進む行" if report.dry_run else "反映した行", tuple(
            ReportRow(a["line"], (a["case_no"],), _applied_text(a)) for a in report.applied)),
        ReportSection("undated", "開通日の記載がない行(開通にしません)", tuple(
            ReportRow(u["line"], (u["case_no"],), f"{_who(u)}: 開通日の記載がないため開通にしません")
            for u in report.undated)),
        ReportSection("unmatched", "該当する案件がない行", tuple(
            ReportRow(u["line"], (), f"{_who(u)}: 該当する案件がありません(進捗「{u['status']}」)")
            for u in report.unmatched)),
        ReportSection("ambiguous", "候補の案件が複数ある行", tuple(
            ReportRow(u["line"], tuple(u["cases"]), f"{_who(u)}: 候補が{len(u['cases'])}件あり、決められません"
                      f"(進捗「{u['status']}」)") for u in report.ambiguous)),
        ReportSection("skipped", "反映できない行", tuple(
            ReportRow(k["line"], (k["case_no"],), k["reason"]) for k in report.skipped)),
        ReportSection("kept", "変更のない行(すでに反映済み)", tuple(
            ReportRow(k["line"], (k["case_no"],), f"すでに「{STAGES[Stage(k['stage'])].label}」です")
            for k in report.kept)),
    ]  # fmt: skip
    return [section for section in sections if section.rows]


def report_summary(report: ProgressReport) -> str:
    """One line: how many rows, and what they do (or did), in the desk's words."""
    moves: dict[str, int] = {}
    for a in report.applied:
        label = "工事日の変更" if a.get("rescheduled") else STAGES[Stage(a["to"])].label
        moves[label] = moves.get(label, 0) + 1
    done = "進めます" if report.dry_run else "進めました"
    parts = [f"{report.rows}行: 案件{len(report.applied)}件を{done}"
             + (f"({'、'.join(f'{k} {n}件' for k, n in moves.items())})" if moves else "")]  # fmt: skip
    for count, label in (
        (len(report.undated), "開通日なし"),
        (len(report.unmatched), "該当なし"),
        (len(report.ambiguous), "候補が複数"),
        (len(report.skipped), "反映できない行"),
        (report.unchanged, "変更なし"),
    ):
        if count:
            parts.append(f"{label} {count}件")
    return "、".join(parts)


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
        # Locked: two imports of one list at once (two clerks) move a case once; the second sees it moved.
        by_p = list(session.scalars(select(Case).where(Case.p_number == row.p_number).with_for_update()))
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
                .with_for_update()
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
    clerk: str | None = None,
    dry_run: bool = False,
    expect: str | None = None,
) -> ProgressReport:
    """Read the whole list (ProgressFileError on a bad line), then apply it in one transaction.

    ``dry_run``: the report only, the transaction rolled back. ``expect``: the
    digest of the report shown to the clerk; another report raises
    :class:`ProgressChanged` and nothing is applied. ``clerk``: who uploaded it on
    the workbench, written in the events' notes (the moves are NTT's report: the bot's events).
    """
    rows = read_progress(data, name, settings.progress.columns, settings.progress.status)
    report = ProgressReport(source=name, rows=len(rows), dry_run=dry_run)
    day = local_date(as_of, policy.tz)
    with sessions() as session, session.begin() as transaction:
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
                   directory=directory, settings=settings, source=name, clerk=clerk)  # fmt: skip
        problems = report.unmatched + report.ambiguous + report.undated
        if problems and policy.ops_recipients:
            text = "\n".join(f"  {p['line']}行目: {_who(p)} 進捗「{p['status']}」 → {_problem(p)}" for p in problems)
            digest = hashlib.sha256(("\n".join(sorted(_who(p) + p["status"] for p in problems))).encode()).hexdigest()
            if once(uow, JobName.PROGRESS_UNMATCHED, digest, detail=name):
                facts = {"source": name, "count": str(len(problems)), "rows_text": text}
                intent = MailIntent("ops_progress_unmatched", tuple(policy.ops_recipients), facts=facts)
                write_mails(uow, [intent], None, None, None, None)
                report.ops_notified = True
        if expect is not None and report.digest() != expect:
            transaction.rollback()
            raise ProgressChanged(
                f"{name}: 確認したときから案件の状態が変わったため反映していません。もう一度内容を確認してください"
            )
        if dry_run:
            transaction.rollback()
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
    clerk: str | None,
) -> None:
    stage = Stage(case.stage)
    before = stage.value
    if stage not in _ORDER:
        report.skipped.append(
            {"line": row.line, "case_no": case.case_no, "reason": f"案件が「{STAGES[stage].label}」のため反映しません"}
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
        report.kept.append({"line": row.line, "case_no": case.case_no, "stage": stage.value})
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
            {"line": row.line, "case_no": case.case_no,
             "reason": f"「{STAGES[stage].label}」から「{STAGES[target].label}」には進められません"}
        )  # fmt: skip
        return
    notes = [f"進捗リスト {source} {row.line}行目: {row.status}"]
    recorded = by_code and row.p_number is not None and case.p_number is None
    if recorded:
        case.p_number = row.p_number
        notes.append(f"P番号 {row.p_number} を記録(顧客CDで照合)")
    if row.construction_date:
        if row.construction_date != case.construction_date:
            notes.append(f"工事日 {_ymd(row.construction_date)}")
        case.construction_date = row.construction_date
    if target is Stage.COMPLETED:
        case.completed_date = row.completed_date
        notes.append(f"開通日 {_ymd(case.completed_date)}")
    if target is Stage.CANCELLED:
        case.cancelled_date = row.cancelled_date or day
        notes.append(f"キャンセル日 {_ymd(case.cancelled_date)}")
    if clerk:
        notes.append(f"取込: {clerk}")
    kinds = advance(uow, case, event, directory=directory, settings=settings, note="; ".join(notes),
                    facts={"source": source}, reason="progress_import")  # fmt: skip
    report.applied.append(
        {"line": row.line, "case_no": case.case_no, "from": before, "to": case.stage, "status": row.status,
         "customer_name": row.customer_name, "p_number": row.p_number if recorded else None,
         "construction_date": _iso(case.construction_date), "completed_date": _iso(case.completed_date),
         "cancelled_date": _iso(case.cancelled_date), "rescheduled": rescheduled, "mails": list(kinds)}
    )  # fmt: skip


def _ymd(value: date | None) -> str:
    return f"{value:%Y/%m/%d}" if value else ""


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
