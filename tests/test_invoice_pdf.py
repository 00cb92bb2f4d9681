"""The invoice PDF: rendered from exactly the InvoiceDocument, it must say in Swedish what the
e-invoice says: every note, every line property, every identifier, amounts as ``1 840,50``.

The text is read back with pypdf; a test that looks for a string normalises the no-break spaces
the PDF uses between thousands (so ``1 840,50`` matches) and collapses line breaks.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from dataclasses import replace
from decimal import Decimal

import pytest
from pypdf import PdfReader

from vembetalar.billing.document import (
    Address,
    DocLine,
    InvoiceDocument,
    OrgParty,
    TaxTreatment,
)
from vembetalar.billing.pdf import money, org_number, render_html, render_pdf, swedish_number
from vembetalar.security import BadPersonnummer, normalise_personnummer

VGR = OrgParty(
    name="Västra Götalandsregionen",
    org_number="2321000131",
    vat_id="SE232100013101",
    f_skatt=True,
    address=Address(lines=("Regionens hus", "Box 1091"), postcode="405 23", city="GÖTEBORG"),
    department="Läkemedelsenheten",
    contact_email="lakemedel@vgregion.se",
    bankgiro="5022-5586",
    endpoint="0007:2321000131",
)
HALLAND = OrgParty(
    name="Region Halland",
    org_number="2321000115",
    address=Address(lines=("Box 310",), postcode="737 26", city="FAGERSTA"),
    gln="7365566000010",
)
VÄRMLAND = OrgParty(
    name="Region Värmland",
    org_number="2321000156",
    gln="7362321000156",
    endpoint="0007:2321000156",
    address=Address(lines=("Box 5081",), postcode="650 05", city="KARLSTAD"),
    contact_email="ekonomiservice@regionvarmland.se",
)
ARVIKA = OrgParty(
    name="Arvika kommun",
    org_number="2120001801",
    vat_id="SE212000180101",
    f_skatt=True,
    address=Address(lines=("Ö. Esplanaden 5",), postcode="671 81", city="ARVIKA"),
    department="Vård och omsorg, hemsjukvården",
    plusgiro="12 34 56-7",
)
EXEMPT = TaxTreatment(
    category="E",
    exemption_code="VATEX-EU-132-1B",
    exemption_reason="Sjukvård undantagen från moms enligt 3 kap. 4 § ML",
)

VGR_NOTES = (
    "Fakturan avser kostnaden för undantagshantering av receptläkemedel.",
    "Patienten är folkbokförd i Region Halland.",
)


def halland_invoice() -> InvoiceDocument:
    """VGR invoices Region Halland under bilaga 2: the exception handling of prescription drugs,
    prescriber and workplace on each line, product-specific information, no personnummer."""
    return InvoiceDocument(
        kind="invoice",
        number="VGR-2024-000117",
        issue_date=dt.date(2024, 4, 2),
        due_date=dt.date(2024, 5, 2),
        seller=VGR,
        buyer=HALLAND,
        buyer_reference="ZZXXX098",
        project_reference="61165",
        contract_reference="vgr_halland_undantag_2023/bilaga-2",
        period=(dt.date(2024, 3, 1), dt.date(2024, 3, 31)),
        tax=EXEMPT,
        notes=VGR_NOTES,
        lines=(
            DocLine(
                number=1,
                description="Xenical 120 mg kapsel, 84 st",
                varunummer="123456",
                quantity=Decimal(2),
                unit_price=Decimal("800.25"),
                amount=Decimal("1600.50"),
                occurred_on=dt.date(2024, 3, 12),
                properties=(
                    ("Förskrivare", "Åsa Öberg"),
                    ("Arbetsplats", "Vårdcentral Högsbo, Göteborg"),
                ),
            ),
            DocLine(
                number=2,
                description="Ärtsoppa-fri näringsdryck, flaska",
                varunummer="654321",
                quantity=Decimal("1.5"),
                unit_price=Decimal("160"),
                amount=Decimal("240.00"),
                properties=(
                    ("Förskrivare", "Björn Ängström"),
                    ("Arbetsplats", "Sahlgrenska Universitetssjukhuset, avd 123"),
                ),
                note="Beviljad undantagshantering, dnr RH 2024-0042",
            ),
        ),
    )


def värmland_credit_note() -> InvoiceDocument:
    """A municipality credits Region Värmland for several patients: each product carries a
    number referring to the patient's initials, the key is in the notes."""
    return InvoiceDocument(
        kind="credit_note",
        number="ARV-K-2024-009",
        issue_date=dt.date(2024, 6, 10),
        due_date=dt.date(2024, 7, 10),
        seller=ARVIKA,
        buyer=VÄRMLAND,
        buyer_reference="9640028",
        contract_reference="varmland_mtp_sarnar_2021",
        corrects=("ARV-2024-041", dt.date(2024, 5, 3)),
        tax=TaxTreatment(category="S", percent=Decimal(25)),
        notes=(
            "Patient 1 = ÅÖ, patient 2 = KL.",
            "Patient 2 har egenvård.",
        ),
        lines=(
            DocLine(
                number=1,
                description="Kateter Lofric, 40 st",
                varunummer="SN-77001",
                quantity=Decimal(1),
                unit_price=Decimal("1250.00"),
                amount=Decimal("1250.00"),
                properties=(
                    ("Patient", "1 (ÅÖ)"),
                    ("Ordinerande enhet", "Centralsjukhuset Karlstad, urologmottagningen"),
                    ("Ordinerande läkare", "Märta Lind"),
                ),
            ),
            DocLine(
                number=2,
                description="Stomipåse öppen, 30 st",
                varunummer="SN-88112",
                quantity=Decimal(3),
                unit_price=Decimal("196.8333"),
                amount=Decimal("590.50"),
                properties=(
                    ("Patient", "2 (KL)"),
                    ("Ordinerande enhet", "Hemsjukvården Arvika"),
                    ("Ordinerande läkare", "Göran Ek"),
                    ("Egenvård", "Ja"),
                ),
            ),
        ),
    )


def pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def flat(text: str) -> str:
    """One line, ordinary spaces: how a test looks for a phrase whatever the layout did."""
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u202f", " "))


@pytest.fixture(scope="module")
def halland_pdf() -> bytes:
    return render_pdf(halland_invoice())


@pytest.fixture(scope="module")
def värmland_pdf() -> bytes:
    return render_pdf(värmland_credit_note())


def test_swedish_number_format() -> None:
    assert money(Decimal("1840.5")) == "1\u00a0840,50"
    assert money(Decimal("1234567.891")) == "1\u00a0234\u00a0567,891"
    assert money(Decimal("0")) == "0,00"
    assert money(Decimal("-590.50")) == "-590,50"
    assert swedish_number(Decimal("1.500")) == "1,5"
    assert swedish_number(Decimal("12000")) == "12\u00a0000"
    assert swedish_number(Decimal("2E+3")) == "2\u00a0000"
    assert org_number("2321000156") == "232100-0156"
    assert org_number("232100-0156") == "232100-0156"
    assert org_number("ABC") == "ABC"


def test_halland_invoice_is_one_a4_page_pdf(halland_pdf: bytes) -> None:
    assert halland_pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(halland_pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width) * 25.4 / 72), round(float(box.height) * 25.4 / 72)) == (210, 297)


def test_halland_invoice_says_what_bilaga_2_asks(halland_pdf: bytes) -> None:
    doc = halland_invoice()
    text = flat(pages(halland_pdf)[0])
    assert "Faktura VGR-2024-000117" in text
    assert "Fakturadatum 2024-04-02" in text
    assert "Förfallodatum 2024-05-02" in text
    assert "Period 2024-03-01 – 2024-03-31" in text
    assert "Er referens ZZXXX098" in text
    assert "Projekt 61165" in text
    assert "Avtal vgr_halland_undantag_2023/bilaga-2" in text
    for note in doc.notes:
        assert note in text
    for line in doc.lines:
        assert line.description in text
        assert line.varunummer and line.varunummer in text
        for name, value in line.properties:
            assert f"{name}: {value}" in text
    assert "Datum: 2024-03-12" in text
    assert "Beviljad undantagshantering, dnr RH 2024-0042" in text
    # Amounts in Swedish: à-pris, belopp, totals.
    for amount in ("800,25", "1 600,50", "160,00", "240,00", "1,5"):
        assert amount in text
    assert "Summa exkl. moms 1 840,50 kr" in text
    assert "Att betala 1 840,50 kr" in text
    assert "Moms 0 % Kategori E – undantagen från moms. Undantag: VATEX-EU-132-1B, " in text
    assert "Sjukvård undantagen från moms enligt 3 kap. 4 § ML 0,00 kr" in text


def test_halland_invoice_names_both_parties(halland_pdf: bytes) -> None:
    text = flat(pages(halland_pdf)[0])
    # Region Halland takes paper at Box 310: the address must be whole.
    assert "Region Halland Box 310 737 26 FAGERSTA" in text
    assert "GLN: 7365566000010" in text
    assert "Organisationsnummer: 232100-0115" in text
    # The seller: name, address, identifiers, payment.
    assert "Västra Götalandsregionen" in text
    assert "Läkemedelsenheten" in text
    assert "Box 1091 405 23 GÖTEBORG" in text
    assert "Organisationsnummer: 232100-0131" in text
    assert "Momsregistreringsnummer: SE232100013101" in text
    assert "Godkänd för F-skatt" in text
    assert "PEPPOL-id: 0007:2321000131" in text
    assert "Bankgiro: 5022-5586" in text
    assert "lakemedel@vgregion.se" in text


