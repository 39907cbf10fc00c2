"""The desk in the loop: case stages, who did what, staff actions on quarantined mail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.String(length=30), nullable=False, server_default="received"))
        batch_op.add_column(sa.Column("sender", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("customer_key", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("decided_by", sa.String(length=120), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_stage"), ["stage"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_sender"), ["sender"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_customer_code"), ["customer_code"], unique=False)
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event", sa.String(length=30), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("stage", sa.String(length=30), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("actor", sa.String(length=120), nullable=False, server_default="mailbot"))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_text", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("content_sha", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("resolution", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolution_note", sa.Text(), nullable=True))
        batch_op.create_index("ix_inbound_disposition", ["disposition"], unique=False)

    # Existing cases: an accepted verdict is the accepted stage, anything else is still under review.
    op.execute("UPDATE cases SET stage = 'accepted' WHERE status = 'accepted'")
    op.execute(
        "UPDATE cases SET sender = (SELECT i.sender FROM inbound i WHERE i.case_id = cases.id ORDER BY i.id LIMIT 1)"
    )
    op.execute(
        "UPDATE case_events SET event = CASE status WHEN 'accepted' THEN 'accept' WHEN 'returned' THEN 'return'"
        " ELSE 'wait' END, stage = CASE status WHEN 'accepted' THEN 'accepted' ELSE 'received' END"
    )

    # The server defaults were only for the rows already there; the models set the values.
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("stage", server_default=None)
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.alter_column("event", server_default=None)
        batch_op.alter_column("stage", server_default=None)
        batch_op.alter_column("actor", server_default=None)
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.alter_column("body_text", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_disposition")
        for column in ("resolution_note", "resolved_at", "resolved_by", "resolution", "content_sha", "body_text"):
            batch_op.drop_column(column)
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        for column in ("note", "actor", "stage", "event"):
            batch_op.drop_column(column)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_customer_code"))
        batch_op.drop_index(batch_op.f("ix_cases_sender"))
        batch_op.drop_index(batch_op.f("ix_cases_stage"))
        for column in ("decided_by", "customer_key", "sender", "stage"):
            batch_op.drop_column(column)
