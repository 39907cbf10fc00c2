"""How to reach and log in to the IMAP mailbox: the ``[mailbox]`` table (``kind = "imap"``) and its outcomes."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mailbot.adapters.net import TLS_MODES, TlsMode, is_loopback
from mailbot.adapters.oauth2 import CredentialError, OAuth2Settings, login_methods, run_secret_command
from mailbot.service.ports import AuthenticationFailed

__all__ = ["CONFIG_KEYS", "KEYWORDS", "OUTCOMES", "ImapSettings"]

# Outcome -> IMAP keyword added by ImapSource.mark().
KEYWORDS: Mapping[str, str] = MappingProxyType(
    {
        "accepted": "$Mailbot-Accepted",
        "returned": "$Mailbot-Returned",
        "waiting": "$Mailbot-Waiting",
        "quarantined": "$Mailbot-Quarantined",
    }
)
OUTCOMES = frozenset(KEYWORDS)


# The keys of the [mailbox] table for kind = "imap"; the config loader checks against these too.
CONFIG_KEYS = frozenset(
    {
        "kind",
        "host",
        "port",
        "tls",
        "username",
        "password_env",
        "password_command",
        "oauth2_token_command",
        "oauth2",
        "folder",
        "timeout_seconds",
        "max_message_bytes",
        "idle",
        "folders",
    }
)


@dataclass(frozen=True)
class ImapSettings:
    """How to reach and log in to the mailbox (the ``[mailbox]`` table, kind="imap")."""

    host: str
    port: int
    tls: TlsMode
    username: str
    password: str | None = field(default=None, repr=False)
    password_command: str | None = None
    oauth2_token_command: str | None = None
    # Microsoft 365 (MSAL) or Google Workspace (service account): see mailbot.adapters.oauth2.
    oauth2: OAuth2Settings | None = None
    folder: str = "INBOX"
    timeout_seconds: float = 30.0
    max_message_bytes: int = 30 * 1024 * 1024
    # Outcome (accepted/returned/waiting/quarantined) -> folder to move to.
    folders: Mapping[str, str] = field(default_factory=dict, hash=False)
    idle: bool = False

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("mailbox host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"mailbox port {self.port} is out of range")
        if self.tls not in TLS_MODES:
            raise ValueError(f"mailbox tls must be ssl, starttls or none, not {self.tls!r}")
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError(
                f"tls = 'none' sends the password in clear text; it is only allowed "
                f"for a loopback host, not {self.host!r}"
            )
        if not self.username:
            raise ValueError("mailbox username must not be empty")
        methods = login_methods(self.password, self.password_command, self.oauth2_token_command, self.oauth2)
        if len(methods) != 1:
            raise ValueError(
                "give exactly one of password (password_env), password_command, "
                f"oauth2_token_command or oauth2 for the mailbox; got {methods or 'none'}"
            )
        if not self.folder:
            raise ValueError("mailbox folder must not be empty")
        if self.timeout_seconds <= 0:
            raise ValueError("mailbox timeout_seconds must be positive")
        if self.max_message_bytes <= 0:
            raise ValueError("mailbox max_message_bytes must be positive")
        unknown = set(self.folders) - OUTCOMES
        if unknown:
            raise ValueError(f"unknown [mailbox.folders] keys {sorted(unknown)}; allowed: {sorted(OUTCOMES)}")
        if any(not name for name in self.folders.values()):
            raise ValueError("[mailbox.folders] names must not be empty")
        object.__setattr__(self, "folders", MappingProxyType(dict(self.folders)))

    @classmethod
    def from_config(cls, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ImapSettings:
        """Build settings from the ``[mailbox]`` TOML table (``kind = "imap"``).

        ``password_env`` names an environment variable holding the password;
        the password itself is never read from the file.
        """
        unknown = set(table) - CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown [mailbox] keys: {sorted(unknown)}")
        if table.get("kind", "imap") != "imap":
            raise ValueError(f"[mailbox] kind is {table.get('kind')!r}, not 'imap'")
        tls = str(table.get("tls", "ssl"))
        port = int(table.get("port", {"ssl": 993}.get(tls, 143)))
        password: str | None = None
        env_name = table.get("password_env")
        if env_name:
            env = environ if environ is not None else os.environ
            if env_name not in env:
                raise ValueError(f"environment variable {env_name} (password_env) is not set")
            password = env[env_name]

        def command(key: str) -> str | None:
            value = table.get(key)
            if value is None or isinstance(value, str):
                return value
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return shlex.join(value)
            raise ValueError(f"[mailbox] {key} must be a string or a list of strings")

        username = str(table.get("username", ""))
        oauth2 = table.get("oauth2")
        if oauth2 is not None and not isinstance(oauth2, Mapping):
            raise ValueError('[mailbox] oauth2 must be a table such as { provider = "microsoft", ... }')
        return cls(
            host=str(table.get("host", "")),
            port=port,
            tls=tls,  # type: ignore[arg-type]  # validated in __post_init__
            username=username,
            password=password,
            password_command=command("password_command"),
            oauth2_token_command=command("oauth2_token_command"),
            oauth2=OAuth2Settings.from_table(oauth2, username, environ) if oauth2 is not None else None,
            folder=str(table.get("folder", "INBOX")),
            timeout_seconds=float(table.get("timeout_seconds", 30.0)),
            max_message_bytes=int(table.get("max_message_bytes", 30 * 1024 * 1024)),
            folders=dict(table.get("folders", {})),
            idle=bool(table.get("idle", False)),
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def login_password(self) -> str:
        """The password to log in with: the configured one, or the first line the password command prints.

        A failing command is a refused login (:class:`AuthenticationFailed`), so the poller backs off.
        """
        if self.password is not None:
            return self.password
        assert self.password_command is not None  # __post_init__: exactly one login method
        try:
            return run_secret_command(self.password_command, "password_command", self.timeout_seconds)
        except CredentialError as exc:
            raise AuthenticationFailed(str(exc)) from exc
