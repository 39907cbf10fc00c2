"""The one config module: reads the TOML file and says exactly what is wrong with it.

Path: ``--config``, else ``$MAILBOT_CONFIG``, else ``./config.toml``. Secrets
come from environment variables named in the file (``password_env``,
``client_secret_env``) or from commands (``password_command``,
``oauth2_token_command``, which must exist and be executable), never from the
file itself.

Relative paths are relative to the config file, except those of the state mailbot
writes or watches (the SQLite database, a Maildir, the outbox directory, the
raw-mail directory, the watch directories) when ``$MAILBOT_STATE_DIR`` is set: then
they are relative to it. The container image sets it to ``/var/lib/mailbot`` so
that a read-only ``/config`` mount holds only the configuration.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from mailbot.config_after import AfterConfig, read_after_acceptance
from mailbot.config_alerts import AlertsConfig, read_alerts
from mailbot.config_mailbox import check_imap, check_smtp
from mailbot.domain.addresses import ADDRESS_EXAMPLE, is_domain_name, parse_address
from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.clock import DEFAULT_TIMEZONE, JST, zone
from mailbot.domain.policy import DEFAULT_CODE_LABELS, DEFAULT_DOCUMENTS, DocumentRule, Limits, Policy
from mailbot.domain.unis import COLUMN_HEADERS

__all__ = [
    "Config",
    "ConfigError",
    "RetentionConfig",
    "StorageConfig",
    "SummaryConfig",
    "load_config",
    "resolve_config_path",
    "state_dir",
]

T = TypeVar("T")


class ConfigError(Exception):
    """The config file is missing, unreadable, or has a wrong or missing key."""


@dataclass(frozen=True)
class ScheduleConfig:
    poll_seconds: int = 60
    weekly_summary: str = "mon 08:30"
    timezone: str = DEFAULT_TIMEZONE
    outbox_retry_seconds: int = 300
    recheck_minutes: int = 30


@dataclass(frozen=True)
class WebConfig:
    """``[web]``: the clerks' workbench. The session secret is never in the file."""

    host: str = "127.0.0.1"
    port: int = 8025
    # Where the workbench is reached; notices to ops link to its case pages.
    base_url: str = ""
    secret_env: str | None = None
    secret_command: str | None = None
    # "password" (local accounts) or "header" (a reverse proxy names the user).
    auth: str = "password"
    user_header: str = "X-Remote-User"
    trusted_proxies: tuple[str, ...] = ()
    page_size: int = 50


@dataclass(frozen=True)
class StorageConfig:
    """``[storage]``: where raw mail goes. ``path`` is also read when raw = "database" (files written before)."""

    raw: str = "database"
    path: Path | None = None


@dataclass(frozen=True)
class RetentionConfig:
    """``[retention]``: days the raw mail and its attachments are kept (None: for ever).

    Decisions, cases, events and the ledger's text are always kept.
    """

    raw_days: int | None = None
    attachments_days: int | None = None

    @property
    def active(self) -> bool:
        return self.raw_days is not None or self.attachments_days is not None


@dataclass(frozen=True)
class SummaryConfig:
    """``[summary]``: the weekly summaries.

    A branch's summary lists its open returns of the last ``list_open_returns_days``
    days one by one; older ones are one line with their count (a year of abandoned
    returns made a mail of thousands of lines).
    """

    list_open_returns_days: int = 90


