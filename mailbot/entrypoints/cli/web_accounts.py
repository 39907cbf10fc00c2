"""``mailbot web`` (the clerks' workbench) and ``mailbot users`` (its accounts)."""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import subprocess
import sys
from typing import Any

from mailbot.config import Config, ConfigError
from mailbot.domain.clock import format_jst
from mailbot.entrypoints.cli.common import open_app, print_json
from mailbot.entrypoints.errors import UsageError
from mailbot.entrypoints.tables import format_table
from mailbot.service.accounts import ROLES, AccountError

__all__ = ["register", "session_secret"]


def session_secret(config: Config) -> str | None:
    """The session secret from ``[web] secret_env`` or ``secret_command``; None when neither is set."""
    web = config.web
    if web.secret_env:
        value = os.environ.get(web.secret_env)
        if not value:
            raise ConfigError(f"{config.path}: [web] secret_env: environment variable {web.secret_env} is not set")
        return value
    if web.secret_command:
        try:
            done = subprocess.run(shlex.split(web.secret_command), capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"{config.path}: [web] secret_command: {exc}") from None
        if done.returncode != 0 or not done.stdout.strip():
            raise ConfigError(f"{config.path}: [web] secret_command failed with exit status {done.returncode}")
        return done.stdout.strip()
    return None


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from mailbot.entrypoints.web.app import create_app

    app = open_app(args)
    web = app.config.web
    host, port = args.host or web.host, args.port or web.port
    try:
        asgi = create_app(app, secret=session_secret(app.config))
        print(f"mailbot web on http://{host}:{port}/ (Ctrl+C to stop)", file=sys.stderr)
        # proxy_headers off: the client is the address that connected, so [web] trusted_proxies
        # compares the proxy's own (uvicorn would put X-Forwarded-For's there); links come from base_url.
        uvicorn.run(asgi, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)
    finally:
        app.close()
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise UsageError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_users_add(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        account = app.accounts.add(args.name, args.role, _read_password())
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    finally:
        app.close()
    print(f"user {account.name} added ({account.role})")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        accounts = app.accounts.list()
    finally:
        app.close()
    if args.json:
        print_json(
            [
                {
                    "name": a.name,
                    "role": a.role,
                    "disabled": a.disabled,
                    "created_at": a.created_at.isoformat(),
                    "last_login_at": a.last_login_at.isoformat() if a.last_login_at else None,
                }
                for a in accounts
            ]
        )
        return 0
    rows = [
        [a.name, a.role, "無効" if a.disabled else "有効", format_jst(a.last_login_at) if a.last_login_at else "-"]
        for a in accounts
    ]
    print(format_table(["ユーザー", "権限", "状態", "最終ログイン"], rows) if rows else "(ユーザーはいません)")
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        app.accounts.disable(args.name)
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    finally:
        app.close()
    print(f"user {args.name} disabled (its open sessions ended)")
    return 0


def cmd_users_password(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        ended = app.accounts.set_password(args.name, _read_password())
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    finally:
        app.close()
    print(f"password of {args.name} set; {ended} open session(s) ended")
    return 0


def register(sub: Any) -> None:
    web = sub.add_parser("web", help="the clerks' workbench in the browser (default http://127.0.0.1:8025/)")
    web.add_argument("--host", help="address to listen on (default [web] host, 127.0.0.1)")
    web.add_argument("--port", type=int, help="port (default [web] port, 8025)")
    web.set_defaults(func=cmd_web)

    users_parser = sub.add_parser("users", help="accounts of the web workbench")
    users = users_parser.add_subparsers(dest="u_command", required=True)
    add = users.add_parser("add", help="add an account; the password is read from standard input")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.set_defaults(func=cmd_users_add)
    listing = users.add_parser("list", help="every account")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_users_list)
    disable = users.add_parser("disable", help="the account can no longer log in")
    disable.add_argument("name")
    disable.set_defaults(func=cmd_users_disable)
    password = users.add_parser(
        "password", help="set a new password (read from standard input); every open session of the account ends"
    )
    password.add_argument("name")
    password.set_defaults(func=cmd_users_password)
