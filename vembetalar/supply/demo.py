"""Demo supply data for ``vembetalar demo load`` and ``serve --demo``: the demo catalogue, Halland's
stocks from the seed with made-up levels and use, a made-up dose-patient list and two shortage
notices dated around the day of loading (so one is always active).

Idempotent and quick: each part is loaded only when its table has none of it; the levels are
written in bulk. The random levels come from a fixed seed, so every demo looks the same.
"""

from __future__ import annotations

import datetime as dt
import random
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from vembetalar.store.supply_models import (
    SupplyDosePatient,
    SupplyLedgerEntry,
    SupplyLot,
    SupplyProduct,
    SupplyShortage,
    SupplyStock,
    SupplyStockItem,
)
from vembetalar.supply import catalogue, imports, registry

#: Organisations and users the supply demo needs, merged into web/demo.py's lists.
ORGANISATIONS = ["kommun:1380"]
USERS = [
    ("mas.halmstad", "Hanna MAS", "mas", "kommun:1380"),
    ("lakemedel.halland", "Lars Läkemedelsenhet", "pharma_unit", "region:13"),
]
DEMO_USER = "demo"
SEED = 1380


def _data(name: str) -> str:
    return resources.files("vembetalar.supply.data").joinpath(name).read_text(encoding="utf-8")


def _catalogue(db: Session) -> int:
    have = set(db.scalars(select(SupplyProduct.varunummer)))
    missing = [p for p in catalogue.parse_catalogue(_data("demo_catalogue.csv")) if p.varunummer not in have]
    return catalogue.import_catalogue(db, missing).added if missing else 0


def _levels(db: Session, today: dt.date) -> int:
    """Lots and movements for every stock item: mostly stocked, some low, a few empty, some lots
    expiring soon or expired; withdrawals over the last 60 days give each item its use."""
    if db.scalar(select(func.count()).select_from(SupplyLedgerEntry)):
        return 0
    rng = random.Random(SEED)
    items = list(
        db.scalars(select(SupplyStockItem).order_by(SupplyStockItem.stock_id, SupplyStockItem.varunummer))
    )
    lots: list[tuple[SupplyLot, int, int]] = []  # lot, received, withdrawn
    for n, item in enumerate(items):
        roll = rng.random()
        if roll < 0.06:
            continue  # out of stock
        count = 1 if rng.random() < 0.6 else 2
        for k in range(count):
            expiry = today + dt.timedelta(days=rng.choice([-15, 25, 45, 120, 200, 300, 400, 500]))
            received = rng.randint(max(item.min_units // count, 1), max(item.max_units // count, 1))
            low = roll < 0.25
            withdrawn = rng.randint(received // 2, received - 1) if low else rng.randint(0, received // 3)
            lot = SupplyLot(
                stock_id=item.stock_id,
                varunummer=item.varunummer,
                lot_number=f"D{n:04d}{'AB'[k]}",
                expiry=expiry,
            )
            lots.append((lot, received, withdrawn))
    db.add_all(lot for lot, _, _ in lots)
    db.flush()
    entries: list[dict[str, Any]] = []
    start = today - dt.timedelta(days=75)
    for lot, received, withdrawn in lots:
        base = {
            "stock_id": lot.stock_id,
            "varunummer": lot.varunummer,
            "lot_id": lot.id,
            "username": DEMO_USER,
        }
        entries.append(
            base | {"kind": "receipt", "quantity": received, "on_date": start, "reason": "Demoinleverans"}
        )
        left = withdrawn
        while left > 0:
            take = min(left, rng.randint(1, 4))
            left -= take
            day = today - dt.timedelta(days=rng.randint(0, 59))
            entries.append(
                base
                | {
                    "kind": "withdrawal",
                    "quantity": -take,
                    "on_date": day,
                    "patient_pseudonym": f"DEMO-{rng.randint(1, 400):04d}",
                    "reason": rng.choice(
                        ["Akut insättning", "Palliativ vård, vid behov", "Ordination vid behov"]
                    ),
                }
            )
    db.execute(insert(SupplyLedgerEntry), entries)
    db.commit()
    return len(entries)


def _dose_patients(db: Session) -> int:
    if db.scalar(select(func.count()).select_from(SupplyDosePatient)):
        return 0
    rng = random.Random(SEED + 1)
    municipalities = sorted({m for m in db.scalars(select(SupplyStock.municipality).distinct())})
    products = ["990201", "990211", "990101", "990161", "990241", "990231", "990151"]
    rows: set[tuple[str, str, str]] = set()
    for n in range(1, 121):
        municipality = rng.choice(municipalities)
        for varunummer in rng.sample(products, rng.randint(1, 3)):
            rows.add((f"DOS-{municipality}-{n:04d}", municipality, varunummer))
    return imports.import_dose_patients(db, sorted(rows))


def _shortages(db: Session, today: dt.date) -> int:
    notices = []
    for spec in yaml.safe_load(_data("demo_shortages.yaml"))["notices"]:
        if db.scalar(select(SupplyShortage.id).where(SupplyShortage.varunummer == spec["varunummer"])):
            continue
        end = spec.get("expected_to_days")
        notices.append(
            imports.Notice(
                str(spec["varunummer"]),
                today + dt.timedelta(days=int(spec["from_days"])),
                today + dt.timedelta(days=int(end)) if end is not None else None,
                str(spec["advice"]),
            )
        )
    return imports.import_notices(db, notices)[0] if notices else 0


def load(db: Session, today: dt.date) -> int:
    """Everything above that is missing; the number of rows added (0 when all was there)."""
    added = _catalogue(db)
    report = registry.apply_registry(db, registry.read_registry())
    added += report.stocks + report.items
    added += _levels(db, today)
    added += _dose_patients(db)
    added += _shortages(db, today)
    return added
