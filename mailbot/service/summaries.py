"""Weekly summaries: one mail per branch with activity, and one for the desk.

A week is the ISO week, Monday 00:00 to the next Monday 00:00, Japan time.
Every change of a case is a ``CaseEvent``, so the week reads as it was:

* requests received: cases created in the week;
* accepted / returned: cases accepted / returned at least once in the week
  (a case returned and then accepted counts in both), with the defects of its
  last return;
* open returns: cases whose state at the end of the week (or now, when that
  is earlier) was returned, with their age in days since that return;
* waiting for UNIS: cases on hold at the same moment.

A branch's mail lists its open returns of the last ``[summary]
list_open_returns_days`` days one by one and counts the older ones in one line
(the count of open returns is all of them); the desk's mail names those counts
and where the desk can list them.

Each mail goes into the outbox in the same transaction as its ``JobRun`` row
(``job="weekly_summary"``, ``key="2026-W48:渋谷支店"`` or ``"2026-W48:ops"``),
so a week's summary goes out exactly once per branch, across restarts and
concurrent runs.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Row, Text, bindparam, cast, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import Case, CaseEvent, Inbound, JobRun, Outbox
from mailbot.adapters.templates import Renderer
from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.clock import JST, format_jst
from mailbot.domain.decision import MailIntent
from mailbot.domain.jobs import JobName
from mailbot.domain.lifecycle import Event, Stage, kinds_made_by
from mailbot.domain.model import CaseStatus
from mailbot.domain.policy import Policy
from mailbot.domain.schedule import Week
from mailbot.service.mails import build_outbox_row, desk_context

__all__ = [
    "SUMMARY_KINDS",
    "BranchWeek",
    "SendResult",
    "SummaryMail",
    "WeekReport",
    "build_week_report",
    "render_summaries",
    "send_week_summaries",
]

log = logging.getLogger("mailbot.summaries")

# The events that carry a verdict; older rows (before the lifecycle) were all verdicts.
_VERDICT_EVENTS = frozenset({Event.ACCEPT.value, Event.RETURN.value, Event.WAIT.value})

OPS_KEY = "ops"
SUMMARY_KINDS = kinds_made_by("summary")
NO_BRANCH = "(支店不明)"
_WEEKDAYS_JA = "月火水木金土日"


def _ymd(day: date) -> str:
    return f"{day.year}年{_mdj(day)}"


def _mdj(day: date) -> str:
    return f"{day.month}月{day.day}日({_WEEKDAYS_JA[day.weekday()]})"


def _md(day: date) -> str:
    return f"{day.month}/{day.day}({_WEEKDAYS_JA[day.weekday()]})"


@dataclass
class CaseLine:
    case_no: str
    branch: str
    customer_code: str
    customer_name: str
    status: str
    defects: list[dict[str, Any]]
    since: datetime
    age_days: int
    return_count: int

    @property
    def defect_codes(self) -> list[str]:
        """Each defect code once (a return may name several values of one kind)."""
        return list(dict.fromkeys(d["code"] for d in self.defects))


@dataclass
class BranchWeek:
    """One branch's week."""

    branch: str
    received: int = 0
    accepted: list[CaseLine] = field(default_factory=list)
    returned: list[CaseLine] = field(default_factory=list)
    open_returns: list[CaseLine] = field(default_factory=list)
    waiting: list[CaseLine] = field(default_factory=list)
    # Returned, but the return mail never went to the branch (a release from quarantine answered to
    # ops only, a cancelled reply): the branch is not asked to resubmit what it never received.
    unsent_returns: list[CaseLine] = field(default_factory=list)

    @property
    def defect_counts(self) -> list[tuple[str, int]]:
        # A case counts once per defect code: one return may name several values of one kind.
        counter: Counter[str] = Counter(code for line in self.returned for code in line.defect_codes)
        return counter.most_common()

    @property
    def has_activity(self) -> bool:
        return bool(self.received or self.accepted or self.returned or self.open_returns or self.waiting)

    def as_context(self, listed_since: datetime | None = None, listed_days: int | None = None) -> dict[str, Any]:
        """The template's view; open returns from before ``listed_since`` are counted, not listed."""
        listed = self.open_returns
        if listed_since is not None:
            listed = [x for x in self.open_returns if x.since >= listed_since]
        return {
            "name": self.branch,
            "received": self.received,
            "accepted_count": len(self.accepted),
            "returned_count": len(self.returned),
            "open_count": len(self.open_returns),
            "waiting_count": len(self.waiting),
            "accepted": [_line_context(x) for x in self.accepted],
            "returned": [_line_context(x) for x in self.returned],
            "open_returns": [_line_context(x) for x in listed],
            # The open returns left out of the list (older than listed_days days).
            "older_open_count": len(self.open_returns) - len(listed),
            "listed_days": listed_days,
            "waiting": [_line_context(x) for x in self.waiting],
            "defect_counts": [{"code": c, "count": n} for c, n in self.defect_counts],
        }


