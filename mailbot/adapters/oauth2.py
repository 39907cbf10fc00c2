"""OAuth2 access tokens for IMAP and SMTP logins (XOAUTH2 / OAUTHBEARER), and the credential helpers.

One job: hand the mail adapters a bearer token, from one of three places:

``provider = "microsoft"``
    Microsoft Entra ID (Microsoft 365), the client-credentials grant through
    MSAL for Python. MSAL keeps the token in memory and fetches a new one when
    less than five minutes of it are left, so a token is refreshed before it
    expires. ``authority`` points MSAL at another OpenID Connect issuer (its
    ``/.well-known/openid-configuration`` names the token endpoint): a national
    cloud, or the tests' token endpoint on loopback.
``provider = "google"``
    A Google Workspace service-account key file with domain-wide delegation
    (google-auth): the token acts as ``subject``, the mailbox user, with the
    scope ``https://mail.google.com/``; refreshed a few minutes before expiry.
``oauth2_token_command``
    Any other issuer: a command (no shell) whose first output line is the
    token. Its token is kept until the server refuses it.

A token the server refuses is asked for again once (:meth:`TokenSource.fresh`);
the adapters then report the refusal in one line like a refused password.
Every failure to get a token is a :class:`TokenError` whose text is one line
naming the source and the issuer's own error.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mailbot.adapters.errors import CredentialError, TokenError

__all__ = [
    "GOOGLE_SCOPE",
    "MICROSOFT_SCOPE",
    "PROVIDERS",
    "CommandTokens",
    "CredentialError",
    "GoogleTokens",
    "MicrosoftTokens",
    "OAuth2Settings",
    "TokenError",
    "TokenSource",
    "command_problem",
    "decode_challenge",
    "login_methods",
    "oauthbearer_response",
    "run_secret_command",
    "token_source",
    "token_words",
    "xoauth2_response",
]

# Client credentials ask for "the resource's permissions granted to the app": IMAP.AccessAsApp and SMTP.SendAsApp.
MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/"

# The keys of an ``oauth2 = { ... }`` table, by provider; the config loader checks against these.
PROVIDERS: Mapping[str, frozenset[str]] = {
    "microsoft": frozenset({"provider", "tenant", "client_id", "client_secret_env", "authority", "scope"}),
    "google": frozenset({"provider", "key_file", "subject", "scope"}),
}


def _one_line(text: object, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def command_problem(command: str) -> str | None:
    """Why ``command`` cannot be run (its program missing or not executable), or None.

    A bare name is looked up on PATH as the process will; a path must be an executable file.
    """
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return f"cannot be split into words ({exc})"
    if not words:
        return "is empty"
    program = words[0]
    if os.sep not in program:
        return None if shutil.which(program) else f"{program!r} is not found on PATH"
    path = Path(program)
    if not path.exists():
        return f"{program} does not exist"
    if not path.is_file():
        return f"{program} is not a file"
    if not os.access(path, os.X_OK):
        return f"{program} is not executable by this user"
    return None


def run_secret_command(command: str, setting: str, timeout: float) -> str:
    """Run a credential helper (no shell) and return its first output line."""
    try:
        proc = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise CredentialError(f"{setting} could not be run: {exc}") from exc
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()[-1:] or ["no error output"]
        raise CredentialError(f"{setting} failed with exit status {proc.returncode}: {err[0][:200]}")
    lines = proc.stdout.strip().splitlines()
    if not lines or not lines[0].strip():
        raise CredentialError(f"{setting} printed nothing")
    return lines[0].strip()


@dataclass(frozen=True)
class OAuth2Settings:
    """An ``oauth2 = { provider = ... }`` table of ``[mailbox]`` or ``[delivery]``."""

    provider: str
    tenant: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    authority: str = ""
    key_file: str = ""
    subject: str = ""
    scope: str = ""

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f'oauth2 provider: expected "microsoft" or "google", got {self.provider!r}')
        needed = ("tenant", "client_id", "client_secret") if self.provider == "microsoft" else ("key_file", "subject")
        for name in needed:
            if not getattr(self, name):
                raise ValueError(f"oauth2 {name}: missing for provider {self.provider!r}")

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any], username: str, environ: Mapping[str, str] | None = None
    ) -> OAuth2Settings:
        """From the TOML inline table; the client secret comes from the environment variable it names."""
        env = environ if environ is not None else os.environ
        provider = str(table.get("provider", ""))
        unknown = set(table) - PROVIDERS.get(provider, frozenset({"provider"}))
        if provider in PROVIDERS and unknown:
            raise ValueError(f"oauth2: unknown key(s) {sorted(unknown)} for provider {provider!r}")
        secret = ""
        secret_env = table.get("client_secret_env")
        if secret_env:
            if secret_env not in env:
                raise ValueError(f"oauth2 client_secret_env: environment variable {secret_env} is not set")
            secret = env[secret_env]
        return cls(
            provider=provider,
            tenant=str(table.get("tenant", "")),
            client_id=str(table.get("client_id", "")),
            client_secret=secret,
            authority=str(table.get("authority", "")).rstrip("/"),
            key_file=str(table.get("key_file", "")),
            subject=str(table.get("subject", "") or username),
            scope=str(table.get("scope", "")),
        )


def login_methods(
    password: str | None, password_command: str | None, token_command: str | None, oauth2: OAuth2Settings | None
) -> list[str]:
    """The login settings given, by their keys: the IMAP and SMTP settings allow one each."""
    given = (
        ("password", password),
        ("password_command", password_command),
        ("oauth2_token_command", token_command),
        ("oauth2", oauth2),
    )
    return [name for name, value in given if value is not None]


class TokenSource(Protocol):
    """Where an adapter gets its bearer token."""

    @property
    def name(self) -> str:
        """Named in every message about its tokens, e.g. "Microsoft Entra ID (tenant contoso.onmicrosoft.com)"."""
        ...

    def token(self) -> str:
        """A token believed valid: the one held, or a new one when it is (nearly) expired."""
        ...

    def fresh(self) -> str:
        """A new token: the server refused the one held."""
        ...

    def forget(self) -> None:
        """Drop the token held (the server said it expired)."""
        ...

    def expires_in(self) -> int | None:
        """Seconds the token held is still valid for, when the issuer said."""
        ...


class CommandTokens:
    """``oauth2_token_command``: its first output line, kept until the server refuses it."""

    def __init__(self, command: str, timeout: float, setting: str = "oauth2_token_command") -> None:
        self._command, self._timeout, self._setting = command, timeout, setting
        self._token: str | None = None
        self.requests = 0

    @property
    def name(self) -> str:
        return self._setting

    def token(self) -> str:
        if self._token is None:
            self.requests += 1
            try:
                self._token = run_secret_command(self._command, self._setting, self._timeout)
            except CredentialError as exc:
                raise TokenError(str(exc)) from exc
        return self._token

    def fresh(self) -> str:
        self._token = None
        return self.token()

    def forget(self) -> None:
        self._token = None

    def expires_in(self) -> int | None:
        return None


class MicrosoftTokens:
    """Client credentials from Microsoft Entra ID through MSAL, cached by MSAL.

    The MSAL application is made on the first token, not before: making it
    reads the issuer's OpenID configuration over the network.
    """

    def __init__(self, settings: OAuth2Settings, timeout: float) -> None:
        self._settings, self._timeout = settings, timeout
        self._app: Any = None
        self._expires_at: float | None = None

    @property
    def name(self) -> str:
        s = self._settings
        where = f"authority {s.authority}" if s.authority else f"tenant {s.tenant}"
        return f"Microsoft Entra ID ({where}, client {s.client_id})"

    def _application(self) -> Any:
        if self._app is None:
            import msal

            s = self._settings
            options: dict[str, Any] = {"client_credential": s.client_secret, "timeout": self._timeout}
            if s.authority:
                # Another OpenID Connect issuer: MSAL reads {authority}/.well-known/openid-configuration.
                options["oidc_authority"] = s.authority
            else:
                options["authority"] = MICROSOFT_AUTHORITY + s.tenant
            try:
                self._app = msal.ConfidentialClientApplication(s.client_id, **options)
            except Exception as exc:  # MSAL raises ValueError, requests' errors, JSON errors...
                raise TokenError(f"{self.name}: the issuer could not be reached or read: {_one_line(exc)}") from exc
        return self._app

    def token(self) -> str:
        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=[self._settings.scope or MICROSOFT_SCOPE])
        except Exception as exc:
            raise TokenError(f"{self.name}: no token: {_one_line(exc)}") from exc
        if "access_token" not in result:
            error = result.get("error", "no access_token in the answer")
            description = str(result.get("error_description", "")).split("\n")[0].strip()
            raise TokenError(_one_line(f"{self.name} refused the token request: {error}: {description}".rstrip(": ")))
        expires = result.get("expires_in")
        self._expires_at = time.monotonic() + float(expires) if isinstance(expires, int | float) else None
        return str(result["access_token"])

    def fresh(self) -> str:
        self.forget()
        return self.token()

    def forget(self) -> None:
        if self._app is not None:
            self._app.remove_tokens_for_client()
        self._expires_at = None

    def expires_in(self) -> int | None:
        return None if self._expires_at is None else int(self._expires_at - time.monotonic())


class GoogleTokens:
    """A service account acting as the mailbox user (domain-wide delegation), through google-auth."""

    def __init__(self, settings: OAuth2Settings, timeout: float) -> None:
        self._settings, self._timeout = settings, timeout
        self._credentials: Any = None

    @property
    def name(self) -> str:
        return f"Google service account ({self._settings.key_file}, acting as {self._settings.subject})"

    def _refresh(self) -> str:
        from google.auth.exceptions import GoogleAuthError
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account

        s = self._settings
        try:
            if self._credentials is None:
                self._credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                    s.key_file, scopes=[s.scope or GOOGLE_SCOPE], subject=s.subject
                )
            self._credentials.refresh(Request())
        except GoogleAuthError as exc:
            # RefreshError carries ("invalid_grant: Not a valid email...", {response}); the first is the error.
            text = exc.args[0] if exc.args else exc
            raise TokenError(f"{self.name} refused the token request: {_one_line(text)}") from exc
        except (OSError, ValueError, KeyError) as exc:
            raise TokenError(f"{self.name}: cannot use the key file: {_one_line(exc)}") from exc
        return str(self._credentials.token)

    def token(self) -> str:
        # `valid` is False a few minutes before the expiry (google-auth's refresh threshold).
        if self._credentials is not None and self._credentials.valid:
            return str(self._credentials.token)
        return self._refresh()

    def fresh(self) -> str:
        return self._refresh()

    def forget(self) -> None:
        if self._credentials is not None:
            self._credentials.token = None

    def expires_in(self) -> int | None:
        if self._credentials is None:
            return None
        expiry = self._credentials.expiry  # google-auth credentials: None until the first refresh
        if expiry is None:
            return None
        from datetime import UTC, datetime

        # google-auth's expiry is a naive UTC time.
        return int((expiry - datetime.now(UTC).replace(tzinfo=None)).total_seconds())


def token_source(oauth2: OAuth2Settings | None, command: str | None, timeout: float) -> TokenSource | None:
    """The token source the settings ask for, or None for a password login."""
    if command is not None:
        return CommandTokens(command, timeout)
    if oauth2 is None:
        return None
    if oauth2.provider == "microsoft":
        return MicrosoftTokens(oauth2, timeout)
    return GoogleTokens(oauth2, timeout)


def token_words(source: TokenSource) -> str:
    """What check-connection says about the token it got."""
    left = source.expires_in()
    valid = f", valid for {max(left, 0) // 60} more minute(s)" if left is not None else ""
    return f"got an access token from {source.name}{valid}"


def xoauth2_response(user: str, token: str) -> str:
    """The client's XOAUTH2 message (before base64), as Google and Microsoft document it."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def oauthbearer_response(user: str, token: str) -> str:
    """RFC 7628 OAUTHBEARER initial client response (before base64)."""
    return f"n,a={user},\x01auth=Bearer {token}\x01\x01"


def decode_challenge(challenge: bytes) -> str:
    """The server's error challenge after a refused token (JSON in XOAUTH2/OAUTHBEARER), as one line."""
    text = challenge.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = json.loads(base64.b64decode(text, validate=True))
        except ValueError:
            return _one_line(text)
    if isinstance(data, dict):
        return ", ".join(f"{k}={v}" for k, v in data.items())
    return _one_line(text)
