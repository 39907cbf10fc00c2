"""The case board: every case, filtered and paged."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.domain.clock import JST
from mailbot.domain.lifecycle import STAGES, VERDICT_LABELS, Stage
from mailbot.domain.model import CaseStatus
from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, viewer
from mailbot.service import views

__all__ = ["ROUTES"]


def _jst_date(text: str | None, *, end: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
        moment = datetime.combine(day, time(0, 0), tzinfo=JST)
        return (moment + timedelta(days=1) if end else moment).astimezone(UTC)
    except (ValueError, OverflowError):
        # Not a date, or one at the calendar's edge (0001-01-01, 9999-12-31): no such filter.
        return None


def board(web: Web, request: Request, user: User) -> Response:
    app = web.app
    q = request.query_params
    filters: dict[str, Any] = {
        "status": q.get("status") or None,
        "stage": q.get("stage") or None,
        "branch": q.get("branch") or None,
        "since": _jst_date(q.get("since")),
        "until": _jst_date(q.get("until"), end=True),
        "customer": q.get("customer") or None,
        "sender": q.get("sender") or None,
        "text": q.get("q") or None,
    }
    # A quick filter (今日の返却, 要対応 ...) narrows whatever else is asked; an unknown one is ignored.
    quick_key = q.get("view") if q.get("view") in dict(views.QUICK_FILTERS) else None
    wait_hours = app.config.policy.unis_max_wait_hours
    if quick_key:
        filters["quick"] = views.Quick(quick_key, app.clock(), wait_hours)
    # Asked for a verdict (返却 ...), the board lists the cases still waiting for something
    # unless 「終了した案件も表示」 is ticked or a stage is asked for.
    include_closed = q.get("closed") == "1"
    filters["open_only"] = bool(filters["status"]) and not include_closed and not filters["stage"]
    try:
        number = max(int(q.get("page", "1")), 1)
    except ValueError:
        number = 1
    with app.sessions() as session:
        result = views.case_board(
            session,
            now=app.clock(),
            wait_hours=wait_hours,
            page=number,
            per_page=app.config.web.page_size,
            **filters,
        )
    keep = {k: v for k, v in q.items() if k != "page" and v}
    return web.page(
        request,
        "board.html",
        user,
        result=result,
        query=q,
        keep=urlencode(keep),
        quick_filters=views.QUICK_FILTERS,
        quick=quick_key,
        quick_label=dict(views.QUICK_FILTERS).get(quick_key or ""),
        include_closed=include_closed,
        statuses=[(v.value, VERDICT_LABELS[v]) for v in CaseStatus],
        stages=[(s.value, STAGES[s].label) for s in Stage if s is not Stage.NEW],
        branches=[b.name for b in app.config.branches.branches],
    )


ROUTES = [Route("/", viewer(board))]
