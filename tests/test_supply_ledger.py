"""The stock ledger on SQLite and a real PostgreSQL: append-only, corrections and counts as new
entries, scope by organisation, and parallel withdrawal requests of the last units that never
drive a balance below zero."""

from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal

import httpx
import pytest
from live_server import served
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from webapp import PASSWORD, TODAY
from webapp import TestApp as Desk

from vembetalar.store.models import AuditEntry
from vembetalar.store.repo import Actor, Forbidden, NotFound
from vembetalar.store.supply_models import SupplyLedgerEntry, SupplyProduct, SupplyStock, SupplyStockItem
from vembetalar.supply import ledger
from vembetalar.supply.errors import BadSupplyInput, MovementRefused
from vembetalar.supply.fefo import usable
from vembetalar.supply.state import states

MAS = Actor(0, "mas.karlstad", "mas", "kommun:1780")
PHARMACY = Actor(0, "lakemedel.varmland", "pharma_unit", "region:17")
STOCK = "karlstad-1"
MORPHINE = "100001"


def seed_stock(db: Session) -> None:
    db.add(
        SupplyProduct(
            varunummer=MORPHINE, npl_pack_id="19990000100001", name="Morfin T 10 mg/ml", substance="morfin",
            atc="N02AA01", strength="10 mg/ml", form="injektionsvätska", pack_size=10,
            price_sek=Decimal("100.00"), ddd_per_pack=Decimal(4), narcotic_class="II",
        )
    )  # fmt: skip
    db.add(
        SupplyStock(
            id=STOCK, municipality="1780", name="Karlstad 1", kind="kommunalt", site="okänt",
            operator="okänt", payer="okänt", source="test",
        )
    )  # fmt: skip
    db.flush()
    db.add(
        SupplyStockItem(
            stock_id=STOCK, varunummer=MORPHINE, assortment="palliativ", min_units=2, max_units=10
        )
    )
    db.commit()


def balance(db: Session) -> int:
    return usable(ledger.lots_of(db, STOCK, MORPHINE).get(MORPHINE, []), TODAY)


def test_the_ledger_refuses_update_and_delete(desk: Desk) -> None:
    with desk.app.state.sessions() as db:
        seed_stock(db)
        ledger.receive(db, PHARMACY, STOCK, MORPHINE, "A1", dt.date(2026, 1, 1), 5, TODAY)
    for statement in ("UPDATE supply_ledger SET quantity = 500", "DELETE FROM supply_ledger"):
        with desk.app.state.sessions() as db, pytest.raises(DBAPIError, match="append-only"):
            db.execute(text(statement))
            db.commit()
    with desk.app.state.sessions() as db:
        assert balance(db) == 5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_corrections_and_narcotics_counts_are_new_audited_entries(desk: Desk) -> None:
    with desk.app.state.sessions() as db:
        seed_stock(db)
        receipt = ledger.receive(db, PHARMACY, STOCK, MORPHINE, "A1", dt.date(2026, 1, 1), 5, TODAY)
        taken = ledger.withdraw(db, MAS, STOCK, MORPHINE, 2, "PAT-0001", "Smärta", TODAY)
        assert [(t.lot_number, t.quantity) for t in taken] == [("A1", 2)]
        mistaken = db.scalars(select(SupplyLedgerEntry).where(SupplyLedgerEntry.kind == "withdrawal")).one()
        ledger.correct(db, MAS, STOCK, mistaken.id, "Fel patient", TODAY)
        assert balance(db) == 5
        with pytest.raises(MovementRefused, match="redan rättad"):
            ledger.correct(db, MAS, STOCK, mistaken.id, "igen", TODAY)
        correction = db.scalars(select(SupplyLedgerEntry).where(SupplyLedgerEntry.kind == "correction")).one()
        with pytest.raises(MovementRefused, match="rättelse rättas inte"):
            ledger.correct(db, MAS, STOCK, correction.id, "x", TODAY)
        ledger.withdraw(db, MAS, STOCK, MORPHINE, 5, "PAT-0002", "Smärta", TODAY)
        with pytest.raises(MovementRefused, match="negativt saldo"):
            ledger.correct(db, MAS, STOCK, receipt.id, "fel batch", TODAY)
        ledger.receive(db, PHARMACY, STOCK, MORPHINE, "A1", dt.date(2026, 1, 1), 4, TODAY)
        with pytest.raises(BadSupplyInput, match="förklaring"):
            ledger.count(db, MAS, STOCK, receipt.lot_id, 3, "", TODAY)
        entry = ledger.count(db, MAS, STOCK, receipt.lot_id, 3, "En ampull trasig, ej kasserad", TODAY)
        assert (entry.quantity, entry.counted, balance(db)) == (-1, 3, 3)
        assert ledger.count(db, MAS, STOCK, receipt.lot_id, 3, "", TODAY).quantity == 0
        [item] = states(db, [db.get(SupplyStock, STOCK)], TODAY)[STOCK]
        assert (item.balance, item.last_count) == (3, TODAY)
        actions = db.scalars(select(AuditEntry.action).where(AuditEntry.action.like("supply.%"))).all()
        assert actions.count("supply.correction") == 1 and actions.count("supply.count") == 2
        # Nothing was changed in place: every entry is still there.
        assert (
            db.scalar(select(func.count()).select_from(SupplyLedgerEntry)) == 7
        )  # 2 receipts, 2 withdrawals, 1 correction, 2 counts


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_scope_roles_and_bad_values(desk: Desk) -> None:
    with desk.app.state.sessions() as db:
        seed_stock(db)
        ledger.receive(db, PHARMACY, STOCK, MORPHINE, "A1", dt.date(2025, 9, 1), 3, TODAY)  # expired
        with pytest.raises(NotFound):
            ledger.withdraw(
                db, Actor(0, "mas.arvika", "mas", "kommun:1784"), STOCK, MORPHINE, 1, "PAT-1", "x", TODAY
            )
        with pytest.raises(Forbidden):
            ledger.withdraw(db, PHARMACY, STOCK, MORPHINE, 1, "PAT-0001", "x", TODAY)
        with pytest.raises(MovementRefused, match="bara 0 st"):  # only expired units: none usable
            ledger.withdraw(db, MAS, STOCK, MORPHINE, 1, "PAT-0001", "x", TODAY)
        with pytest.raises(BadSupplyInput, match="personnummer"):
            ledger.withdraw(db, MAS, STOCK, MORPHINE, 1, "198112289874", "x", TODAY)
        with pytest.raises(BadSupplyInput, match="orsak"):
            ledger.withdraw(db, MAS, STOCK, MORPHINE, 1, "PAT-0001", "  ", TODAY)
        with pytest.raises(BadSupplyInput, match="utgångsdatum"):
            ledger.receive(db, PHARMACY, STOCK, MORPHINE, "A1", dt.date(2026, 1, 1), 3, TODAY)