def _only_old_returns(week: BranchWeek, context: dict[str, Any], after: dict[str, list[dict[str, str]]]) -> bool:
    """Nothing in the week but open returns too old to be listed: no branch mail."""
    recent = week.received or week.accepted or week.returned or week.waiting or context["open_returns"]
    return not recent and not any(after.values()) and context["older_open_count"] > 0


def _line_context(line: CaseLine) -> dict[str, Any]:
    local = line.since.astimezone(JST)
    return {
        "case_no": line.case_no,
        "branch": line.branch,
        "customer_code": line.customer_code or "(記載なし)",
        "customer_name": line.customer_name,
        "customer": line.customer_code + (f"({line.customer_name})" if line.customer_name else "")
        if line.customer_code
        else "(顧客CD記載なし)",
        "defects": line.defects,
        "since": format_jst(local),
        "since_md": _md(local.date()),
        "age_days": line.age_days,
        "return_count": line.return_count,
    }


@dataclass
class WeekReport:
    """Every branch's week, plus the desk-wide view."""

    week: Week
    as_of: datetime
    branches: dict[str, BranchWeek]
    # After acceptance: the week's openings and cancellations, and the lines waiting for 確定 now.
    after: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    # Mail recorded as 対象外 in the week (not a request): nothing sent to the desk disappears without a trace.
    out_of_scope: int = 0

    def after_for(self, branch: str | None = None) -> dict[str, list[dict[str, str]]]:
        return {k: [r for r in v if branch is None or r["branch"] == branch] for k, v in self.after.items()}

    def branch(self, name: str) -> BranchWeek:
        return self.branches.get(name) or BranchWeek(name)

    @property
    def totals(self) -> dict[str, int]:
        rows = self.branches.values()
        return {
            "received": sum(b.received for b in rows),
            "accepted_count": sum(len(b.accepted) for b in rows),
            "returned_count": sum(len(b.returned) for b in rows),
            "open_count": sum(len(b.open_returns) for b in rows),
            "waiting_count": sum(len(b.waiting) for b in rows),
        }

    @property
    def defect_counts(self) -> list[tuple[str, int]]:
        counter: Counter[str] = Counter()
        for b in self.branches.values():
            counter.update(dict(b.defect_counts))
        return sorted(counter.items(), key=lambda item: (-item[1], item[0]))

    def unsent_returns(self) -> list[CaseLine]:
        """Open returns no branch was told of, oldest first: only the desk's mail names them."""
        lines = [line for b in self.branches.values() for line in b.unsent_returns]
        return sorted(lines, key=lambda x: (x.since, x.case_no))

    def oldest_open_returns(self, limit: int = 10) -> list[CaseLine]:
        lines = [line for b in self.branches.values() for line in b.open_returns]
        return sorted(lines, key=lambda x: (x.since, x.case_no))[:limit]

    def week_context(self) -> dict[str, Any]:
        last = self.week.monday + timedelta(days=6)
        return {
            "label": self.week.label,
            "year": self.week.year,
            "number": self.week.number,
            "start": self.week.monday.isoformat(),
            "end": last.isoformat(),
            "start_md": _md(self.week.monday),
            "end_md": _md(last),
            "period": f"{_ymd(self.week.monday)}〜{_ymd(last) if last.year != self.week.monday.year else _mdj(last)}",
        }


