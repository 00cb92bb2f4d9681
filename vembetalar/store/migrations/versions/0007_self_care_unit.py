"""The unit that decided self-care, and its organisation: under self-care the cost is that unit's
(seed 004), so the case names it before anything is billed.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-27 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("payer_unit_organisation", sa.String(40), nullable=True))
        batch.add_column(sa.Column("payer_unit_name", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("payer_unit_name")
        batch.drop_column("payer_unit_organisation")
