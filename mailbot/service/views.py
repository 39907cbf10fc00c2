"""Read models for the CLI, the web and monitoring: plain dicts, JSON-ready.

Entry points read through these and never query the tables themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from mailbot.adapters.database.schema import Case, CaseEvent, Inbound, Outbox
from mailbot.adapters.database.store import DbUnisLookup, RawRemoved, Store
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import CHECK_OF_CODE, CHECK_TOPICS, UNIS_CODES, Check, build_submission, unchecked_reason
from mailbot.domain.clock import JST, format_short, local_date
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
    reason_label,
)
from mailbot.domain.model import Address, Attachment, CaseStatus, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.domain.policy import Policy
from mailbot.service import errors
from mailbot.service.casefile import BOT_ACTOR, search_key
from mailbot.service.errors import MailNotFound, OriginalRemoved, QuarantineItemNotFound
from mailbot.service.health import BotState
from mailbot.service.mails import text_of
from mailbot.service.retention import removed_text

__all__ = [
    "MARK_LABELS",
    "QUICK_FILTERS",
    "Quick",
    "attachment",
    "bot_words",
    "case_board",
    "case_count",
    "case_detail",
    "case_rows",
    "mail_timing",
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
    open_only: bool = False,
    quick: Quick | None = None,
) -> Select[Any]:
    """Cases matching the filters; ``customer`` matches code or name (NFKC, partial), ``text`` subject and body.

    ``open_only`` leaves out the cases that wait for nothing any more (終了, キャンセル, UNIS確定);
    ``quick`` is one of the board's quick filters (:data:`QUICK_FILTERS`).
    """
    query = select(Case)
    if quick is not None:
        query = query.where(quick.condition())
    if open_only:
        query = query.where(Case.stage.in_(ACTIVE_STAGES))
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


@dataclass(frozen=True)
class Quick:
    """One of the board's quick filters, as of ``now`` (JST days; a UNIS wait is long after half the limit)."""

    key: str
    now: datetime
    wait_hours: float

    def condition(self) -> ColumnElement[bool]:
        if self.key == "returned_today":
            start = datetime.combine(local_date(self.now), time(0, 0), tzinfo=JST)
            returned_today = exists().where(
                CaseEvent.case_id == Case.id,
                CaseEvent.event == Event.RETURN.value,
                CaseEvent.status == CaseStatus.RETURNED.value,
                CaseEvent.at >= start,
            )
            # A returned case closed since (withdrawn, a duplicate) is no longer the desk's to follow.
            return and_(Case.status == CaseStatus.RETURNED.value, Case.stage.in_(ACTIVE_STAGES), returned_today)
        if self.key == "attention":
            return _needs_a_person(self.now, self.wait_hours)
        if self.key == "waiting_unis":
            return and_(Case.status == CaseStatus.WAITING_UNIS.value, Case.stage.in_(ACTIVE_STAGES))
        if self.key == "awaiting_completion":
            return Case.stage.in_((Stage.ENTERED.value, Stage.CONSTRUCTION_SCHEDULED.value))
        if self.key == "awaiting_confirm":
            return Case.stage == Stage.COMPLETED.value
        raise ValueError(f"no quick filter {self.key!r}")


# The board's quick filters, in the order of their buttons: the key in the URL, the label on the button.
QUICK_FILTERS: tuple[tuple[str, str], ...] = (
    ("returned_today", "今日の返却"),
    ("attention", "要対応"),
    ("waiting_unis", "UNIS待ち"),
    ("awaiting_completion", "開通待ち"),
    ("awaiting_confirm", "確定待ち"),
)


def _needs_a_person(now: datetime, wait_hours: float) -> ColumnElement[bool]:
    """The board's 要対応 marks as a query: an unanswered question or follow-up, a failed mail,
    a case waiting for the desk's decision, a long UNIS wait (the same customer twice is only a hint)."""
    # Settled as open_questions() settles it: an answer, 対応済 or a verdict that mailed the branch (a note does not).
    last_person = (
        select(func.max(CaseEvent.at))
        .where(
            CaseEvent.case_id == Case.id,
            CaseEvent.actor != BOT_ACTOR,
            CaseEvent.event.in_([e.value for e in SETTLES_QUESTION]),
        )
        .correlate(Case)
        .scalar_subquery()
    )
    unanswered = exists().where(
        Inbound.case_id == Case.id,
        Inbound.reason.in_(("question", "followup")),
        or_(last_person.is_(None), Inbound.processed_at > last_person),
    )
    failed = exists().where(Outbox.case_id == Case.id, Outbox.status == "failed")
    review = and_(Case.status == CaseStatus.NEEDS_REVIEW.value, Case.stage == Stage.RECEIVED.value)
    long_wait = and_(
        Case.status == CaseStatus.WAITING_UNIS.value, Case.waiting_since < now - timedelta(hours=wait_hours / 2)
    )
    return or_(unanswered, failed, review, long_wait)


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


