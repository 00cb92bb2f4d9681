"""A received e-invoice checked against what the agreement says it must show.

A region or municipality that *receives* an invoice under one of these agreements wants to know,
before attesting it, whether it carries what the agreement demands: the Beställar-ID, the statement
that the cost is undantagshantering, the prescriber on every line, the patient marker … This module
reads a PEPPOL/UBL Invoice or CreditNote and lists what is missing, in plain Swedish, for the clerk.

Received files come from outside, so they are parsed defensively: no DTD, no entities (billion laughs,
external entities), no network, no huge trees, a size limit; anything else than a UBL 2.1 Invoice or
CreditNote is refused with one Swedish sentence instead of a traceback.

The requirements are data (:class:`Requirement`), produced from the packs' invoicing demands; the
kinds are few on purpose:

* ``Requirement.buyer_reference("9640028", "Beställar-ID")`` — BT-10 must equal the value;
* ``Requirement.note("undantagshantering", "uppgift om att kostnaden avser undantagshantering")`` —
  some document note (BT-22) must contain the text (case and spacing ignored);
* ``Requirement.line_property("Patient", "patientens initialer")`` — every line (or, with
  ``every_line=False``, at least one) must carry that item property (BT-160/161) with a value;
* ``Requirement.line_field("varunummer")`` — every line must carry the field (``varunummer``,
  ``quantity``, ``price``, ``amount``, ``name``).

Failure messages are ``"{label} {value} saknas"``, ``"{label} saknas"`` and
``"rad {id} saknar {label}"``, so the label is written as the clerk would say it, in lower case
unless it is a name such as "Beställar-ID".
"""

from __future__ import annotations

import codecs
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from lxml import etree

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
#: Larger than any real invoice with attachments left out; refuses memory exhaustion by size alone.
MAX_BYTES = 20 * 1024 * 1024
_DTD_MESSAGE = "Filen innehåller en DOCTYPE eller entitetsdeklaration och läses inte av säkerhetsskäl."

LineField = Literal["varunummer", "quantity", "price", "amount", "name"]
_FIELD_LABELS: dict[str, str] = {
    "varunummer": "varunummer",
    "quantity": "kvantitet",
    "price": "à-pris",
    "amount": "belopp",
    "name": "benämning",
}


class UnreadableInvoice(ValueError):
    """The file is not a UBL invoice that may be read; the message is one Swedish sentence."""


# ---------------------------------------------------------------- what is read
@dataclass(frozen=True)
class ReceivedParty:
    name: str | None
    endpoint: str | None  # "0007:2321000156"
    org_number: str | None
    gln: str | None
    vat_id: str | None


@dataclass(frozen=True)
class ReceivedLine:
    id: str
    name: str | None
    description: str | None
    varunummer: str | None
    quantity: Decimal | None
    unit_code: str | None
    price: Decimal | None
    amount: Decimal | None
    note: str | None
    properties: tuple[tuple[str, str], ...] = ()

    def property(self, name: str) -> str | None:
        """The first non-empty value of the named item property, names compared case-insensitively."""
        wanted = _norm(name)
        for key, value in self.properties:
            if _norm(key) == wanted and value.strip():
                return value
        return None


@dataclass(frozen=True)
class ReceivedInvoice:
    kind: Literal["invoice", "credit_note"]
    number: str | None
    issue_date: dt.date | None
    period: tuple[dt.date | None, dt.date | None] | None
    buyer_reference: str | None
    seller: ReceivedParty
    buyer: ReceivedParty
    #: Document notes, split into lines: one ``cbc:Note`` may hold several statements (PEPPOL R002).
    notes: tuple[str, ...]
    lines: tuple[ReceivedLine, ...]
    currency: str | None
    payable: Decimal | None


# ---------------------------------------------------------------- what must be there
@dataclass(frozen=True)
class Requirement:
    """One thing the agreement demands on the invoice. Build with the class methods."""

    kind: Literal["buyer_reference", "note", "line_property", "line_field"]
    #: buyer_reference: the expected value; note: the text to find; line_property: the property
    #: name; line_field: one of ``varunummer``, ``quantity``, ``price``, ``amount``, ``name``.
    key: str
    #: How the failure names it in Swedish ("Beställar-ID", "patientens initialer").
    label: str
    every_line: bool = True

    @classmethod
    def buyer_reference(cls, value: str, label: str = "Fakturareferens") -> Requirement:
        return cls("buyer_reference", value, label)

    @classmethod
    def note(cls, contains: str, label: str | None = None) -> Requirement:
        return cls("note", contains, label or f'texten "{contains}"')

    @classmethod
    def line_property(cls, name: str, label: str | None = None, *, every_line: bool = True) -> Requirement:
        return cls("line_property", name, label or name.lower(), every_line)

    @classmethod
    def line_field(cls, name: LineField, label: str | None = None) -> Requirement:
        if name not in _FIELD_LABELS:
            raise ValueError(f"unknown line field {name!r}; one of {', '.join(_FIELD_LABELS)}")
        return cls("line_field", name, label or _FIELD_LABELS[name])


