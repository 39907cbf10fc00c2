"""Engines, sessions and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.errors import SchemaOutOfDate, SchemaUpgradeFailed
from mailbot.resources import migrations_dir

__all__ = [
    "SchemaOutOfDate",
    "SchemaUpgradeFailed",
    "alembic_config",
    "check_schema",
    "make_engine",
    "make_sessionmaker",
    "upgrade",
]


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            # A fresh install's data directory: create it rather than fail with "unable to open".
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "do_connect")
        def _name_the_file(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            # SQLite's "unable to open database file" does not say which file.
            try:
                return dialect.loaded_dbapi.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as exc:
                raise dialect.loaded_dbapi.OperationalError(f"{exc}: {database}") from exc

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets `mailbot status` read while a poll writes.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """Sessions for ``engine``; ``info`` (e.g. ``store.raw_storage_info``) is in every session's ``info``."""
    return sessionmaker(engine, expire_on_commit=False, info=dict(info or {}))


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision``; returns the schema version before and after."""
    config = alembic_config()
    with engine.connect() as connection:
        _refuse_a_newer_schema(
            ScriptDirectory.from_config(config), MigrationContext.configure(connection).get_current_revision(), engine
        )
        connection.commit()
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a table (copy, DROP, rename), and SQLite with
            # foreign keys on refuses to drop a table that other rows point to: a
            # database holding cases could not be upgraded past 0002. Off for the
            # migrations (it cannot change inside a transaction), every reference
            # checked before the commit, on again after.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                before = MigrationContext.configure(connection).get_current_revision()
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                after = MigrationContext.configure(connection).get_current_revision()
                if sqlite:
                    dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if dangling:
                        tables = sorted({row[0] for row in dangling})
                        raise SchemaUpgradeFailed(
                            f"the upgrade to {after} left {len(dangling)} row(s) of {', '.join(tables)} "
                            "pointing to nothing: restore the copy of the database taken before the upgrade"
                        )
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
    return before, after


def _refuse_a_newer_schema(script: ScriptDirectory, current: str | None, engine: Engine) -> None:
    """A schema this mailbot has no migration for was made by a newer one: upgrading cannot help."""
    if current is None:
        return
    try:
        script.get_revision(current)
    except Exception:  # alembic's resolution errors differ between its versions
        where = engine.url.render_as_string(hide_password=True)
        raise SchemaOutOfDate(
            f"database {where} is at schema {current}, which this mailbot does not know (it runs "
            f"{script.get_current_head()}): a newer mailbot made it; run that one, not an upgrade"
        ) from None


def check_schema(engine: Engine) -> None:
    """Refuse to run against a database that `mailbot db upgrade` has not prepared."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    _refuse_a_newer_schema(script, current, engine)
    if current != head:
        where = engine.url.render_as_string(hide_password=True)
        state = f"is at schema {current}" if current else "has no mailbot schema yet"
        raise SchemaOutOfDate(f"database {where} {state} (this mailbot needs {head}): run `mailbot db upgrade`")
