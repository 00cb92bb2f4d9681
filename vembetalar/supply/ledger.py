"""Movements of a stock, each an immutable ledger entry; balances are always derived from them.

Receipts add a lot's units; withdrawals (for a patient pseudonym, by the signed-in nurse, with the
reason) take units first expiry first out; discards take a lot's units with a reason code; a
narcotics count records what was counted and books the difference; a correction is a new entry
with the opposite quantity of the one it corrects (which stays as it was). Every movement is
audited.

Concurrency: every movement of a product in a stock first locks the stock item's row (SELECT …
FOR UPDATE on PostgreSQL; on SQLite a no-op UPDATE takes the database's write lock before anything
is read), then reads the balances, checks and writes, and commits. Two nurses taking the last
ampoule at once are served one after the other; the second is told there is none left.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vembetalar.store import repo
from vembetalar.store.repo import Actor, NotFound
from vembetalar.store.supply_models import (
    SupplyLedgerEntry,
    SupplyLot,
    SupplyProduct,
    SupplyStock,
    SupplyStockItem,
)
from vembetalar.supply import access
from vembetalar.supply.errors import BadSupplyInput, MovementRefused
from vembetalar.supply.fefo import LotBalance, allocate

KIND_NAMES = {
    "receipt": "Inleverans",
    "withdrawal": "Uttag",
    "discard": "Kassation",
    "count": "Inventering",
    "correction": "Rättelse",
}
DISCARD_REASONS = {
    "expired": "Utgånget",
    "damaged": "Skadad förpackning",
    "contaminated": "Kontaminerat",
    "recalled": "Indraget av tillverkaren",
    "returned": "Överblivet, återlämnat",
    "other": "Annat (beskriv)",
}
_PSEUDONYM = re.compile(r"[A-Za-z0-9_-]{4,64}")
_PERSONNUMMER_LIKE = re.compile(r"(19|20)?[0-9]{6}[-+]?[0-9]{4}")
_LOT = re.compile(r"[A-Za-z0-9._/-]{1,40}")
MAX_REASON = 300


def check_pseudonym(text: str) -> str:
    """A patient's pseudonym (never a personnummer: the stock's ledger must not hold one)."""
    text = text.strip()
    if _PERSONNUMMER_LIKE.fullmatch(text):
        raise BadSupplyInput("patient: ser ut som ett personnummer – ange patientens pseudonym")
    if not _PSEUDONYM.fullmatch(text):
        raise BadSupplyInput("patient: pseudonymen ska vara 4–64 tecken, bokstäver a–z, siffror, - eller _")
    return text


def _reason(text: str, field: str = "orsak", required: bool = True) -> str | None:
    text = " ".join(text.split())
    if not text:
        if required:
            raise BadSupplyInput(f"{field}: saknas men är obligatoriskt")
        return None
    if len(text) > MAX_REASON:
        raise BadSupplyInput(f"{field}: högst {MAX_REASON} tecken")
    return text


def stock_for(db: Session, actor: Actor, stock_id: str, permission: str = "supply.read") -> SupplyStock:
    stock = db.get(SupplyStock, stock_id)
    if stock is None:
        repo.require(actor, permission)
        raise NotFound("förrådet finns inte (eller hör inte till din organisation)")
    access.check(actor, permission, stock.municipality)
    return stock


def lot_balances(
    db: Session, stock_ids: list[str], varunummer: str | None = None
) -> dict[tuple[str, str], list[LotBalance]]:
    """Every lot of the stocks (or of one product in them) with its balance, by (stock,
    varunummer), soonest expiry first: the one query behind the withdrawal (FEFO) and the
    stocks' states."""
    query = (
        select(
            SupplyLot.stock_id,
            SupplyLot.varunummer,
            SupplyLot.id,
            SupplyLot.lot_number,
            SupplyLot.expiry,
            func.coalesce(func.sum(SupplyLedgerEntry.quantity), 0),
        )
        .outerjoin(SupplyLedgerEntry, SupplyLedgerEntry.lot_id == SupplyLot.id)
        .where(SupplyLot.stock_id.in_(stock_ids))
        .group_by(
            SupplyLot.stock_id, SupplyLot.varunummer, SupplyLot.id, SupplyLot.lot_number, SupplyLot.expiry
        )
        .order_by(SupplyLot.expiry, SupplyLot.id)
    )
    if varunummer is not None:
        query = query.where(SupplyLot.varunummer == varunummer)
    found: dict[tuple[str, str], list[LotBalance]] = {}
    for stock_id, vnr, lot_id, number, expiry, balance in db.execute(query):
        found.setdefault((stock_id, vnr), []).append(LotBalance(lot_id, number, expiry, int(balance)))
    return found


