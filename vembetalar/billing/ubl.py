"""The e-invoice: an :class:`InvoiceDocument` written as PEPPOL BIS Billing 3.0 (UBL 2.1).

Swedish regions and municipalities must receive invoices as PEPPOL BIS 3.0 (lag 2018:1277); one fatal
finding in the official validation (XSD, CEN EN 16931, PEPPOL incl. the Swedish SE-R rules) and the
buyer's access point rejects the invoice. ``tests/test_ubl.py`` runs every kind of document this project
produces through those official artefacts, so the choices below are checked, not assumed.

VAT. The category is data (``TaxTreatment`` from the pack or the registry), never decided here; the
writer enforces what the rules make of it instead of letting an invalid invoice out:

* ``E`` (exempt) is what the fixtures use, with the exemption reason text "Momsfri sjukvård …": the
  costs shared under these agreements are costs of healthcare (drugs in undantagshantering, products
  in hemsjukvård), which are exempt supplies, not supplies outside the scope of VAT. BR-E-02 requires
  the seller's VAT id (BT-31) or tax registration id (BT-32) with ``E``; regions and municipalities
  *are* VAT-registered (``SE`` + org number + ``01``), so the true identifier satisfies it. An ``E``
  seller with neither is refused here with a ValueError naming BR-E-02.
* ``O`` (not subject to VAT) is supported for a pack that decides the cost sharing is outside VAT
  (e.g. a pure grant), but BR-O-02 forbids the seller's and the buyer's VAT ids on such an invoice:
  the writer refuses an ``O`` document whose parties carry ``vat_id`` rather than silently dropping
  them, so the choice stays visible in the data. ``O`` carries no rate (BR-O-05/06).
* ``S``/``Z``/others are written with their percent; SE-R-006 (25/12/6 %) is the validator's business.

Amounts. Monetary amounts are written with two decimals and must already be whole öre: the totals
are the sum of the lines as written (BR-CO-10), and a line amount with fractions of öre would make the
e-invoice's total differ from the PDF's (``InvoiceDocument.line_total``), so it is refused. The unit
price (BT-146, no decimal limit in EN 16931) is written at its full precision, because
PEPPOL-EN16931-R120 wants line net = quantity × price within 0.02: rounding the price to öre could
break that for large quantities, whereas ``amount = öre(quantity × unit_price)`` always passes. A line
whose amount differs from quantity × price by more than the 0.02 slack is a data error upstream and is
refused (no BaseQuantity or allowance is invented to hide it).

Notes. BT-22 may repeat in EN 16931, but PEPPOL-EN16931-R002 allows a single ``cbc:Note`` unless both
parties are German, so the document's notes are written as the lines of one note, in order.

Text is stripped of characters XML 1.0 cannot carry and of surrounding whitespace; elements that would
be empty are left out (PEPPOL-EN16931-R008). The output is deterministic: same document, same bytes.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import cached_property, lru_cache

from lxml import etree

from vembetalar.billing.document import DocLine, InvoiceDocument, OrgParty, TaxTreatment, öre

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

#: Text the Swedish rule SE-R-005 demands in a seller's non-VAT PartyTaxScheme (BT-32).
F_SKATT_TEXT = "Godkänd för F-skatt"

#: Item name length kept for the receiver's ERP: EN 16931 sets no limit, but Swedish public buyers'
#: systems show the name in a narrow column and some cut it; the full text then goes to Description.
ITEM_NAME_MAX = 100

#: R120 tolerance: the PEPPOL rule compares line net and quantity × price with u:slack(…, 0.02).
LINE_SLACK = Decimal("0.02")

# Characters XML 1.0 cannot represent (C0 controls except tab/LF/CR, surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SCHEMES = {"0007", "0088"}


def clean_text(value: str) -> str:
    """Drop what XML 1.0 cannot carry (lxml would raise on it) and trim; escaping is lxml's job."""
    return _NOT_XML.sub("", value).strip()


