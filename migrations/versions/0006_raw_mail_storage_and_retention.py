"""Raw mail in the database or a directory, and what the retention policy removed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:00:00

A message kept in the directory store, or removed under ``[retention]``, has
empty ``data`` (still NOT NULL: changing that would rebuild the table on
SQLite, which the ``inbound`` rows pointing to it forbid). Existing rows are
zlib in the database, which the reader tells apart from zstd by the frame's
magic.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE, never batch mode: a batch rebuild drops the table, which
    # SQLite refuses while inbound rows point to it (foreign_keys is on).
    op.add_column(
        "raw_messages", sa.Column("location", sa.String(length=20), server_default="database", nullable=False)
    )
    op.add_column("raw_messages", sa.Column("attachments_removed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("raw_messages", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # The code before 0006 would read a file or a removed mail as an empty row, and a
    # mail without its attachments as complete: refuse rather than mislead it.
    bind = op.get_bind()
    without = bind.scalar(
        sa.text(
            "SELECT count(*) FROM raw_messages WHERE location <> 'database' "
            "OR removed_at IS NOT NULL OR attachments_removed_at IS NOT NULL"
        )
    )
    if without:
        raise RuntimeError(
            f"{without} raw messages are in the directory store or thinned by retention; cannot downgrade below 0006"
        )
    # The code before 0006 reads zlib only: zstd rows are written again as zlib.
    import zlib

    import zstandard

    table = sa.table("raw_messages", sa.column("id", sa.Integer()), sa.column("data", sa.LargeBinary()))
    ids = [r[0] for r in bind.execute(sa.select(table.c.id))]
    for raw_id in ids:
        data = bind.scalar(sa.select(table.c.data).where(table.c.id == raw_id))
        if data is not None and bytes(data[:4]) == b"\x28\xb5\x2f\xfd":
            raw = zstandard.ZstdDecompressor().decompress(bytes(data))
            bind.execute(sa.update(table).where(table.c.id == raw_id).values(data=zlib.compress(raw, 6)))
    # ALTER TABLE DROP COLUMN (SQLite 3.35 and later), for the reason given in upgrade().
    op.drop_column("raw_messages", "removed_at")
    op.drop_column("raw_messages", "attachments_removed_at")
    op.drop_column("raw_messages", "location")
