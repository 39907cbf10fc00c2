"""The one place where adapters are chosen from the config and wired together."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.engine import check_schema, make_engine, make_sessionmaker
from mailbot.adapters.database.lock import PollerLock
from mailbot.adapters.database.store import SessionCursorStore
from mailbot.adapters.templates import Renderer
from mailbot.config import Config, ConfigError
from mailbot.service.intake import Intake
from mailbot.service.ports import Delivery, MailSource

__all__ = ["App", "build_app", "make_delivery", "make_source", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    renderer: Renderer
    clock: Callable[[], datetime]
    _intake: Intake | None = None

    @property
    def intake(self) -> Intake:
        if self._intake is None:
            self._intake = Intake(
                sessions=self.sessions,
                source=make_source(self.config, self.sessions),
                delivery=make_delivery(self.config),
                renderer=self.renderer,
                directory=self.config.branches,
                policy=self.config.policy,
                clock=self.clock,
            )
        return self._intake

    def poller_lock(self) -> PollerLock:
        """The lock that keeps a second poller off this mailbox and database."""
        return PollerLock(self.config.database_url, self.intake.source.name)

    def close(self) -> None:
        if self._intake is not None:
            self._intake.source.close()
            self._intake.delivery.close()
        self.engine.dispose()


def build_app(config: Config, *, clock: Callable[[], datetime] = utc_now, check: bool = True) -> App:
    engine = make_engine(config.database_url)
    if check:
        check_schema(engine)
    renderer = Renderer(config.templates_path)
    renderer.check()
    return App(config, engine, make_sessionmaker(engine), renderer, clock)


def _secret(options: dict[str, Any] | Any, where: str) -> str | None:
    env = options.get("password_env")
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{where} password_env: environment variable {env} is not set")
        return value
    return None


def make_source(config: Config, sessions: sessionmaker[Session]) -> MailSource:
    options = config.mailbox
    if config.mailbox_kind == "maildir":
        from mailbot.adapters.maildir import MaildirSource

        return MaildirSource(Path(options["path"]))
    from mailbot.adapters.imap import ImapSettings, ImapSource

    settings = ImapSettings(
        host=options["host"],
        port=int(options.get("port", 993 if options.get("tls", "ssl") == "ssl" else 143)),
        tls=options.get("tls", "ssl"),
        username=options["username"],
        password=_secret(options, "[mailbox]"),
        password_command=options.get("password_command"),
        oauth2_token_command=options.get("oauth2_token_command"),
        folder=options.get("folder", "INBOX"),
        timeout_seconds=float(options.get("timeout_seconds", 30.0)),
        max_message_bytes=config.policy.limits.max_message_bytes,
        folders=dict(options.get("folders", {})),
        idle=bool(options.get("idle", False)),
    )
    return ImapSource(settings, SessionCursorStore(sessions))


def make_delivery(config: Config) -> Delivery:
    options = config.delivery
    if config.delivery_kind == "directory":
        from mailbot.adapters.directory import DirectoryDelivery

        return DirectoryDelivery(Path(options["path"]))
    from mailbot.adapters.smtp import SmtpDelivery, SmtpSettings

    settings = SmtpSettings(
        host=options["host"],
        port=int(options.get("port", 587)),
        tls=options.get("tls", "starttls"),
        username=options.get("username"),
        password=_secret(options, "[delivery]"),
        timeout_seconds=float(options.get("timeout_seconds", 30.0)),
    )
    sent_folder = None
    if options.get("save_sent_to"):
        if config.mailbox_kind != "imap":
            raise ConfigError(f'{config.path}: [delivery] save_sent_to needs [mailbox] kind = "imap"')
        from mailbot.adapters.imap import SentFolder

        sent_folder = SentFolder(_imap_settings(config), options["save_sent_to"])
    return SmtpDelivery(settings, sent_folder=sent_folder)


def _imap_settings(config: Config) -> Any:
    source = make_source(config, None)  # type: ignore[arg-type]
    return source.settings  # type: ignore[attr-defined]


def run_command(command: str) -> str:
    """Output of a configured secret command (no shell), stripped."""
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise ConfigError(f"command {command!r} failed with exit code {result.returncode}")
    return result.stdout.strip()