def _amount(value: Decimal) -> str:
    return f"{öre(value):.2f}"


def _number(value: Decimal) -> str:
    """A quantity or price as given, without exponent or trailing zeros (``10``, ``12.345``)."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0", "") else "0"


class _Writer:
    """Builds the tree element by element in UBL's schema order (the XSD rejects any other order)."""

    def __init__(self, doc: InvoiceDocument) -> None:
        self.doc = doc
        self.credit = doc.kind == "credit_note"
        self.currency = doc.currency

    # ------------------------------------------------------------ helpers
    def cbc(self, parent: etree._Element, name: str, text: str | None, **attrs: str) -> etree._Element | None:
        """Add ``cbc:name`` unless the text is empty after cleaning (R008: no empty elements)."""
        if text is None:
            return None
        value = clean_text(text)
        if not value:
            return None
        el = etree.SubElement(parent, f"{{{NS_CBC}}}{name}", attrib=attrs or None)
        el.text = value
        return el

    def cac(self, parent: etree._Element, name: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{NS_CAC}}}{name}")

    def money(self, parent: etree._Element, name: str, value: Decimal) -> None:
        self.cbc(parent, name, _amount(value), currencyID=self.currency)

    # ------------------------------------------------------------ document
    def build(self) -> etree._Element:
        doc = self.doc
        root_ns, root_name = (NS_CREDIT_NOTE, "CreditNote") if self.credit else (NS_INVOICE, "Invoice")
        root = etree.Element(f"{{{root_ns}}}{root_name}", nsmap={None: root_ns, "cac": NS_CAC, "cbc": NS_CBC})
        self.cbc(root, "CustomizationID", CUSTOMIZATION_ID)
        self.cbc(root, "ProfileID", PROFILE_ID)
        self.cbc(root, "ID", doc.number)
        self.cbc(root, "IssueDate", doc.issue_date.isoformat())
        if self.credit:
            self.cbc(root, "CreditNoteTypeCode", "381")
        else:
            self.cbc(root, "DueDate", doc.due_date.isoformat())
            self.cbc(root, "InvoiceTypeCode", "380")
        # PEPPOL-EN16931-R002 allows one document-level note (except German-German): each of the
        # agreement's statements goes on its own line of that one note.
        self.cbc(root, "Note", "\n".join(clean for note in doc.notes if (clean := clean_text(note))))
        self.cbc(root, "DocumentCurrencyCode", doc.currency)
        self.cbc(root, "BuyerReference", doc.buyer_reference)
        if doc.period is not None:
            self.period(root, *doc.period)
        if self.credit and doc.corrects is not None:
            ref = self.cac(self.cac(root, "BillingReference"), "InvoiceDocumentReference")
            self.cbc(ref, "ID", doc.corrects[0])
            self.cbc(ref, "IssueDate", doc.corrects[1].isoformat())
        if doc.contract_reference:
            self.cbc(self.cac(root, "ContractDocumentReference"), "ID", doc.contract_reference)
        if doc.project_reference:
            if self.credit:  # UBL 2.1 CreditNote has no ProjectReference: BIS 3 uses code 50 instead
                ref = self.cac(root, "AdditionalDocumentReference")
                self.cbc(ref, "ID", doc.project_reference)
                self.cbc(ref, "DocumentTypeCode", "50")
            else:
                self.cbc(self.cac(root, "ProjectReference"), "ID", doc.project_reference)
        self.party(self.cac(root, "AccountingSupplierParty"), doc.seller, seller=True)
        self.party(self.cac(root, "AccountingCustomerParty"), doc.buyer, seller=False)
        self.payment_means(root)
        if self.credit:
            # BT-9 has no place in a UBL CreditNote root; the due date is still stated (BT-20).
            self.cbc(self.cac(root, "PaymentTerms"), "Note", f"Förfallodatum {doc.due_date.isoformat()}")
        self.tax_total(root)
        self.monetary_total(root)
        return root

    def period(self, parent: etree._Element, start: dt.date, end: dt.date) -> None:
        if end < start:
            raise ValueError(f"period ends ({end}) before it starts ({start})")
        el = self.cac(parent, "InvoicePeriod")
        self.cbc(el, "StartDate", start.isoformat())
        self.cbc(el, "EndDate", end.isoformat())

    # ------------------------------------------------------------ parties
    def party(self, parent: etree._Element, org: OrgParty, *, seller: bool) -> None:
        who = "seller" if seller else "buyer"
        p = self.cac(parent, "Party")
        scheme, value = _endpoint(org, who)
        self.cbc(p, "EndpointID", value, schemeID=scheme)
        if org.gln:
            self.cbc(self.cac(p, "PartyIdentification"), "ID", org.gln, schemeID="0088")
        self.cbc(self.cac(p, "PartyName"), "Name", org.name)
        addr = self.cac(p, "PostalAddress")
        lines = [clean_text(x) for x in org.address.lines if clean_text(x)]
        self.cbc(addr, "StreetName", lines[0] if lines else None)
        self.cbc(addr, "AdditionalStreetName", lines[1] if len(lines) > 1 else None)
        self.cbc(addr, "CityName", org.address.city)
        self.cbc(addr, "PostalZone", org.address.postcode)
        if len(lines) > 2:
            self.cbc(self.cac(addr, "AddressLine"), "Line", ", ".join(lines[2:]))
        self.cbc(self.cac(addr, "Country"), "IdentificationCode", org.address.country)
        if org.vat_id:
            self.tax_scheme(p, org.vat_id, "VAT")
        if seller and org.f_skatt and org.address.country == "SE":
            self.tax_scheme(p, F_SKATT_TEXT, "TAX")
        legal = self.cac(p, "PartyLegalEntity")
        self.cbc(legal, "RegistrationName", org.name)
        if org.org_number:
            self.cbc(legal, "CompanyID", _orgnr(org.org_number, who), schemeID="0007")
        if org.department or org.contact_email:
            contact = self.cac(p, "Contact")
            self.cbc(contact, "Name", org.department)
            self.cbc(contact, "ElectronicMail", org.contact_email)

    def tax_scheme(self, party: etree._Element, company_id: str, scheme: str) -> None:
        el = self.cac(party, "PartyTaxScheme")
        self.cbc(el, "CompanyID", company_id)
        self.cbc(self.cac(el, "TaxScheme"), "ID", scheme)

    def payment_means(self, root: etree._Element) -> None:
        """Code 30 (credit transfer) with the Swedish giro as branch, as SE-R-011/012 ask.

        Without a giro the invoice states no account at all rather than a guessed one; the buyer
        then pays as agreed between the authorities."""
        seller = self.doc.seller
        for account, branch in ((seller.bankgiro, "SE:BANKGIRO"), (seller.plusgiro, "SE:PLUSGIRO")):
            if not account:
                continue
            digits = re.sub(r"\D", "", account)
            if not digits:
                raise ValueError(f"seller {branch[3:].lower()} {account!r} has no digits")
            means = self.cac(root, "PaymentMeans")
            self.cbc(means, "PaymentMeansCode", "30")
            self.cbc(means, "PaymentID", self.doc.number)
            fin = self.cac(means, "PayeeFinancialAccount")
            self.cbc(fin, "ID", digits)
            self.cbc(self.cac(fin, "FinancialInstitutionBranch"), "ID", branch)

    # ------------------------------------------------------------ tax and totals
    def tax_category(self, parent: etree._Element, name: str, *, breakdown: bool) -> None:
        tax = self.doc.tax
        el = self.cac(parent, name)
        self.cbc(el, "ID", tax.category)
        if tax.category != "O":  # BR-O-05/06: "not subject to VAT" carries no rate
            self.cbc(el, "Percent", _number(tax.percent))
        if breakdown:  # reasons belong to the breakdown only (BT-120/121), not to the line
            self.cbc(el, "TaxExemptionReasonCode", tax.exemption_code)
            self.cbc(el, "TaxExemptionReason", tax.exemption_reason)
        self.cbc(self.cac(el, "TaxScheme"), "ID", "VAT")

    def tax_total(self, root: etree._Element) -> None:
        total = self.cac(root, "TaxTotal")
        self.money(total, "TaxAmount", self.tax_amount)
        sub = self.cac(total, "TaxSubtotal")
        self.money(sub, "TaxableAmount", self.line_total)
        self.money(sub, "TaxAmount", self.tax_amount)
        self.tax_category(sub, "TaxCategory", breakdown=True)

    @cached_property
    def line_total(self) -> Decimal:
        return sum((öre(line.amount) for line in self.doc.lines), Decimal(0))

    @property
    def tax_amount(self) -> Decimal:
        return self.doc.tax_amount

    def monetary_total(self, root: etree._Element) -> None:
        """BR-CO-10..16 hold by construction: no allowances, charges, prepaid or rounding."""
        el = self.cac(root, "LegalMonetaryTotal")
        self.money(el, "LineExtensionAmount", self.line_total)
        self.money(el, "TaxExclusiveAmount", self.line_total)
        self.money(el, "TaxInclusiveAmount", self.line_total + self.tax_amount)
        self.money(el, "PayableAmount", self.line_total + self.tax_amount)

    # ------------------------------------------------------------ lines
    def line_text(self, line: DocLine) -> str:
        """One line as pretty-printed XML text, in the layout lxml gives the rest of the document.
        Written as text, not built as elements: an invoice can have thousands of lines, and this
        is several times faster. The values are cleaned and escaped as everywhere else."""
        tag = "cac:CreditNoteLine" if self.credit else "cac:InvoiceLine"
        qty = "cbc:CreditedQuantity" if self.credit else "cbc:InvoicedQuantity"
        parts = [f"  <{tag}>\n    <cbc:ID>{line.number}</cbc:ID>\n"]
        if line.note is not None and (note := clean_text(line.note)):
            parts.append(f"    <cbc:Note>{_text(note)}</cbc:Note>\n")
        parts.append(f'    <{qty} unitCode="EA">{_number(line.quantity)}</{qty}>\n')
        parts.append(
            f'    <cbc:LineExtensionAmount currencyID="{self.currency_attr}">{_amount(line.amount)}'
            "</cbc:LineExtensionAmount>\n"
        )
        if line.occurred_on is not None:
            day = line.occurred_on.isoformat()
            parts.append(
                f"    <cac:InvoicePeriod>\n      <cbc:StartDate>{day}</cbc:StartDate>\n"
                f"      <cbc:EndDate>{day}</cbc:EndDate>\n    </cac:InvoicePeriod>\n"
            )
        parts.append("    <cac:Item>\n")
        item = _item_text(line.description)
        if item:
            parts.append(item)
        if line.varunummer:
            parts.append(_sellers_item_text(line.varunummer))
        parts.append(self.line_tax_text)
        for prop_name, prop_value in line.properties:
            block = _property_text(prop_name, prop_value)
            if not block:
                raise ValueError(
                    f"line {line.number}: property {prop_name!r} needs a name and a value (BR-54)"
                )
            parts.append(block)
        parts.append(
            f'    </cac:Item>\n    <cac:Price>\n      <cbc:PriceAmount currencyID="{self.currency_attr}">'
            f"{_number(line.unit_price)}</cbc:PriceAmount>\n    </cac:Price>\n  </{tag}>\n"
        )
        return "".join(parts)

    @cached_property
    def currency_attr(self) -> str:
        return _attribute(self.currency)

    @cached_property
    def line_tax_text(self) -> str:
        """cac:ClassifiedTaxCategory as every line carries it, indented for its place."""
        text = etree.tostring(self.line_tax, encoding="unicode", pretty_print=True)
        # Serialised alone it declares its namespaces; in place they are the root's.
        text = re.sub(r' xmlns:\w+="[^"]*"', "", text)
        return "".join(f"      {row}\n" for row in text.rstrip("\n").split("\n"))

    @cached_property
    def line_tax(self) -> etree._Element:
        """cac:ClassifiedTaxCategory, as every line carries it."""
        holder = etree.Element("holder", nsmap={"cac": NS_CAC, "cbc": NS_CBC})
        self.tax_category(holder, "ClassifiedTaxCategory", breakdown=False)
        return holder[0]


