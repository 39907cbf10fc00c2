"""The weekly summaries of this week and the last, as the branches and the desk receive them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.domain.schedule import Week
from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, viewer
from mailbot.service.commands import PreviewWeekly

__all__ = ["ROUTES"]


def weekly(web: Web, request: Request, user: User) -> Response:
    app = web.app
    now = app.clock()
    this_week = Week.containing(now)
    weeks = []
    for week in (this_week, this_week.previous()):
        rendered = app.bus.handle(PreviewWeekly(week))
        weeks.append(
            {"week": week, "mails": [{"key": m.key, "to": m.to, "subject": s, "body": b} for m, s, b in rendered]}
        )
    return web.page(request, "weekly.html", user, weeks=weeks)


ROUTES = [Route("/weekly", viewer(weekly))]
