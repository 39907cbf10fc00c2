"""The bot's status: polls, mailbox, outbox, cases, UNIS data and the job schedule."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.domain.clock import format_jst
from mailbot.domain.schedule import every_label
from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, viewer
from mailbot.service import views
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
        bot_expected=True,  # the desk's mail waits for a running bot: its absence is the page's first line
    )
    report.schedule = next_run_times(app.config, now, report.last_successful_poll)
    assert report.bot is not None
    next_check = next((job["next_run"] for job in report.schedule if job["job"] == "poll"), None)
    return web.page(
        request,
        "status.html",
        user,
        status=report,
        now=now,
        fmt=format_jst,
        bot=views.bot_words(report.bot),
        every=every_label(report.poll_seconds),
        next_check=next_check,
    )


ROUTES = [Route("/status", viewer(status))]