class Nurse:
    """A browser-like client over plain http: the session cookie is Secure, which httpx would
    not send back to http://127.0.0.1, so it is carried by hand."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=60)
        self.cookie = ""
        csrf = self._csrf(self.request("GET", "/login"))
        self.request("POST", "/login", data={"username": "mas.karlstad", "password": PASSWORD, "csrf": csrf})
        self.csrf = self._csrf(self.request("GET", f"/supply/stocks/{STOCK}/withdraw"))

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        response = self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        for value in response.headers.get_list("set-cookie"):
            self.cookie = value.split(";", 1)[0]
        return response

    @staticmethod
    def _csrf(response: httpx.Response) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', response.text)
        assert found, f"no form on {response.url} ({response.status_code})"
        return found[1]


def test_parallel_withdrawals_of_the_last_units_never_go_negative(desk: Desk) -> None:
    """Six nurses press "Registrera uttag" at once for the last three ampoules (two lots): three
    get them, three are told none are left, and no lot's balance goes below zero."""
    with desk.app.state.sessions() as db:
        seed_stock(db)
        ledger.receive(db, PHARMACY, STOCK, MORPHINE, "A1", dt.date(2026, 1, 1), 2, TODAY)
        ledger.receive(db, PHARMACY, STOCK, MORPHINE, "B2", dt.date(2026, 6, 1), 1, TODAY)
    nurses = 6
    with served(desk.app) as base_url:
        clients = [Nurse(base_url) for _ in range(nurses)]
        barrier = threading.Barrier(nurses, timeout=30)
        codes: list[int] = []

        def press(nurse: Nurse, n: int) -> None:
            barrier.wait()
            form = {
                "csrf": nurse.csrf,
                "varunummer": MORPHINE,
                "quantity": "1",
                "patient": f"PAT-{n:04d}",
                "reason": "Smärta",
            }
            codes.append(nurse.request("POST", f"/supply/stocks/{STOCK}/withdraw", data=form).status_code)

        threads = [threading.Thread(target=press, args=(nurse, n)) for n, nurse in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        for nurse in clients:
            nurse.client.close()
    assert sorted(codes) == [200, 200, 200, 409, 409, 409], codes
    with desk.app.state.sessions() as db:
        per_lot = dict(
            db.execute(
                select(SupplyLedgerEntry.lot_id, func.sum(SupplyLedgerEntry.quantity)).group_by(
                    SupplyLedgerEntry.lot_id
                )
            ).all()
        )
        assert sorted(per_lot.values()) == [0, 0]
        withdrawn = db.scalar(select(func.count()).where(SupplyLedgerEntry.kind == "withdrawal"))
        assert withdrawn == 3
