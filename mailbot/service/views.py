"""Read models for the CLI, the web and monitoring: plain dicts, JSON-ready.

Entry points read through these and never query the tables themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from mailbot.adapters.database.schema import Case, CaseEvent, Inbound, Outbox
from mailbot.adapters.database.store import DbUnisLookup, RawRemoved, Store
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import Check, build_submission, unchecked_reason
from mailbot.domain.lifecycle import (
    ACTIVE_STAGES,
    MAIL_STATUS_LABELS,
    SETTLES_QUESTION,
    STAGES,
    VERDICT_LABELS,
    Actor,
    Event,
    Stage,
    allowed_events,
)
from mailbot.domain.model import Address, Attachment, CaseStatus, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.domain.policy import Policy
from mailbot.service import errors
from mailbot.service.casefile import BOT_ACTOR, search_key
from mailbot.service.errors import MailNotFound, OriginalRemoved, QuarantineItemNotFound
from mailbot.service.mails import text_of
from mailbot.service.retention import removed_text

__all__ = [
    "MARK_LABELS",
    "attachment",
    "case_board",
    "case_count",
    "case_detail",
    "case_rows",
    "message_rows",
    "open_questions",
    "outbox_rows",
    "quarantine_detail",
    "quarantine_rows",
]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _case_query(
    *,
    status: str | None = None,
    branch: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    stage: str | None = None,
    customer: str | None = None,
    sender: str | None = None,
    text: str | None = None,
) -> Select[Any]:
    """Cases matching the filters; ``customer`` matches code or name (NFKC, partial), ``text`` subject and body."""
    query = select(Case)
    if status:
        query = query.where(Case.status == status)
    if stage:
        query = query.where(Case.stage == stage)
    if branch:
        query = query.where(Case.branch == branch)
    if since:
        query = query.where(Case.created_at >= since)
    if until:
        query = query.where(Case.created_at < until)
    if customer and customer.strip():
        key = search_key(customer)
        query = query.where(
            or_(Case.customer_code.like(_like(key), escape="\\"), Case.customer_key.like(_like(key), escape="\\"))
        )
    if sender and sender.strip():
        query = query.where(Case.sender.like(_like(sender.strip().lower()), escape="\\"))
    if text and text.strip():
        pattern = _like(text.strip())
        query = query.where(
            exists().where(
                Inbound.case_id == Case.id,
                or_(Inbound.subject.ilike(pattern, escape="\\"), Inbound.body_text.ilike(pattern, escape="\\")),
            )
        )
    return query


def _case_summary(c: Case) -> dict[str, Any]:
    return {
        "case_no": c.case_no,
        "branch": c.branch,
        "status": c.status,
        "status_label": _verdict_label(c.status),
        "stage": c.stage,
        "stage_label": _stage_label(c.stage),
        "sender": c.sender,
        "decided_by": c.decided_by,
        "customer_code": c.customer_code,
        "customer_name": c.customer_name,
        "defects": list(dict.fromkeys(d["code"] for d in c.defects)),
        "defect_details": c.defects,
        "return_count": c.return_count,
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
        **after_acceptance(c),
    }


def case_rows(session: Session, *, newest: int | None = None, **filters: Any) -> list[dict[str, Any]]:
    """Every case matching the filters (see ``_case_query``), oldest first, with its Message-IDs.

    With ``newest``, only that many of the newest cases (still oldest first):
    a year holds tens of thousands, and a listing is read from its end.
    """
    query = _case_query(**filters)
    if newest is None:
        cases = list(session.scalars(query.order_by(Case.id)))
    else:
        cases = list(session.scalars(query.order_by(Case.id.desc()).limit(max(newest, 0))))[::-1]
    ids = [c.id for c in cases]
    message_ids: dict[int, list[str]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for case_id, mid, identity in session.execute(
            select(Inbound.case_id, Inbound.message_id, Inbound.identity)
            .where(Inbound.case_id.in_(chunk))
            .order_by(Inbound.id)
        ):
            if case_id is not None:
                message_ids[case_id].append(mid or identity)
    return [{**_case_summary(c), "message_ids": message_ids[c.id]} for c in cases]


def case_count(session: Session, **filters: Any) -> int:
    """How many cases match the filters (see ``_case_query``)."""
    query = _case_query(**filters).order_by(None)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def after_acceptance(case: Case) -> dict[str, Any]:
    """The case's NTT order number, flow and the dates NTT's progress list gave."""
    return {
        "p_number": case.p_number,
        "flow": case.flow,
        "construction_date": case.construction_date.isoformat() if case.construction_date else None,
        "completed_date": case.completed_date.isoformat() if case.completed_date else None,
        "cancelled_date": case.cancelled_date.isoformat() if case.cancelled_date else None,
        # The UNIS order line (契約No/明細No) the case is bound to, and what its review could not check.
        "unis_line": f"{case.contract_no}/{case.line_no}" if case.contract_no else None,
        "unchecked": list(case.unchecked or []),
    }


def message_rows(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Inbound, Case.case_no).outerjoin(Case, Case.id == Inbound.case_id).order_by(Inbound.id)
    )
    return [
        {
            "message_id": m.message_id or m.identity,
            "subject": m.subject,
            "sender": m.sender,
            "disposition": m.disposition,
            "reason": m.reason,
            "case_no": case_no,
            "defects": [d["code"] for d in m.defects],
            "source_key": m.source_key,
            "received_at": _iso(m.received_at),
            "problems": m.problems,
        }
        for m, case_no in rows
    ]


def outbox_rows(session: Session, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Every outgoing mail, oldest first; with ``limit``, the newest ``limit`` ones, newest first."""
    query = select(Outbox, Case.case_no).outerjoin(Case, Case.id == Outbox.case_id)
    query = query.order_by(Outbox.id.desc()).limit(limit) if limit else query.order_by(Outbox.id)
    rows = session.execute(query)
    return [
        {
            "id": o.id,
            "kind": o.kind,
            "case_no": case_no,
            "to": o.to_addrs,
            "cc": o.cc_addrs,
            "subject": o.subject,
            "message_id": o.message_id,
            "in_reply_to": o.in_reply_to,
            "references": o.references.split() if o.references else [],
            "status": o.status,
            "status_label": MAIL_STATUS_LABELS.get(o.status, o.status),
            "attempts": o.attempts,
            "last_error": o.last_error,
            "created_at": _iso(o.created_at),
            "sent_at": _iso(o.sent_at),
        }
        for o, case_no in rows
    ]