@dataclass(frozen=True)
class Config:
    path: Path
    policy: Policy
    branches: BranchDirectory
    database_url: str
    mailbox_kind: str
    mailbox: Mapping[str, Any]
    delivery_kind: str
    delivery: Mapping[str, Any]
    templates_path: Path | None = None
    unis_watch_dir: Path | None = None
    # [unis.columns]: field -> the export's header text, where it differs from COLUMN_HEADERS.
    unis_columns: Mapping[str, str] = field(default_factory=dict)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    log_format: str = "text"
    log_level: str = "INFO"
    web: WebConfig = field(default_factory=lambda: WebConfig())
    after: AfterConfig = field(default_factory=AfterConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def _unis_columns(table: Any) -> Mapping[str, str]:
    """[unis.columns]: which header holds each field of the UNIS export (defaults: COLUMN_HEADERS)."""
    given: dict[str, str] = {}
    for key, value in table.data.items():
        if key not in COLUMN_HEADERS:
            raise table.fail(key, f"unknown column; expected one of {', '.join(COLUMN_HEADERS)}")
        if not isinstance(value, str) or not value.strip():
            raise table.fail(key, f"expected the column's header text, got {value!r}")
        given[key] = value.strip()
    return MappingProxyType(given)


def resolve_config_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("MAILBOT_CONFIG")
    return Path(env) if env else Path("config.toml")


def state_dir(config_dir: Path) -> Path:
    """Where relative state paths point: ``$MAILBOT_STATE_DIR`` when set, else the config file's directory."""
    env = os.environ.get("MAILBOT_STATE_DIR", "").strip()
    return Path(env).expanduser().resolve() if env else config_dir


class _Table:
    """A TOML table that remembers where it is, to name keys in errors."""

    def __init__(self, file: Path, where: str, data: Mapping[str, Any]) -> None:
        self.file, self.where, self.data = file, where, data
        self.used: set[str] = set()

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.where} {key}: {message}")

    def get(self, key: str, kind: type[T], default: T | None = None, *, required: bool = False, what: str = "") -> T:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise self.fail(key, f"missing; expected {what or _kind_name(kind)}{self._typo_hint(key)}")
            return default  # type: ignore[return-value]
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, f"expected {what or _kind_name(kind)}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(key, f"expected a finite number, got {value!r}")
        return value

    def number(self, key: str, kind: type[T], default: T, low: float, high: float, unit: str = "") -> T:
        """A whole or decimal number between ``low`` and ``high``, both included."""
        value = self.get(key, kind, default)
        if not low <= value <= high:  # type: ignore[operator]
            unit = f" {unit}" if unit else ""
            raise self.fail(key, f"must be from {low:g} to {high:g}{unit}, got {value!r}")
        return value

    def _typo_hint(self, key: str) -> str:
        close = difflib.get_close_matches(key, [k for k in self.data if k not in self.used], n=1)
        return f" (is {close[0]!r} a typo for it?)" if close else ""

    def strings(self, key: str, *, required: bool = False, what: str = "a list of strings") -> tuple[str, ...]:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise self.fail(key, f"missing; expected {what}{self._typo_hint(key)}")
            return ()
        value = self.data[key]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected {what}, got {value!r}")
        return tuple(v.strip() for v in value if v.strip())

    def table(self, key: str) -> _Table:
        self.used.add(key)
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {value!r}")
        return _Table(self.file, f"[{key}]" if self.where == "" else f"{self.where[:-1]}.{key}]", value)

    def check_unknown(self, allowed: set[str] | None = None) -> None:
        known = allowed if allowed is not None else self.used
        for key in self.data:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                if self.where == "":
                    raise ConfigError(f"{self.file}: unknown table [{key}]{hint}")
                raise self.fail(key, f"unknown key{hint}")


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}.get(kind, kind.__name__)


def _address(table: _Table, key: str, value: str) -> str:
    """One address, as the email package reads it: "x@y", "<x@y>" or "名前 <x@y>" (:mod:`mailbot.domain.addresses`)."""
    addr = parse_address(value)
    if addr is None:
        raise table.fail(key, f"expected {ADDRESS_EXAMPLE}, got {value!r}")
    return addr


