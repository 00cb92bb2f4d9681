"""First expiry, first out: which lots a withdrawal takes its units from.

A nurse asks for units of a product; the stock gives them from the lot that expires first, then
the next, so that nothing expires on the shelf while newer packs are used. Expired lots are never
given out (they are for discarding). Ties on expiry go to the older lot (lower id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from vembetalar.supply.errors import MovementRefused


@dataclass(frozen=True)
class LotBalance:
    lot_id: int
    lot_number: str
    expiry: dt.date
    balance: int

    def usable_on(self, day: dt.date) -> bool:
        """A lot may be used through its expiry date."""
        return self.balance > 0 and self.expiry >= day


def usable(lots: list[LotBalance], today: dt.date) -> int:
    return sum(lot.balance for lot in lots if lot.usable_on(today))


def allocate(lots: list[LotBalance], quantity: int, today: dt.date) -> list[tuple[LotBalance, int]]:
    """The (lot, units) a withdrawal of ``quantity`` takes, first expiry first; MovementRefused
    when the usable lots together hold fewer units."""
    if quantity <= 0:
        raise MovementRefused("antalet ska vara minst 1")
    available = usable(lots, today)
    if quantity > available:
        raise MovementRefused(f"bara {available} st går att ta ut (ej utgångna) men {quantity} st begärdes")
    taken: list[tuple[LotBalance, int]] = []
    left = quantity
    for lot in sorted(
        (lot for lot in lots if lot.usable_on(today)), key=lambda lot: (lot.expiry, lot.lot_id)
    ):
        take = min(left, lot.balance)
        taken.append((lot, take))
        left -= take
        if left == 0:
            break
    return taken