_VERDICTS = {v.value for v in CaseStatus}


def _verdict_label(status: str) -> str:
    return VERDICT_LABELS[CaseStatus(status)] if status in _VERDICTS else status


def _stage_label(stage: str) -> str:
    try:
        return STAGES[Stage(stage)].label
    except ValueError:
        return stage


def case_detail(
    session: Session,
    case_no: str,
    *,
    directory: BranchDirectory,
    policy: Policy,
    checks: Sequence[Check],
    now: datetime | None = None,
) -> dict[str, Any]:
    """The case, its thread, each check's result over the thread, its mails and its events.

    With ``now``, also the board's marks of the case (要対応), computed as the board computes them.
    """
    store = Store(session)
    case = store.case_by_no(case_no)
    if case is None:
        raise errors.CaseNotFound(f"no case {case_no!r}")
    inbound = list(
        session.scalars(select(Inbound).where(Inbound.case_id == case.id).order_by(Inbound.received_at, Inbound.id))
    )
    parsed = {row.id: message for row, message in store.case_messages(case)}
    removals = {row.id: store.raw_removal(row) for row in inbound}
    thread = list(parsed.values())
    check_rows: list[dict[str, Any]] = []
    checks_note = None
    if any(removals.values()):
        # Checked again without what retention removed, the thread would fail for want of it.
        checks_note = "保存期間を過ぎて元のメールまたは添付ファイルが削除されたため、チェックは再実行できません"
    elif thread:
        submission = build_submission(thread, directory, DbUnisLookup(session), policy, case_no=case.case_no)
        for check in checks:
            found = check.check(submission, policy)
            check_rows.append(
                {
                    "name": check.name,
                    "description": check.description,
                    "ok": not found,
                    "defects": [{"code": d.code, "detail": dict(d.detail)} for d in found],
                    # Why the check could not run (an absent UNIS column): never shown as passed.
                    "unchecked": unchecked_reason(check, submission, policy),
                }
            )
    mails = list(session.scalars(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.id)))
    events = list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)))
    stage = Stage(case.stage) if case.stage in {s.value for s in Stage} else Stage.RECEIVED
    verdict = CaseStatus(case.status) if case.status in _VERDICTS else None
    same_customer: list[str] = []
    if case.customer_code:
        active = ACTIVE_STAGES
        same_customer = store.other_cases_for_customer(case.customer_code, case.id, active)
    open_question = case.id in open_questions(session, [case.id])
    return {
        "case_no": case.case_no,
        "branch": case.branch,
        "status": case.status,
        "status_label": _verdict_label(case.status),
        "stage": case.stage,
        "stage_label": _stage_label(case.stage),
        "sender": case.sender,
        "decided_by": case.decided_by,
        "customer_code": case.customer_code,
        "customer_name": case.customer_name,
        "defects": case.defects,
        "return_count": case.return_count,
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        **after_acceptance(case),
        "same_customer": same_customer,
        # 対応済 only while a branch's question waits (要対応): the desk refuses it otherwise.
        "actions": [
            e.value for e in allowed_events(stage, verdict, Actor.PERSON) if e is not Event.HANDLED or open_question
        ],
        # The same 要対応 the board shows: a branch's question nobody settled yet, and (with now) the other marks.
        "open_question": open_question,
        "marks": [
            {"code": m, "label": MARK_LABELS[m]}
            for m in (_marks(session, [case], now, policy.unis_max_wait_hours)[case.id] if now else [])
        ],
        "messages": [
            {
                "id": m.id,
                "received_at": m.received_at.isoformat(),
                "sender": m.sender,
                "subject": m.subject,
                "disposition": m.disposition,
                "reason": m.reason,
                "message_id": m.message_id or m.identity,
                "text": m.body_text,
                **_headers_of(_shown(store, m, parsed.get(m.id), removals[m.id]), removals[m.id]),
                "original_note": removed_text(removal) if (removal := removals[m.id]) else None,
            }
            for m in inbound
        ],
        "checks": check_rows,
        "checks_note": checks_note,
        "events": [
            {
                "at": e.at.isoformat(),
                "event": e.event,
                "actor": e.actor,
                "reason": e.reason,
                "note": e.note,
                "status": e.status,
                "status_label": _verdict_label(e.status),
                "stage": e.stage,
                "stage_label": _stage_label(e.stage),
                "defects": [d["code"] for d in e.defects],
            }
            for e in events
        ],
        "mails": [
            {
                "id": o.id,
                "kind": o.kind,
                "to": o.to_addrs,
                "cc": o.cc_addrs,
                "status": o.status,
                "status_label": MAIL_STATUS_LABELS.get(o.status, o.status),
                "subject": o.subject,
                "created_at": o.created_at.isoformat(),
                "sent_at": o.sent_at.isoformat() if o.sent_at else None,
                "last_error": o.last_error,
                "text": text_of(o.raw),
            }
            for o in mails
        ],
    }


