"""The UNIS order line is the unit: the export's full columns, each case bound to its line.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 17:00:00

``unis_rows`` gains the manual's §5 fields (all nullable: an export without a
column leaves it NULL, and ``unis_snapshots.columns`` says which columns the
export had, so a check can tell "not set" from "not exported"). A case
records the line it is bound to (契約No/明細No) and the checks that could not
run on it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TEXT_COLUMNS = (
    "customer_process",
    "customer_contract_kind",
    "product_class",
    "payment_method",
    "billing_period",
    "line_process",
    "line_contract_kind",
    "start_month",
    "staff",
    "running",
    "serial_no",
    "cancel_reason",
    "remark",
)
_DATE_COLUMNS = ("order_date", "confirm_date", "cancel_date")


def upgrade() -> None:
    for name in _TEXT_COLUMNS:
        op.add_column("unis_rows", sa.Column(name, sa.Text(), nullable=True))
    for name in _DATE_COLUMNS:
        op.add_column("unis_rows", sa.Column(name, sa.Date(), nullable=True))
    op.add_column("unis_snapshots", sa.Column("columns", sa.Text(), nullable=True))
    op.add_column("cases", sa.Column("contract_no", sa.Text(), nullable=True))
    op.add_column("cases", sa.Column("line_no", sa.Text(), nullable=True))
    op.add_column("cases", sa.Column("unchecked", sa.JSON(), nullable=True))


def downgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    cases = {c["name"] for c in inspector.get_columns("cases")}
    for name in ("unchecked", "line_no", "contract_no"):
        if name in cases:
            op.drop_column("cases", name)
    if any(c["name"] == "columns" for c in inspector.get_columns("unis_snapshots")):
        op.drop_column("unis_snapshots", "columns")
    rows = {c["name"] for c in inspector.get_columns("unis_rows")}
    for name in (*_DATE_COLUMNS, *_TEXT_COLUMNS):
        if name in rows:
            op.drop_column("unis_rows", name)
