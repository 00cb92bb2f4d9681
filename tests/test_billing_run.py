"""Invoice runs on a real database: events become invoices as each agreement says, numbered without
gaps, never billed twice, and every invoice passes the official PEPPOL BIS Billing 3.0 rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from peppol_check import fatal_findings
from sqlalchemy import func, select
from test_api import HALLAND_AT_VGR, create, events_of, step, take
from webapp import TODAY
from webapp import TestApp as Desk

from vembetalar.billing.document import document_from_json
from vembetalar.billing.registry import apply_registry, read_registry
from vembetalar.billing.run import RegistryIncomplete, run_invoices
from vembetalar.billing.ubl import to_ubl
from vembetalar.store.models import BilledEvent, Invoice, OrganisationDetails

DEMO_REGISTRY = Path(__file__).parents[1] / "vembetalar" / "demo" / "registry.yaml"
PERIOD = TODAY.strftime("%Y-%m")
#: The test patient's personnummer in every way it could be written.
PNR_FORMS = ("19811228-9874", "198112289874", "811228-9874", "8112289874")


def carries_pnr(text: str) -> bool:
    return any(form in text for form in PNR_FORMS)


BILAGA_3 = {**HALLAND_AT_VGR, "care": {"region": "14", "referral": True}}
BILAGA_1 = {
    **HALLAND_AT_VGR,
    "patient": {"home_region": "14", "country": "SE"},
    "care": {"region": "13", "referral": False},
}
KARLSTAD_ANNEX_REGION = {
    "date": "2023-10-02",
    "kind": "medtech_product",
    "patient": {
        "home_region": "17",
        "home_municipality": "1780",
        "country": "SE",
        "housing": "special_housing",
    },
    "care": {"region": "17", "self_care": False, "discharge": False},
    "product": {"area": "medtech", "annex": "region", "cost_sek": 450},
}


def line(**fields: Any) -> dict[str, Any]:
    return {
        "occurred_on": TODAY.isoformat(),
        "quantity": "2",
        "unit_price_sek": "920.25",
        "product_name": "Testoprazol 20 mg",
        "varunummer": "123456",
        "prescriber_name": "Lina Läkare",
        "unit_name": "Medicinmottagningen, Sahlgrenska",
        **fields,
    }


#: One product Karlstad delivered under the annex in October 2023 (no varunummer: not required).
VARMLAND_LINE = line(
    occurred_on="2023-10-05",
    varunummer=None,
    prescriber_name="Dr Ek",
    unit_name="Avd 12, Centralsjukhuset",
    quantity="1",
    unit_price_sek="450",
)


def registry(desk: Desk) -> None:
    with desk.app.state.sessions() as db:
        apply_registry(db, read_registry(DEMO_REGISTRY))


def run(desk: Desk, issuer: str, period: str = PERIOD) -> Any:
    with desk.app.state.sessions() as db:
        return run_invoices(db, desk.app.state.engine, issuer=issuer, period=period, today=TODAY)


def test_a_vgr_run_bills_each_route_once_and_every_invoice_passes_peppol(desk: Desk) -> None:
    registry(desk)
    vgr = desk.api("lakare.vgr")
    bilaga_2 = create(vgr, HALLAND_AT_VGR, patient_id="19811228-9874")["id"]
    bilaga_3 = create(vgr, BILAGA_3)["id"]
    take(vgr, bilaga_2, "dispensed", line=line())
    take(vgr, bilaga_2, "dispensed", line=line(quantity="1", unit_price_sek="99.50"))
    take(vgr, bilaga_3, "dispensed", line=line(unit_name="Barnkliniken, Halmstad"))
    incomplete = create(vgr, HALLAND_AT_VGR)["id"]
    take(vgr, incomplete, "dispensed", line=line(varunummer=None, prescriber_name=None))

    report = run(desk, "region:14")
    assert len(report.invoices) == 2
    by_reference = {document_from_json(i.document_json).buyer_reference: i for i in report.invoices}
    assert set(by_reference) == {"ZZXXX098", "ZZXXX104"}
    assert sorted(i.number for i in report.invoices) == [1, 2]  # gap-free from 1
    two = document_from_json(by_reference["ZZXXX098"].document_json)
    assert [line.amount for line in two.lines] == [Decimal("1840.50"), Decimal("99.50")]
    assert two.payable == Decimal("1940.00") and two.project_reference == "61165"
    assert "Patienten är folkbokförd i Region Halland." in two.notes
    assert ("Arbetsplats", "Medicinmottagningen, Sahlgrenska") in two.lines[0].properties
    three = document_from_json(by_reference["ZZXXX104"].document_json)
    assert ("Remitterande enhet", "Barnkliniken, Halmstad") in three.lines[0].properties
    # The incomplete line is listed with what is missing, not invoiced.
    (pending,) = report.pending
    assert "varunummer" in pending.reason and "förskrivarens namn" in pending.reason

    for invoice in report.invoices:
        xml = to_ubl(document_from_json(invoice.document_json))
        assert fatal_findings(xml) == [], invoice.number_text
        assert not carries_pnr(xml.decode()), "bilagor 2–3 name no personnummer"

    again = run(desk, "region:14")
    assert again.invoices == [] and len(again.pending) == 1
    with desk.app.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(BilledEvent)) == 3


def test_bilaga_1_carries_the_personnummer_and_diarienummer_it_demands(desk: Desk) -> None:
    """Region Halland invoices VGR: personnummer, period and diarienummer, Beställarid 4250001."""
    registry(desk)
    client = _halland_prescriber(desk)
    case_id = create(client, BILAGA_1, patient_id="19811228-9874")["id"]
    take(client, case_id, "dispensed", line=line(diarienummer=None))
    report = run(desk, "region:13")
    assert report.invoices == [] and "diarienummer" in report.pending[0].reason
    take(client, case_id, "dispensed", line=line(diarienummer="RH 2025-0042"))
    report = run(desk, "region:13")
    (invoice,) = report.invoices
    doc = document_from_json(invoice.document_json)
    assert doc.buyer_reference == "4250001" and doc.buyer.endpoint == "0088:7350003379300"
    assert ("Personnummer", "19811228-9874") in doc.lines[0].properties
    assert ("Diarienummer", "RH 2025-0042") in doc.lines[0].properties
    assert fatal_findings(to_ubl(doc)) == []


def test_varmland_one_invoice_for_several_patients_marked_by_number(desk: Desk) -> None:
    registry(desk)
    mas = desk.api("mas.karlstad")
    first = create(mas, KARLSTAD_ANNEX_REGION, patient_name="Anna Berg")["id"]
    second = create(mas, KARLSTAD_ANNEX_REGION, patient_name="Carl Dahl")["id"]
    for case_id in (first, second, first):
        take(mas, case_id, "delivered", line=VARMLAND_LINE)
    report = run(desk, "kommun:1780", "2023-10")
    (invoice,) = report.invoices
    doc = document_from_json(invoice.document_json)
    assert doc.buyer_reference == "9640028" and doc.buyer.endpoint == "0007:2321000156"
    markers = [dict(line.properties)["Patient"] for line in doc.lines]
    assert markers == ["1 (AB)", "2 (CD)", "1 (AB)"]
    assert "Raderna är märkta med patientens nummer: 1 = AB, 2 = CD." in doc.notes
    assert all(dict(line.properties)["Egenvård"] == "nej" for line in doc.lines)
    assert report.warnings and "faktureras ändå" in report.warnings[0]  # 2023 is long past six months
    xml = to_ubl(doc)
    assert fatal_findings(xml) == []
    assert "Anna" not in xml.decode() and "Berg" not in xml.decode()


KARLSTAD_SELF_CARE = {
    **KARLSTAD_ANNEX_REGION,
    "patient": {**KARLSTAD_ANNEX_REGION["patient"], "housing": "ordinary", "home_care_weeks": 0},
    "care": {"region": "17", "self_care": True, "discharge": False},
}


def test_self_care_is_invoiced_to_the_deciding_units_organisation_naming_the_unit(desk: Desk) -> None:
    """Seed 004: "Kostnader för hjälpmedel och produkter som används vid egenvård tillhör den
    enhet/mottagning som bedömt och beslutat om egenvård" — and "Om vårdtagaren har Egenvård skall
    även detta framgå". The case names the unit before anything is delivered; the invoice goes to
    that unit's organisation (Region Värmland), names the unit and says "Egenvård: ja"."""
    registry(desk)
    mas = desk.api("mas.karlstad")
    case = create(mas, KARLSTAD_SELF_CARE, patient_name="Elsa Ek")
    assert case["decision"]["payer"] == "unit" and case["invoicer"] == "kommun:1780"
    refused = step(mas, case["id"], "delivered", line=VARMLAND_LINE)
    assert refused.status_code == 409 and "egenvården" in refused.json()["detail"]
    unit = {"organisation": "region:17", "name": "Diabetesmottagningen, CSK"}
    named = take(mas, case["id"], "unit_named", unit=unit)
    assert named["self_care_unit"] == unit
    take(mas, case["id"], "delivered", line=VARMLAND_LINE)
    (event,) = events_of(mas, case["id"])
    assert event["recipient"] == "region:17" and event["issuer"] == "kommun:1780"
    # The paying region now takes part in the case: it reads it.
    assert desk.api("faktura.varmland").get(f"/api/v1/cases/{case['id']}").status_code == 200

    report = run(desk, "kommun:1780", "2023-10")
    (invoice,) = report.invoices
    doc = document_from_json(invoice.document_json)
    assert doc.buyer_reference == "9640028" and doc.buyer.endpoint == "0007:2321000156"
    properties = dict(doc.lines[0].properties)
    assert properties["Egenvård"] == "ja"
    assert properties["Enhet som beslutat om egenvården"] == "Diabetesmottagningen, CSK"
    assert fatal_findings(to_ubl(doc)) == []