@dataclass(frozen=True)
class CheckReport:
    """The outcome: ``error`` when the file could not be read at all, else ``failures`` (empty = ok)."""

    invoice: ReceivedInvoice | None
    failures: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures

    def __str__(self) -> str:
        if self.error is not None:
            return self.error
        if not self.failures:
            return "Fakturan innehåller allt som avtalet kräver."
        return "\n".join(f"- {f}" for f in self.failures)


# ---------------------------------------------------------------- reading
def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )


def read_invoice(data: bytes) -> ReceivedInvoice:
    """Parse a received UBL Invoice/CreditNote safely; UnreadableInvoice with one Swedish sentence."""
    if not data.strip():
        raise UnreadableInvoice("Filen är tom.")
    if len(data) > MAX_BYTES:
        raise UnreadableInvoice(
            f"Filen är för stor ({len(data) // 1_000_000} MB; högst {MAX_BYTES // 1_000_000} MB)."
        )
    if data.lstrip().startswith(b"%PDF"):
        raise UnreadableInvoice("Filen är en PDF, inte en e-faktura (UBL-XML); be om fakturan via PEPPOL.")
    # A DOCTYPE has no place in a UBL invoice and is how entity bombs and external entities come in.
    if _declares_dtd(data):
        raise UnreadableInvoice(_DTD_MESSAGE)
    try:
        tree = etree.fromstring(data, parser=_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        line = f" (rad {exc.lineno})" if exc.lineno else ""
        raise UnreadableInvoice(f"Filen är inte välformad XML{line}.") from None
    except (ValueError, etree.LxmlError):
        raise UnreadableInvoice("Filen kunde inte läsas som XML.") from None
    # Other encodings (UTF-16) pass the byte check above; the parsed prolog tells the truth.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnreadableInvoice(_DTD_MESSAGE)
    root = tree.getroot()
    qname = etree.QName(root)
    if (qname.namespace, qname.localname) == (NS_INVOICE, "Invoice"):
        kind: Literal["invoice", "credit_note"] = "invoice"
        line_tag, qty_tag = "InvoiceLine", "InvoicedQuantity"
    elif (qname.namespace, qname.localname) == (NS_CREDIT_NOTE, "CreditNote"):
        kind, line_tag, qty_tag = "credit_note", "CreditNoteLine", "CreditedQuantity"
    else:
        raise UnreadableInvoice(
            f"Filen är inte en e-faktura eller kreditnota i UBL-format (rotelementet är {qname.localname!r})."
        )
    period_el = _first(root, "cac:InvoicePeriod")
    period = None
    if period_el is not None:
        period = (_date(_text(period_el, "cbc:StartDate")), _date(_text(period_el, "cbc:EndDate")))
    notes: list[str] = []
    for note in root.findall("cbc:Note", NS):
        notes.extend(part.strip() for part in (note.text or "").splitlines() if part.strip())
    return ReceivedInvoice(
        kind=kind,
        number=_text(root, "cbc:ID"),
        issue_date=_date(_text(root, "cbc:IssueDate")),
        period=period,
        buyer_reference=_text(root, "cbc:BuyerReference"),
        seller=_party(_first(root, "cac:AccountingSupplierParty/cac:Party")),
        buyer=_party(_first(root, "cac:AccountingCustomerParty/cac:Party")),
        notes=tuple(notes),
        lines=tuple(_line(el, qty_tag) for el in root.findall(f"cac:{line_tag}", NS)),
        currency=_text(root, "cbc:DocumentCurrencyCode"),
        payable=_decimal(_text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount")),
    )


def _declares_dtd(data: bytes) -> bool:
    """Whether the file has a DOCTYPE or entity declaration, looked for in the file's own encoding
    (by its byte-order mark) so UTF-16 does not hide it. Parsing refuses the rest anyway
    (lxml's entity amplification limit); this gives the clerk the true reason."""
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            text = data.decode(codec, errors="replace")
            return "<!DOCTYPE" in text or "<!ENTITY" in text
    return b"<!DOCTYPE" in data or b"<!ENTITY" in data


def _first(el: etree._Element, path: str) -> etree._Element | None:
    return el.find(path, NS)


def _text(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path, NS)
    if found is None or found.text is None:
        return None
    return " ".join(found.text.split()) or None


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _party(el: etree._Element | None) -> ReceivedParty:
    if el is None:
        return ReceivedParty(None, None, None, None, None)
    endpoint_el = el.find("cbc:EndpointID", NS)
    endpoint = None
    if endpoint_el is not None and endpoint_el.text:
        scheme = endpoint_el.get("schemeID")
        endpoint = f"{scheme}:{endpoint_el.text.strip()}" if scheme else endpoint_el.text.strip()
    gln = None
    for ident in el.findall("cac:PartyIdentification/cbc:ID", NS):
        if ident.get("schemeID") == "0088" and ident.text:
            gln = ident.text.strip()
    vat_id = None
    for scheme_el in el.findall("cac:PartyTaxScheme", NS):
        if _text(scheme_el, "cac:TaxScheme/cbc:ID") == "VAT":
            vat_id = _text(scheme_el, "cbc:CompanyID")
    return ReceivedParty(
        name=_text(el, "cac:PartyLegalEntity/cbc:RegistrationName") or _text(el, "cac:PartyName/cbc:Name"),
        endpoint=endpoint,
        org_number=_text(el, "cac:PartyLegalEntity/cbc:CompanyID"),
        gln=gln,
        vat_id=vat_id,
    )


def _line(el: etree._Element, qty_tag: str) -> ReceivedLine:
    qty_el = el.find(f"cbc:{qty_tag}", NS)
    props = tuple(
        (_text(p, "cbc:Name") or "", _text(p, "cbc:Value") or "")
        for p in el.findall("cac:Item/cac:AdditionalItemProperty", NS)
    )
    return ReceivedLine(
        id=_text(el, "cbc:ID") or "?",
        name=_text(el, "cac:Item/cbc:Name"),
        description=_text(el, "cac:Item/cbc:Description"),
        varunummer=_text(el, "cac:Item/cac:SellersItemIdentification/cbc:ID"),
        quantity=_decimal(_text(el, f"cbc:{qty_tag}")),
        unit_code=qty_el.get("unitCode") if qty_el is not None else None,
        price=_decimal(_text(el, "cac:Price/cbc:PriceAmount")),
        amount=_decimal(_text(el, "cbc:LineExtensionAmount")),
        note=_text(el, "cbc:Note"),
        properties=props,
    )


# ---------------------------------------------------------------- checking
def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _line_has(line: ReceivedLine, name: str) -> bool:
    values: dict[str, object] = {
        "varunummer": line.varunummer,
        "quantity": line.quantity,
        "price": line.price,
        "amount": line.amount,
        "name": line.name,
    }
    return values[name] is not None


def failures(invoice: ReceivedInvoice, requirements: Iterable[Requirement]) -> list[str]:
    """What the invoice lacks, one Swedish sentence each, in the order of the requirements."""
    found: list[str] = []
    for req in requirements:
        if req.kind == "buyer_reference":
            got = invoice.buyer_reference
            if got is None:
                found.append(f"{req.label} {req.key} saknas")
            elif _norm(got) != _norm(req.key):
                found.append(f"{req.label} är {got}, ska vara {req.key}")
        elif req.kind == "note":
            if not any(_norm(req.key) in _norm(note) for note in invoice.notes):
                found.append(f"{req.label} saknas")
        elif req.kind in ("line_property", "line_field"):

            def has(line: ReceivedLine, req: Requirement = req) -> bool:
                if req.kind == "line_property":
                    return line.property(req.key) is not None
                return _line_has(line, req.key)

            if not invoice.lines:
                found.append(f"{req.label} saknas (fakturan har inga rader)")
            elif req.every_line:
                found.extend(f"rad {line.id} saknar {req.label}" for line in invoice.lines if not has(line))
            elif not any(has(line) for line in invoice.lines):
                found.append(f"{req.label} saknas")
        else:  # pragma: no cover - Literal exhausts the kinds
            raise ValueError(f"unknown requirement kind {req.kind!r}")
    return found


def check_invoice(data: bytes, requirements: Sequence[Requirement]) -> CheckReport:
    """Read ``data`` as a received invoice and check it; never raises for a bad file."""
    try:
        invoice = read_invoice(data)
    except UnreadableInvoice as exc:
        return CheckReport(invoice=None, error=str(exc))
    return CheckReport(invoice=invoice, failures=tuple(failures(invoice, requirements)))
