"""Who is using the workbench: local accounts with sessions, or a trusted proxy's header; CSRF tokens.

The session is a signed cookie (itsdangerous, through Starlette's
SessionMiddleware) holding the user's name and a CSRF token; every POST must
carry that token. With ``auth = "header"`` the user header is believed only
from the configured proxy addresses.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request

from mailbot.service.accounts import ACTING_ROLES, Accounts

__all__ = ["CSRF_FIELD", "User", "csrf_ok", "csrf_token", "current_user", "log_in", "log_out"]

CSRF_FIELD = "csrf_token"


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
    request: Request, accounts: Accounts, *, mode: str, header: str, proxies: tuple[str, ...]
) -> User | None:
    if mode == "header":
        client = request.client.host if request.client else ""
        name = request.headers.get(header, "").strip()
        if client not in proxies or not name:
            return None
        account = accounts.get(name)
        if account is not None and account.disabled:
            return None
        # A person the proxy vouches for but who has no account here may look, not act.
        return User(name, account.role if account else "viewer")
    session_user = request.session.get("user")
    if not session_user:
        return None
    account = accounts.get(str(session_user))
    if account is None or account.disabled:
        request.session.clear()
        return None
    return User(account.name, account.role)


def log_in(request: Request, name: str) -> None:
    # A fresh session (and CSRF token) at login: a token planted before it is worthless.
    request.session.clear()
    request.session["user"] = name
    request.session["csrf"] = secrets.token_urlsafe(32)


def log_out(request: Request) -> None:
    request.session.clear()