def build_week_report(
    session: Session, week: Week, *, now: datetime, directory: BranchDirectory | None = None
) -> WeekReport:
    """What happened in ``week``, per branch, told from the cases' events.

    Only cases with a verdict since the week began, or still open now, are read:
    the cost follows the activity, not the size of the history. A year's open
    returns are thousands of lines, so cases and events are read as plain rows of
    the columns used (no ORM objects) and the defects' JSON is parsed once per
    distinct text.
    """
    start, end = week.start, week.end
    as_of = min(end, now)
    open_now = [CaseStatus.RETURNED.value, CaseStatus.WAITING_UNIS.value]
    # Only a verdict since the week began can put a case in the week's figures
    # (a new case's first decision is one); progress, notes and staff mail cannot.
    active_ids = select(CaseEvent.case_id).where(CaseEvent.at >= start, CaseEvent.event.in_(sorted(_VERDICT_EVENTS)))
    cases = session.execute(
        select(Case.id, Case.case_no, Case.branch, Case.customer_code, Case.customer_name, Case.created_at)
        .where(Case.created_at < as_of, or_(Case.id.in_(active_ids), Case.status.in_(open_now)))
        .order_by(Case.created_at, Case.id)
    ).all()
    # Each case's events before the report's moment as plain rows, in order; the
    # defects come as their JSON text, parsed once per distinct text for the events
    # a line shows (most are the same few lists).
    events: dict[int, list[Any]] = {case.id: [] for case in cases}
    for chunk in _chunks(list(events), _IDS_A_STATEMENT):
        ids = _literal_ids(chunk)
        for event in session.execute(
            select(CaseEvent.case_id, CaseEvent.at, CaseEvent.status, CaseEvent.event, CaseEvent.stage,
                   cast(CaseEvent.defects, Text).label("defects"))
            .where(CaseEvent.case_id.in_(ids), CaseEvent.at < as_of)
            .order_by(CaseEvent.id)
        ):  # fmt: skip
            events[event.case_id].append(event)
    told = _branch_told_of_return(session, [case.id for case in cases])
    branches: dict[str, BranchWeek] = {}
    if directory is not None:
        # Configured branches first, in config order; unknown ones follow.
        for b in directory.branches:
            branches[b.name] = BranchWeek(b.name)
    parsed: dict[str | None, list[dict[str, Any]]] = {}

    def line(case: Any, branch: str, event: Row[Any], since: datetime, returns: int) -> CaseLine:
        found = parsed.get(event.defects)
        if found is None:
            found = parsed[event.defects] = json.loads(event.defects) if event.defects else []
        return CaseLine(
            case_no=case.case_no,
            branch=branch,
            customer_code=case.customer_code or "",
            customer_name=case.customer_name or "",
            status=event.status,
            defects=list(found),
            since=since,
            age_days=max((as_of - since).days, 0),
            return_count=returns,
        )

    returned_value, accepted_value = CaseStatus.RETURNED.value, CaseStatus.ACCEPTED.value
    waiting_value, closed_value = CaseStatus.WAITING_UNIS.value, Stage.CLOSED.value
    for case in cases:
        everything = events[case.id]
        # Only verdicts count (notes, staff mail and resends change no figure);
        # the last event of all says whether the case was closed by then.
        history = [e for e in everything if e.event in _VERDICT_EVENTS]
        if not history:
            continue
        name = case.branch or NO_BRANCH
        row = branches.setdefault(name, BranchWeek(name))
        if start <= case.created_at < end:
            row.received += 1
        returns = 0
        last_accepted = last_returned = None
        for e in history:
            if e.status == returned_value:
                returns += 1
                if e.at >= start:
                    last_returned = e
            elif e.status == accepted_value and e.at >= start:
                last_accepted = e
        if last_accepted is not None:
            row.accepted.append(line(case, name, last_accepted, last_accepted.at, returns))
        if last_returned is not None:
            row.returned.append(line(case, name, last_returned, last_returned.at, returns))
        state = history[-1]  # the case's verdict as it stood at the end of the week (or now)
        if everything[-1].stage == closed_value:
            continue  # closed: waits for nothing
        if state.status == returned_value:
            returned_to = row.open_returns if case.id in told else row.unsent_returns
            returned_to.append(line(case, name, state, state.at, returns))
        elif state.status == waiting_value:
            since = state.at
            for event in reversed(history):  # the start of the trailing run of waits
                if event.status != waiting_value:
                    break
                since = event.at
            row.waiting.append(line(case, name, state, since, returns))
    for row in branches.values():
        row.open_returns.sort(key=lambda x: (x.since, x.case_no))
    out_of_scope = session.scalar(
        select(func.count(Inbound.id)).where(
            Inbound.disposition == "ignored",
            Inbound.reason == "not_request",
            Inbound.received_at >= start,
            Inbound.received_at < end,
            Inbound.received_at <= now,
        )
    )
    return WeekReport(week, as_of, branches, _after_acceptance(session, start, as_of), out_of_scope or 0)