def _shown(
    store: Store, row: Inbound, message: ParsedMessage | None, removal: RawRemoved | None
) -> ParsedMessage | None:
    """The message as the thread shows it: after retention cut the attachments, their names still."""
    if removal is None or not removal.attachments_only:
        return message
    try:
        raw = store.raw_of(row)
        return parse_message(raw) if raw is not None else message
    except UnparseableMessage:
        return message


def _headers_of(message: ParsedMessage | None, removal: RawRemoved | None = None) -> dict[str, Any]:
    """What a clerk reads above a mail: who wrote to whom, when, and what came attached."""
    if message is None:
        return {"from": None, "to": [], "cc": [], "date": None, "attachments": []}
    gone = removal is not None
    return {
        "from": _address(message.sender) if message.sender else None,
        "to": [_address(a) for a in message.to],
        "cc": [_address(a) for a in message.cc],
        "date": _iso(message.date),
        "attachments": [
            {
                "index": i,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": len(a.payload),
                "removed": gone,
            }
            for i, a in enumerate(message.attachments)
        ],
    }


def _address(address: Address) -> str:
    return f"{address.name} <{address.addr}>" if address.name else address.addr


def attachment(session: Session, inbound_id: int, index: int) -> Attachment:
    """One attachment of a stored mail, for download."""
    row = session.get(Inbound, inbound_id)
    try:
        raw = Store(session).raw_of(row, whole=True) if row is not None else None
    except RawRemoved as exc:
        raise OriginalRemoved(removed_text(exc)) from None
    if raw is None:
        raise MailNotFound(f"no stored mail {inbound_id}")
    try:
        return parse_message(raw).attachments[index]
    except (UnparseableMessage, IndexError):
        raise MailNotFound(f"mail {inbound_id} has no attachment {index}") from None


def open_questions(session: Session, case_ids: Sequence[int]) -> set[int]:
    """The cases among ``case_ids`` whose branch asked or wrote after the last time the desk settled it
    (an answer, 対応済, or a verdict that mailed the branch: ``SETTLES_QUESTION``), i.e. 要対応."""
    if not case_ids:
        return set()
    settled = dict(
        session.execute(
            select(CaseEvent.case_id, func.max(CaseEvent.at))
            .where(
                CaseEvent.case_id.in_(case_ids),
                CaseEvent.actor != BOT_ACTOR,
                CaseEvent.event.in_([e.value for e in SETTLES_QUESTION]),
            )
            .group_by(CaseEvent.case_id)
        ).all()
    )
    asked = session.execute(
        select(Inbound.case_id, func.max(Inbound.processed_at))
        .where(Inbound.case_id.in_(case_ids), Inbound.reason.in_(["question", "followup"]))
        .group_by(Inbound.case_id)
    )
    return {
        case_id
        for case_id, at in asked
        if case_id is not None and (settled.get(case_id) is None or settled[case_id] < at)
    }


