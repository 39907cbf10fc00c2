"""What wraps every response: the security headers and the signed session cookie."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SECURITY_HEADERS", "SecurityHeaders", "middleware"]

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


def middleware(*, secret: str, https_only: bool) -> list[Middleware]:
    """The security headers outside, the session inside."""
    # SameSite=Lax, not Strict: a clerk follows the link in an ops notice from the
    # mail client and must arrive logged in; every POST still needs the CSRF token.
    return [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="mailbot_session",
            same_site="lax",
            https_only=https_only,
            max_age=12 * 3600,
        ),
    ]
