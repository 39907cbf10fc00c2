"""The clerks' workbench: server-rendered pages over the application service and its views.

Every page reads through :mod:`mailbot.service.views`; every button calls one
desk action as the logged-in user. Mail an action queues is delivered by the
running bot (the poller lock's holder); the pages show when it was queued and
when it went out. Plain HTML forms: every flow works without JavaScript.

This module only assembles: the middleware (:mod:`.middleware`), what every
page needs (:mod:`.deps`) and one routes module per page group (:mod:`.routes`).
"""

from __future__ import annotations

import logging
import secrets

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from mailbot.bootstrap import App
from mailbot.entrypoints.web.deps import HERE, build_web
from mailbot.entrypoints.web.errors import http_error, server_error
from mailbot.entrypoints.web.middleware import middleware
from mailbot.entrypoints.web.routes import (
    attachments,
    board,
    cases,
    health,
    login,
    outbox,
    progress,
    quarantine,
    status,
    weekly,
    worklist,
)

__all__ = ["create_app"]

log = logging.getLogger("mailbot.web")


def create_app(app: App, *, secret: str | None = None) -> Starlette:
    """The workbench over ``app`` (the same wiring every command uses)."""
    if not secret:
        secret = secrets.token_urlsafe(48)
        log.warning("no [web] secret_env or secret_command: logins end when the workbench restarts")
    routes: list[BaseRoute] = [
        *login.ROUTES,
        *health.ROUTES,
        *board.ROUTES,
        *cases.ROUTES,
        *attachments.ROUTES,
        *quarantine.ROUTES,
        *outbox.ROUTES,
        *status.ROUTES,
        *weekly.ROUTES,
        *progress.ROUTES,
        *worklist.ROUTES,
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    workbench = Starlette(
        routes=routes,
        middleware=middleware(
            secret=secret,
            https_only=app.config.web.base_url.startswith("https://"),
            proxies=app.config.web.trusted_proxies,
        ),
        # Errors are pages of the workbench, in Japanese (never a bare "Not Found").
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    workbench.state.web = build_web(app)
    return workbench
