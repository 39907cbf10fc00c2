"""The bot's status: polls, mailbox, outbox, cases, UNIS data and the job schedule."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.domain.clock import format_jst
from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, viewer
from mailbot.service.health import collect_status
from mailbot.service.schedule import next_run_times

__all__ = ["ROUTES"]


def status(web: Web, request: Request, user: User) -> Response:
    app = web.app
    now = app.clock()
    report = collect_status(
        sessions=app.sessions,
        source=app.intake.source,
        poll_seconds=app.config.schedule.poll_seconds,
        max_message_bytes=app.config.policy.limits.max_message_bytes,
        now=now,
    )
    report.schedule = next_run_times(app.config, now, report.last_successful_poll)
    return web.page(request, "status.html", user, status=report, now=now, fmt=format_jst)


ROUTES = [Route("/status", viewer(status))]
