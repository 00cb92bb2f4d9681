"""What a stock holds now: per product its lots and usable balance, average use, days of cover,
alerts and reorder proposal — computed from the ledger in a few queries for any number of stocks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vembetalar.store.supply_models import SupplyLedgerEntry, SupplyStock, SupplyStockItem
from vembetalar.supply import reorder
from vembetalar.supply.alerts import EXPIRY_HORIZON_DAYS, Alert, item_alerts
from vembetalar.supply.catalogue import Product, load_products
from vembetalar.supply.fefo import LotBalance, usable
from vembetalar.supply.ledger import lot_balances, withdrawn_since


@dataclass
class ItemState:
    product: Product
    assortment: str | None
    min_units: int
    max_units: int
    lots: list[LotBalance]
    balance: int
    daily_use: Decimal
    alerts: list[Alert] = field(default_factory=list)
    proposal: reorder.Proposal | None = None
    #: The day of the latest narcotics count (inventering) of the product in the stock, if any.
    last_count: dt.date | None = None

    @property
    def days_of_cover(self) -> Decimal | None:
        """Usable units ÷ average daily use, one decimal; None when nothing has been used."""
        if self.daily_use <= 0:
            return None
        return (Decimal(self.balance) / self.daily_use).quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def held(self) -> int:
        """Every unit on the shelf, expired ones included (those still to be discarded)."""
        return sum(lot.balance for lot in self.lots)


def states(
    db: Session,
    stocks: Iterable[SupplyStock],
    today: dt.date,
    horizon_days: int = EXPIRY_HORIZON_DAYS,
    lead_days: int = reorder.LEAD_DAYS,
    products: dict[str, Product] | None = None,
) -> dict[str, list[ItemState]]:
    """Every stock's items, by stock id, ordered by list and product name."""
    ids = [s.id for s in stocks]
    if not ids:
        return {}
    products = products if products is not None else load_products(db)
    lots = lot_balances(db, ids)
    window = reorder.CONSUMPTION_WINDOW_DAYS
    used = withdrawn_since(db, today - dt.timedelta(days=window - 1))
    counted = dict(
        ((stock_id, vnr), day)
        for stock_id, vnr, day in db.execute(
            select(
                SupplyLedgerEntry.stock_id, SupplyLedgerEntry.varunummer, func.max(SupplyLedgerEntry.on_date)
            )
            .where(SupplyLedgerEntry.kind == "count", SupplyLedgerEntry.stock_id.in_(ids))
            .group_by(SupplyLedgerEntry.stock_id, SupplyLedgerEntry.varunummer)
        )
    )
    items = db.scalars(select(SupplyStockItem).where(SupplyStockItem.stock_id.in_(ids)))
    result: dict[str, list[ItemState]] = {stock_id: [] for stock_id in ids}
    for item in items:
        product = products.get(item.varunummer)
        if product is None:
            continue
        item_lots = lots.get((item.stock_id, item.varunummer), [])
        balance = usable(item_lots, today)
        per_day = reorder.daily_use(used.get((item.stock_id, item.varunummer), 0), window)
        state = ItemState(
            product, item.assortment, item.min_units, item.max_units, item_lots, balance, per_day
        )
        state.last_count = counted.get((item.stock_id, item.varunummer))
        state.alerts = item_alerts(
            item.stock_id,
            item.varunummer,
            product.name,
            item_lots,
            item.min_units,
            item.assortment is not None,
            today,
            horizon_days,
        )
        if item.assortment is not None:
            state.proposal = reorder.propose(
                item.varunummer,
                balance,
                item.min_units,
                item.max_units,
                product.pack_size,
                per_day,
                lead_days,
            )
        if item.assortment is not None or state.held:
            result[item.stock_id].append(state)
    for stock_items in result.values():
        stock_items.sort(key=lambda s: (s.assortment or "~", s.product.name))
    return result
