"""The supply pages through the real app on SQLite: who sees which stock, who may do what, the
stock card's forms and the upload of shortage notices."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from test_invoice_pages import add_user, csrf, signed_in
from webapp import TODAY
from webapp import TestApp as Desk

from vembetalar.store.models import Organisation
from vembetalar.supply import demo as supply_demo

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def halland(desk: Desk) -> Desk:
    with desk.app.state.sessions() as db:
        db.add(Organisation(id="kommun:1380", name="Halmstad (kommun 1380)", kind="kommun"))
        db.commit()
        supply_demo.load(db, TODAY)
    for username, _, role, org in supply_demo.USERS:
        add_user(desk, username, role, org)
    return desk


def test_each_organisation_sees_its_own_stocks_and_roles_decide_the_moves(halland: Desk) -> None:
    mas = signed_in(halland, "mas.halmstad")
    listing = mas.get("/supply").text
    assert "Dalsbo" in listing and "Halmstad 7" in listing and "Hylte 1" not in listing
    assert mas.get("/supply/stocks/hylte-1").status_code == 404
    assert mas.get("/supply/stocks/halmstad-1/withdraw").status_code == 200
    pharmacy = signed_in(halland, "lakemedel.halland")
    everything = pharmacy.get("/supply").text
    assert "Hylte 1" in everything and "Dalsbo" in everything
    assert pharmacy.get("/supply/stocks/halmstad-1/withdraw").status_code == 403
    karlstad = signed_in(halland, "mas.karlstad")
    assert "Inga förråd att visa" in karlstad.get("/supply").text
    assert karlstad.get("/supply/stocks/halmstad-1").status_code == 404
    assert signed_in(halland, "lakare.vgr").get("/supply").status_code == 403


def _post(client: TestClient, path: str, **data: str) -> tuple[int, str]:
    response = client.post(path, data={"csrf": csrf(client, "/supply"), **data})
    return response.status_code, response.text


def _shown(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', page)
    return found[1] if found else ""


def test_the_stock_card_takes_receipts_discards_and_corrections_and_refuses_bad_values(halland: Desk) -> None:
    mas = signed_in(halland, "mas.halmstad")
    code, page = _post(
        mas,
        "/supply/stocks/halmstad-1/receive",
        varunummer="990241",
        lot="T-1",
        expiry="2027-01-01",
        quantity="7",
    )
    assert code == 200 and _shown(page, "supply-message") == "Inleveransen är registrerad."
    for quantity in ("1e999", "NaN", "-3", "2.5"):
        code, page = _post(mas, "/supply/stocks/halmstad-1/withdraw", varunummer="990241", quantity=quantity,
                           patient="PAT-0001", reason="Illamående")  # fmt: skip
        assert code == 422 and _shown(page, "withdraw-error").startswith("antal: "), (quantity, page[-500:])
    code, page = _post(mas, "/supply/stocks/halmstad-1/withdraw", varunummer="990241", quantity="100000",
                       patient="PAT-0001", reason="Illamående")  # fmt: skip
    assert code == 409 and "st går att ta ut" in _shown(page, "withdraw-error")
    lot_id = re.search(
        r'<option value="(\d+)">Metoklopramid[^<]* – T-1 \(7 st', mas.get("/supply/stocks/halmstad-1").text
    )
    assert lot_id
    code, page = _post(
        mas, "/supply/stocks/halmstad-1/discard", lot_id=lot_id[1], quantity="2", reason_code="damaged"
    )
    assert code == 200 and "Kassationen" in page
    entry = re.search(r"<tr>\s*<td>(\d+)</td><td>[^<]*</td><td>Kassation", page)
    assert entry
    code, page = _post(mas, "/supply/stocks/halmstad-1/correct", entry_id=entry[1], reason="Fel batch")
    assert code == 200 and "Rättelsen är registrerad" in page and "rättad" in page
    code, page = _post(mas, "/supply/stocks/halmstad-1/correct", entry_id=entry[1], reason="Igen")
    assert code == 409 and _shown(page, "supply-error") == "rörelsen är redan rättad"


def test_shortage_notices_are_uploaded_all_or_nothing(halland: Desk) -> None:
    pharmacy = signed_in(halland, "lakemedel.halland")
    before = pharmacy.get("/supply/shortages").text
    assert "Morfin Demo 10 mg/ml 10 x 1 ml" in before  # the demo's active shortage
    assert "Adrenalin Demo" not in before
    bad = json.dumps([{"varunummer": "990141", "from": TODAY.isoformat()}, {"varunummer": "12", "from": "x"}])
    response = pharmacy.post(
        "/supply/shortages",
        data={"csrf": csrf(pharmacy, "/supply/shortages")},
        files={"file": ("rest.json", bad.encode(), "application/json")},
    )
    assert response.status_code == 422 and "notis 2: varunummer" in _shown(response.text, "shortage-error")
    good = f"varunummer,from,expected_to,advice\n990141,{TODAY.isoformat()},,Licens kan sökas\n"
    response = pharmacy.post(
        "/supply/shortages",
        data={"csrf": csrf(pharmacy, "/supply/shortages")},
        files={"file": ("rest.csv", good.encode(), "text/csv")},
    )
    assert response.status_code == 200 and _shown(response.text, "shortage-message").startswith("1 nya")
    assert "Adrenalin Demo 1 mg/ml 10 x 1 ml" in response.text and "Licens kan sökas" in response.text
    no_csrf = pharmacy.post("/supply/shortages", files={"file": ("rest.csv", good.encode(), "text/csv")})
    assert no_csrf.status_code == 403
