"""Reorder proposals from min/max levels and consumption.

A stock item is reordered when its usable balance, less what is expected to be used before a
delivery arrives (average daily use × lead time), falls below its minimum. The proposal fills it
up to the maximum, in whole packs, rounded down so the shelf never holds more than the maximum —
but never less than one pack when an order is due.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

#: Days from order to delivery assumed when a stock says nothing else.
LEAD_DAYS = 7
#: Days of withdrawals the average daily use is taken over.
CONSUMPTION_WINDOW_DAYS = 90


@dataclass(frozen=True)
class Proposal:
    varunummer: str
    balance: int
    min_units: int
    max_units: int
    daily_use: Decimal
    expected_at_delivery: Decimal
    packs: int
    units: int


def daily_use(withdrawn_units: int, window_days: int = CONSUMPTION_WINDOW_DAYS) -> Decimal:
    """Average units used a day over the window (withdrawals only; discards are not use)."""
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    return Decimal(withdrawn_units) / Decimal(window_days)


def propose(
    varunummer: str,
    balance: int,
    min_units: int,
    max_units: int,
    pack_size: int,
    use_per_day: Decimal,
    lead_days: int = LEAD_DAYS,
) -> Proposal | None:
    """The order to place for one stock item, or None when none is due."""
    expected = Decimal(balance) - use_per_day * lead_days
    if expected >= min_units or max_units <= 0:
        return None
    room = max_units - balance
    packs = max(1, math.floor(room / pack_size)) if room > 0 else 1
    return Proposal(
        varunummer=varunummer,
        balance=balance,
        min_units=min_units,
        max_units=max_units,
        daily_use=use_per_day,
        expected_at_delivery=expected,
        packs=packs,
        units=packs * pack_size,
    )
