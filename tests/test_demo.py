"""`make run` seeds demo data: the printed logins and token must work, and seeding twice must not
duplicate anything or keep an old password. `vembetalar demo load` gives an invoice run something
to invoice on every route at once, and loading twice adds nothing."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from peppol_check import fatal_findings
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from vembetalar.billing.document import document_from_json
from vembetalar.billing.ubl import to_ubl
from vembetalar.cli import app as cli
from vembetalar.store.db import make_engine, session_factory
from vembetalar.store.models import BillableEvent, CaseRecord, Invoice, User
from vembetalar.web.app import create_app
from vembetalar.web.demo import CASES, USERS, invoicing_cases, seed
from vembetalar.web.settings import Settings

ALL_CASES = len(CASES) + len(invoicing_cases())


def test_demo_logins_and_token_work_and_reseeding_rotates_passwords(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/demo.db", var_dir=tmp_path))
    with app.state.sessions() as db:
        logins, token = seed(db, app.state.engine, dt.date(2026, 11, 27))
        assert {login.username for login in logins} == {u[0] for u in USERS}
        assert db.scalar(select(func.count()).select_from(CaseRecord)) == ALL_CASES
        assert all(
            re.fullmatch(r"\d{8}-\d{4}", pid) for pid in db.scalars(select(CaseRecord.patient_id)) if pid
        )
        again, _ = seed(db, app.state.engine, dt.date(2026, 11, 27))
        assert db.scalar(select(func.count()).select_from(CaseRecord)) == ALL_CASES
        assert db.scalar(select(func.count()).select_from(User)) == len(USERS)
    client = TestClient(app, base_url="https://testserver")
    cases = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert cases.status_code == 401  # the first token was replaced by the second seeding
    login = next(x for x in again if x.username == "lakare.vgr")
    old = next(x for x in logins if x.username == "lakare.vgr")
    assert login.password != old.password
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "username": "lakare.vgr", "password": login.password}
    response = client.post("/login", data=form, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/cases")
    listing = client.get("/cases")
    assert listing.status_code == 200
    assert "19811228-9874" in listing.text  # a prescriber sees the demo patient's number in full


@pytest.fixture
def demo_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/demo.db"
    monkeypatch.setenv("VEMBETALAR_DATABASE_URL", url)
    monkeypatch.setenv("VEMBETALAR_TODAY", "2026-11-27")
    monkeypatch.delenv("VEMBETALAR_PACKS", raising=False)
    return url


def invoke(url: str, *args: str) -> Result:
    env = {"VEMBETALAR_DATABASE_URL": url, "VEMBETALAR_TODAY": "2026-11-27", "COLUMNS": "400"}
    return CliRunner().invoke(cli, list(args), env=env)


def counts(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    with session_factory(engine)() as db:
        result = tuple(
            db.scalar(select(func.count()).select_from(table)) or 0
            for table in (CaseRecord, BillableEvent, User)
        )
    engine.dispose()
    return result  # type: ignore[return-value]


def invoices(url: str, period: str) -> list[Invoice]:
    engine = make_engine(url)
    with session_factory(engine)() as db:
        rows = list(db.scalars(select(Invoice).where(Invoice.period == period).order_by(Invoice.id)))
    engine.dispose()
    return rows


def test_demo_load_twice_adds_nothing_and_every_route_invoices_at_once(demo_db: str, tmp_path: Path) -> None:
    first = invoke(demo_db, "demo", "load")
    assert first.exit_code == 0, first.output
    loaded = counts(demo_db)
    assert loaded[0] == ALL_CASES and loaded[1] == sum(len(c.get("lines") or []) for c in invoicing_cases())
    second = invoke(demo_db, "demo", "load")
    assert second.exit_code == 0, second.output
    assert "inget lades till" in second.output
    assert counts(demo_db) == loaded

    out = tmp_path / "fakturor"
    may = invoke(demo_db, "invoice", "run", "--all", "--period", "2024-05", "--out", str(out))
    assert may.exit_code == 0, may.output
    # Skåne's devices (the rollator, the hearing aid with contact and commitment, the wheelchair
    # and its cushion) are webSesam's: every line of the skane- cases, none invoiced here.
    skane = sum(len(c.get("lines") or []) for c in invoicing_cases() if str(c["key"]).startswith("skane-"))
    # One line per case, counting its events: "… SK-… (2 underlag): faktureras av Visma webSesam …"
    elsewhere = [line for line in may.output.splitlines() if "faktureras på annat håll" in line]
    events = sum(int(m[1]) if (m := re.search(r"\((\d+) underlag\)", line)) else 1 for line in elsewhere)
    assert events == skane == 4 and len(elsewhere) == 3 and "Visma webSesam" in may.output
    routes = {i.route for i in invoices(demo_db, "2024-05")}
    assert routes == {
        "vgr_halland_undantag_2023/vgr_ohsn",  # bilaga 1: Region Halland invoices VGR
        "vgr_halland_undantag_2023/halland_zzxxx098",  # bilaga 2
        "vgr_halland_undantag_2023/halland_zzxxx104",  # bilaga 3
    }
    for invoice in invoices(demo_db, "2024-05"):
        assert fatal_findings(to_ubl(document_from_json(invoice.document_json))) == [], invoice.route
    written = sorted(out.glob("*.xml"))
    assert written and len(list(out.glob("*.pdf"))) == len(written)
    for xml in written:
        assert fatal_findings(xml.read_bytes()) == [], xml.name

    october = tmp_path / "oktober"
    autumn = invoke(demo_db, "invoice", "run", "--all", "--period", "2023-10", "--out", str(october))
    assert autumn.exit_code == 0, autumn.output
    assert "ej fakturerat" in autumn.output and "förskrivarens namn" in autumn.output  # the pending line
    (varmland,) = invoices(demo_db, "2023-10")
    doc = document_from_json(varmland.document_json)
    assert varmland.issuer == "kommun:1780" and doc.buyer_reference == "9640028"
    properties = [dict(line.properties) for line in doc.lines]
    assert [p["Patient"] for p in properties] == ["1 (GG)", "2 (EE)", "3 (SS)", "1 (GG)"]
    # Elsa Ek's self-care: the deciding unit (a Region Värmland clinic) is named on her line.
    assert properties[1]["Egenvård"] == "ja"
    assert "Diabetesmottagningen" in properties[1]["Enhet som beslutat om egenvården"]
    (xml,) = october.glob("*.xml")
    assert fatal_findings(xml.read_bytes()) == []
    assert b"Greta" not in xml.read_bytes()


def test_invoice_run_all_writes_one_file_per_invoice(demo_db: str, tmp_path: Path) -> None:
    assert invoke(demo_db, "demo", "load").exit_code == 0
    out = tmp_path / "fakturor"
    assert invoke(demo_db, "invoice", "run", "--all", "--period", "2024-05", "--out", str(out)).exit_code == 0
    assert len(list(out.glob("*.xml"))) == len(invoices(demo_db, "2024-05")) >= 3


def test_demo_explain_still_explains_the_bundled_cases(demo_db: str) -> None:
    result = invoke(demo_db, "demo", "explain")
    assert result.exit_code == 0, result.output
    assert "hallandspatient i vgr" in result.output and "Region Halland" in result.output


def test_make_run_shows_demo_invoices_at_once_and_restarting_adds_none(tmp_path: Path) -> None:
    """``serve --demo`` loads the demo and invoices its months, so the clerk sees invoices."""
    from vembetalar.web.demo import run_demo_invoices

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/demo.db", var_dir=tmp_path))
    with app.state.sessions() as db:
        seed(db, app.state.engine, dt.date(2026, 11, 27))
        assert run_demo_invoices(db, app.state.engine, dt.date(2026, 11, 27)) >= 4
        seed(db, app.state.engine, dt.date(2026, 11, 27))
        assert run_demo_invoices(db, app.state.engine, dt.date(2026, 11, 27)) == 0
        issuers = set(db.scalars(select(Invoice.issuer)))
    assert {"region:14", "region:13", "kommun:1780"} <= issuers
