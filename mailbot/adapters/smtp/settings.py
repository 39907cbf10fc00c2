"""Where and how to submit outgoing mail: the ``[delivery]`` table (``kind = "smtp"``)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailbot.adapters.net import TLS_MODES, TlsMode, is_loopback
from mailbot.adapters.oauth2 import OAuth2Settings, login_methods

__all__ = ["SmtpSettings"]


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to submit outgoing mail."""

    host: str
    port: int = 587
    tls: TlsMode = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # keep it out of logs
    timeout_seconds: float = 30.0
    local_hostname: str | None = None
    password_command: str | None = None
    oauth2_token_command: str | None = None
    oauth2: OAuth2Settings | None = None

    def __post_init__(self) -> None:
        if not self.host or not self.host.strip():
            raise ValueError("SMTP host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port {self.port} is not between 1 and 65535")
        if self.tls not in TLS_MODES:
            raise ValueError(f"SMTP tls must be one of 'ssl', 'starttls' or 'none', not {self.tls!r}")
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError(
                f"SMTP tls 'none' would send mail and credentials in cleartext to "
                f"{self.host!r}; it is only allowed for a loopback host "
                f"(localhost, 127.0.0.1, ::1). Use 'starttls' or 'ssl'."
            )
        if self.timeout_seconds <= 0:
            raise ValueError(f"SMTP timeout must be positive, not {self.timeout_seconds}")
        credentials = login_methods(self.password, self.password_command, self.oauth2_token_command, self.oauth2)
        if len(credentials) > 1:
            raise ValueError(f"SMTP login: give only one of {', '.join(credentials)}")
        if (self.username is None) != (not credentials):
            raise ValueError(
                "SMTP username and a password (password_env, password_command) or token "
                "(oauth2, oauth2_token_command) must be given together"
            )
        for label, value in (("username", self.username), ("password", self.password)):
            # smtplib encodes AUTH PLAIN/LOGIN as ASCII and would crash mid-login.
            if value is not None and not value.isascii():
                raise ValueError(f"SMTP {label} must be ASCII (an smtplib limitation)")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def logs_in(self) -> bool:
        return self.username is not None

    @classmethod
    def from_config(cls, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """From the ``[delivery]`` table (``kind = "smtp"``); secrets come from the environment or commands."""
        env = environ if environ is not None else os.environ
        password = None
        if table.get("password_env"):
            password = env.get(table["password_env"])
            if password is None:
                raise ValueError(f"password_env: environment variable {table['password_env']} is not set")

        def command(key: str) -> str | None:
            value = table.get(key)
            if isinstance(value, list):
                return shlex.join(str(v) for v in value)
            return None if value is None else str(value)

        username = table.get("username")
        oauth2 = table.get("oauth2")
        return cls(
            host=table["host"],
            port=int(table.get("port", 587)),
            tls=table.get("tls", "starttls"),
            username=username,
            password=password,
            timeout_seconds=float(table.get("timeout_seconds", 30.0)),
            password_command=command("password_command"),
            oauth2_token_command=command("oauth2_token_command"),
            oauth2=OAuth2Settings.from_table(oauth2, username or "", env) if oauth2 is not None else None,
        )