def _branch_told_of_return(session: Session, ids: Sequence[int]) -> set[int]:
    """The cases whose return mail was written for the branch (not cancelled): only these await a resubmission."""
    told: set[int] = set()
    for chunk in _chunks(list(ids), _IDS_A_STATEMENT):
        told.update(
            session.scalars(
                select(Outbox.case_id)
                .where(
                    Outbox.case_id.in_(_literal_ids(chunk)),
                    Outbox.kind == "defect_reply",
                    Outbox.status != "cancelled",
                )
                .distinct()
            )
        )
    return told


def _after_acceptance(session: Session, start: datetime, as_of: datetime) -> dict[str, list[dict[str, str]]]:
    """Openings and cancellations recorded in the week, and the opened lines not yet UNIS確定."""
    found: dict[str, list[dict[str, str]]] = {"opened": [], "cancelled": [], "waiting_confirm": []}
    wanted = {Event.COMPLETE.value: "opened", Event.CANCEL.value: "cancelled"}
    columns = (Case.case_no, Case.branch, Case.customer_code, Case.customer_name, Case.p_number,
               Case.completed_date, Case.cancelled_date)  # fmt: skip
    happened = session.execute(
        select(CaseEvent.case_id, CaseEvent.event)
        .where(CaseEvent.event.in_(list(wanted)), CaseEvent.at >= start, CaseEvent.at < as_of)
        .order_by(CaseEvent.id)
    ).all()
    # Their cases by id: joined, PostgreSQL hashed every case of the year for a week's few hundred.
    cases: dict[int, Any] = {}
    for chunk in _chunks(sorted({row.case_id for row in happened}), _IDS_A_STATEMENT):
        rows = session.execute(select(Case.id, *columns).where(Case.id.in_(_literal_ids(chunk))))
        cases.update((row.id, row) for row in rows)
    for row in happened:
        found[wanted[row.event]].append(_after_line(cases[row.case_id]))
    waiting = session.execute(select(*columns).where(Case.stage == Stage.COMPLETED.value).order_by(Case.id))
    found["waiting_confirm"].extend(_after_line(case) for case in waiting)
    return found


