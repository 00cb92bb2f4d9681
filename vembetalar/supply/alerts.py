"""Alerts a stock raises: out of stock, below minimum, lots expiring within a horizon and lots
already expired (to be discarded). Pure: the caller hands over balances and lots."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from vembetalar.supply.fefo import LotBalance, usable

AlertKind = Literal["out_of_stock", "below_min", "expiring", "expired"]
ALERT_NAMES: dict[str, str] = {
    "out_of_stock": "Slut",
    "below_min": "Under miniminivå",
    "expiring": "Går snart ut",
    "expired": "Utgånget – kassera",
}
#: Days ahead an expiry is warned of, unless asked otherwise.
EXPIRY_HORIZON_DAYS = 60


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    stock_id: str
    varunummer: str
    message: str
    lot_number: str | None = None


def item_alerts(
    stock_id: str,
    varunummer: str,
    name: str,
    lots: list[LotBalance],
    min_units: int,
    in_assortment: bool,
    today: dt.date,
    horizon_days: int = EXPIRY_HORIZON_DAYS,
) -> list[Alert]:
    """The alerts of one product in one stock. Out of stock and below minimum concern only the
    assortment (a product the stock does not keep is not missing); expiry concerns every lot
    that still holds units."""
    alerts: list[Alert] = []
    balance = usable(lots, today)
    if in_assortment and balance == 0:
        alerts.append(Alert("out_of_stock", stock_id, varunummer, f"{name}: slut i förrådet"))
    elif in_assortment and balance < min_units:
        alerts.append(
            Alert(
                "below_min", stock_id, varunummer, f"{name}: {balance} st, under miniminivån {min_units} st"
            )
        )
    horizon = today + dt.timedelta(days=horizon_days)
    for lot in sorted(lots, key=lambda lot: lot.expiry):
        if lot.balance <= 0:
            continue
        if lot.expiry < today:
            alerts.append(
                Alert(
                    "expired",
                    stock_id,
                    varunummer,
                    f"{name}: batch {lot.lot_number} gick ut {lot.expiry.isoformat()} ({lot.balance} st)",
                    lot.lot_number,
                )
            )
        elif lot.expiry <= horizon:
            alerts.append(
                Alert(
                    "expiring",
                    stock_id,
                    varunummer,
                    f"{name}: batch {lot.lot_number} går ut {lot.expiry.isoformat()} ({lot.balance} st)",
                    lot.lot_number,
                )
            )
    return alerts
