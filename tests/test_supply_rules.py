"""The pure supply rules on hand-made data: first-expiry-first-out, reorder maths, alerts and the
ranking of substitutes for a product in shortage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from vembetalar.supply.alerts import item_alerts
from vembetalar.supply.catalogue import Product
from vembetalar.supply.errors import MovementRefused
from vembetalar.supply.fefo import LotBalance, allocate
from vembetalar.supply.reorder import daily_use, propose
from vembetalar.supply.substitutes import rank

TODAY = dt.date(2025, 3, 10)


def lot(lot_id: int, expiry: str, balance: int) -> LotBalance:
    return LotBalance(lot_id, f"L{lot_id}", dt.date.fromisoformat(expiry), balance)


# ---------------------------------------------------------------- FEFO
def test_fefo_takes_the_first_expiring_lot_first_and_spills_into_the_next() -> None:
    lots = [lot(1, "2025-12-01", 5), lot(2, "2025-04-01", 3), lot(3, "2025-06-01", 10)]
    taken = [(t.lot_id, n) for t, n in allocate(lots, 6, TODAY)]
    assert taken == [(2, 3), (3, 3)]


def test_fefo_never_gives_out_an_expired_lot_but_uses_one_on_its_last_day() -> None:
    lots = [lot(1, "2025-03-09", 50), lot(2, "2025-03-10", 2), lot(3, "2026-01-01", 1)]
    assert [(t.lot_id, n) for t, n in allocate(lots, 3, TODAY)] == [(2, 2), (3, 1)]
    with pytest.raises(MovementRefused, match="bara 3 st"):
        allocate(lots, 4, TODAY)


def test_fefo_ties_on_expiry_go_to_the_older_lot() -> None:
    lots = [lot(7, "2025-05-01", 4), lot(3, "2025-05-01", 4)]
    assert [(t.lot_id, n) for t, n in allocate(lots, 5, TODAY)] == [(3, 4), (7, 1)]


def test_fefo_refuses_zero() -> None:
    with pytest.raises(MovementRefused):
        allocate([lot(1, "2026-01-01", 4)], 0, TODAY)


# ---------------------------------------------------------------- reorder
def test_reorder_is_due_when_the_balance_at_delivery_falls_below_min() -> None:
    per_day = daily_use(90, 90)  # one unit a day
    assert per_day == Decimal(1)
    # 27 now, 7 days' use before delivery → 20 expected: not below min 20 → nothing
    assert propose("990101", 27, 20, 60, 20, per_day, lead_days=7) is None
    # 26 now → 19 expected: order up to max (60 − 26 = 34 units) in whole packs of 20, rounded down → 1
    proposal = propose("990101", 26, 20, 60, 20, per_day, lead_days=7)
    assert proposal is not None
    assert (proposal.packs, proposal.units, proposal.expected_at_delivery) == (1, 20, Decimal(19))


def test_reorder_fills_an_empty_stock_to_max_in_whole_packs() -> None:
    proposal = propose("990201", 0, 20, 60, 10, Decimal(0))
    assert proposal is not None and (proposal.packs, proposal.units) == (6, 60)


def test_reorder_orders_at_least_one_pack_even_when_a_pack_exceeds_the_room() -> None:
    proposal = propose("990151", 37, 50, 100, 100, Decimal(0))
    assert proposal is not None and (proposal.packs, proposal.units) == (1, 100)


def test_reorder_not_for_products_without_levels() -> None:
    assert propose("990101", 0, 0, 0, 20, Decimal(5)) is None


# ---------------------------------------------------------------- alerts
def test_alerts_out_of_stock_below_min_expiring_and_expired() -> None:
    def kinds(lots: list[LotBalance], minimum: int = 10, in_assortment: bool = True) -> list[str]:
        return [a.kind for a in item_alerts("s", "990101", "X", lots, minimum, in_assortment, TODAY, 30)]

    assert kinds([]) == ["out_of_stock"]
    assert kinds([lot(1, "2025-03-01", 40)]) == ["out_of_stock", "expired"]  # only expired units left
    assert kinds([lot(1, "2026-01-01", 9)]) == ["below_min"]
    assert kinds([lot(1, "2026-01-01", 10)]) == []
    assert kinds([lot(1, "2025-04-09", 10)]) == ["expiring"]  # exactly 30 days ahead
    assert kinds([lot(1, "2025-04-10", 10)]) == []  # 31 days ahead
    assert kinds([lot(1, "2025-04-01", 0), lot(2, "2026-01-01", 12)]) == []  # an empty lot is no alert
    assert kinds([], in_assortment=False) == []  # not kept, so not missing


# ---------------------------------------------------------------- substitutes
def product(vnr: str, substance: str, atc: str, strength: str, form: str, pack: int, price: str,
            ddd: str | None = None, narcotic: str | None = None) -> Product:  # fmt: skip
    return Product(vnr, f"1999{vnr:0>10}", f"{substance} {strength} {form} {pack}", substance, atc, strength,
                   form, pack, Decimal(price), Decimal(ddd) if ddd else None, narcotic)  # fmt: skip


SHORT = product("100001", "morfin", "N02AA01", "10 mg/ml", "injektionsvätska", 10, "100", "4", "II")
CATALOGUE = [
    SHORT,
    product("100002", "morfin", "N02AA01", "10 mg/ml", "injektionsvätska", 5, "60", "2", "II"),  # 30/DDD
    product("100003", "Morfin", "N02AA01", "10 MG/ML", "injektionsvätska", 20, "100", "8", "II"),  # 12.50/DDD
    product("100004", "morfin", "N02AA01", "20 mg/ml", "injektionsvätska", 10, "150", "8", "II"),  # 18.75
    product("100005", "morfin", "N02AA01", "10 mg", "tablett", 100, "80", "10", "II"),  # 8/DDD
    product("100006", "oxikodon", "N02AA05", "10 mg/ml", "injektionsvätska", 5, "90", None, "II"),
    product("100007", "hydromorfon", "N02AA03", "2 mg/ml", "injektionsvätska", 10, "300", "10", "II"),
    product("100008", "ketobemidon", "N02AB01", "5 mg/ml", "injektionsvätska", 10, "50", "10", "II"),
    product("100009", "paracetamol", "N02BE01", "10 mg/ml", "infusionsvätska", 10, "20", "5"),
    # in shortage itself:
    product("100010", "morfin", "N02AA01", "10 mg/ml", "injektionsvätska", 50, "400", "20", "II"),
]


def test_substitutes_ranked_by_kind_then_cost_and_shortage_products_left_out() -> None:
    ranked = rank(SHORT, CATALOGUE, in_shortage={"100001", "100010"})
    assert [(s.rank, s.product.varunummer, s.kind) for s in ranked] == [
        (1, "100003", "same_product_other_pack"),  # 12.50 per DDD (case and spacing do not matter)
        (2, "100002", "same_product_other_pack"),  # 30.00 per DDD
        (3, "100005", "other_strength_or_form"),  # 8.00
        (4, "100004", "other_strength_or_form"),  # 18.75
        (5, "100007", "same_atc"),  # 30.00 per DDD
        (6, "100006", "same_atc"),  # DDD unknown: after those with a known DDD
    ]
    # N02AB (another level-4 group) and N02BE are not proposed; 100010 is in shortage itself.


def test_extra_cost_per_ddd_against_the_product_in_shortage_and_null_when_unknown() -> None:
    by_vnr = {s.product.varunummer: s for s in rank(SHORT, CATALOGUE, set())}
    assert by_vnr["100003"].extra_cost_per_ddd_sek == Decimal("-12.50")  # 12.50 − 25.00
    assert by_vnr["100007"].extra_cost_per_ddd_sek == Decimal("5.00")
    assert by_vnr["100006"].extra_cost_per_ddd_sek is None
    assert by_vnr["100006"].as_json()["extra_cost_per_ddd_sek"] is None


def test_without_ddd_the_cheapest_per_unit_comes_first() -> None:
    short = product("200001", "adrenalin", "C01CA24", "1 mg/ml", "injektionsvätska", 10, "300")
    others = [
        product("200002", "adrenalin", "C01CA24", "1 mg/ml", "injektionsvätska", 5, "200"),  # 40/unit
        product("200003", "adrenalin", "C01CA24", "1 mg/ml", "injektionsvätska", 10, "350"),  # 35/unit
    ]
    assert [s.product.varunummer for s in rank(short, [short, *others], set())] == ["200003", "200002"]


def test_narcotics_are_proposed_with_a_note_and_other_forms_are_flagged() -> None:
    by_vnr = {s.product.varunummer: s for s in rank(SHORT, CATALOGUE, set())}
    assert all("narkotika" in s.note.lower() for s in by_vnr.values())
    assert "Ny förskrivning krävs" in by_vnr["100005"].note and "feldosering" in by_vnr["100005"].note
    assert "Ny förskrivning" not in by_vnr["100002"].note
    plain = product("300001", "paracetamol", "N02BE01", "500 mg", "tablett", 20, "20", "6.6667")
    alt = product("300002", "paracetamol", "N02BE01", "500 mg", "tablett", 100, "60", "33.3333")
    assert "narkotika" not in rank(plain, [alt], set())[0].note.lower()
