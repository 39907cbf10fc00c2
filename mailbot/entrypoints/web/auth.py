"""Who is using the workbench: local accounts with sessions, or a trusted proxy's header; CSRF tokens.

A login is a row of ``web_sessions`` (:mod:`mailbot.service.web_sessions`):
the signed cookie (itsdangerous, through Starlette's SessionMiddleware)
carries only that session's random id, the CSRF token and the one-time flash
message. Logging out ends the row, so a copy of the cookie is refused too.
Every POST must carry the CSRF token. With ``auth = "header"`` the user header
is believed only from the configured proxy addresses.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from mailbot.service.accounts import ACTING_ROLES, Accounts
from mailbot.service.web_sessions import WebSessions

__all__ = [
    "CSRF_FIELD",
    "USER_STATE",
    "User",
    "client_address",
    "csrf_ok",
    "csrf_token",
    "current_user",
    "log_in",
    "log_out",
]

CSRF_FIELD = "csrf_token"
# Where the request's user is left for the access log (scope["state"], which request.state writes to).
USER_STATE = "mailbot_user"
_SESSION_ID = "sid"


def client_address(scope: Mapping[str, Any], proxies: tuple[str, ...]) -> str:
    """The address the request came from: the peer, or the address a trusted proxy says it forwarded.

    Only the right-most X-Forwarded-For entry is taken, the one the trusted
    proxy itself appended; anything left of it the client could have written.
    """
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    if peer and peer in proxies:
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                forwarded = str(value.decode("latin-1")).split(",")[-1].strip()
                if forwarded:
                    return forwarded
    return peer


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def can_act(self) -> bool:
        return self.role in ACTING_ROLES


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def csrf_ok(request: Request, submitted: object) -> bool:
    expected = request.session.get("csrf")
    return bool(expected) and isinstance(submitted, str) and hmac.compare_digest(str(expected), submitted)


def current_user(
    request: Request,
    accounts: Accounts,
    *,
    mode: str,
    header: str,
    proxies: tuple[str, ...],
    sessions: WebSessions,
) -> User | None:
    """The user of this request (None: nobody), also left in the request's state for the access log."""
    user = _proxy_user(request, accounts, header, proxies) if mode == "header" else _session_user(request, sessions)
    setattr(request.state, USER_STATE, user.name if user else None)
    return user


def _proxy_user(request: Request, accounts: Accounts, header: str, proxies: tuple[str, ...]) -> User | None:
    client = request.client.host if request.client else ""
    name = request.headers.get(header, "").strip()
    if client not in proxies or not name:
        return None
    account = accounts.get(name)
    if account is not None and account.disabled:
        return None
    # A person the proxy vouches for but who has no account here may look, not act.
    return User(name, account.role if account else "viewer")


def _session_user(request: Request, sessions: WebSessions) -> User | None:
    session_id = request.session.get(_SESSION_ID)
    if not session_id:
        return None
    account = sessions.find(str(session_id))
    if account is None:
        # Ended (logout elsewhere, a new password, a disabled account) or expired: the cookie is worthless.
        request.session.clear()
        return None
    return User(account.name, account.role)


def log_in(request: Request, session_id: str) -> None:
    """The cookie now carries the new session's id; a fresh CSRF token (one planted before is worthless)."""
    request.session.clear()
    request.session[_SESSION_ID] = session_id
    request.session["csrf"] = secrets.token_urlsafe(32)


def log_out(request: Request, sessions: WebSessions) -> None:
    """End the session on the server, then forget the cookie: a copy of it is refused from now on."""
    session_id = request.session.get(_SESSION_ID)
    if session_id:
        sessions.end(str(session_id))
    request.session.clear()
