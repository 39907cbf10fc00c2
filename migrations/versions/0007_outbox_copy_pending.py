"""Copies in the Sent folder filed after the mark, a run of mails at a time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 04:00:00

A row is marked sent right after the relay accepts it, with ``copy_pending``
set in the same UPDATE; the copies of a run of mails are then filed in one
APPEND (MULTIAPPEND where the server offers it) and the flag cleared. A crash
in between leaves the flag, and the next delivery files the missing copies.
The partial index keeps that look-up to the few flagged rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch rebuild): inbound and case rows point to outbox neighbours.
    op.add_column("outbox", sa.Column("copy_pending", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index(
        "ix_outbox_copy_pending",
        "outbox",
        ["id"],
        sqlite_where=sa.text("copy_pending"),
        postgresql_where=sa.text("copy_pending"),
    )


def downgrade() -> None:
    # Code before 0007 files each copy before the mark: a flagged row would keep no copy.
    # SQLite runs DDL outside the transaction, so a downgrade that failed further down
    # may have done this part already: look before dropping.
    inspector = sa.inspect(op.get_bind())
    if any(index["name"] == "ix_outbox_copy_pending" for index in inspector.get_indexes("outbox")):
        op.drop_index("ix_outbox_copy_pending", table_name="outbox")
    if any(column["name"] == "copy_pending" for column in inspector.get_columns("outbox")):
        op.drop_column("outbox", "copy_pending")
