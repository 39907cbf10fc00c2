"""Raw mail in the database or a directory, and what the retention policy removed.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 23:00:00

``data`` becomes nullable: a message kept in the directory store, or removed
under ``[retention]``, has no bytes in the row. Existing rows are zlib in the
database, which the reader still tells apart from zstd by the frame's magic.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raw_messages") as batch:
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=True)
        batch.add_column(sa.Column("location", sa.String(length=20), server_default="database", nullable=False))
        batch.add_column(sa.Column("attachments_removed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Rows without bytes (directory store, removed) cannot go back to a NOT NULL column,
    # and a zstd row would be unreadable by the older code: refuse rather than lose mail.
    without = op.get_bind().scalar(sa.text("SELECT count(*) FROM raw_messages WHERE location <> 'database' OR data IS NULL"))
    if without:
        raise RuntimeError(f"{without} raw messages are in the directory store or removed; cannot downgrade below 0006")
    with op.batch_alter_table("raw_messages") as batch:
        batch.drop_column("removed_at")
        batch.drop_column("attachments_removed_at")
        batch.drop_column("location")
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=False)