# The text blocks of a line, cleaned and escaped once per distinct value: a month's lines repeat
# the same products, prescribers, units, dates and patients thousands of times.
_CACHE = 1 << 16


@lru_cache(maxsize=_CACHE)
def _item_text(description: str) -> str:
    """cbc:Description (when the name is cut) and cbc:Name; empty when there is no name."""
    name = clean_text(description)
    short = _item_name(name)
    text = ""
    if short != name and name:
        text += f"      <cbc:Description>{_text(name)}</cbc:Description>\n"
    if short:
        text += f"      <cbc:Name>{_text(short)}</cbc:Name>\n"
    return text


@lru_cache(maxsize=_CACHE)
def _sellers_item_text(varunummer: str) -> str:
    number = clean_text(varunummer)
    if not number:
        return ""
    return (
        "      <cac:SellersItemIdentification>\n"
        f"        <cbc:ID>{_text(number)}</cbc:ID>\n      </cac:SellersItemIdentification>\n"
    )


@lru_cache(maxsize=_CACHE)
def _property_text(name: str, value: str) -> str:
    """cac:AdditionalItemProperty; empty when the name or the value is (BR-54: the caller refuses)."""
    key, text = clean_text(name), clean_text(value)
    if not key or not text:
        return ""
    return (
        "      <cac:AdditionalItemProperty>\n"
        f"        <cbc:Name>{_text(key)}</cbc:Name>\n        <cbc:Value>{_text(text)}</cbc:Value>\n"
        "      </cac:AdditionalItemProperty>\n"
    )


