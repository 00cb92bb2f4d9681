"""The recipient's own handling of an incoming invoice (received → checked → attested | disputed),
kept apart from the issuer's status on ``invoices``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_receipts",
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("vembetalar migrates forward only; restore a backup to go back")