def lots_of(db: Session, stock_id: str, varunummer: str | None = None) -> dict[str, list[LotBalance]]:
    """Every lot of a stock (or of one product in it) with its balance, by varunummer."""
    return {vnr: lots for (_, vnr), lots in lot_balances(db, [stock_id], varunummer).items()}


def _lock(db: Session, stock_id: str, varunummer: str) -> SupplyStockItem | None:
    """Serialise movements of one product in one stock (see the module's docstring)."""
    where = (SupplyStockItem.stock_id == stock_id, SupplyStockItem.varunummer == varunummer)
    if db.get_bind().dialect.name == "sqlite":
        db.execute(update(SupplyStockItem).where(*where).values(min_units=SupplyStockItem.min_units))
    return db.scalars(select(SupplyStockItem).where(*where).with_for_update()).first()


@dataclass(frozen=True)
class Taken:
    lot_number: str
    expiry: dt.date
    quantity: int


def _entry(
    actor: Actor,
    stock_id: str,
    varunummer: str,
    lot_id: int,
    kind: str,
    quantity: int,
    today: dt.date,
    **extra: object,
) -> SupplyLedgerEntry:
    return SupplyLedgerEntry(
        on_date=today,
        stock_id=stock_id,
        varunummer=varunummer,
        lot_id=lot_id,
        kind=kind,
        quantity=quantity,
        user_id=actor.user_id or None,
        username=actor.username,
        **extra,
    )


def _finish(db: Session) -> None:
    try:
        db.commit()
    except BaseException:
        db.rollback()
        raise


def receive(
    db: Session,
    actor: Actor,
    stock_id: str,
    varunummer: str,
    lot_number: str,
    expiry: dt.date,
    quantity: int,
    today: dt.date,
    note: str = "",
) -> SupplyLedgerEntry:
    """Units of a lot delivered to the stock (the lot is made on its first receipt)."""
    stock = stock_for(db, actor, stock_id, "supply.manage")
    if db.get(SupplyProduct, varunummer) is None:
        raise BadSupplyInput(f"varunummer: {varunummer[:10]} finns inte i katalogen")
    lot_number = lot_number.strip()
    if not _LOT.fullmatch(lot_number):
        raise BadSupplyInput("batch: 1–40 tecken, bokstäver, siffror och . _ / -")
    if quantity <= 0:
        raise BadSupplyInput("antal: ska vara minst 1")
    if _lock(db, stock.id, varunummer) is None:
        db.add(
            SupplyStockItem(
                stock_id=stock.id, varunummer=varunummer, assortment=None, min_units=0, max_units=0
            )
        )
        db.flush()
    lot = db.scalars(
        select(SupplyLot).where(
            SupplyLot.stock_id == stock.id,
            SupplyLot.varunummer == varunummer,
            SupplyLot.lot_number == lot_number,
        )
    ).first()
    if lot is None:
        lot = SupplyLot(stock_id=stock.id, varunummer=varunummer, lot_number=lot_number, expiry=expiry)
        db.add(lot)
        db.flush()
    elif lot.expiry != expiry:
        db.rollback()
        raise BadSupplyInput(
            f"utgångsdatum: batch {lot_number} finns redan med utgångsdatum {lot.expiry.isoformat()}"
        )
    entry = _entry(
        actor, stock.id, varunummer, lot.id, "receipt", quantity, today, reason=_reason(note, required=False)
    )
    db.add(entry)
    repo.audit(
        db, actor, "supply.receipt", None, f"{stock.id} {varunummer} batch {lot_number}: +{quantity} st"
    )
    _finish(db)
    return entry


