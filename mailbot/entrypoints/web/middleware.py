"""What wraps every response: the access log, the security headers and the signed session cookie."""

from __future__ import annotations

import logging
import time

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailbot.entrypoints.web.auth import USER_STATE, client_address

__all__ = ["SECURITY_HEADERS", "SESSION_COOKIE", "AccessLog", "SecurityHeaders", "middleware"]

access_log = logging.getLogger("mailbot.web.access")
SESSION_COOKIE = "mailbot_session"

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self'; style-src 'self'; frame-ancestors 'none';"
        b" form-action 'self'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    # Mail pages hold customers' data: never kept by the browser or a proxy.
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Adds the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                # A response's own stricter header (an attachment's sandbox) stands.
                message["headers"] = headers + [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            await send(message)

        await self.app(scope, receive, with_headers)


class AccessLog:
    """One line per request: method, path, status, user (or -), client address, duration in ms.

    The path only: a query string may carry what a clerk typed (a customer's
    name) and never belongs in a log; neither do the form's fields or the cookie.
    The user is the one the page resolved (:func:`~mailbot.entrypoints.web.auth.current_user`
    leaves it in the request's state); "-" when nobody was logged in.
    """

    def __init__(self, app: ASGIApp, proxies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500  # what the client gets if the app raises before answering

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            access_log.info(
                "%s %s %d %s %s %.0fms",
                scope.get("method", "-"),
                scope.get("path", "-"),
                status,
                state.get(USER_STATE) or "-",
                client_address(scope, self.proxies) or "-",
                (time.perf_counter() - started) * 1000,
            )


def middleware(*, secret: str, https_only: bool, proxies: tuple[str, ...] = ()) -> list[Middleware]:
    """The access log outermost (it times everything), the security headers, the session inside."""
    # SameSite=Lax, not Strict: a clerk follows the link in an ops notice from the
    # mail client and must arrive logged in; every POST still needs the CSRF token.
    # Starlette's cookie is always HttpOnly; Secure when the workbench is reached over https.
    return [
        Middleware(AccessLog, proxies=proxies),
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie=SESSION_COOKIE,
            same_site="lax",
            https_only=https_only,
            max_age=12 * 3600,
        ),
    ]
