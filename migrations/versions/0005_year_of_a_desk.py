"""A year of a busy desk stays fast: trigram indexes for the board's searches (PostgreSQL).

The board's free text (``ILIKE '%…%'`` on the subject and body of every
ledger row) and its customer and sender searches (``LIKE '%…%'``) cannot use
a B-tree: at 250,000 ledger rows each such search read the whole table. A
pg_trgm GIN index answers them from the trigrams of the pattern. They are
made only on PostgreSQL and only where the pg_trgm extension can be had (it
is trusted since PostgreSQL 13: a database owner may create it); without it
the same queries still work, by scanning, as on SQLite. They are not in the
models (``schema.SEARCH_INDEXES`` names them for the models==migrations test).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# (index name, table, column): mirrored by mailbot.adapters.database.schema.SEARCH_INDEXES.
TRIGRAM_INDEXES = (
    ("ix_inbound_subject_trgm", "inbound", "subject"),
    ("ix_inbound_body_text_trgm", "inbound", "body_text"),
    ("ix_cases_customer_key_trgm", "cases", "customer_key"),
    ("ix_cases_customer_code_trgm", "cases", "customer_code"),
    ("ix_cases_sender_trgm", "cases", "sender"),
)


def _has_trigrams(bind: sa.engine.Connection) -> bool:
    """Create pg_trgm if it is available and we may; say whether it is there."""
    available = bind.scalar(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"))
    if available:
        # A savepoint: refused (no privilege) must not abort the rest of the migration.
        savepoint = bind.begin_nested()
        try:
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except sa.exc.DBAPIError:
            savepoint.rollback()
        else:
            savepoint.commit()
    return bool(bind.scalar(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _has_trigrams(bind):
        return
    for name, table, column in TRIGRAM_INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The extension stays: other databases' objects or a person may use it.
    for name, _, _ in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
