"""Ranked substitutes for a product in shortage.

Three kinds, in this order (docs/supply.md):

1. ``same_product_other_pack`` — same substance, strength and form in another pack: the safest
   switch, the same dose;
2. ``other_strength_or_form`` — same substance, another strength or form: flagged, because a new
   prescription is needed and each such switch risks a dosing error;
3. ``same_atc`` — another substance with the same ATC level-4 code (N02AA01 for N02AA05).

Within a kind the cheapest comes first: by price per DDD among the packs whose DDD is known, then
the packs without a DDD by price per unit. Products that are themselves in shortage are never
proposed. Narcotics are proposed like any other, with a note on the extra rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from vembetalar.supply.catalogue import Product

Kind = Literal["same_product_other_pack", "other_strength_or_form", "same_atc"]
KINDS: tuple[Kind, ...] = ("same_product_other_pack", "other_strength_or_form", "same_atc")
KIND_NAMES: dict[str, str] = {
    "same_product_other_pack": "Samma produkt, annan förpackning",
    "other_strength_or_form": "Annan styrka eller beredningsform",
    "same_atc": "Annan substans, samma ATC-grupp",
}
NARCOTIC_NOTE = (
    "Narkotikaklassat (förteckning {klass}): förskrivning och hantering följer de särskilda reglerna "
    "för narkotika – särskild förskrivning och uttag förs i förrådets narkotikajournal."
)


@dataclass(frozen=True)
class Substitute:
    product: Product
    rank: int
    kind: Kind
    extra_cost_per_ddd_sek: Decimal | None
    note: str

    def as_json(self) -> dict[str, object]:
        return {
            "varunummer": self.product.varunummer,
            "rank": self.rank,
            "kind": self.kind,
            "extra_cost_per_ddd_sek": (
                float(self.extra_cost_per_ddd_sek) if self.extra_cost_per_ddd_sek is not None else None
            ),
            "note": self.note,
        }


def _norm(text: str) -> str:
    return " ".join(text.lower().replace(",", ".").split())


def kind_of(short: Product, other: Product) -> Kind | None:
    """How ``other`` could stand in for ``short``, or None when it cannot."""
    if _norm(other.substance) == _norm(short.substance):
        if _norm(other.strength) == _norm(short.strength) and _norm(other.form) == _norm(short.form):
            return "same_product_other_pack"
        return "other_strength_or_form"
    if other.atc[:5] == short.atc[:5]:
        return "same_atc"
    return None


def extra_cost_per_ddd(short: Product, other: Product) -> Decimal | None:
    """What a day's treatment (one DDD) costs more (or less) with ``other``; None unless both
    DDDs are known."""
    mine, theirs = short.price_per_ddd, other.price_per_ddd
    if mine is None or theirs is None:
        return None
    return (theirs - mine).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _note(short: Product, other: Product, kind: Kind) -> str:
    if kind == "same_product_other_pack":
        text = (
            f"{other.name}: samma substans, styrka och beredningsform, förpackning om {other.pack_size} st."
        )
    elif kind == "other_strength_or_form":
        text = (
            f"{other.name}: {other.strength} {other.form} i stället för {short.strength} {short.form}. "
            "Ny förskrivning krävs; risk för feldosering – räkna om dosen och informera patient och personal."
        )
    else:
        text = (
            f"{other.name}: annan substans ({other.substance}) i samma ATC-grupp {other.atc[:5]}. "
            "Ny förskrivning krävs; dosen är inte utbytbar 1:1."
        )
    if other.ddd_per_pack is None or short.ddd_per_pack is None:
        text += " Merkostnad per DDD okänd (DDD saknas)."
    if other.narcotic_class:
        text += " " + NARCOTIC_NOTE.format(klass=other.narcotic_class)
    return text


def _cost_key(product: Product) -> tuple[int, Decimal, str]:
    per_ddd = product.price_per_ddd
    if per_ddd is not None:
        return (0, per_ddd, product.varunummer)
    return (1, product.price_per_unit, product.varunummer)


def rank(short: Product, catalogue: Iterable[Product], in_shortage: set[str]) -> list[Substitute]:
    """The substitutes for ``short``, ranked 1, 2, 3 … (kind order, then cheapest first)."""
    by_kind: dict[Kind, list[Product]] = {kind: [] for kind in KINDS}
    for other in catalogue:
        if other.varunummer == short.varunummer or other.varunummer in in_shortage:
            continue
        kind = kind_of(short, other)
        if kind is not None:
            by_kind[kind].append(other)
    ranked: list[Substitute] = []
    for kind in KINDS:
        for other in sorted(by_kind[kind], key=_cost_key):
            ranked.append(
                Substitute(
                    product=other,
                    rank=len(ranked) + 1,
                    kind=kind,
                    extra_cost_per_ddd_sek=extra_cost_per_ddd(short, other),
                    note=_note(short, other, kind),
                )
            )
    return ranked