def mail_timing(status: str, sent_at: datetime | None, bot: BotState | None) -> dict[str, str]:
    """When an outgoing mail goes, in a clerk's words: ``code`` (sent, soon, stopped, a status), ``label``, ``detail``.

    A pending mail goes at once while the bot runs (the desk's command woke it);
    with the bot stopped it waits, and the clerk sees since when nobody looked.
    """
    if status == "sent":
        return {"code": "sent", "label": "送信済み", "detail": format_short(sent_at) if sent_at else ""}
    if status == "pending" and bot is not None:
        if bot.running:
            return {"code": "soon", "label": "まもなく送信", "detail": ""}
        last = f"最終確認 {format_short(bot.last_poll)}" if bot.last_poll else "確認の記録なし"
        return {"code": "stopped", "label": "ボットが停止中のため未送信", "detail": last}
    return {"code": status, "label": MAIL_STATUS_LABELS.get(status, status), "detail": ""}


def bot_words(bot: BotState) -> dict[str, str]:
    """Is the bot running, in a clerk's words (the outbox and 稼働状況): ``label``, ``detail``, ``last_check``."""
    last = f"最終確認 {format_short(bot.last_poll)}" if bot.last_poll else "確認の記録なし"
    if bot.running:
        detail = "画面から送ったメールはすぐに送信されます"
        return {"code": "running", "label": "稼働中", "detail": detail, "last_check": last}
    return {
        "code": "stopped",
        "label": "停止中",
        "detail": "画面から送ったメールは、ボットが再開するまで送信されません",
        "last_check": last,
    }


def outbox_rows(session: Session, *, limit: int | None = None, bot: BotState | None = None) -> list[dict[str, Any]]:
    """Every outgoing mail, oldest first; with ``limit``, the newest ``limit`` ones, newest first.

    With ``bot`` (:func:`mailbot.service.health.bot_state`), each row's ``timing``: when it goes, in plain words.
    """
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
            "timing": mail_timing(o.status, o.sent_at, bot),
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
    bot: BotState | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The case, its thread, each check's result over the thread, its mails (when each goes, given ``bot``)
    and its events.

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
    ubd = case.sender is not None and policy.is_ubd(case.sender)
    check_rows = recorded_checks(case, checks, ubd=ubd)
    recheck: dict[str, Any] | None = None
    checks_note = None
    if any(removals.values()):
        # Checked again without what retention removed, the thread would fail for want of it.
        checks_note = "保存期間を過ぎて元のメールまたは添付ファイルが削除されたため、チェックは再実行できません"
    elif thread:
        submission = build_submission(thread, directory, DbUnisLookup(session), policy, case_no=case.case_no)
        fresh = [
            _check_row(
                check,
                [{"code": d.code, "detail": dict(d.detail)} for d in check.check(submission, policy)],
                unchecked_reason(check, submission, policy),
                ubd=ubd,
            )
            for check in checks
        ]
        recheck = {
            "unis_as_of": _iso(submission.unis_as_of),
            # Only what a run today would say differently: the table itself is the recorded verdict.
            "rows": [new for new, old in zip(fresh, check_rows, strict=False) if _differs(new, old)],
        }
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
        # Each check's verdict as the case records it (the same source as 現在の不備 and 未確認),
        # and what running the checks again today would say differently.
        "checks": check_rows,
        "recheck": recheck,
        "checks_note": checks_note,
        "events": [
            {
                "at": e.at.isoformat(),
                "event": e.event,
                "actor": e.actor,
                "reason": e.reason,
                "reason_label": reason_label(e.reason, by_person=e.actor != BOT_ACTOR),
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
                "timing": mail_timing(o.status, o.sent_at, bot),
            }
            for o in mails
        ],
    }