def test_self_care_decided_by_the_municipality_itself_bills_nothing(desk: Desk) -> None:
    mas = desk.api("mas.karlstad")
    case_id = create(mas, KARLSTAD_SELF_CARE)["id"]
    take(mas, case_id, "unit_named", unit={"organisation": "kommun:1780", "name": "Hemsjukvården"})
    body = take(mas, case_id, "delivered", line=VARMLAND_LINE)
    assert events_of(mas, case_id) == []
    (delivery,) = [p for p in body["plan"] if p["step"] == "delivered"]
    assert "hör till Karlstad" in delivery["why"]


def test_self_care_unit_of_an_organisation_the_agreement_gives_no_route_to_is_listed(desk: Desk) -> None:
    registry(desk)
    mas = desk.api("mas.karlstad")
    case_id = create(mas, KARLSTAD_SELF_CARE)["id"]
    take(mas, case_id, "unit_named", unit={"organisation": "region:13", "name": "Vårdcentral i Halland"})
    take(mas, case_id, "delivered", line=VARMLAND_LINE)
    report = run(desk, "kommun:1780", "2023-10")
    assert report.invoices == []
    (pending,) = report.pending
    assert "gäller Region Värmland, inte Region Halland" in pending.reason


@pytest.mark.parametrize(
    ("unit", "status", "words"),
    [
        ({"organisation": "region:99", "name": "X"}, 422, "unit.organisation"),
        ({"organisation": "kommun:1780", "name": "   "}, 422, "unit.name"),
        (None, 422, "unit:"),
    ],
)
def test_a_self_care_unit_must_be_a_known_organisation_and_a_name(
    desk: Desk, unit: dict[str, str] | None, status: int, words: str
) -> None:
    mas = desk.api("mas.karlstad")
    case_id = create(mas, KARLSTAD_SELF_CARE)["id"]
    response = step(mas, case_id, "unit_named", **({"unit": unit} if unit else {}))
    assert response.status_code == status and words in response.text, response.text


