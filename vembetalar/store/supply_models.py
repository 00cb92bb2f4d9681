"""The supply tables: the drug catalogue, municipal drug stocks with their assortment, lots, the
movement ledger, dose-dispensed patients and shortage notices.

The ledger (``supply_ledger``) is append-only like billable events: the migration installs
triggers that refuse UPDATE and DELETE, so a balance is always the sum of what happened and a
mistake is put right by a new, audited correction entry. Stock items, lots and notices are
configuration or facts about products and may change.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vembetalar.store.models import Base, utcnow


class SupplyProduct(Base):
    """One pack in the catalogue, keyed by its varunummer (what pharmacies and shortage notices use)."""

    __tablename__ = "supply_products"
    varunummer: Mapped[str] = mapped_column(String(6), primary_key=True)
    npl_pack_id: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    substance: Mapped[str] = mapped_column(String(120))
    atc: Mapped[str] = mapped_column(String(7), index=True)
    strength: Mapped[str] = mapped_column(String(60))
    form: Mapped[str] = mapped_column(String(60))
    pack_size: Mapped[int] = mapped_column(Integer)
    price_sek: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    ddd_per_pack: Mapped[Decimal | None] = mapped_column(Numeric(12, 4), default=None)
    narcotic_class: Mapped[str | None] = mapped_column(String(4), default=None)
    substitution_group: Mapped[str | None] = mapped_column(String(40), default=None)
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SupplyStock(Base):
    """A municipal drug stock (kommunalt läkemedelsförråd) or a residential stock (boendeförråd).
    ``operator`` and ``payer`` are configuration: the seed does not say, so they start as "okänt"."""

    __tablename__ = "supply_stocks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(4), index=True)  # SCB code
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # kommunalt | boende
    site: Mapped[str] = mapped_column(String(200))
    operator: Mapped[str] = mapped_column(String(200))
    payer: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)


class SupplyStockItem(Base):
    """A product a stock carries, with its min/max levels in units. Its row is also the lock that
    serialises withdrawals of the product from the stock (SELECT … FOR UPDATE)."""

    __tablename__ = "supply_stock_items"
    stock_id: Mapped[str] = mapped_column(ForeignKey("supply_stocks.id"), primary_key=True)
    varunummer: Mapped[str] = mapped_column(ForeignKey("supply_products.varunummer"), primary_key=True)
    assortment: Mapped[str | None] = mapped_column(String(20), default=None)  # akut | palliativ | None
    min_units: Mapped[int] = mapped_column(Integer, default=0)
    max_units: Mapped[int] = mapped_column(Integer, default=0)


class SupplyLot(Base):
    """A batch of one product in one stock, with its expiry date."""

    __tablename__ = "supply_lots"
    id: Mapped[int] = mapped_column(primary_key=True)
    stock_id: Mapped[str] = mapped_column(ForeignKey("supply_stocks.id"))
    varunummer: Mapped[str] = mapped_column(ForeignKey("supply_products.varunummer"))
    lot_number: Mapped[str] = mapped_column(String(40))
    expiry: Mapped[dt.date] = mapped_column(Date)
    __table_args__ = (
        UniqueConstraint("stock_id", "varunummer", "lot_number", name="uq_supply_lots_lot"),
        Index("ix_supply_lots_item", "stock_id", "varunummer"),
    )


class SupplyLedgerEntry(Base):
    """One movement of units in or out of a lot: receipt (+), withdrawal (−), discard (−), count
    (the difference a narcotics count found) or correction (the opposite of an earlier entry).
    Never edited or deleted."""

    __tablename__ = "supply_ledger"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    on_date: Mapped[dt.date] = mapped_column(Date)
    stock_id: Mapped[str] = mapped_column(ForeignKey("supply_stocks.id"))
    varunummer: Mapped[str] = mapped_column(ForeignKey("supply_products.varunummer"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("supply_lots.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[int] = mapped_column(Integer)  # signed units
    patient_pseudonym: Mapped[str | None] = mapped_column(String(64), default=None)
    reason_code: Mapped[str | None] = mapped_column(String(30), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    counted: Mapped[int | None] = mapped_column(Integer, default=None)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("supply_ledger.id"), default=None)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    username: Mapped[str] = mapped_column(String(80))
    __table_args__ = (
        Index("ix_supply_ledger_item", "stock_id", "varunummer"),
        UniqueConstraint("corrects_id", name="uq_supply_ledger_corrects"),
    )


class SupplyDosePatient(Base):
    """A dose-dispensed patient (by pseudonym) on a product, in a municipality."""

    __tablename__ = "supply_dose_patients"
    patient_pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(4), primary_key=True)
    varunummer: Mapped[str] = mapped_column(String(6), primary_key=True, index=True)


class SupplyShortage(Base):
    """A shortage notice (restanmälan) for a product: from when, expected to when, the advice."""

    __tablename__ = "supply_shortages"
    id: Mapped[int] = mapped_column(primary_key=True)
    varunummer: Mapped[str] = mapped_column(ForeignKey("supply_products.varunummer"), index=True)
    from_date: Mapped[dt.date] = mapped_column(Date)
    expected_to: Mapped[dt.date | None] = mapped_column(Date, default=None)
    advice: Mapped[str] = mapped_column(Text, default="")
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("varunummer", "from_date", name="uq_supply_shortages_notice"),)