def withdraw(
    db: Session,
    actor: Actor,
    stock_id: str,
    varunummer: str,
    quantity: int,
    patient_pseudonym: str,
    reason: str,
    today: dt.date,
) -> list[Taken]:
    """Take units for a patient, first expiry first out; refused when too few usable units are left."""
    stock = stock_for(db, actor, stock_id, "supply.withdraw")
    pseudonym = check_pseudonym(patient_pseudonym)
    why = _reason(reason)
    if quantity <= 0:
        raise BadSupplyInput("antal: ska vara minst 1")
    try:
        if _lock(db, stock.id, varunummer) is None:
            raise MovementRefused("förrådet har inte den produkten")
        lots = lots_of(db, stock.id, varunummer).get(varunummer, [])
        taken = allocate(lots, quantity, today)
        for lot, units in taken:
            db.add(
                _entry(
                    actor,
                    stock.id,
                    varunummer,
                    lot.lot_id,
                    "withdrawal",
                    -units,
                    today,
                    patient_pseudonym=pseudonym,
                    reason=why,
                )
            )
        repo.audit(db, actor, "supply.withdrawal", None, f"{stock.id} {varunummer}: −{quantity} st")
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return [Taken(lot.lot_number, lot.expiry, units) for lot, units in taken]


def _lot(db: Session, stock: SupplyStock, lot_id: int) -> SupplyLot:
    lot = db.get(SupplyLot, lot_id)
    if lot is None or lot.stock_id != stock.id:
        raise NotFound("batchen finns inte i förrådet")
    return lot


def _lot_balance(db: Session, lot_id: int) -> int:
    return int(
        db.scalar(
            select(func.coalesce(func.sum(SupplyLedgerEntry.quantity), 0)).where(
                SupplyLedgerEntry.lot_id == lot_id
            )
        )
        or 0
    )


def discard(
    db: Session,
    actor: Actor,
    stock_id: str,
    lot_id: int,
    quantity: int,
    reason_code: str,
    note: str,
    today: dt.date,
) -> SupplyLedgerEntry:
    """Units of a lot taken out of use (expired, damaged …), with a reason code."""
    stock = stock_for(db, actor, stock_id, "supply.manage")
    if reason_code not in DISCARD_REASONS:
        raise BadSupplyInput(f"orsakskod: ska vara en av {', '.join(DISCARD_REASONS)}")
    text = _reason(note, "beskrivning", required=reason_code == "other")
    if quantity <= 0:
        raise BadSupplyInput("antal: ska vara minst 1")
    lot = _lot(db, stock, lot_id)
    try:
        _lock(db, stock.id, lot.varunummer)
        balance = _lot_balance(db, lot.id)
        if quantity > balance:
            raise MovementRefused(f"batch {lot.lot_number} har bara {balance} st")
        entry = _entry(
            actor,
            stock.id,
            lot.varunummer,
            lot.id,
            "discard",
            -quantity,
            today,
            reason_code=reason_code,
            reason=text,
        )
        db.add(entry)
        repo.audit(
            db,
            actor,
            "supply.discard",
            None,
            f"{stock.id} {lot.varunummer} batch {lot.lot_number}: −{quantity} st ({reason_code})",
        )
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return entry


