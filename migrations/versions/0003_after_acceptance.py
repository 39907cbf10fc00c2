"""After acceptance: the NTT order number, the request's flow, the progress list's dates.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("p_number", sa.String(length=14), nullable=True))
        batch_op.add_column(sa.Column("flow", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("construction_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("completed_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("cancelled_date", sa.Date(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_cases_p_number"), ["p_number"])


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_cases_p_number"), type_="unique")
        batch_op.drop_column("cancelled_date")
        batch_op.drop_column("completed_date")
        batch_op.drop_column("construction_date")
        batch_op.drop_column("flow")
        batch_op.drop_column("p_number")