def test_an_issuer_missing_from_the_registry_is_told_what_is_missing(desk: Desk) -> None:
    vgr = desk.api("lakare.vgr")
    take(vgr, create(vgr, HALLAND_AT_VGR)["id"], "dispensed", line=line())
    with pytest.raises(RegistryIncomplete, match="organisationsnummer"):
        run(desk, "region:14")
    registry(desk)
    with desk.app.state.sessions() as db:
        details = db.get(OrganisationDetails, "region:14")
        assert details is not None
        details.bankgiro = None
        db.commit()
    with pytest.raises(RegistryIncomplete, match="bankgiro eller plusgiro"):
        run(desk, "region:14")
    with desk.app.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Invoice)) == 0


def test_skane_devices_are_billed_by_websesam_and_never_here(desk: Desk) -> None:
    registry(desk)
    skane = desk.api("hjalpmedel.skane")
    rollator = {
        "date": "2025-09-01",
        "kind": "assistive_device",
        "patient": {"home_region": "17", "country": "SE"},
        "care": {"region": "12"},
        "product": {"area": "mobility", "cost_sek": 3000, "advanced_adaptation": False},
    }
    take(skane, create(skane, rollator)["id"], "delivered", line=line(product_name="Rollator"))
    report = run(desk, "region:12")
    assert report.invoices == []
    (elsewhere,) = report.billed_elsewhere
    assert "Visma webSesam" in elsewhere.reason
    assert run(desk, "region:12").invoices == []


