"""Outbox rows claimed before they are sent, with a lease.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 17:00:00

A deliverer claims the rows of a run in one UPDATE (``claimed_by`` its own
name, ``claimed_until`` the lease's end) whose WHERE says the row is pending
and nobody else holds a live claim; only the rows that UPDATE returned are
handed to the relay. So two processes never send the same row, whatever the
poller lock says. A claimer that died leaves its claim until the lease runs
out (at once when it ran on the same host and its process is gone).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch rebuild): inbound and case rows point to outbox neighbours.
    op.add_column("outbox", sa.Column("claimed_by", sa.String(200), nullable=True))
    op.add_column("outbox", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # SQLite runs DDL outside the transaction: a failed earlier downgrade may have done part of this.
    inspector = sa.inspect(op.get_bind())
    columns = {column["name"] for column in inspector.get_columns("outbox")}
    for name in ("claimed_until", "claimed_by"):
        if name in columns:
            op.drop_column("outbox", name)
