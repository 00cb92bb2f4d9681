"""Billing: the organisation registry, invoice series, invoices and which invoice billed which event.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisation_details",
        sa.Column("organisation_id", sa.String(40), sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("legal_name", sa.String(200), nullable=False),
        sa.Column("org_number", sa.String(11), nullable=True),
        sa.Column("vat_id", sa.String(14), nullable=True),
        sa.Column("f_skatt", sa.Boolean(), nullable=False),
        sa.Column("bankgiro", sa.String(20), nullable=True),
        sa.Column("plusgiro", sa.String(20), nullable=True),
        sa.Column("peppol_id", sa.String(60), nullable=True),
        sa.Column("gln", sa.String(13), nullable=True),
        sa.Column("address_lines", sa.JSON(), nullable=False),
        sa.Column("postcode", sa.String(10), nullable=True),
        sa.Column("city", sa.String(100), nullable=True),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("payment_days", sa.Integer(), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "invoice_series",
        sa.Column("issuer", sa.String(40), primary_key=True),
        sa.Column("series", sa.String(10), primary_key=True),
        sa.Column("next_number", sa.Integer(), nullable=False),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("issuer", sa.String(40), nullable=False),
        sa.Column("series", sa.String(10), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("number_text", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(40), nullable=False),
        sa.Column("route", sa.String(160), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("total_sek", sa.Numeric(14, 2), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("corrects_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=True),
        sa.Column("document_json", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.UniqueConstraint("issuer", "series", "number", name="uq_invoices_number"),
    )
    op.create_index("ix_invoices_issuer", "invoices", ["issuer"])
    op.create_index("ix_invoices_recipient", "invoices", ["recipient"])
    op.create_table(
        "billed_events",
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("billable_events.id"), primary_key=True),
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
    )
    op.create_index("ix_billed_events_invoice_id", "billed_events", ["invoice_id"])


def downgrade() -> None:
    raise NotImplementedError("vembetalar migrates forward only; restore a backup to go back")
