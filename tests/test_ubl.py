"""Every kind of e-invoice this project produces passes the official PEPPOL BIS 3.0 validation.

The documents follow the agreements in the seeds: VGR ↔ Region Halland (bilaga 1, 2, 3 of the
undantagshantering routine) and a Värmland municipality invoicing Region Värmland for several
patients. Real organisation numbers are used where they are public and Luhn-valid (VGR 232100-0131,
Region Halland 232100-0115, Region Värmland 232100-0156, Karlstad kommun 212000-1850); personal data
are made up. The validator is the official one (``tests/peppol/validate.py``), compiled once.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from lxml import etree
from personnummer import personnummer

from vembetalar.billing.document import (
    Address,
    DocLine,
    InvoiceDocument,
    OrgParty,
    TaxTreatment,
    document_from_json,
    document_to_json,
)
from vembetalar.billing.ubl import to_ubl

PEPPOL = Path(__file__).parent / "peppol"
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}

# ---------------------------------------------------------------- parties (from the seeds)
# The reason text is the brief's; it is pack data. Note that ML 1994:200 (3 kap. 4 §) was replaced by
# mervärdesskattelagen 2023:200 on 2023-07-01: the packs should cite the paragraph in force.
EXEMPT_HEALTHCARE = TaxTreatment(
    category="E", exemption_reason="Momsfri sjukvård enligt 3 kap. 4 § mervärdesskattelagen"
)

VGR = OrgParty(
    name="Västra Götalandsregionen",
    org_number="232100-0131",
    endpoint="0007:2321000131",
    vat_id="SE232100013101",
    address=Address(lines=("Regionens hus",), postcode="462 80", city="Vänersborg"),
    bankgiro="5050-1055",  # demo giro
)
HALLAND = OrgParty(
    name="Region Halland",
    org_number="232100-0115",
    vat_id="SE232100011501",
    address=Address(lines=("Box 310",), postcode="737 26", city="FAGERSTA"),
)
VGR_OHS = OrgParty(  # bilaga 1: "Fakturan ställs till"
    name="Västra Götalandsregionen",
    org_number="232100-0131",
    gln="7350003379300",
    endpoint="0088:7350003379300",
    vat_id="SE232100013101",
    department="Operativ hälso- och sjukvårdsnämnd",
    address=Address(lines=("FE842",), postcode="405 83", city="Göteborg"),
)
HALLAND_SELLER = replace(HALLAND, plusgiro="12 34 56-7", address=Address(("Box 517",), "301 80", "Halmstad"))
KARLSTAD = OrgParty(
    name="Karlstads kommun",
    org_number="212000-1850",
    vat_id="SE212000185001",
    address=Address(lines=("Stadshuset",), postcode="651 84", city="Karlstad"),
    department="Hemsjukvården",
    contact_email="hemsjukvard@example.se",
    bankgiro="123-4567",  # demo giro
)
VÄRMLAND = OrgParty(
    name="Region Värmland",
    org_number="232100-0156",
    gln="7362321000156",
    endpoint="0007:2321000156",
    vat_id="SE232100015601",
    address=Address(lines=("Box 5081",), postcode="650 05", city="KARLSTAD"),
)

NOTE_RX = "Kostnaden avser undantagshantering av receptläkemedel."
NOTE_HALLAND = "Patienten är folkbokförd i Region Halland."
PERSONNUMMER = "19121212-1212"  # Skatteverket's published test number


def _line(n: int, name: str, vnr: str, qty: str, price: str, *props: tuple[str, str], **kw: Any) -> DocLine:
    q, p = Decimal(qty), Decimal(price)
    amount = (q * p).quantize(Decimal("0.01"))
    return DocLine(n, name, q, p, amount, varunummer=vnr, properties=props, **kw)


def bilaga2() -> InvoiceDocument:
    """VGR invoices Region Halland: patient from Halland treated in VGR without remiss."""
    prescriber = (("Förskrivare", "Anna Läkare"), ("Arbetsplats", "Vårdcentralen Hjärtat, Borås"))
    return InvoiceDocument(
        kind="invoice",
        number="VGR-2026-000123",
        issue_date=dt.date(2026, 11, 2),
        due_date=dt.date(2026, 12, 2),
        seller=VGR,
        buyer=HALLAND,
        buyer_reference="ZZXXX098",
        project_reference="61165",
        contract_reference="vgr_halland_undantag_2023/bilaga-2",
        notes=(NOTE_RX, NOTE_HALLAND),
        period=(dt.date(2026, 10, 1), dt.date(2026, 10, 31)),
        tax=EXEMPT_HEALTHCARE,
        lines=(
            _line(
                1,
                "Exempelmedel 10 mg tablett, 30 st",
                "123456",
                "2",
                "1234.50",
                *prescriber,
                occurred_on=dt.date(2026, 10, 7),
            ),
            _line(
                2,
                'Exempelmedel 20 mg & <lösning> "oral"',
                "654321",
                "3",
                "333.333",
                *prescriber,
                occurred_on=dt.date(2026, 10, 21),
            ),
        ),
    )


def bilaga3() -> InvoiceDocument:
    """The treating VGR unit invoices Region Halland for a remitted patient (regionsjukvård)."""
    props = (("Förskrivare", "Bertil Specialist"), ("Remitterande enhet", "Hallands sjukhus Halmstad"))
    return replace(
        bilaga2(),
        number="VGR-2026-000124",
        buyer_reference="ZZXXX104",
        project_reference=None,
        contract_reference="vgr_halland_undantag_2023/bilaga-3",
        lines=(_line(1, "Särläkemedel 5 mg injektionsflaska", "112233", "1", "48500", *props),),
    )


def bilaga1() -> InvoiceDocument:
    """Region Halland invoices VGR (Operativ hälso- och sjukvårdsnämnd) — the one that names the patient."""
    props = (("Personnummer", PERSONNUMMER), ("Diarienummer", "RS 2026/0421"))
    return InvoiceDocument(
        kind="invoice",
        number="RH-2026-4711",
        issue_date=dt.date(2026, 11, 3),
        due_date=dt.date(2026, 12, 3),
        seller=HALLAND_SELLER,
        buyer=VGR_OHS,
        buyer_reference="4250001",
        notes=(NOTE_RX,),
        period=(dt.date(2026, 10, 1), dt.date(2026, 10, 31)),
        tax=EXEMPT_HEALTHCARE,
        lines=(
            _line(
                1,
                "Exempelmedel 10 mg tablett, 100 st",
                "445566",
                "1",
                "5120.00",
                *props,
                occurred_on=dt.date(2026, 10, 12),
            ),
        ),
    )


def varmland() -> InvoiceDocument:
    """Karlstads kommun invoices Region Värmland for products to several patients, marked by number."""

    def ordination(patient: str, unit: str, doctor: str) -> tuple[tuple[str, str], ...]:
        return (
            ("Patient", patient),
            ("Ordinerande enhet", unit),
            ("Ordinerande läkare", doctor),
            ("Egenvård", "nej"),
        )

    p1 = ordination("1 (AB)", "Vårdcentralen Gripen", "Cecilia Doktor")
    p2 = ordination("2 (CD)", "Centralsjukhuset Karlstad, avd 12", "David Doktor")
    return InvoiceDocument(
        kind="invoice",
        number="KK-2026-0099",
        issue_date=dt.date(2026, 11, 5),
        due_date=dt.date(2026, 12, 5),
        seller=KARLSTAD,
        buyer=VÄRMLAND,
        buyer_reference="9640028",
        notes=("Produkterna är märkta med patientnummer: Patient 1 = AB, Patient 2 = CD.",),
        period=(dt.date(2026, 10, 1), dt.date(2026, 10, 31)),
        tax=EXEMPT_HEALTHCARE,
        lines=(
            _line(1, "Kompressionsstrumpa klass 2", "700101", "4", "189.90", *p1, note="Patient 1 (AB)"),
            _line(2, "Sårförband 10x10 cm", "700202", "30", "12.345", *p1, note="Patient 1 (AB)"),
            _line(3, "Sondmatningsaggregat", "700303", "10", "54.00", *p2, note="Patient 2 (CD)"),
        ),
    )


def credit_bilaga2() -> InvoiceDocument:
    """Credits invoice VGR-2026-000123 in full (BT-25/26)."""
    original = bilaga2()
    return replace(
        original,
        kind="credit_note",
        number="VGR-2026-K-000007",
        issue_date=dt.date(2026, 11, 20),
        due_date=dt.date(2026, 11, 20),
        corrects=(original.number, original.issue_date),
        notes=(*original.notes, "Kreditering av faktura VGR-2026-000123: fel förpackningsstorlek."),
    )


KINDS = {
    "bilaga2": bilaga2,
    "bilaga3": bilaga3,
    "bilaga1": bilaga1,
    "varmland": varmland,
    "credit_bilaga2": credit_bilaga2,
}


# ---------------------------------------------------------------- the official validator
def _load_validator_class() -> Any:
    spec = importlib.util.spec_from_file_location("peppol_validate", PEPPOL / "validate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Validator


@pytest.fixture(scope="session")
def validator() -> Any:
    pytest.importorskip("saxonche")
    return _load_validator_class()(PEPPOL)


def fatal_findings(validator: Any, xml: bytes, tmp_path: Path, name: str = "doc.xml") -> list[str]:
    path = tmp_path / name
    path.write_bytes(xml)
    findings, _notes = validator.validate(path)
    return [
        f"{f['stage']} {f['id']}: {f['text']} at {f['location']}" for f in findings if f["flag"] == "fatal"
    ]


def all_findings(validator: Any, xml: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "doc.xml"
    path.write_bytes(xml)
    findings, _notes = validator.validate(path)
    return [f"{f['flag']} {f['id']}" for f in findings]


def xp(xml: bytes, path: str) -> list[str]:
    result = etree.fromstring(xml).xpath(path, namespaces=NS)
    assert isinstance(result, list)
    return [str(x).strip() if not isinstance(x, etree._Element) else (x.text or "").strip() for x in result]


def personnummer_in(xml: bytes) -> list[str]:
    """Every 10/12-digit run (with or without separator) that is a valid personnummer."""
    text = xml.decode("utf-8")
    candidates = re.findall(r"(?<!\d)(?:\d{2})?\d{6}[-+]?\d{4}(?!\d)", text)
    return [c for c in candidates if personnummer.valid(c)]


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_passes_official_validation(kind: str, validator: Any, tmp_path: Path) -> None:
    xml = to_ubl(KINDS[kind]())
    assert fatal_findings(validator, xml, tmp_path) == []
    # Warnings too: SE-R-011/012 (payment means) and the rest are clean.
    assert all_findings(validator, xml, tmp_path) == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_deterministic_bytes(kind: str) -> None:
    assert to_ubl(KINDS[kind]()) == to_ubl(KINDS[kind]())


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_stored_document_comes_back_exactly_as_issued(kind: str) -> None:
    """The invoice keeps its document as JSON; the XML and PDF are rendered from what comes back."""
    doc = KINDS[kind]()
    stored = document_to_json(doc)
    assert json.loads(json.dumps(stored)) == stored  # plain JSON: text amounts, ISO dates
    assert all(isinstance(line["amount"], str) for line in stored["lines"])
    assert document_from_json(stored) == doc


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_personnummer_except_bilaga1(kind: str) -> None:
    found = personnummer_in(to_ubl(KINDS[kind]()))
    if kind == "bilaga1":
        assert found == [PERSONNUMMER]
    else:
        assert found == []


def test_bilaga2_content() -> None:
    xml = to_ubl(bilaga2())
    assert xp(xml, "/*/cbc:CustomizationID") == [
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    ]
    assert xp(xml, "/*/cbc:InvoiceTypeCode") == ["380"]
    assert xp(xml, "/*/cbc:BuyerReference") == ["ZZXXX098"]
    assert xp(xml, "/*/cac:ProjectReference/cbc:ID") == ["61165"]
    # one note (PEPPOL-EN16931-R002), one statement per line
    assert xp(xml, "/*/cbc:Note") == [f"{NOTE_RX}\n{NOTE_HALLAND}"]
    assert xp(xml, "//cac:AccountingSupplierParty//cbc:EndpointID/@schemeID") == ["0007"]
    assert xp(xml, "//cac:AccountingSupplierParty//cbc:EndpointID") == ["2321000131"]
    assert xp(xml, "//cac:AccountingCustomerParty//cbc:EndpointID") == ["2321000115"]
    assert xp(xml, "//cac:AccountingCustomerParty//cbc:StreetName") == ["Box 310"]
    assert xp(xml, "//cac:AccountingSupplierParty//cac:PartyLegalEntity/cbc:CompanyID") == ["2321000131"]
    # 2 × 1234.50 + 3 × 333.333 (= 999.999 → 1000.00)
    assert xp(xml, "//cac:LegalMonetaryTotal/cbc:PayableAmount") == ["3469.00"]
    assert xp(xml, "//cac:LegalMonetaryTotal/cbc:LineExtensionAmount") == ["3469.00"]
    assert xp(xml, "//cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == ["E"]
    assert xp(xml, "//cac:TaxSubtotal//cbc:TaxExemptionReason") == [EXEMPT_HEALTHCARE.exemption_reason]
    assert xp(xml, "//cac:InvoiceLine[2]/cac:Price/cbc:PriceAmount") == ["333.333"]
    assert xp(xml, "//cac:InvoiceLine[1]//cac:SellersItemIdentification/cbc:ID") == ["123456"]
    assert xp(xml, "//cac:InvoiceLine[1]//cac:AdditionalItemProperty/cbc:Name") == [
        "Förskrivare",
        "Arbetsplats",
    ]
    assert xp(xml, "//cac:InvoiceLine[1]//cac:AdditionalItemProperty/cbc:Value") == [
        "Anna Läkare",
        "Vårdcentralen Hjärtat, Borås",
    ]
    assert xp(xml, "//cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID") == ["50501055"]
    assert xp(xml, "//cac:PaymentMeans//cac:FinancialInstitutionBranch/cbc:ID") == ["SE:BANKGIRO"]
    # escaping: the text survives a round trip unchanged
    assert xp(xml, "//cac:InvoiceLine[2]/cac:Item/cbc:Name") == ['Exempelmedel 20 mg & <lösning> "oral"']


def test_bilaga3_content() -> None:
    xml = to_ubl(bilaga3())
    assert xp(xml, "/*/cbc:BuyerReference") == ["ZZXXX104"]
    assert xp(xml, "//cac:AdditionalItemProperty/cbc:Name") == ["Förskrivare", "Remitterande enhet"]
    assert xp(xml, "/*/cac:ProjectReference") == []


def test_bilaga1_content() -> None:
    xml = to_ubl(bilaga1())
    assert xp(xml, "/*/cbc:BuyerReference") == ["4250001"]
    assert xp(xml, "//cac:AccountingCustomerParty//cbc:EndpointID") == ["7350003379300"]
    assert xp(xml, "//cac:AccountingCustomerParty//cbc:EndpointID/@schemeID") == ["0088"]
    assert xp(xml, "//cac:AccountingCustomerParty//cac:PartyIdentification/cbc:ID") == ["7350003379300"]
    assert xp(xml, "//cac:AccountingCustomerParty//cac:Contact/cbc:Name") == [
        "Operativ hälso- och sjukvårdsnämnd"
    ]
    assert xp(xml, "//cac:AccountingCustomerParty//cbc:StreetName") == ["FE842"]
    assert xp(xml, "//cac:AccountingCustomerParty//cbc:PostalZone") == ["405 83"]
    assert xp(xml, "//cac:AdditionalItemProperty[cbc:Name='Personnummer']/cbc:Value") == [PERSONNUMMER]
    assert xp(xml, "//cac:AdditionalItemProperty[cbc:Name='Diarienummer']/cbc:Value") == ["RS 2026/0421"]
    assert xp(xml, "//cac:InvoiceLine/cac:InvoicePeriod/cbc:StartDate") == ["2026-10-12"]
    assert xp(xml, "//cac:PaymentMeans//cac:FinancialInstitutionBranch/cbc:ID") == ["SE:PLUSGIRO"]
    assert xp(xml, "//cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID") == ["1234567"]


def test_varmland_content() -> None:
    xml = to_ubl(varmland())
    assert xp(xml, "/*/cbc:BuyerReference") == ["9640028"]
    assert xp(xml, "//cac:AccountingCustomerParty//cbc:EndpointID") == ["2321000156"]
    assert xp(xml, "//cac:AccountingCustomerParty//cbc:EndpointID/@schemeID") == ["0007"]
    assert xp(xml, "//cac:AccountingCustomerParty//cac:PartyIdentification/cbc:ID/@schemeID") == ["0088"]
    assert xp(xml, "//cac:AccountingSupplierParty//cbc:EndpointID") == ["2120001850"]
    assert xp(xml, "//cac:AccountingSupplierParty//cbc:ElectronicMail") == ["hemsjukvard@example.se"]
    assert xp(xml, "//cac:InvoiceLine/cbc:Note") == ["Patient 1 (AB)", "Patient 1 (AB)", "Patient 2 (CD)"]
    assert xp(xml, "//cac:AdditionalItemProperty[cbc:Name='Patient']/cbc:Value") == [
        "1 (AB)",
        "1 (AB)",
        "2 (CD)",
    ]
    assert xp(
        xml, "//cac:InvoiceLine[3]//cac:AdditionalItemProperty[cbc:Name='Ordinerande läkare']/cbc:Value"
    ) == ["David Doktor"]
    assert xp(xml, "//cac:AdditionalItemProperty[cbc:Name='Egenvård']/cbc:Value") == ["nej"] * 3
    assert "Patient 1 = AB" in xp(xml, "/*/cbc:Note")[0]
    # 4 × 189.90 + 30 × 12.345 (= 370.35) + 10 × 54
    assert xp(xml, "//cac:LegalMonetaryTotal/cbc:PayableAmount") == ["1669.95"]


def test_credit_note_content() -> None:
    xml = to_ubl(credit_bilaga2())
    assert etree.QName(etree.fromstring(xml)).localname == "CreditNote"
    assert xp(xml, "/*/cbc:CreditNoteTypeCode") == ["381"]
    assert xp(xml, "/*/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == ["VGR-2026-000123"]
    assert xp(xml, "/*/cac:BillingReference/cac:InvoiceDocumentReference/cbc:IssueDate") == ["2026-11-02"]
    assert xp(xml, "/*/cac:AdditionalDocumentReference[cbc:DocumentTypeCode='50']/cbc:ID") == ["61165"]
    assert xp(xml, "//cac:CreditNoteLine/cbc:CreditedQuantity") == ["2", "3"]
    assert xp(xml, "//cac:LegalMonetaryTotal/cbc:PayableAmount") == ["3469.00"]


def test_f_skatt_and_endpoint_fallbacks(validator: Any, tmp_path: Path) -> None:
    """SE-R-005 wording; an endpoint derived from the org number (0007) or, failing that, the GLN."""
    seller = replace(VGR, endpoint=None, vat_id=None, f_skatt=True)
    buyer = replace(HALLAND, org_number=None, gln="7350003379300", vat_id=None)
    doc = replace(bilaga2(), seller=seller, buyer=buyer)
    xml = to_ubl(doc)
    assert fatal_findings(validator, xml, tmp_path) == []
    assert xp(xml, "//cac:AccountingSupplierParty//cac:PartyTaxScheme/cbc:CompanyID") == [
        "Godkänd för F-skatt"
    ]
    assert xp(xml, "//cac:AccountingSupplierParty//cac:PartyTaxScheme/cac:TaxScheme/cbc:ID") == ["TAX"]
    assert xp(xml, "//cac:AccountingSupplierParty//cbc:EndpointID/@schemeID") == ["0007"]
    assert xp(xml, "//cac:AccountingCustomerParty//cbc:EndpointID/@schemeID") == ["0088"]


def test_category_o_without_vat_ids_passes(validator: Any, tmp_path: Path) -> None:
    tax = TaxTreatment("O", exemption_code="VATEX-EU-O", exemption_reason="Ej föremål för moms")
    doc = replace(
        varmland(), tax=tax, seller=replace(KARLSTAD, vat_id=None), buyer=replace(VÄRMLAND, vat_id=None)
    )
    xml = to_ubl(doc)
    assert fatal_findings(validator, xml, tmp_path) == []
    assert xp(xml, "//cac:ClassifiedTaxCategory/cbc:Percent") == []


def test_category_s_with_tax(validator: Any, tmp_path: Path) -> None:
    """Should a pack ever decide a cost is taxable, the VAT is computed and the totals still add up."""
    xml = to_ubl(replace(varmland(), tax=TaxTreatment("S", Decimal(25))))
    assert fatal_findings(validator, xml, tmp_path) == []
    assert xp(xml, "/*/cac:TaxTotal/cbc:TaxAmount") == ["417.49"]  # 25 % of 1669.95, rounded half up
    assert xp(xml, "//cac:LegalMonetaryTotal/cbc:PayableAmount") == ["2087.44"]


def test_refusals_name_the_rule() -> None:
    with pytest.raises(ValueError, match="BR-O-02"):
        to_ubl(replace(varmland(), tax=TaxTreatment("O", exemption_code="VATEX-EU-O")))
    with pytest.raises(ValueError, match="BR-E-02"):
        to_ubl(replace(varmland(), seller=replace(KARLSTAD, vat_id=None)))
    with pytest.raises(ValueError, match="BR-E-10"):
        to_ubl(replace(varmland(), tax=TaxTreatment("E")))
    with pytest.raises(ValueError, match="R120"):
        bad = replace(varmland().lines[0], amount=Decimal("700.00"))
        to_ubl(replace(varmland(), lines=(bad,)))
    with pytest.raises(ValueError, match="whole öre"):
        bad = replace(varmland().lines[0], amount=Decimal("759.601"))
        to_ubl(replace(varmland(), lines=(bad,)))
    with pytest.raises(ValueError, match="R110"):
        bad = replace(varmland().lines[0], occurred_on=dt.date(2026, 9, 30))
        to_ubl(replace(varmland(), lines=(bad,)))
    with pytest.raises(ValueError, match="R003"):
        to_ubl(replace(varmland(), buyer_reference=" "))
    with pytest.raises(ValueError, match="not ten digits"):
        to_ubl(replace(varmland(), buyer=replace(VÄRMLAND, endpoint="0007:232100015")))
    with pytest.raises(ValueError, match="BT-25"):
        to_ubl(replace(bilaga2(), kind="credit_note"))


def test_text_is_cleaned_and_long_names_kept_in_description(validator: Any, tmp_path: Path) -> None:
    long_name = "Läkemedel " + "med mycket lång benämning " * 8
    line = replace(varmland().lines[0], description="  Strumpa\x00\x1b klass 2\ufffe ")
    line2 = replace(varmland().lines[2], description=long_name, note="\x07")
    doc = replace(varmland(), lines=(line, line2), notes=("Nyckel\x0c: 1 = AB", ""))
    xml = to_ubl(doc)
    assert fatal_findings(validator, xml, tmp_path) == []
    assert xp(xml, "//cac:InvoiceLine[1]/cac:Item/cbc:Name") == ["Strumpa klass 2"]
    assert xp(xml, "/*/cbc:Note") == ["Nyckel: 1 = AB"]
    assert xp(xml, "//cac:InvoiceLine[2]/cbc:Note") == []
    name = xp(xml, "//cac:InvoiceLine[2]/cac:Item/cbc:Name")[0]
    assert len(name) <= 100 and name.endswith("…")
    assert xp(xml, "//cac:InvoiceLine[2]/cac:Item/cbc:Description") == [long_name.strip()]


@pytest.mark.parametrize("example", sorted(p.name for p in (PEPPOL / "examples").glob("*.xml")))
def test_official_examples_pass_the_same_validator(example: str, validator: Any) -> None:
    findings, _ = validator.validate(PEPPOL / "examples" / example)
    assert [f["id"] for f in findings if f["flag"] == "fatal"] == []


def test_validation_time_per_document(validator: Any, tmp_path: Path) -> None:
    """Guards the suite's speed: the compiled rules check a document in well under a second."""
    docs = [to_ubl(make()) for make in KINDS.values()]
    start = time.perf_counter()
    for i, xml in enumerate(docs * 4):
        assert fatal_findings(validator, xml, tmp_path, f"doc{i}.xml") == []
    per_doc = (time.perf_counter() - start) / (len(docs) * 4)
    print(f"validation: {per_doc * 1000:.1f} ms per document (compile {validator.compile_s:.2f} s once)")
    assert per_doc < 1.0