def _after_line(case: Any) -> dict[str, str]:
    """A line of the after-acceptance section, from a row with the case's columns (or a Case)."""
    day = case.completed_date or case.cancelled_date
    return {
        "case_no": case.case_no,
        "branch": case.branch or NO_BRANCH,
        "customer": f"{case.customer_code or ''} {case.customer_name or ''}".strip(),
        "p_number": case.p_number or "",
        "date": f"{day.month}/{day.day}" if day else "",
    }


# Case ids a statement: they are our own integers, written into the statement
# (thousands of bound parameters cost more to render and send than the query takes).
_IDS_A_STATEMENT = 2000


def _literal_ids(ids: Sequence[int]) -> BindParameter[Any]:
    return bindparam("ids", list(ids), expanding=True, literal_execute=True)


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


# -- mails ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SummaryMail:
    """One summary to send: the JobRun key, the template kind, recipients and context."""

    key: str
    kind: str
    target: str  # the branch name, or "ops"
    to: tuple[str, ...]
    context: dict[str, Any]


def _common_context(report: WeekReport, policy: Policy) -> dict[str, Any]:
    return {
        "week": report.week_context(),
        "as_of": format_jst(report.as_of),
        "as_of_is_end": report.as_of >= report.week.end,
        "desk": desk_context(policy),
        "case_no": "",
    }


def plan_mails(
    report: WeekReport,
    *,
    directory: BranchDirectory,
    policy: Policy,
    branch: str | None = None,
    include_ops: bool = True,
    open_returns_days: int | None = None,
) -> tuple[list[SummaryMail], list[tuple[str, str]]]:
    """The mails a week's summary consists of, and (target, why not) for those left out.

    With ``open_returns_days`` a branch's mail lists only the open returns returned
    within that many days of the report's moment, and counts the older ones.
    """
    mails: list[SummaryMail] = []
    skipped: list[tuple[str, str]] = []
    common = _common_context(report, policy)
    listed_since = None if open_returns_days is None else report.as_of - timedelta(days=open_returns_days)
    # A branch's lines become its context once, for its own mail and the desk's rows.
    contexts: dict[str, dict[str, Any]] = {}

    def context_of(week: BranchWeek) -> dict[str, Any]:
        if week.branch not in contexts:
            contexts[week.branch] = week.as_context(listed_since, open_returns_days)
        return contexts[week.branch]

    wanted: Iterable[Branch] = directory.branches
    if branch is not None:
        found = directory.get(branch)
        if found is None:
            raise ValueError(f"unknown branch {branch!r}; configured: {', '.join(b.name for b in directory.branches)}")
        wanted = (found,)
    for b in wanted:
        week = report.branch(b.name)
        if not week.has_activity:
            skipped.append((b.name, "no activity"))
            continue
        if _only_old_returns(week, context_of(week), report.after_for(b.name)):
            # The same count every Monday for ever says nothing new; the desk's mail counts them.
            skipped.append((b.name, f"only open returns older than {open_returns_days} days"))
            continue
        if not b.weekly_recipients:
            skipped.append((b.name, "no summary_recipients or managers configured"))
            continue
        mails.append(
            SummaryMail(
                key=f"{report.week.label}:{b.name}",
                kind="weekly_branch",
                target=b.name,
                to=tuple(b.weekly_recipients),
                context={**common, "branch": context_of(week), "after": report.after_for(b.name)},
            )
        )
    if include_ops and branch is None:
        rows = [context_of(b) for b in report.branches.values() if b.has_activity]
        if not rows and not report.out_of_scope:
            skipped.append((OPS_KEY, "no activity"))
        elif policy.ops_recipients:
            mails.append(
                SummaryMail(
                    key=f"{report.week.label}:{OPS_KEY}",
                    kind="weekly_ops",
                    target=OPS_KEY,
                    to=tuple(policy.ops_recipients),
                    context={
                        **common,
                        "rows": rows,
                        "totals": report.totals,
                        "top_defects": [{"code": c, "count": n} for c, n in report.defect_counts[:10]],
                        "oldest_open": [_line_context(x) for x in report.oldest_open_returns()],
                        "unsent_returns": [_line_context(x) for x in report.unsent_returns()],
                        # What the branches' mails count without listing, per branch.
                        # Configured branches only: the others get no mail and no --branch filter.
                        "older_open": [
                            {"branch": r["name"], "count": r["older_open_count"]}
                            for r in rows
                            if r["older_open_count"] and directory.get(r["name"]) is not None
                        ],
                        "listed_days": open_returns_days,
                        "after": report.after_for(),
                        "out_of_scope": report.out_of_scope,
                    },
                )
            )
        else:
            skipped.append((OPS_KEY, "no [desk] ops_recipients configured"))
    return mails, skipped


