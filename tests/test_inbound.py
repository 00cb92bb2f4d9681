"""Received invoices: read safely, checked against the agreement, failures in plain Swedish."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import etree
from test_ubl import NS, bilaga1, bilaga2, credit_bilaga2, varmland

from vembetalar.billing.inbound import (
    CheckReport,
    Requirement,
    UnreadableInvoice,
    check_invoice,
    read_invoice,
)
from vembetalar.billing.ubl import to_ubl

#: What Region Värmland's agreement (seed 004) asks of a municipality's invoice.
VÄRMLAND_REQUIREMENTS = [
    Requirement.buyer_reference("9640028", "Beställar-ID"),
    Requirement.line_property("Patient", "patientens initialer"),
    Requirement.line_property("Ordinerande enhet", "ordinerande enhet"),
    Requirement.line_property("Ordinerande läkare", "ordinerande läkares namn", every_line=False),
    Requirement.line_property("Egenvård", "uppgift om egenvård"),
    Requirement.note("Patient 1 =", "nyckeln från patientnummer till initialer"),
    Requirement.line_field("varunummer"),
    Requirement.line_field("quantity"),
    Requirement.line_field("price"),
]

#: VGR → Region Halland, bilaga 2 (seed 000).
BILAGA2_REQUIREMENTS = [
    Requirement.buyer_reference("ZZXXX098", "Referensnummer"),
    Requirement.note(
        "undantagshantering av receptläkemedel", "uppgift om att kostnaden avser undantagshantering"
    ),
    Requirement.note(
        "folkbokförd i Region Halland", "uppgift om att patienten är folkbokförd i Region Halland"
    ),
    Requirement.line_property("Förskrivare", "förskrivarens namn"),
    Requirement.line_property("Arbetsplats", "förskrivarens arbetsplats"),
    Requirement.line_field("varunummer"),
]


def _without(xml: bytes, path: str) -> bytes:
    """The invoice with every element at ``path`` removed (a real received variant, not a new doc)."""
    root = etree.fromstring(xml)
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list) and found, path
    for el in found:
        assert isinstance(el, etree._Element)
        parent = el.getparent()
        assert parent is not None
        parent.remove(el)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _short(report: CheckReport) -> None:
    text = str(report)
    assert report.error is not None and not report.ok
    assert len(text.splitlines()) <= 3, text
    assert "Traceback" not in text and 'File "' not in text


# ---------------------------------------------------------------- reading what we write
def test_reads_back_what_the_writer_wrote() -> None:
    inv = read_invoice(to_ubl(varmland()))
    assert inv.kind == "invoice"
    assert inv.number == "KK-2026-0099"
    assert inv.issue_date == dt.date(2026, 11, 5)
    assert inv.period == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert inv.buyer_reference == "9640028"
    assert inv.seller.name == "Karlstads kommun" and inv.seller.endpoint == "0007:2120001850"
    assert inv.buyer.endpoint == "0007:2321000156" and inv.buyer.gln == "7362321000156"
    assert inv.buyer.org_number == "2321000156" and inv.buyer.vat_id == "SE232100015601"
    assert [line.id for line in inv.lines] == ["1", "2", "3"]
    assert inv.lines[1].price == Decimal("12.345") and inv.lines[1].amount == Decimal("370.35")
    assert inv.lines[2].property("ordinerande LÄKARE") == "David Doktor"
    assert inv.lines[0].varunummer == "700101" and inv.lines[0].unit_code == "EA"
    assert inv.payable == Decimal("1669.95")


def test_notes_are_split_into_statements() -> None:
    inv = read_invoice(to_ubl(bilaga2()))
    assert inv.notes == (
        "Kostnaden avser undantagshantering av receptläkemedel.",
        "Patienten är folkbokförd i Region Halland.",
    )


def test_credit_note_is_read() -> None:
    inv = read_invoice(to_ubl(credit_bilaga2()))
    assert inv.kind == "credit_note"
    assert [line.quantity for line in inv.lines] == [Decimal(2), Decimal(3)]


# ---------------------------------------------------------------- checking
@pytest.mark.parametrize(
    ("make", "requirements"), [(varmland, VÄRMLAND_REQUIREMENTS), (bilaga2, BILAGA2_REQUIREMENTS)]
)
def test_good_invoice_passes(make: object, requirements: list[Requirement]) -> None:
    assert callable(make)
    report = check_invoice(to_ubl(make()), requirements)
    assert report.ok, str(report)
    assert report.failures == ()
    assert str(report) == "Fakturan innehåller allt som avtalet kräver."


def test_missing_buyer_reference() -> None:
    xml = _without(to_ubl(varmland()), "/*/cbc:BuyerReference")
    assert check_invoice(xml, VÄRMLAND_REQUIREMENTS).failures == ("Beställar-ID 9640028 saknas",)


def test_wrong_buyer_reference() -> None:
    xml = to_ubl(replace(varmland(), buyer_reference="9640029"))
    assert check_invoice(xml, VÄRMLAND_REQUIREMENTS).failures == (
        "Beställar-ID är 9640029, ska vara 9640028",
    )


def test_line_property_missing_on_one_line() -> None:
    xml = _without(
        to_ubl(varmland()), "//cac:InvoiceLine[cbc:ID='3']//cac:AdditionalItemProperty[cbc:Name='Patient']"
    )
    assert check_invoice(xml, VÄRMLAND_REQUIREMENTS).failures == ("rad 3 saknar patientens initialer",)


def test_property_required_somewhere_missing_everywhere() -> None:
    xml = _without(to_ubl(varmland()), "//cac:AdditionalItemProperty[cbc:Name='Ordinerande läkare']")
    assert check_invoice(xml, VÄRMLAND_REQUIREMENTS).failures == ("ordinerande läkares namn saknas",)


def test_several_failures_in_requirement_order() -> None:
    xml = _without(
        to_ubl(varmland()), "/*/cbc:Note | /*/cbc:BuyerReference | //cac:SellersItemIdentification"
    )
    assert check_invoice(xml, VÄRMLAND_REQUIREMENTS).failures == (
        "Beställar-ID 9640028 saknas",
        "nyckeln från patientnummer till initialer saknas",
        "rad 1 saknar varunummer",
        "rad 2 saknar varunummer",
        "rad 3 saknar varunummer",
    )


def test_missing_note_of_bilaga2() -> None:
    doc = bilaga2()
    xml = to_ubl(replace(doc, notes=doc.notes[:1]))
    assert check_invoice(xml, BILAGA2_REQUIREMENTS).failures == (
        "uppgift om att patienten är folkbokförd i Region Halland saknas",
    )


def test_bilaga1_requirements() -> None:
    reqs = [
        Requirement.buyer_reference("4250001", "Beställarid"),
        Requirement.line_property("Personnummer", "patientens personnummer"),
        Requirement.line_property("Diarienummer", "diarienummer från informationsunderlaget"),
    ]
    assert check_invoice(to_ubl(bilaga1()), reqs).ok
    xml = _without(to_ubl(bilaga1()), "//cac:AdditionalItemProperty[cbc:Name='Diarienummer']")
    assert check_invoice(xml, reqs).failures == ("rad 1 saknar diarienummer från informationsunderlaget",)


def test_unknown_line_field_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown line field"):
        Requirement.line_field("colour")  # type: ignore[arg-type]


# ---------------------------------------------------------------- hostile and wrong files
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><Note>&lol9;</Note></Invoice>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:BuyerReference>&xxe;</cbc:BuyerReference></Invoice>
"""

