"""Logging in and out (local accounts; with ``auth = "header"`` the proxy does it).

A login is tried only when neither the account name nor the client address
is locked (:mod:`mailbot.service.login_throttle`); a refusal reads the same
whether the name is an account or not. A successful login starts a session
on the server (:mod:`mailbot.service.web_sessions`) and logging out ends it.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mailbot.entrypoints.web.auth import client_address, csrf_token, log_in, log_out
from mailbot.entrypoints.web.deps import EXPIRED_FORM, Web, form_is_fresh, web_of
from mailbot.service.accounts import AccountError
from mailbot.service.login_throttle import TOO_MANY

__all__ = ["ROUTES"]

log = logging.getLogger("mailbot.web")
WRONG = "ユーザー名またはパスワードが違います。"


async def login_form(request: Request) -> Response:
    web = web_of(request)
    if web.app.config.web.auth == "header":
        return web.error_page(request, None, 403, "この画面はリバースプロキシの認証で利用します。")
    return web.templates.TemplateResponse(
        request,
        "login.html",
        {"csrf": csrf_token(request), "next": request.query_params.get("next", "/"), "error": None, "user": None},
    )


def _refused(request: Request, web: Web, target: str, name: str, wait: int) -> Response:
    """The login page again: a wrong name or password (401), or a locked login (429 with Retry-After)."""
    context = {
        "csrf": csrf_token(request),
        "next": target,
        "user": None,
        "username": name,
        "error": TOO_MANY if wait else WRONG,
        "locked": wait,
    }
    headers = {"Retry-After": str(wait)} if wait else None
    return web.templates.TemplateResponse(
        request, "login.html", context, status_code=429 if wait else 401, headers=headers
    )


async def login(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    if not form_is_fresh(request, form):
        # The login page again (a fresh token), with the name as typed: never the password.
        context = {
            "csrf": csrf_token(request),
            "next": str(form.get("next") or "/"),
            "user": None,
            "username": str(form.get("username", "")),
            "error": EXPIRED_FORM,
            "locked": 0,
        }
        return web.templates.TemplateResponse(request, "login.html", context, status_code=403)
    name, password = str(form.get("username", "")), str(form.get("password", ""))
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    config = web.app.config.web
    if config.auth != "password":
        return _refused(request, web, target, name, 0)
    address = client_address(request.scope, config.trusted_proxies)
    throttle = web.app.login_throttle
    # Before the password is looked at: while locked, the right password is refused as well.
    wait = await run_in_threadpool(throttle.wait, name, address)
    if wait:
        log.warning("web login for %r from %s refused: locked for %d s more", name, address, wait)
        return _refused(request, web, target, name, wait)
    # argon2 is slow on purpose: off the event loop.
    account = await run_in_threadpool(web.accounts.verify, name, password)
    if account is None:
        wait = await run_in_threadpool(throttle.failed, name, address)
        log.warning("web login refused for %r from %s", name, address)
        return _refused(request, web, target, name, wait)
    await run_in_threadpool(throttle.succeeded, account.name)
    try:
        session_id = await run_in_threadpool(web.app.web_sessions.start, account.name)
    except AccountError:  # disabled between the password check and now
        return _refused(request, web, target, name, 0)
    log_in(request, session_id)
    log.info("web login: %s (%s) from %s", account.name, account.role, address)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    if not form_is_fresh(request, form):
        return web_of(request).error_page(request, None, 403, EXPIRED_FORM)
    await run_in_threadpool(log_out, request, web_of(request).app.web_sessions)
    return RedirectResponse("/login", status_code=303)


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
