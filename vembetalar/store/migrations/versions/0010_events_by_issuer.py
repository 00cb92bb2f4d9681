"""An index for the invoice run's question: one issuer's events of one month. Without it every
run reads the whole table, whose history grows by years; with it, only the month.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 19:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_billable_events_issuer_day", "billable_events", ["issuer", "occurred_on"])


def downgrade() -> None:
    op.drop_index("ix_billable_events_issuer_day", table_name="billable_events")
