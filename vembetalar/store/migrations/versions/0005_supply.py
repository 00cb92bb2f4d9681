"""Supply: the drug catalogue, municipal drug stocks and their assortment, lots, the append-only
movement ledger, dose-dispensed patients and shortage notices.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LEDGER = "supply_ledger"


def _append_only() -> None:
    """The ledger refuses UPDATE and DELETE in the database itself (0001 made the function)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {LEDGER}_append_only BEFORE UPDATE OR DELETE ON {LEDGER} "
            "FOR EACH ROW EXECUTE FUNCTION vembetalar_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {LEDGER}_no_truncate BEFORE TRUNCATE ON {LEDGER} "
            "FOR EACH STATEMENT EXECUTE FUNCTION vembetalar_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {LEDGER}_no_{verb.lower()} BEFORE {verb} ON {LEDGER} "
                f"BEGIN SELECT RAISE(ABORT, '{LEDGER} is append-only'); END"
            )


def upgrade() -> None:
    op.create_table(
        "supply_products",
        sa.Column("varunummer", sa.String(6), primary_key=True),
        sa.Column("npl_pack_id", sa.String(20), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("substance", sa.String(120), nullable=False),
        sa.Column("atc", sa.String(7), nullable=False),
        sa.Column("strength", sa.String(60), nullable=False),
        sa.Column("form", sa.String(60), nullable=False),
        sa.Column("pack_size", sa.Integer(), nullable=False),
        sa.Column("price_sek", sa.Numeric(12, 2), nullable=False),
        sa.Column("ddd_per_pack", sa.Numeric(12, 4), nullable=True),
        sa.Column("narcotic_class", sa.String(4), nullable=True),
        sa.Column("substitution_group", sa.String(40), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_supply_products_atc", "supply_products", ["atc"])
    op.create_table(
        "supply_stocks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("municipality", sa.String(4), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("payer", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
    )
    op.create_index("ix_supply_stocks_municipality", "supply_stocks", ["municipality"])
    op.create_table(
        "supply_stock_items",
        sa.Column("stock_id", sa.String(40), sa.ForeignKey("supply_stocks.id"), primary_key=True),
        sa.Column("varunummer", sa.String(6), sa.ForeignKey("supply_products.varunummer"), primary_key=True),
        sa.Column("assortment", sa.String(20), nullable=True),
        sa.Column("min_units", sa.Integer(), nullable=False),
        sa.Column("max_units", sa.Integer(), nullable=False),
    )
    op.create_table(
        "supply_lots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("stock_id", sa.String(40), sa.ForeignKey("supply_stocks.id"), nullable=False),
        sa.Column("varunummer", sa.String(6), sa.ForeignKey("supply_products.varunummer"), nullable=False),
        sa.Column("lot_number", sa.String(40), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.UniqueConstraint("stock_id", "varunummer", "lot_number", name="uq_supply_lots_lot"),
    )
    op.create_index("ix_supply_lots_item", "supply_lots", ["stock_id", "varunummer"])
    op.create_table(
        LEDGER,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("stock_id", sa.String(40), sa.ForeignKey("supply_stocks.id"), nullable=False),
        sa.Column("varunummer", sa.String(6), sa.ForeignKey("supply_products.varunummer"), nullable=False),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("supply_lots.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("patient_pseudonym", sa.String(64), nullable=True),
        sa.Column("reason_code", sa.String(30), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("counted", sa.Integer(), nullable=True),
        sa.Column("corrects_id", sa.Integer(), sa.ForeignKey(f"{LEDGER}.id"), nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("username", sa.String(80), nullable=False),
        sa.UniqueConstraint("corrects_id", name="uq_supply_ledger_corrects"),
    )
    op.create_index("ix_supply_ledger_at", LEDGER, ["at"])
    op.create_index("ix_supply_ledger_lot_id", LEDGER, ["lot_id"])
    op.create_index("ix_supply_ledger_item", LEDGER, ["stock_id", "varunummer"])
    _append_only()
    op.create_table(
        "supply_dose_patients",
        sa.Column("patient_pseudonym", sa.String(64), primary_key=True),
        sa.Column("municipality", sa.String(4), primary_key=True),
        sa.Column("varunummer", sa.String(6), primary_key=True),
    )
    op.create_index("ix_supply_dose_patients_varunummer", "supply_dose_patients", ["varunummer"])
    op.create_table(
        "supply_shortages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("varunummer", sa.String(6), sa.ForeignKey("supply_products.varunummer"), nullable=False),
        sa.Column("from_date", sa.Date(), nullable=False),
        sa.Column("expected_to", sa.Date(), nullable=True),
        sa.Column("advice", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("varunummer", "from_date", name="uq_supply_shortages_notice"),
    )
    op.create_index("ix_supply_shortages_varunummer", "supply_shortages", ["varunummer"])


def downgrade() -> None:
    raise NotImplementedError("vembetalar migrates forward only; restore a backup to go back")