_VERDICT_WORDS = {"ok": "問題なし", "defect": "不備", "waiting": "UNIS待ち", "unchecked": "未確認"}


_UBD_UNCHECKED = "UBDからの依頼のため、UNISのチェックは行っていません(事務センターが受注登録します)"


def _check_row(
    check: Check | str,
    defects: list[dict[str, Any]],
    unchecked: str | None,
    *,
    waiting: bool = False,
    ubd: bool = False,
) -> dict[str, Any]:
    """One row of the check table: the check's topic and its verdict from ``defects`` and ``unchecked``."""
    if ubd and not unchecked and (check if isinstance(check, str) else check.name) in UNIS_CODES:
        # The UNIS checks pass a UBD request without looking: that is not 問題なし.
        unchecked = _UBD_UNCHECKED
    if defects:
        verdict = "waiting" if waiting and all(d["code"] in UNIS_CODES for d in defects) else "defect"
    else:
        verdict = "unchecked" if unchecked else "ok"
    # A recorded defect whose check is no longer configured has only its code.
    name, description = (check, "その他") if isinstance(check, str) else (check.name, check.description)
    return {
        "name": name,
        "topic": CHECK_TOPICS.get(name, description),
        "description": description,
        "verdict": verdict,
        "verdict_label": _VERDICT_WORDS[verdict],
        # Passed or could not run: no defect (an unchecked one is never shown as passed, see ``verdict``).
        "ok": not defects,
        "defects": defects,
        "unchecked": unchecked if not defects else None,
    }


def recorded_checks(case: Case, checks: Sequence[Check], *, ubd: bool = False) -> list[dict[str, Any]]:
    """The check table from what the case records: its defects and what its review could not check.

    Built from the same fields as 現在の不備 and the 未確認 notes, so the table
    cannot disagree with them; a defect no check names (a rule since removed)
    gets a row of its own.
    """
    by_check: dict[str, list[dict[str, Any]]] = {}
    names = {check.name for check in checks}
    for defect in case.defects or []:
        code = str(defect["code"])
        owner = code if code in names else CHECK_OF_CODE.get(code, code)
        detail = defect.get("detail")
        facts = dict(detail) if isinstance(detail, dict) else {}
        by_check.setdefault(owner, []).append({"code": code, "detail": facts})
    unchecked = {str(item["check"]): str(item["why"]) for item in case.unchecked or []}
    waiting = case.status == CaseStatus.WAITING_UNIS.value
    rows = [_check_row(c, by_check.pop(c.name, []), unchecked.get(c.name), waiting=waiting, ubd=ubd) for c in checks]
    for code, defects in by_check.items():
        rows.append(_check_row(code, defects, None, waiting=waiting))
    return rows


def _differs(new: dict[str, Any], old: dict[str, Any]) -> bool:
    codes = sorted(d["code"] for d in new["defects"]) != sorted(d["code"] for d in old["defects"])
    return codes or (not new["defects"] and bool(new["unchecked"]) != bool(old["unchecked"]))


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


def _quarantine_row(m: Inbound, case_no: str | None = None) -> dict[str, Any]:
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
        # The case a release became: the quarantine pages link to it.
        "case_no": case_no,
    }


def quarantine_rows(session: Session, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Quarantined mail, oldest first; by default only what still waits for a person."""
    query = (
        select(Inbound, Case.case_no)
        .outerjoin(Case, Case.id == Inbound.case_id)
        .where(or_(Inbound.disposition == "quarantined", Inbound.resolution.is_not(None)))
        .order_by(Inbound.id)
    )
    if not include_resolved:
        query = query.where(Inbound.resolution.is_(None))
    return [_quarantine_row(m, case_no) for m, case_no in session.execute(query)]


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
    case = session.get(Case, row.case_id) if row.case_id is not None else None
    detail = _quarantine_row(row, case.case_no if case else None)
    detail["text"] = row.body_text
    detail["problems"] = row.problems
    removal = store.raw_removal(row)
    # Released, a mail is checked with its attachments: without them it cannot be released.
    detail["has_raw"] = row.raw_id is not None and removal is None
    detail["original_note"] = removed_text(removal) if removal else None
    detail["size"] = len(store.raw_of(row) or b"") if removal is None or removal.attachments_only else 0
    detail["disposition"] = row.disposition
    return detail
