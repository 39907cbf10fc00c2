"""``[mailbox]`` and ``[delivery]`` of kind imap / smtp: their types, their login, and their commands.

Kept apart from config.py, like config_after.py and config_alerts.py: the
checks of the two server tables (TLS, one way to log in, a credential command
that can be run now, the OAuth2 table). The adapters own the rest of their
settings and check it when they are built.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from mailbot.config_table import Table

__all__ = ["check_imap", "check_smtp"]

_CREDENTIAL_KEYS = ("password_env", "password_command", "oauth2_token_command", "oauth2")
_SMTP_KEYS = {"kind", "host", "port", "tls", "username", "timeout_seconds", "save_sent_to", *_CREDENTIAL_KEYS}


def _check_tls(table: Table) -> None:
    tls = table.get("tls", str, "ssl")
    if tls not in ("ssl", "starttls", "none"):
        raise table.fail("tls", f'expected "ssl", "starttls" or "none", got {tls!r}')


def _check_credentials(table: Table, base: Path, data: dict[str, Any], *, required: bool) -> None:
    """At most one way to log in (exactly one when ``required``); its command runnable, its secret set."""
    given = [key for key in _CREDENTIAL_KEYS if key in table.data]
    if required and not given:
        raise table.fail("password_env", "missing; give password_env, password_command, oauth2_token_command or oauth2")
    if len(given) > 1:
        raise table.fail(given[1], f"give only one way to log in, not {' and '.join(given)}")
    env = table.get("password_env", str)
    if env is not None and env not in os.environ:
        raise table.fail("password_env", f"environment variable {env} is not set")
    for key in ("password_command", "oauth2_token_command"):
        _check_command(table, key)
    if "oauth2" in table.data:
        data["oauth2"] = _oauth2(table, base)


def _check_command(table: Table, key: str) -> None:
    """A credential command: its program must exist and be executable now, not at the first login."""
    from mailbot.adapters.oauth2 import command_problem

    table.used.add(key)
    if key not in table.data:
        return
    value = table.data[key]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        command = shlex.join(value)
    elif isinstance(value, str):
        command = value
    else:
        raise table.fail(key, f"expected a command (a string or a list of strings), got {value!r}")
    problem = command_problem(command)
    if problem:
        raise table.fail(key, f"cannot be run: {problem}")


def _oauth2(table: Table, base: Path) -> dict[str, Any]:
    """The ``oauth2 = { provider = ... }`` table, its key file made absolute (relative to the config file)."""
    from mailbot.adapters.oauth2 import PROVIDERS

    sub = table.table("oauth2")
    provider = sub.get("provider", str, required=True, what='"microsoft" or "google"')
    if provider not in PROVIDERS:
        raise sub.fail("provider", f'expected "microsoft" or "google", got {provider!r}')
    data = dict(sub.data)
    if provider == "microsoft":
        sub.get("tenant", str, required=True, what='the tenant\'s ID or domain, e.g. "contoso.onmicrosoft.com"')
        sub.get("client_id", str, required=True, what="the app registration's Application (client) ID")
        env = sub.get("client_secret_env", str, required=True, what="the environment variable with the client secret")
        if env not in os.environ:
            raise sub.fail("client_secret_env", f"environment variable {env} is not set")
        authority = sub.get("authority", str)
        if authority is not None and not authority.startswith("https://"):
            raise sub.fail("authority", f"expected the issuer's https:// address, got {authority!r}")
    else:
        key_file = sub.get("key_file", str, required=True, what="the service account's JSON key file")
        path = (base / Path(key_file).expanduser()).resolve()
        if not path.is_file():
            raise sub.fail("key_file", f"{path} {'is not a file' if path.exists() else 'does not exist'}")
        if not os.access(path, os.R_OK):
            raise sub.fail("key_file", f"{path} is not readable by this user")
        data["key_file"] = str(path)
        sub.get("subject", str)
    sub.get("scope", str)
    sub.check_unknown(set(PROVIDERS[provider]))
    return data


def check_imap(table: Table, base: Path, data: dict[str, Any]) -> None:
    # Types here; the IMAP adapter's own settings check the rest when it is built.
    table.get("host", str, required=True, what="the IMAP server's host name")
    table.get("username", str, required=True, what="the mailbox user name")
    table.number("port", int, 993, 1, 65_535)
    _check_tls(table)
    table.get("folder", str)
    table.get("idle", bool)
    table.number("timeout_seconds", float, 30.0, 0.1, 3600, "seconds")
    _check_credentials(table, base, data, required=True)
    folders = table.table("folders")
    for key in folders.data:
        folders.get(key, str)
    folders.check_unknown({"accepted", "returned", "waiting", "quarantined"})
    from mailbot.adapters.imap import CONFIG_KEYS  # the adapter owns its settings

    table.check_unknown(set(CONFIG_KEYS))


def check_smtp(table: Table, base: Path, data: dict[str, Any]) -> None:
    table.get("host", str, required=True, what="the SMTP relay's host name")
    table.number("port", int, 587, 1, 65_535)
    _check_tls(table)
    username = table.get("username", str)
    table.get("save_sent_to", str)
    table.number("timeout_seconds", float, 30.0, 0.1, 3600, "seconds")
    _check_credentials(table, base, data, required=username is not None)
    login = [key for key in _CREDENTIAL_KEYS if key in table.data]
    if login and username is None:
        raise table.fail("username", f"missing; {login[0]} needs the user to log in as (with OAuth2: the mailbox)")
    table.check_unknown(_SMTP_KEYS)
