"""A scratch PostgreSQL database for a bench, made beside the one in ``MAILBOT_BENCH_PG``.

Default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``. A bench makes
its database with ``create_scratch`` (a leftover of a crashed run under the
same name is dropped first) and drops it with ``drop_scratch``; when the
server cannot be reached the bench says so in one line and skips that part.
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

ADMIN_URL = os.environ.get("MAILBOT_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _admin(*statements: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        admin.dispose()


def create_scratch(name: str, label: str) -> str | None:
    """A new, empty database ``name``: its URL; or None, after printing ``<label>: skipped (why)``."""
    try:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    except SQLAlchemyError as exc:
        print(f"{label}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0]})")
        return None
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_scratch(name: str) -> None:
    """Drop the database ``name``, closing what is still connected to it."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
