"""Oversight flags published for review, and their review history (issue 9).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oversight_flags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("organisation_id", sa.String(40), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("flag_id", sa.String(32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("entity_kind", sa.String(20), nullable=False),
        sa.Column("entity_code", sa.String(80), nullable=False),
        sa.Column("indicator", sa.String(40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("peer_group", sa.String(200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("peer_n", sa.Integer(), nullable=False),
        sa.Column("peer_median", sa.Float(), nullable=True),
        sa.Column("peer_p99", sa.Float(), nullable=True),
        sa.Column("period_from", sa.String(10), nullable=False),
        sa.Column("period_to", sa.String(10), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("organisation_id", "flag_id", name="uq_oversight_flags_org_flag"),
    )
    op.create_index("ix_oversight_flags_organisation_id", "oversight_flags", ["organisation_id"])
    op.create_table(
        "oversight_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("flag_pk", sa.Integer(), sa.ForeignKey("oversight_flags.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("username", sa.String(80), nullable=False),
        sa.Column("status_from", sa.String(20), nullable=True),
        sa.Column("status_to", sa.String(20), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
    )
    op.create_index("ix_oversight_reviews_flag_pk", "oversight_reviews", ["flag_pk"])


def downgrade() -> None:
    raise NotImplementedError("vembetalar migrates forward only; restore a backup to go back")