def _domain(table: _Table, key: str, value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    if "@" in domain or "*" in domain or not is_domain_name(domain):
        hint = ""
        if "@" in domain:
            hint = f' (write the domain alone: "{domain.rpartition("@")[2]}")'
        elif "*" in domain:
            hint = f' (no wildcards: "{domain.lstrip("*.")}" already covers its subdomains)'
        raise table.fail(key, f'expected a domain name such as "usen.co.jp", got {value!r}{hint}')
    return domain


def load_config(path: Path) -> Config:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (give --config FILE or set MAILBOT_CONFIG)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(text.decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    root = _Table(path, "", data)
    base = path.resolve().parent
    state = state_dir(base)

    desk = root.table("desk")
    address = _address(desk, "address", desk.get("address", str, required=True, what="the desk's e-mail address"))
    domains = desk.strings("internal_domains", required=True, what='a list of domains such as ["usen.co.jp"]')
    if not domains:
        raise desk.fail("internal_domains", "must name at least one domain")
    domains = tuple(_domain(desk, "internal_domains", d) for d in domains)
    ops = tuple(_address(desk, "ops_recipients", a) for a in desk.strings("ops_recipients"))
    authserv = desk.get("trusted_authserv_id", str)
    cap = desk.number("max_replies_per_sender_per_hour", int, 10, 1, 10_000)
    msgid_domain = desk.get("message_id_domain", str) or "mailbot." + address.rpartition("@")[2]
    staff = tuple(_address(desk, "staff", a) for a in desk.strings("staff"))
    staff_domains = tuple(d.lower().lstrip("@") for d in desk.strings("staff_domains"))
    contact = desk.get("contact", str, "")
    near_miss = desk.get("near_miss", str, "return")
    if near_miss not in ("return", "hold"):
        raise desk.fail("near_miss", f'expected "return" or "hold", got {near_miss!r}')
    desk.check_unknown()

    database = root.table("database")
    url = database.get("url", str)
    url_env = database.get("url_env", str)
    if url_env:
        url = os.environ.get(url_env) or url
        if not url:
            raise database.fail("url_env", f"environment variable {url_env} is not set")
    url = _absolute_sqlite(url or "sqlite:///mailbot.sqlite3", state)
    backend = url.split(":", 1)[0].split("+", 1)[0]
    if backend not in ("sqlite", "postgresql"):
        raise database.fail("url", f"expected a sqlite:/// or postgresql+psycopg:// URL, got one for {backend!r}")
    _check_database_url(database, url)
    database.check_unknown()

    mailbox = root.table("mailbox")
    mailbox_kind = mailbox.get("kind", str, "maildir")
    if mailbox_kind not in ("maildir", "imap"):
        raise mailbox.fail("kind", f'expected "maildir" or "imap", got {mailbox_kind!r}')
    mailbox_data = dict(mailbox.data)
    if mailbox_kind == "maildir":
        mailbox_data["path"] = str(_path(mailbox, "path", state, required=True))
        mailbox.check_unknown({"kind", "path", "max_message_bytes"})
    else:
        check_imap(mailbox, base, mailbox_data)

    delivery = root.table("delivery")
    delivery_kind = delivery.get("kind", str, "directory")
    if delivery_kind not in ("directory", "smtp"):
        raise delivery.fail("kind", f'expected "directory" or "smtp", got {delivery_kind!r}')
    delivery_data = dict(delivery.data)
    if delivery_kind == "directory":
        delivery_data["path"] = str(_path(delivery, "path", state, required=True))
        delivery.check_unknown({"kind", "path"})
    else:
        check_smtp(delivery, base, delivery_data)

    templates = root.table("templates")
    templates_path = _path(templates, "path", base)
    templates.check_unknown()

    unis = root.table("unis")
    max_wait = unis.get("max_wait_hours", float, 36.0)
    if max_wait <= 0:
        raise unis.fail("max_wait_hours", f"must be more than 0, got {max_wait}")
    unis.number("max_wait_hours", float, 36.0, 0, 24 * 366, "hours")
    watch_dir = _path(unis, "watch_dir", state)
    unis_columns = _unis_columns(unis.table("columns"))
    unis.check_unknown()

    code = root.table("customer_code")
    digits = code.number("digits", int, 9, 1, 30)
    labels = code.strings("labels") or DEFAULT_CODE_LABELS
    code.check_unknown()

    limits_table = root.table("limits")
    limits = Limits(
        max_message_bytes=mailbox.get("max_message_bytes", int, Limits.max_message_bytes),
        max_attachments=limits_table.get("max_attachments", int, Limits.max_attachments),
        max_total_attachment_bytes=limits_table.get(
            "max_total_attachment_bytes", int, Limits.max_total_attachment_bytes
        ),
        max_zip_uncompressed_bytes=limits_table.get(
            "max_zip_uncompressed_bytes", int, Limits.max_zip_uncompressed_bytes
        ),
        max_zip_ratio=limits_table.get("max_zip_ratio", int, Limits.max_zip_ratio),
        max_reply_recipients=limits_table.get("max_reply_recipients", int, Limits.max_reply_recipients),
    )
    limits_table.check_unknown()
    for item in fields(limits):
        value = getattr(limits, item.name)
        if isinstance(value, int) and not 1 <= value <= _MAX_LIMIT:
            table = mailbox if item.name == "max_message_bytes" else limits_table
            raise table.fail(item.name, f"must be from 1 to {_MAX_LIMIT}, got {value!r}")

    documents = _documents(root, path) or DEFAULT_DOCUMENTS
    branches = _branches(root, path)

    schedule_table = root.table("schedule")
    schedule = ScheduleConfig(
        poll_seconds=schedule_table.get("poll_seconds", int, 60),
        weekly_summary=schedule_table.get("weekly_summary", str, "mon 08:30"),
        timezone=schedule_table.get("timezone", str, DEFAULT_TIMEZONE),
        outbox_retry_seconds=schedule_table.get("outbox_retry_seconds", int, 300),
        recheck_minutes=schedule_table.get("recheck_minutes", int, 30),
    )
    if schedule.poll_seconds < 5:
        raise schedule_table.fail("poll_seconds", f"must be at least 5, got {schedule.poll_seconds}")
    schedule_table.number("poll_seconds", int, 60, 5, 86_400, "seconds")
    schedule_table.number("outbox_retry_seconds", int, 300, 1, 7 * 86_400, "seconds")
    schedule_table.number("recheck_minutes", int, 30, 1, 7 * 1440, "minutes")
    schedule_table.check_unknown()

    log_table = root.table("log")
    log_format = log_table.get("format", str, "text")
    if log_format not in ("text", "json"):
        raise log_table.fail("format", f'expected "text" or "json", got {log_format!r}')
    log_level = log_table.get("level", str, "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise log_table.fail("level", f"expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}")
    log_table.check_unknown()

    after = read_after_acceptance(root, state)
    root.used.update({"documents", "branches"})
    web = _web(root)
    storage = _storage(root, state)
    retention = _retention(root)
    summary = _summary(root)
    alerts = read_alerts(root)
    root.check_unknown()

    policy = Policy(
        desk_address=address,
        internal_domains=tuple(d.lower().lstrip("@") for d in domains),
        ops_recipients=ops,
        documents=documents,
        customer_code_digits=digits,
        customer_code_labels=labels,
        unis_max_wait_hours=max_wait,
        trusted_authserv_id=authserv,
        max_replies_per_sender_per_hour=cap,
        limits=limits,
        message_id_domain=msgid_domain,
        staff=staff,
        staff_domains=staff_domains,
        contact=contact,
        near_miss=near_miss,
        jimu_recipients=after.jimu_recipients,
        flows=after.flows,
        ubd_senders=after.ubd_senders,
        ubd_domains=after.ubd_domains,
        # An unknown zone is reported by the scheduler, naming [schedule] timezone, when it starts.
        tz=zone(schedule.timezone) or JST,
    )
    return Config(
        web=web,
        path=path,
        policy=policy,
        branches=branches,
        database_url=url,
        mailbox_kind=mailbox_kind,
        mailbox=mailbox_data,
        delivery_kind=delivery_kind,
        delivery=delivery_data,
        templates_path=templates_path,
        unis_watch_dir=watch_dir,
        unis_columns=unis_columns,
        schedule=schedule,
        log_format=log_format,
        log_level=log_level,
        after=after,
        storage=storage,
        retention=retention,
        summary=summary,
        alerts=alerts,
    )


def _storage(root: _Table, base: Path) -> StorageConfig:
    table = root.table("storage")
    raw = table.get("raw", str, "database")
    if raw not in ("database", "directory"):
        raise table.fail("raw", f'expected "database" or "directory", got {raw!r}')
    path = _path(table, "path", base)
    if raw == "directory" and path is None:
        raise table.fail("path", 'missing; raw = "directory" needs the directory that holds the raw mail')
    table.check_unknown()
    return StorageConfig(raw=raw, path=path)


_MAX_DAYS = 36_500  # a hundred years; more is a typo, and "absent" already means for ever


def _retention(root: _Table) -> RetentionConfig:
    table = root.table("retention")
    days: dict[str, int | None] = {}
    for key in ("raw_days", "attachments_days"):
        value = table.get(key, int)
        if value is not None and not 1 <= value <= _MAX_DAYS:
            raise table.fail(key, f"must be from 1 to {_MAX_DAYS} days, got {value!r} (leave it out to keep for ever)")
        days[key] = value
    raw_days, attachments_days = days["raw_days"], days["attachments_days"]
    if raw_days is not None and attachments_days is not None and attachments_days > raw_days:
        raise table.fail(
            "attachments_days",
            f"must not be more than raw_days ({raw_days}): the attachments are inside the raw mail, "
            f"removed with it after {raw_days} days, got {attachments_days}",
        )
    table.check_unknown()
    return RetentionConfig(raw_days=raw_days, attachments_days=attachments_days)


def _summary(root: _Table) -> SummaryConfig:
    table = root.table("summary")
    days = table.number("list_open_returns_days", int, SummaryConfig.list_open_returns_days, 1, _MAX_DAYS, "days")
    table.check_unknown()
    return SummaryConfig(list_open_returns_days=days)


def _check_database_url(table: _Table, url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, ValueError) as exc:
        raise table.fail("url", f"not a database URL: {exc}") from None
    except (NoSuchModuleError, ImportError):
        driver = url.split(":", 1)[0]
        hint = "use sqlite:/// or postgresql+psycopg://"
        raise table.fail("url", f"the driver {driver!r} is not installed; {hint}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        problem = _not_a_file_place(Path(parsed.database))
        if problem:
            raise table.fail("url", f"cannot hold the SQLite database {parsed.database}: {problem}")


def _not_a_file_place(path: Path) -> str | None:
    """Why ``path`` cannot be a file mailbot creates, or None: an existing directory, or a file on the way."""
    if path.is_dir():
        return f"{path} is a directory"
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is a file, not a directory"
    return None


def _not_a_directory_place(path: Path) -> str | None:
    if path.exists():
        return None if path.is_dir() else f"{path} is a file, not a directory"
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is a file, not a directory"
    return None


def _absolute_sqlite(url: str, base: Path) -> str:
    # A relative SQLite path is relative to the config file, not to wherever cron started us.
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite://":
        rest = url[len(prefix) :]
        if rest and not rest.startswith(":memory:"):
            return prefix + str((base / rest).resolve())
    return url


def _path(table: _Table, key: str, base: Path, *, required: bool = False) -> Path | None:
    """A directory path, relative to the config file; a file where a directory belongs is refused."""
    value = table.get(key, str, required=required, what="a path")
    if value is None:
        return None
    path = (base / Path(value).expanduser()).resolve()
    problem = _not_a_directory_place(path)
    if problem:
        raise table.fail(key, f"expected a directory: {problem}")
    return path


def _array_of_tables(root: _Table, key: str) -> list[_Table]:
    value = root.data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise root.fail(key, f"expected [[{key}]] tables")
    return [_Table(root.file, f"[[{key}]] #{i + 1}", v) for i, v in enumerate(value)]


def _documents(root: _Table, path: Path) -> tuple[DocumentRule, ...]:
    rules = []
    for table in _array_of_tables(root, "documents"):
        name = table.get("name", str, required=True, what="the document's name")
        keywords = table.strings("keywords") or (name,)
        required = table.get("required", bool, True)
        table.check_unknown()
        rules.append(DocumentRule(name, keywords, required))
    return tuple(rules)


# Limits are counts and byte sizes; anything above 2**53 is a typo, not a limit.
_MAX_LIMIT = 2**53

_REGIONS = ("首都圏", "大阪", "その他")


def _branches(root: _Table, path: Path) -> BranchDirectory:
    branches = []
    for table in _array_of_tables(root, "branches"):
        name = table.get("name", str, required=True, what='the branch name, e.g. "渋谷支店"').strip()
        if not name:
            raise table.fail("name", 'must not be empty; expected the branch name, e.g. "渋谷支店"')
        region = table.get("region", str, "その他")
        if region not in _REGIONS:
            raise table.fail("region", f"expected one of {', '.join(_REGIONS)}, got {region!r}")
        managers = tuple(_address(table, "managers", a) for a in table.strings("managers"))
        if not managers:
            raise table.fail("managers", f"{name} needs at least one manager (the address that must be in Cc)")
        summary = tuple(_address(table, "summary_recipients", a) for a in table.strings("summary_recipients"))
        aliases = table.strings("aliases")
        table.check_unknown()
        branches.append(Branch(name, aliases, region, managers, summary))
    try:
        return BranchDirectory(branches)
    except ValueError as exc:
        raise ConfigError(f"{path}: [[branches]]: {exc}") from None


def _web(root: _Table) -> WebConfig:
    table = root.table("web")
    auth = table.get("auth", str, "password")
    if auth not in ("password", "header"):
        raise table.fail("auth", f'expected "password" or "header", got {auth!r}')
    port = table.get("port", int, 8025)
    if not 0 < port < 65536:
        raise table.fail("port", f"expected a port from 1 to 65535, got {port}")
    page_size = table.get("page_size", int, 50)
    if not 1 <= page_size <= 500:
        raise table.fail("page_size", f"expected 1 to 500, got {page_size}")
    base_url = table.get("base_url", str, "").rstrip("/")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise table.fail("base_url", f"expected an http:// or https:// address, got {base_url!r}")
    proxies = table.strings("trusted_proxies")
    if auth == "header" and not proxies:
        raise table.fail("trusted_proxies", 'auth = "header" needs the proxy addresses whose header is believed')
    config = WebConfig(
        # The container image sets MAILBOT_WEB_HOST=0.0.0.0: reachable from outside it unless the file says otherwise.
        host=table.get("host", str, os.environ.get("MAILBOT_WEB_HOST", "").strip() or "127.0.0.1"),
        port=port,
        base_url=base_url,
        secret_env=table.get("secret_env", str),
        secret_command=table.get("secret_command", str),
        auth=auth,
        user_header=table.get("user_header", str, "X-Remote-User"),
        trusted_proxies=proxies,
        page_size=page_size,
    )
    table.check_unknown()
    return config