def render_summaries(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    *,
    week: Week,
    now: datetime,
    directory: BranchDirectory,
    policy: Policy,
    branch: str | None = None,
    open_returns_days: int | None = None,
) -> list[tuple[SummaryMail, str, str]]:
    """(mail, subject, body) for each summary of ``week``, rendered but not recorded."""
    with sessions() as session:
        report = build_week_report(session, week, now=now, directory=directory)
    mails, _ = plan_mails(
        report, directory=directory, policy=policy, branch=branch, open_returns_days=open_returns_days
    )
    result = []
    for mail in mails:
        text = renderer.render(mail.kind, mail.context)
        result.append((mail, text.subject, text.body))
    return result


@dataclass
class SendResult:
    """What one run of a week's summaries did, per target."""

    week: Week
    sent: list[str] = field(default_factory=list)
    already: list[tuple[str, datetime]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        if self.sent:
            parts.append("queued " + ", ".join(self.sent))
        if self.already:
            parts.append("already sent " + ", ".join(f"{t} ({format_jst(at)})" for t, at in self.already))
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{t} ({why})" for t, why in self.skipped))
        return f"{self.week.label}: " + ("; ".join(parts) or "nothing to do")


def sent_keys(session: Session, keys: Sequence[str]) -> dict[str, datetime]:
    if not keys:
        return {}
    rows = session.execute(
        select(JobRun.key, JobRun.done_at).where(JobRun.job == JobName.WEEKLY_SUMMARY, JobRun.key.in_(list(keys)))
    )
    return {k: at for k, at in rows}


def send_week_summaries(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    *,
    week: Week,
    now: datetime,
    directory: BranchDirectory,
    policy: Policy,
    branch: str | None = None,
    open_returns_days: int | None = None,
) -> SendResult:
    """Queue each of the week's summaries not sent yet, each with its JobRun row, once."""
    result = SendResult(week)
    with sessions() as session:
        report = build_week_report(session, week, now=now, directory=directory)
    mails, result.skipped = plan_mails(
        report, directory=directory, policy=policy, branch=branch, open_returns_days=open_returns_days
    )
    for mail in mails:
        try:
            with sessions.begin() as session:
                done = sent_keys(session, [mail.key])
                if done:
                    result.already.append((mail.target, done[mail.key]))
                    continue
                row = build_outbox_row(
                    MailIntent(mail.kind, mail.to),
                    renderer=renderer,
                    context=mail.context,
                    policy=policy,
                    now=now,
                    case_id=None,
                    inbound_id=None,
                )
                session.add(row)
                session.add(JobRun(job=JobName.WEEKLY_SUMMARY, key=mail.key, done_at=now, detail=row.message_id))
        except IntegrityError:
            # Another process recorded the same key between our check and our commit.
            with sessions() as session:
                at = sent_keys(session, [mail.key]).get(mail.key, now)
            result.already.append((mail.target, at))
            continue
        result.sent.append(mail.target)
        log.info("weekly summary %s queued for %s", mail.key, ", ".join(mail.to))
    return result