def test_many_invoices_are_written_on_every_core_each_file_named_by_its_number(tmp_path: Path) -> None:
    """``invoice run --out`` for a big month: a process pool, one XML per invoice, progress told."""
    from dataclasses import replace

    from vembetalar.billing.files import POOL_FROM, write_all

    documents = [document_to_json(replace(bilaga2(), number=f"F14-{n:06d}")) for n in range(POOL_FROM + 4)]
    told: list[int] = []
    written = write_all(documents, tmp_path / "ut", pdf=False, workers=2, progress=told.append)
    names = sorted(p.name for p in (tmp_path / "ut").iterdir())
    assert written == sum(told) == len(documents) == len(names)
    assert names[0] == "F14-000000.xml" and names[-1] == f"F14-{POOL_FROM + 3:06d}.xml"
    assert (tmp_path / "ut" / "F14-000007.xml").read_bytes() == to_ubl(
        replace(bilaga2(), number="F14-000007")
    )


def test_the_writer_spreads_a_month_over_its_processes_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk ends with the document that reaches the line limit (or the document limit), so no
    process gets the whole month while another waits; every document is written once."""
    from dataclasses import replace

    from vembetalar.billing import files

    monkeypatch.setattr(files, "CHUNK_LINES", 5)
    told: list[int] = []
    with files.FileWriter(tmp_path / "ut", pdf=False, workers=2, progress=told.append) as writer:
        for n in range(20):
            document = document_to_json(replace(bilaga2(), number=f"F14-{n:06d}"))
            writer.add(orjson.dumps(document), 2)  # two lines each: three documents reach five lines
    assert sorted(told) == [2] + [3] * 6 and writer.written == 20
    assert len(list((tmp_path / "ut").glob("*.xml"))) == 20


def test_line_text_with_markup_characters_reads_back_and_validates(validator: Any, tmp_path: Path) -> None:
    """Lines are written as text for speed: what XML must escape is escaped, what it cannot carry
    is dropped, and a parser reads back exactly what was meant."""
    from dataclasses import replace

    odd = DocLine(
        number=1,
        description='Förband "A & B" <steril>\r 5 x 5 cm\x07',
        quantity=Decimal("1.500"),
        unit_price=Decimal("12.3450"),
        amount=Decimal("18.52"),
        varunummer="123456",
        properties=(("Enhet <avd>", 'Avd 12 & "13"'),),
        note="Not & <mer>",
    )
    xml = to_ubl(replace(bilaga2(), lines=(odd,)))
    assert xp(xml, "//cac:InvoiceLine/cac:Item/cbc:Name/text()") == ['Förband "A & B" <steril>\r 5 x 5 cm']
    assert xp(xml, "//cac:AdditionalItemProperty/cbc:Value/text()") == ['Avd 12 & "13"']
    assert xp(xml, "//cac:InvoiceLine/cbc:Note/text()") == ["Not & <mer>"]
    assert fatal_findings(validator, xml, tmp_path) == []