def _text(value: str) -> str:
    """Element text escaped as lxml serialises it (``\r`` as a character reference)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _attribute(value: str) -> str:
    return _text(value).replace('"', "&quot;")


def _endpoint(org: OrgParty, who: str) -> tuple[str, str]:
    """BT-34/BT-49 with scheme: the explicit PEPPOL id, else the org number (0007), else the GLN (0088)."""
    if org.endpoint:
        scheme, sep, value = org.endpoint.partition(":")
        scheme, value = scheme.strip(), value.strip()
        if not sep or scheme not in _SCHEMES or not value:
            raise ValueError(f"{who} endpoint {org.endpoint!r} is not '0007:<orgnr>' or '0088:<GLN>'")
        return scheme, _orgnr(value, who) if scheme == "0007" else value
    if org.org_number:
        return "0007", _orgnr(org.org_number, who)
    if org.gln:
        return "0088", org.gln
    raise ValueError(f"{who} {org.name!r} has no PEPPOL endpoint, organisation number or GLN (R010/R020)")


def _orgnr(value: str, who: str) -> str:
    """The ten digits of a Swedish organisation number (``232100-0156`` → ``2321000156``)."""
    digits = re.sub(r"[\s-]", "", value)
    if len(digits) != 10 or not digits.isdigit():
        raise ValueError(
            f"{who} organisation number {value!r} is not ten digits (SE-R-003, PEPPOL-COMMON-R049)"
        )
    return digits


def _item_name(name: str) -> str:
    if len(name) <= ITEM_NAME_MAX:
        return name
    cut = name[: ITEM_NAME_MAX - 1].rsplit(" ", 1)[0] or name[: ITEM_NAME_MAX - 1]
    return cut.rstrip(" ,;:-") + "…"


def _check(doc: InvoiceDocument) -> None:
    """Refuse, with the rule named, what would otherwise be rejected by the buyer's access point or
    silently differ from the paper invoice."""
    if not doc.lines:
        raise ValueError("an invoice needs at least one line (BR-16)")
    if not doc.buyer_reference.strip():
        raise ValueError("buyer_reference is empty: the buyer's reference is mandatory (PEPPOL-EN16931-R003)")
    if doc.kind == "credit_note" and doc.corrects is None:
        raise ValueError("a credit note must name the invoice it corrects (BT-25)")
    _check_tax(doc.tax, doc)
    numbers = [line.number for line in doc.lines]
    if len(set(numbers)) != len(numbers):
        raise ValueError("line numbers must be unique (BT-126)")
    for line in doc.lines:
        if line.amount != öre(line.amount):
            raise ValueError(f"line {line.number}: amount {line.amount} is not whole öre")
        if line.quantity == 0:
            raise ValueError(f"line {line.number}: quantity is zero")
        if abs(line.quantity * line.unit_price - line.amount) > LINE_SLACK:
            raise ValueError(
                f"line {line.number}: amount {line.amount} is not quantity {line.quantity} × price "
                f"{line.unit_price} (PEPPOL-EN16931-R120 allows 0.02)"
            )
        if not _item_text(line.description):
            raise ValueError(f"line {line.number}: the item needs a name (BR-25)")
        if line.occurred_on is not None and doc.period is not None:
            start, end = doc.period
            if not start <= line.occurred_on <= end:
                raise ValueError(
                    f"line {line.number}: date {line.occurred_on} is outside the invoice period "
                    f"{start}–{end} (PEPPOL-EN16931-R110/R111)"
                )


def _check_tax(tax: TaxTreatment, doc: InvoiceDocument) -> None:
    has_reason = bool(tax.exemption_code or (tax.exemption_reason and tax.exemption_reason.strip()))
    if tax.category == "E":
        if not has_reason:
            raise ValueError("VAT category E needs an exemption reason code or text (BR-E-10)")
        if not doc.seller.vat_id and not (doc.seller.f_skatt and doc.seller.address.country == "SE"):
            raise ValueError(
                "VAT category E needs the seller's VAT id or tax registration (BR-E-02): "
                "set seller.vat_id (SE + org number + 01)"
            )
    if tax.category in ("E", "O", "Z", "K", "G", "AE") and tax.percent != 0:
        raise ValueError(f"VAT category {tax.category} has rate 0, not {tax.percent}")
    if tax.category == "O":
        if not has_reason:
            raise ValueError("VAT category O needs an exemption reason code (VATEX-EU-O) or text (BR-O-10)")
        with_vat = [who for who, org in (("seller", doc.seller), ("buyer", doc.buyer)) if org.vat_id]
        if with_vat:
            raise ValueError(
                f"VAT category O ('not subject to VAT') forbids VAT ids, but the {' and '.join(with_vat)} "
                "has one (BR-O-02): use category E for exempt healthcare, or remove the VAT ids"
            )


def to_ubl(doc: InvoiceDocument) -> bytes:
    """The document as PEPPOL BIS Billing 3.0 UBL 2.1 (Invoice 380 or CreditNote 381), UTF-8.

    Raises ValueError, naming the rule, for a document the official validation would reject or that
    would differ from the printed invoice."""
    _check(doc)
    writer = _Writer(doc)
    root = writer.build()
    head = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    close = f"</{etree.QName(root).localname}>\n".encode()
    assert head.endswith(close)  # the root is in the default namespace: no prefix
    lines = "".join(writer.line_text(line) for line in doc.lines).encode("utf-8")
    return head[: -len(close)] + lines + close
