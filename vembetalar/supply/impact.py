"""A shortage notice's impact, in one run: which stocks hold the product and for how many days at
current use, how many dose-dispensed patients are on it, the ranked substitutes and what to do.

The output is the contract of ``vembetalar supply shortage NOTICE.json --format json``
(docs/supply.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vembetalar.model import codes
from vembetalar.store.supply_models import SupplyDosePatient, SupplyStock
from vembetalar.supply.catalogue import Product, load_products
from vembetalar.supply.errors import BadSupplyInput
from vembetalar.supply.imports import Notice, stored_notices
from vembetalar.supply.state import ItemState, states
from vembetalar.supply.substitutes import Substitute, rank

#: Stocks with less cover than this are named in the actions.
SHORT_COVER_DAYS = 14


@dataclass
class AffectedStock:
    stock: SupplyStock
    item: ItemState

    def as_json(self) -> dict[str, Any]:
        cover = self.item.days_of_cover
        return {
            "stock_id": self.stock.id,
            "municipality": self.stock.municipality,
            "balance": self.item.balance,
            "days_of_cover": float(cover) if cover is not None else None,
        }


@dataclass
class Impact:
    notice: Notice
    product: Product
    affected: list[AffectedStock]
    dose_patients: int
    dose_by_municipality: dict[str, int]
    substitutes: list[Substitute]
    actions: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "product": self.product.as_json(),
            "affected_stocks": [a.as_json() for a in self.affected],
            "dose_patients": self.dose_patients,
            "substitutes": [s.as_json() for s in self.substitutes],
            "actions": self.actions,
        }


def _cover_key(a: AffectedStock) -> tuple[int, float, str]:
    cover = a.item.days_of_cover
    return (1, 0.0, a.stock.id) if cover is None else (0, float(cover), a.stock.id)


def _names(names: list[str], shown: int = 8) -> str:
    more = f" och {len(names) - shown} till" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _actions(
    notice: Notice, product: Product, affected: list[AffectedStock], dose: int, substitutes: list[Substitute]
) -> list[str]:
    """The steps for the pharmaceutical unit and the MAS, in the order they are usually taken."""
    until = f"till {notice.expected_to.isoformat()}" if notice.expected_to else "utan känt slutdatum"
    actions = [
        f"Restsituation för {product.name} (varunummer {product.varunummer}) "
        f"från {notice.from_date.isoformat()} {until}."
    ]
    if notice.advice:
        actions.append(f"Råd i restnoteringen: {notice.advice}")
    if affected:
        total = sum(a.item.balance for a in affected)
        actions.append(
            f"Produkten finns i {len(affected)} förråd med sammanlagt {total} st: "
            "stoppa nybeställning och fördela mellan förråden efter behov."
        )
        empty = [a.stock.name for a in affected if a.item.balance == 0]
        if empty:
            actions.append(f"Slut redan i {len(empty)} förråd: " + _names(empty) + ".")
        short = [
            f"{a.stock.name} ({str(a.item.days_of_cover).replace('.', ',')} dagar)"
            for a in affected
            if a.item.balance and a.item.days_of_cover is not None and a.item.days_of_cover < SHORT_COVER_DAYS
        ]
        if short:
            actions.append(f"Täckning under {SHORT_COVER_DAYS} dagar i: " + _names(short) + ".")
    else:
        actions.append("Inget förråd har produkten i sitt sortiment eller i lager.")
    if dose:
        actions.append(
            f"{dose} dospatienter står på produkten och saknar säkerhetslager: kontakta dosleverantören "
            "och förskrivarna om ändrad ordination i god tid före nästa dosleverans."
        )
    else:
        actions.append("Inga dospatienter i dospatientlistan står på produkten.")
    if not substitutes:
        actions.append(
            "Inget alternativ i katalogen: kontakta läkemedelsenheten "
            "(licens, extempore eller annan behandling)."
        )
        return actions
    first = substitutes[0]
    actions.append(f"Förstahandsalternativ: {first.product.name} (varunummer {first.product.varunummer}).")
    if any(s.kind != "same_product_other_pack" for s in substitutes):
        actions.append(
            "Byte till annan styrka, beredningsform eller substans kräver ny ordination: risk för "
            "feldosering – informera sjuksköterskor och patienter om det nya läkemedlet."
        )
    if any(s.product.narcotic for s in substitutes):
        actions.append(
            "Narkotikaklassade alternativ: följ reglerna för narkotikaförskrivning "
            "och för in uttag i narkotikajournalen."
        )
    return actions


def impact(
    db: Session,
    notice: Notice,
    today: Any,
    stocks: Iterable[SupplyStock] | None = None,
) -> Impact:
    """The impact of ``notice`` on ``stocks`` (every stock by default) on ``today``."""
    products = load_products(db)
    product = products.get(notice.varunummer)
    if product is None:
        raise BadSupplyInput(
            f"varunummer: {notice.varunummer} finns inte i katalogen (läs in katalogen först)"
        )
    stock_list = (
        list(stocks) if stocks is not None else list(db.scalars(select(SupplyStock).order_by(SupplyStock.id)))
    )
    by_stock = states(db, stock_list, today, products=products)
    affected: list[AffectedStock] = []
    for stock in stock_list:
        for item in by_stock.get(stock.id, []):
            if item.product.varunummer == product.varunummer:
                affected.append(AffectedStock(stock, item))
    affected.sort(key=_cover_key)
    municipalities = {s.municipality for s in stock_list} if stocks is not None else None
    query = (
        select(SupplyDosePatient.municipality, func.count(func.distinct(SupplyDosePatient.patient_pseudonym)))
        .where(SupplyDosePatient.varunummer == product.varunummer)
        .group_by(SupplyDosePatient.municipality)
    )
    by_municipality = {
        m: int(n) for m, n in db.execute(query) if municipalities is None or m in municipalities
    }
    dose_query = select(func.count(func.distinct(SupplyDosePatient.patient_pseudonym))).where(
        SupplyDosePatient.varunummer == product.varunummer
    )
    if municipalities is not None:
        dose_query = dose_query.where(SupplyDosePatient.municipality.in_(municipalities))
    dose = int(db.scalar(dose_query) or 0)
    in_shortage = {n.varunummer for n in stored_notices(db) if n.overlaps(notice)}
    substitutes = rank(product, products.values(), in_shortage)
    return Impact(
        notice,
        product,
        affected,
        dose,
        by_municipality,
        substitutes,
        _actions(notice, product, affected, dose, substitutes),
    )


def municipality_name(code: str) -> str:
    return codes.municipalities().get(code, code)