def test_swedish_letters_survive(halland_pdf: bytes) -> None:
    text = pages(halland_pdf)[0]
    for word in ("Åsa Öberg", "Björn Ängström", "Västra Götalandsregionen", "Förfallodatum", "Benämning"):
        assert word in text


def personnummer_in(text: str) -> list[str]:
    """Every run of 10 or 12 digits (with -, + or a space before the last four) that is a valid
    personnummer or samordningsnummer: organisation numbers fail the date, most others the Luhn digit."""
    found = []
    for match in re.finditer(r"(?<![\d-])(?:\d{2})?\d{6}[-+ ]?\d{4}(?![\d-])", text.replace("\u00a0", " ")):
        try:
            normalise_personnummer(match[0])
        except BadPersonnummer:
            continue
        found.append(match[0])
    return found


def test_the_personnummer_check_would_see_one() -> None:
    assert personnummer_in("Patient 19121212-1212, org 232100-0115") == ["19121212-1212"]


def test_no_personnummer_when_none_in_document(halland_pdf: bytes, värmland_pdf: bytes) -> None:
    for pdf in (halland_pdf, värmland_pdf):
        text = "\n".join(pages(pdf))
        assert personnummer_in(text) == []
        assert "ersonnummer" not in text


def test_värmland_credit_note(värmland_pdf: bytes) -> None:
    doc = värmland_credit_note()
    assert värmland_pdf.startswith(b"%PDF")
    assert len(PdfReader(io.BytesIO(värmland_pdf)).pages) == 1
    text = flat(pages(värmland_pdf)[0])
    assert "Kreditnota ARV-K-2024-009" in text
    assert "Faktura ARV-K-2024-009" not in text
    assert "Krediterar faktura ARV-2024-041 av 2024-05-03" in text
    assert "Er referens 9640028" in text
    for note in doc.notes:
        assert note in text
    # Each product marked with the number referring to the patient's initials.
    for line in doc.lines:
        for name, value in line.properties:
            assert f"{name}: {value}" in text
    assert "Patient: 1 (ÅÖ)" in text and "Patient: 2 (KL)" in text
    assert "196,8333" in text  # à-pris keeps its decimals
    assert "Summa exkl. moms 1 840,50 kr" in text
    assert "Moms 25 % Kategori S – normalskattesats 460,13 kr" in text
    assert "Att kreditera 2 300,63 kr" in text
    assert "Att betala" not in text
    # Buyer identifiers as Region Värmland asks for them; seller's plusgiro and F-skatt.
    assert "Organisationsnummer: 232100-0156" in text
    assert "GLN: 7362321000156" in text
    assert "PEPPOL-id: 0007:2321000156" in text
    assert "Region Värmland Box 5081 650 05 KARLSTAD" in text
    assert "Plusgiro: 12 34 56-7" in text
    assert "Godkänd för F-skatt" in text
    assert "Vård och omsorg, hemsjukvården" in text


def test_values_are_escaped_not_markup() -> None:
    doc = replace(
        halland_invoice(),
        notes=("<b>Fet</b> & <script>alert(1)</script>",),
    )
    html = render_html(doc)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;b&gt;Fet&lt;/b&gt; &amp; &lt;script&gt;" in html
    text = flat(pages(render_pdf(doc))[0])
    assert "<b>Fet</b> & <script>alert(1)</script>" in text


def test_no_outside_resources_are_fetched() -> None:
    """An <img> slipped into the template would be a hard error, not a silent fetch."""
    from weasyprint import HTML  # type: ignore[import-untyped]
    from weasyprint.urls import FatalURLFetchingError  # type: ignore[import-untyped]

    from vembetalar.billing.pdf import NoFetching

    with pytest.raises(FatalURLFetchingError):
        HTML(string='<img src="file:///etc/passwd">', url_fetcher=NoFetching()).write_pdf()


def test_forty_lines_break_over_pages_with_the_header_repeated() -> None:
    base = halland_invoice()
    template = base.lines[0]
    lines = tuple(
        replace(template, number=n, description=f"Läkemedel nummer {n}", amount=Decimal("1600.50"))
        for n in range(1, 41)
    )
    doc = replace(base, lines=lines)
    pdf = render_pdf(doc)
    texts = pages(pdf)
    assert len(texts) > 1
    for text in texts:
        assert "Benämning" in text and "Varunummer" in text and "À-pris" in text, text
    every = flat(" ".join(texts))
    for n in range(1, 41):
        assert f"Läkemedel nummer {n} " in every
    assert "Summa exkl. moms 64 020,00 kr" in every
    assert f"Sida 1 av {len(texts)}" in every


def test_same_document_same_bytes(halland_pdf: bytes) -> None:
    assert render_pdf(halland_invoice()) == halland_pdf


def test_renders_quickly_enough() -> None:
    started = time.perf_counter()
    render_pdf(värmland_credit_note())
    assert time.perf_counter() - started < 10