def test_period_must_be_a_month() -> None:
    from vembetalar.billing.run import month_bounds

    assert month_bounds("2024-02") == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    for bad in ("2024-13", "2024-5", "maj", "2024-05-01"):
        with pytest.raises(ValueError, match="--period"):
            month_bounds(bad)


def test_a_credit_note_reverses_an_invoice_and_frees_its_standing_events(desk: Desk) -> None:
    from vembetalar.billing.credit import CannotCredit, credit_invoice

    registry(desk)
    vgr = desk.api("lakare.vgr")
    take(vgr, create(vgr, HALLAND_AT_VGR)["id"], "dispensed", line=line())
    (invoice,) = run(desk, "region:14").invoices
    with desk.app.state.sessions() as db:
        credit = credit_invoice(
            db, issuer="region:14", number_text=invoice.number_text, reason="fel mottagare", today=TODAY
        )
        db.expunge(credit)
        with pytest.raises(CannotCredit, match="redan krediterad"):
            credit_invoice(
                db, issuer="region:14", number_text=invoice.number_text, reason="igen", today=TODAY
            )
        original = db.get(Invoice, invoice.id)
        assert original is not None and original.status == "credited"
    doc = document_from_json(credit.document_json)
    assert (credit.number_text, doc.kind) == ("K14-000001", "credit_note")
    assert doc.corrects == (invoice.number_text, TODAY)
    assert doc.payable == Decimal("1840.50")
    assert fatal_findings(to_ubl(doc)) == []
    # The event stands, so the next run invoices it again, with the next invoice number.
    (again,) = run(desk, "region:14").invoices
    assert again.number_text == "F14-000002"


def _halland_prescriber(desk: Desk) -> Any:
    """A prescriber at Region Halland (bilaga 1: Halland decides and invoices VGR)."""
    from vembetalar.security import hash_password, token_digest
    from vembetalar.store.models import ApiToken, User

    with desk.app.state.sessions() as db:
        user = User(
            username="lakare.halland",
            full_name="Hans Halland",
            role="prescriber",
            organisation_id="region:13",
            password_hash=hash_password("x"),
        )
        db.add(user)
        db.flush()
        db.add(ApiToken(user_id=user.id, token_hash=token_digest("tok-halland-2"), label="test"))
        db.commit()
    client = desk.client()
    client.headers["Authorization"] = "Bearer tok-halland-2"
    return client