def _marks(session: Session, cases: Sequence[Case], now: datetime, wait_hours: float) -> dict[int, list[str]]:
    """Why a case needs a person: a question or follow-up nobody answered, a long UNIS wait,
    the same customer twice, a failed mail. Read for one page of cases only."""
    ids = [c.id for c in cases]
    marks: dict[int, list[str]] = {i: [] for i in ids}
    if not ids:
        return marks
    for asked in sorted(open_questions(session, ids)):
        marks[asked].append("question")
    for case_id in session.scalars(
        select(Outbox.case_id).where(Outbox.case_id.in_(ids), Outbox.status == "failed").distinct()
    ):
        if case_id is not None:
            marks[case_id].append("failed_mail")
    codes = {c.customer_code for c in cases if c.customer_code}
    if codes:
        active = ACTIVE_STAGES
        counts = dict(
            session.execute(
                select(Case.customer_code, func.count())
                .where(Case.customer_code.in_(codes), Case.stage.in_(active))
                .group_by(Case.customer_code)
            ).all()
        )
        for c in cases:
            if c.customer_code and counts.get(c.customer_code, 0) > 1 and c.stage in active:
                marks[c.id].append("same_customer")
    for c in cases:
        if c.status == "waiting_unis" and c.waiting_since and now - c.waiting_since > timedelta(hours=wait_hours / 2):
            marks[c.id].append("long_wait")
        if c.status == "needs_review" and c.stage == "received":
            marks[c.id].append("needs_review")
    return marks


MARK_LABELS = {
    "question": "問い合わせ・追加連絡あり",
    "failed_mail": "送信失敗あり",
    "same_customer": "同じ顧客の案件あり",
    "long_wait": "UNIS待ちが長い",
    "needs_review": "要確認(デスクが受付か返却を決める)",
}


def case_board(
    session: Session,
    *,
    now: datetime,
    wait_hours: float,
    page: int = 1,
    per_page: int = 50,
    **filters: Any,
) -> dict[str, Any]:
    """One page of the case board, newest first, with the marks of the cases that need a person."""
    query = _case_query(**filters)
    total = case_count(session, **filters)
    page = max(page, 1)
    cases = list(session.scalars(query.order_by(Case.id.desc()).limit(per_page).offset((page - 1) * per_page)))
    marks = _marks(session, cases, now, wait_hours)
    rows = []
    for c in cases:
        rows.append(
            {
                **_case_summary(c),
                "age_days": max((now - c.created_at).days, 0),
                "marks": [{"code": m, "label": MARK_LABELS[m]} for m in marks[c.id]],
            }
        )
    return {"rows": rows, "total": total, "page": page, "pages": max((total + per_page - 1) // per_page, 1)}


def _quarantine_row(m: Inbound) -> dict[str, Any]:
    return {
        "id": m.id,
        "message_id": m.message_id or m.identity,
        "sender": m.sender,
        "subject": m.subject,
        "reason": m.reason,
        "received_at": _iso(m.received_at),
        "resolution": m.resolution,
        "resolved_by": m.resolved_by,
        "resolved_at": _iso(m.resolved_at),
        "resolution_note": m.resolution_note,
    }


def quarantine_rows(session: Session, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Quarantined mail, oldest first; by default only what still waits for a person."""
    query = select(Inbound).where(Inbound.disposition == "quarantined").order_by(Inbound.id)
    if not include_resolved:
        query = query.where(Inbound.resolution.is_(None))
    return [_quarantine_row(m) for m in session.scalars(query)]


def out_of_scope_rows(session: Session, *, limit: int = 200) -> list[dict[str, Any]]:
    """Mail recorded as 対象外 (not a request, from inside or the UBD partner), newest first."""
    query = (
        select(Inbound)
        .where(Inbound.disposition == "ignored", Inbound.reason == "not_request")
        .order_by(Inbound.id.desc())
        .limit(limit)
    )
    return [_quarantine_row(m) for m in session.scalars(query)]


def quarantine_detail(session: Session, item_id: int) -> dict[str, Any]:
    row = session.get(Inbound, item_id)
    if row is None or (row.disposition != "quarantined" and row.resolution is None):
        raise QuarantineItemNotFound(f"no quarantined mail {item_id}")
    store = Store(session)
    detail = _quarantine_row(row)
    detail["text"] = row.body_text
    detail["problems"] = row.problems
    removal = store.raw_removal(row)
    # Released, a mail is checked with its attachments: without them it cannot be released.
    detail["has_raw"] = row.raw_id is not None and removal is None
    detail["original_note"] = removed_text(removal) if removal else None
    detail["size"] = len(store.raw_of(row) or b"") if removal is None or removal.attachments_only else 0
    detail["disposition"] = row.disposition
    return detail
