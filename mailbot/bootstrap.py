"""The one place where adapters are chosen from the config and wired together."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.engine import SchemaOutOfDate, check_schema, make_engine, make_sessionmaker, upgrade
from mailbot.adapters.database.lock import PollerLock
from mailbot.adapters.database.store import SessionCursorStore, Store, raw_storage_info
from mailbot.adapters.rawstore import RawDirectory
from mailbot.adapters.templates import Renderer
from mailbot.config import Config, ConfigError
from mailbot.domain import lifecycle
from mailbot.domain.checks import CHECKS, Check
from mailbot.domain.model import CaseStatus
from mailbot.service.accounts import Accounts
from mailbot.service.commands import DeliverIfFree
from mailbot.service.desk import Desk
from mailbot.service.handlers import Deps, bound
from mailbot.service.intake import Intake
from mailbot.service.login_throttle import LoginThrottle
from mailbot.service.messagebus import MessageBus
from mailbot.service.outage_alerts import OutageAlerts, Told
from mailbot.service.ports import Delivery, MailSource, Wakeup
from mailbot.service.web_sessions import WebSessions

if TYPE_CHECKING:
    from mailbot.adapters.imap import ImapSettings
    from mailbot.adapters.smtp import SmtpSettings

__all__ = [
    "App",
    "SchemaOutOfDate",
    "build_app",
    "check_templates",
    "imap_settings",
    "make_delivery",
    "make_source",
    "make_wakeup",
    "raw_storage",
    "smtp_settings",
    "upgrade_database",
    "utc_now",
]

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    renderer: Renderer
    clock: Callable[[], datetime]
    # The checks every decision runs (the intake's, the desk's, a replay's): given here, once.
    checks: Sequence[Check] = CHECKS
    _intake: Intake | None = None
    _desk: Desk | None = None
    _bus: MessageBus | None = None
    _wakeup: Wakeup | None = None

    @property
    def bus(self) -> MessageBus:
        """Every use case as a command: ``app.bus.handle(Accept(case_no, by="山田"))``.

        The handlers get this app's sessions, renderer, policy, branch
        directory, clock, checks and settings here, once; the intake and the
        desk are built when a handler first needs them.
        """
        if self._bus is None:
            config = self.config
            deps = Deps(
                sessions=self.sessions,
                renderer=self.renderer,
                clock=self.clock,
                policy=config.policy,
                directory=config.branches,
                checks=self.checks,
                after=config.after,
                retention=config.retention,
                unis_columns=config.unis_columns,
                open_returns_days=config.summary.list_open_returns_days,
                poll_seconds=config.schedule.poll_seconds,
                make_intake=lambda: self.intake,
                make_desk=lambda: self.desk,
                poller_lock=self.poller_lock,
                wakeup=self.wakeup,
            )
            self._bus = MessageBus(bound(deps))
        return self._bus

    @property
    def desk(self) -> Desk:
        """The desk's actions over this app's adapters: what the desk's handlers call (entry points use the bus)."""
        if self._desk is None:
            self._desk = Desk(
                sessions=self.sessions,
                renderer=self.renderer,
                directory=self.config.branches,
                policy=self.config.policy,
                clock=self.clock,
                intake=self.intake,
                checks=self.checks,
                base_url=self.config.web.base_url,
                after=self.config.after,
            )
        return self._desk

    @property
    def accounts(self) -> Accounts:
        """The web workbench's accounts."""
        return Accounts(self.sessions, self.clock)

    @property
    def web_sessions(self) -> WebSessions:
        """The workbench's sessions, held in the database (logout ends every copy of the cookie)."""
        return WebSessions(self.sessions, self.clock)

    @property
    def login_throttle(self) -> LoginThrottle:
        """The workbench's failed-login counters; a locked account is reported to ops."""
        return LoginThrottle(self.sessions, self.clock, renderer=self.renderer, policy=self.config.policy)

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
                checks=self.checks,
                base_url=self.config.web.base_url,
            )
        return self._intake

    def outage_alerts(self, notify: Callable[[Told], None]) -> OutageAlerts:
        """The outage alerts of this app's intake, told to ``notify`` (the scheduler's alert command)."""
        return OutageAlerts(
            self.intake.outages,
            after=timedelta(minutes=self.config.alerts.after_minutes),
            renderer=self.renderer,
            policy=self.config.policy,
            delivery=lambda: self.intake.delivery,
            notify=notify,
            clock=self.clock,
        )

    @property
    def wakeup(self) -> Wakeup:
        """How the desk's commands wake the running bot, for this database (built once)."""
        if self._wakeup is None:
            self._wakeup = make_wakeup(self.engine)
        return self._wakeup

    def poller_lock(self) -> PollerLock:
        """The lock that keeps a second poller off this mailbox and database."""
        return PollerLock(self.config.database_url, self.intake.source.name)

    def deliver_if_free(self, recheck: bool = False) -> str:
        """Re-check waiting cases and deliver the outbox, if no poller is running (:class:`DeliverIfFree`).

        A running `mailbot run` is woken to send at once (and re-checks on its next poll).
        """
        result: str = self.bus.handle(DeliverIfFree(recheck=recheck))
        return result

    def close(self) -> None:
        if self._wakeup is not None:
            self._wakeup.close()
        if self._intake is not None:
            self._intake.parse_ahead.close()
            self._intake.source.close()
            self._intake.delivery.close()
        self.engine.dispose()