def count(
    db: Session, actor: Actor, stock_id: str, lot_id: int, counted: int, note: str, today: dt.date
) -> SupplyLedgerEntry:
    """A narcotics count (inventering) of one lot: the entry books counted − balance, so the
    balance equals what was counted; a difference needs an explanation and is audited as one."""
    stock = stock_for(db, actor, stock_id, "supply.manage")
    if counted < 0:
        raise BadSupplyInput("räknat antal: får inte vara negativt")
    lot = _lot(db, stock, lot_id)
    try:
        _lock(db, stock.id, lot.varunummer)
        balance = _lot_balance(db, lot.id)
        difference = counted - balance
        text = _reason(note, "förklaring", required=difference != 0)
        entry = _entry(
            actor, stock.id, lot.varunummer, lot.id, "count", difference, today, counted=counted, reason=text
        )
        db.add(entry)
        what = "stämmer" if difference == 0 else f"avvikelse {difference:+d} st"
        repo.audit(
            db,
            actor,
            "supply.count",
            None,
            f"{stock.id} {lot.varunummer} batch {lot.lot_number}: {counted} st, {what}",
        )
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return entry


def correct(
    db: Session, actor: Actor, stock_id: str, entry_id: int, reason: str, today: dt.date
) -> SupplyLedgerEntry:
    """Undo a mistaken entry by a new one with the opposite quantity; the mistaken entry stays.
    An entry is corrected at most once (the database refuses a second), a correction not at all."""
    stock = stock_for(db, actor, stock_id, "supply.manage")
    why = _reason(reason)
    original = db.get(SupplyLedgerEntry, entry_id)
    if original is None or original.stock_id != stock.id:
        raise NotFound("rörelsen finns inte i förrådet")
    if original.kind == "correction":
        raise MovementRefused("en rättelse rättas inte; registrera en ny rörelse i stället")
    try:
        _lock(db, stock.id, original.varunummer)
        if db.scalar(select(SupplyLedgerEntry.id).where(SupplyLedgerEntry.corrects_id == original.id)):
            raise MovementRefused("rörelsen är redan rättad")
        if _lot_balance(db, original.lot_id) - original.quantity < 0:
            raise MovementRefused("rättelsen skulle ge ett negativt saldo: enheterna är redan uttagna")
        entry = _entry(
            actor,
            stock.id,
            original.varunummer,
            original.lot_id,
            "correction",
            -original.quantity,
            today,
            corrects_id=original.id,
            reason_code=original.kind,
            reason=why,
        )
        db.add(entry)
        repo.audit(db, actor, "supply.correction", None, f"{stock.id} rörelse {original.id} rättad: {why}")
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return entry


def withdrawn_since(db: Session, since: dt.date, stock_id: str | None = None) -> dict[tuple[str, str], int]:
    """Units used (withdrawals less their corrections) per (stock, varunummer) from ``since``."""
    used = (SupplyLedgerEntry.kind == "withdrawal") | (
        (SupplyLedgerEntry.kind == "correction") & (SupplyLedgerEntry.reason_code == "withdrawal")
    )
    query = (
        select(SupplyLedgerEntry.stock_id, SupplyLedgerEntry.varunummer, func.sum(SupplyLedgerEntry.quantity))
        .where(used, SupplyLedgerEntry.on_date >= since)
        .group_by(SupplyLedgerEntry.stock_id, SupplyLedgerEntry.varunummer)
    )
    if stock_id is not None:
        query = query.where(SupplyLedgerEntry.stock_id == stock_id)
    return {(s, v): -int(q or 0) for s, v, q in db.execute(query)}


def history(db: Session, stock_id: str, limit: int = 50) -> list[SupplyLedgerEntry]:
    return list(
        db.scalars(
            select(SupplyLedgerEntry)
            .where(SupplyLedgerEntry.stock_id == stock_id)
            .order_by(SupplyLedgerEntry.id.desc())
            .limit(limit)
        )
    )


def corrected(db: Session, stock_id: str) -> set[int]:
    """The ids of the stock's entries that a correction has undone."""
    return {
        i
        for i in db.scalars(
            select(SupplyLedgerEntry.corrects_id).where(
                SupplyLedgerEntry.stock_id == stock_id, SupplyLedgerEntry.corrects_id.is_not(None)
            )
        )
        if i is not None
    }
