"""The outbox: mail waiting, failed or held, and what went out lately and its desk actions."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, actor, done, viewer
from mailbot.entrypoints.web.desk import mail_forms, perform
from mailbot.service import health, views
from mailbot.service.errors import DeskError

__all__ = ["ROUTES"]


def outbox(web: Web, request: Request, user: User) -> Response:
    app = web.app
    with app.sessions() as session:
        bot = health.bot_state(session, now=app.clock(), poll_seconds=app.config.schedule.poll_seconds)
        rows = views.outbox_rows(session, limit=500, bot=bot)
    waiting = [r for r in rows if r["status"] in ("pending", "failed", "suppressed")]
    recent = [r for r in rows if r["status"] not in ("pending", "failed", "suppressed")][:100]
    forms = {r["id"]: mail_forms(r) for r in waiting}
    return web.page(request, "outbox.html", user, waiting=waiting, recent=recent, forms=forms, bot=views.bot_words(bot))


def outbox_action(web: Web, request: Request, user: User, form: FormData) -> Response:
    mail_id, action = int(request.path_params["mail_id"]), request.path_params["action"]
    try:
        result = perform(web, request, user, form, "outbox", mail_id, action)
    except DeskError as exc:
        return done(request, "/outbox", str(exc), ok=False)
    if isinstance(result, Response):
        return result
    return done(request, str(form.get("back") or "/outbox"), result.summary)


ROUTES = [
    Route("/outbox", viewer(outbox)),
    Route("/outbox/{mail_id:int}/{action}", actor(outbox_action), methods=["POST"]),
]
