"""Logging in and out (local accounts; with ``auth = "header"`` the proxy does it)."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from mailbot.entrypoints.web.auth import csrf_token, log_in, log_out
from mailbot.entrypoints.web.deps import EXPIRED_FORM, form_is_fresh, web_of

__all__ = ["ROUTES"]

log = logging.getLogger("mailbot.web")


async def login_form(request: Request) -> Response:
    web = web_of(request)
    if web.app.config.web.auth == "header":
        return PlainTextResponse("この画面はリバースプロキシの認証で利用します。", 403)
    return web.templates.TemplateResponse(
        request,
        "login.html",
        {"csrf": csrf_token(request), "next": request.query_params.get("next", "/"), "error": None, "user": None},
    )


async def login(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    if not form_is_fresh(request, form):
        return PlainTextResponse(EXPIRED_FORM, 403)
    name, password = str(form.get("username", "")), str(form.get("password", ""))
    # argon2 is slow on purpose: off the event loop.
    password_login = web.app.config.web.auth == "password"
    account = await run_in_threadpool(web.accounts.verify, name, password) if password_login else None
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if account is None:
        log.warning("web login refused for %r", name)
        return web.templates.TemplateResponse(
            request,
            "login.html",
            {
                "csrf": csrf_token(request),
                "next": target,
                "user": None,
                "error": "ユーザー名またはパスワードが違います。",
            },
            status_code=401,
        )
    log_in(request, account.name)
    log.info("web login: %s (%s)", account.name, account.role)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    if not form_is_fresh(request, form):
        return PlainTextResponse("フォームの有効期限が切れています。", 403)
    log_out(request)
    return RedirectResponse("/login", status_code=303)


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