def check_templates(config: Config) -> Renderer:
    """Every mail kind's template: UTF-8, parses, renders a sample mail (TemplateProblem if not)."""
    from mailbot.adapters.templates import MAIL_KINDS
    from mailbot.service.mail_samples import sample_context

    # MAIL_KINDS holds every kind, the summaries' and the alerts' too (kinds_made_by derives those from it).
    renderer = Renderer(config.templates_path)
    renderer.check(tuple(MAIL_KINDS), sample=sample_context)
    return renderer


def build_app(config: Config, *, clock: Callable[[], datetime] = utc_now, check: bool = True) -> App:
    # The lifecycle tables and the templates must agree before anything runs:
    # an unknown state or a missing template fails here, never in a poll.
    try:
        lifecycle.validate()
    except lifecycle.LifecycleError as exc:
        raise ConfigError(f"lifecycle: {exc}") from None
    renderer = check_templates(config)
    engine = make_engine(config.database_url)
    sessions = make_sessionmaker(engine, raw_storage(config))
    if check:
        check_schema(engine)
        _check_states(sessions)
    app = App(config, engine, sessions, renderer, clock)
    _freeze_start_up()
    return app


_frozen = False


def _freeze_start_up() -> None:
    """Put what start-up built out of the cyclic collector's sight, once a process.

    The modules, SQLAlchemy's mappings and the compiled templates live as long
    as the process; frozen, they are not scanned again by every full
    collection a poll sets off (a tenth of a poll of 200 mails before). Once:
    a process that builds many apps (the tests) would keep the cycles of the
    discarded ones for ever.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def raw_storage(config: Config) -> dict[str, Any]:
    """Where the app's sessions put and find raw mail (``[storage]``)."""
    path = config.storage.path
    return raw_storage_info(config.storage.raw, RawDirectory(path) if path is not None else None)


def _check_states(sessions: sessionmaker[Session]) -> None:
    """A case in a stage or verdict this version does not know is refused before any poll."""
    with sessions() as session:
        stages, verdicts = Store(session).states_in_use()
    unknown = sorted(stages - {s.value for s in lifecycle.Stage}) + sorted(
        verdicts - {v.value for v in CaseStatus} - {"new"}
    )
    if unknown:
        raise SchemaOutOfDate(
            f"the database holds cases in state(s) {', '.join(unknown)} that this version of mailbot does not know;"
            " run the mailbot version that wrote them, or `mailbot db upgrade` with a newer one"
        )


def upgrade_database(config: Config) -> tuple[str | None, str | None, str]:
    """Create or upgrade the schema; returns (revision before, revision after, where, password hidden)."""
    engine = make_engine(config.database_url)
    try:
        before, after = upgrade(engine)
        return before, after, engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()


def _settings(config: Config, table: str, build: Callable[[], T]) -> T:
    """Adapter settings from a config table; their own checks become config errors."""
    try:
        return build()
    except ValueError as exc:
        raise ConfigError(f"{config.path}: [{table}] {exc}") from None


def imap_settings(config: Config) -> ImapSettings:
    from mailbot.adapters.imap import ImapSettings

    return _settings(config, "mailbox", lambda: ImapSettings.from_config(config.mailbox))


def smtp_settings(config: Config) -> SmtpSettings:
    from mailbot.adapters.smtp import SmtpSettings

    return _settings(config, "delivery", lambda: SmtpSettings.from_config(config.delivery))


def make_source(config: Config, sessions: sessionmaker[Session]) -> MailSource:
    if config.mailbox_kind == "maildir":
        from mailbot.adapters.maildir import MaildirSource

        return MaildirSource(Path(config.mailbox["path"]))
    from mailbot.adapters.imap import ImapSource

    return ImapSource(imap_settings(config), SessionCursorStore(sessions))


def make_wakeup(engine: Engine) -> Wakeup:
    """LISTEN/NOTIFY on PostgreSQL, a datagram socket beside a SQLite file, nothing for a database in memory."""
    from mailbot.adapters.wakeup import NoWakeup, PostgresWakeup, SocketWakeup, socket_path

    url = engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresWakeup(engine)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return SocketWakeup(socket_path(Path(str(url.database))))
    return NoWakeup()


def make_delivery(config: Config) -> Delivery:
    if config.delivery_kind == "directory":
        from mailbot.adapters.directory import DirectoryDelivery

        return DirectoryDelivery(Path(config.delivery["path"]))
    from mailbot.adapters.smtp import SmtpDelivery

    sent_folder = None
    folder = config.delivery.get("save_sent_to")
    if folder:
        if config.mailbox_kind != "imap":
            raise ConfigError(f'{config.path}: [delivery] save_sent_to needs [mailbox] kind = "imap"')
        from mailbot.adapters.imap import ImapSentFolder

        sent_folder = ImapSentFolder(imap_settings(config), folder)
    return SmtpDelivery(smtp_settings(config), sent_folder=sent_folder)