PDF = (
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (BILLION_LAUGHS, "DOCTYPE"),
        (EXTERNAL_ENTITY, "DOCTYPE"),
        (BILLION_LAUGHS.decode().replace('<?xml version="1.0"?>', "").encode("utf-16"), "DOCTYPE"),
        (b"<Invoice><cbc:ID>1</Invoice>", "inte välformad XML"),
        (PDF, "PDF"),
        (
            b"<?xml version='1.0'?><Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>",
            "inte en e-faktura",
        ),
        (b"<Invoice/>", "inte en e-faktura"),  # right name, no UBL namespace
        (b"", "tom"),
        (b"\x00\x01\x02 binary", "XML"),
    ],
    ids=[
        "billion-laughs",
        "external-entity",
        "utf16-doctype",
        "malformed",
        "pdf",
        "order",
        "no-ns",
        "empty",
        "bin",
    ],
)
def test_hostile_or_wrong_files_give_a_short_swedish_error(data: bytes, expected: str) -> None:
    report = check_invoice(data, VÄRMLAND_REQUIREMENTS)
    _short(report)
    assert expected in str(report)
    assert report.invoice is None
    with pytest.raises(UnreadableInvoice):
        read_invoice(data)


def test_external_entity_is_never_resolved() -> None:
    report = check_invoice(EXTERNAL_ENTITY, [])
    assert "root:" not in str(report)