def test_an_invoice_carries_only_the_personal_data_its_agreement_demands(desk: Desk) -> None:
    """Bilaga 1: personnummer (and nothing else of the patient); bilagor 2–3: nothing; Värmland:
    initials only. Checked in the XML and in the PDF's text, for every pack that invoices."""
    from pypdf import PdfReader

    from vembetalar.billing.pdf import render_pdf

    registry(desk)
    name = {"patient_id": "19811228-9874", "patient_name": "Greta Östling"}
    vgr, mas, halland = desk.api("lakare.vgr"), desk.api("mas.karlstad"), _halland_prescriber(desk)
    take(vgr, create(vgr, HALLAND_AT_VGR, **name)["id"], "dispensed", line=line())
    take(vgr, create(vgr, BILAGA_3, **name)["id"], "dispensed", line=line())
    take(halland, create(halland, BILAGA_1, **name)["id"], "dispensed", line=line(diarienummer="RH-1"))
    varmland = line(occurred_on="2023-10-05", varunummer=None)
    take(mas, create(mas, KARLSTAD_ANNEX_REGION, **name)["id"], "delivered", line=varmland)
    invoices = [
        *run(desk, "region:14").invoices,
        *run(desk, "region:13").invoices,
        *run(desk, "kommun:1780", "2023-10").invoices,
    ]
    demanded = {"vgr_ohsn": "personnummer", "region_varmland": "initials"}
    assert len(invoices) == 4
    for invoice in invoices:
        doc = document_from_json(invoice.document_json)
        route = invoice.route.rsplit("/", 1)[1]
        xml = to_ubl(doc).decode()
        reader = PdfReader(__import__("io").BytesIO(render_pdf(doc)))
        pdf = " ".join(page.extract_text() for page in reader.pages)
        for text, where in ((xml, "XML"), (pdf, "PDF")):
            assert "Greta" not in text and "Östling" not in text, f"{route} {where}: the name"
            assert carries_pnr(text) == (demanded.get(route) == "personnummer"), f"{route} {where}"
            assert ("(GÖ)" in text) == (demanded.get(route) == "initials"), f"{route} {where}"


def test_events_near_their_claim_deadline_are_warned_about_and_late_ones_still_invoiced(desk: Desk) -> None:
    """No seed states a claim period; Riksavtalet's six months apply by default."""
    registry(desk)
    vgr = desk.api("lakare.vgr")
    april = create(vgr, {**HALLAND_AT_VGR, "date": "2025-03-01"})["id"]
    take(vgr, april, "dispensed", line=line(occurred_on="2025-03-20"))  # deadline 2025-09-20: 5 days
    take(vgr, april, "dispensed", line=line(occurred_on="2025-03-01"))  # deadline 2025-09-01: lapsed
    report = run(desk, "region:14", "2025-03")
    assert len(report.invoices) == 1 and len(document_from_json(report.invoices[0].document_json).lines) == 2
    nearing, lapsed = sorted(report.warnings, key=lambda w: "ändå" in w)
    assert "ska faktureras senast 2025-09-20" in nearing
    assert "senast 2025-09-01" in lapsed and "faktureras ändå" in lapsed


def test_a_run_leaves_the_garbage_collector_as_it_found_it(desk: Desk) -> None:
    """The run pauses cyclic collection while it holds a period's objects, and only the run that
    paused it switches it back on."""
    import gc

    registry(desk)
    vgr = desk.api("lakare.vgr")
    take(vgr, create(vgr, HALLAND_AT_VGR)["id"], "dispensed", line=line())
    assert gc.isenabled()
    run(desk, "region:14")
    assert gc.isenabled()
    gc.disable()
    try:
        run(desk, "region:14")
        assert not gc.isenabled()
    finally:
        gc.enable()
