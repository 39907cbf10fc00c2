"""``/healthz``: no login, for a load balancer, an orchestrator or a monitor."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailbot.entrypoints.web.deps import Web, threaded
from mailbot.service.health import STALE_FACTOR, last_successful_poll

__all__ = ["ROUTES"]

log = logging.getLogger("mailbot.web")


def health(web: Web, request: Request) -> Response:
    """503 when the database does not answer or the bot has not polled for three intervals
    (what `mailbot status` calls stale)."""
    app = web.app
    now = app.clock()
    poll_seconds = app.config.schedule.poll_seconds
    try:
        with app.sessions() as session:
            last = last_successful_poll(session)
    except SQLAlchemyError as exc:
        # The detail goes to the log, not to whoever asks without logging in.
        log.error("healthz: database unavailable: %s", " ".join(str(getattr(exc, "orig", None) or exc).split()))
        return JSONResponse({"ok": False, "database": "unavailable"}, status_code=503)
    age = int((now - last).total_seconds()) if last is not None else None
    fresh = age is not None and age <= STALE_FACTOR * poll_seconds
    body = {
        "ok": fresh,
        "database": "ok",
        "last_poll": last.isoformat() if last is not None else None,
        "last_poll_age_seconds": age,
        "poll_seconds": poll_seconds,
    }
    return JSONResponse(body, status_code=200 if fresh else 503)


ROUTES = [Route("/healthz", threaded(health))]
