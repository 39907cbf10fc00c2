"""Read-only views for the CLI and monitoring: plain dicts, JSON-ready."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.adapters.database.tables import Case, Inbound, Outbox

__all__ = ["case_rows", "message_rows", "outbox_rows"]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def case_rows(
    session: Session,
    *,
    status: str | None = None,
    branch: str | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    query = select(Case).order_by(Case.id)
    if status:
        query = query.where(Case.status == status)
    if branch:
        query = query.where(Case.branch == branch)
    if since:
        query = query.where(Case.created_at >= since)
    cases = list(session.scalars(query))
    ids = [c.id for c in cases]
    message_ids: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for case_id, mid, identity in session.execute(
            select(Inbound.case_id, Inbound.message_id, Inbound.identity)
            .where(Inbound.case_id.in_(ids))
            .order_by(Inbound.id)
        ):
            if case_id is not None:
                message_ids[case_id].append(mid or identity)
    return [
        {
            "case_no": c.case_no,
            "branch": c.branch,
            "status": c.status,
            "customer_code": c.customer_code,
            "customer_name": c.customer_name,
            "defects": [d["code"] for d in c.defects],
            "defect_details": c.defects,
            "message_ids": message_ids[c.id],
            "return_count": c.return_count,
            "created_at": _iso(c.created_at),
            "updated_at": _iso(c.updated_at),
        }
        for c in cases
    ]


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


def outbox_rows(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(select(Outbox, Case.case_no).outerjoin(Case, Case.id == Outbox.case_id).order_by(Outbox.id))
    return [
        {
            "kind": o.kind,
            "case_no": case_no,
            "to": o.to_addrs,
            "cc": o.cc_addrs,
            "subject": o.subject,
            "message_id": o.message_id,
            "in_reply_to": o.in_reply_to,
            "references": o.references.split() if o.references else [],
            "status": o.status,
            "attempts": o.attempts,
            "last_error": o.last_error,
            "created_at": _iso(o.created_at),
            "sent_at": _iso(o.sent_at),
        }
        for o, case_no in rows
    ]
