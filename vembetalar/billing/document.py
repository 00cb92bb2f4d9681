"""An invoice or credit note as it will be sent: the one model the UBL (PEPPOL BIS Billing 3.0)
writer, the PDF and the clerk's pages all render, so the paper and the e-invoice say the same.

Pure data: the invoice run (``billing.run``) builds it from billable events, the organisation
registry and the pack's invoicing requirements; nothing here reads a database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import orjson

ÖRE = Decimal("0.01")


def öre(value: Decimal) -> Decimal:
    return value.quantize(ÖRE, ROUND_HALF_UP)


@dataclass(frozen=True)
class Address:
    """A postal address: street lines, postcode and town (``Box 310``, ``737 26``, ``FAGERSTA``)."""

    lines: tuple[str, ...] = ()
    postcode: str | None = None
    city: str | None = None
    country: str = "SE"


@dataclass(frozen=True)
class OrgParty:
    """A seller or buyer as the invoice names it.

    ``org_number`` is the Swedish organisation number as ten digits (scheme 0007); ``gln`` a GLN
    (scheme 0088); ``endpoint`` the PEPPOL electronic address as ``scheme:value``
    (``0007:2321000156``). ``vat_id`` is ``SE`` + 10 digits + ``01`` when registered for VAT;
    ``f_skatt`` whether the seller is approved for F-skatt (Swedish rule SE-R-005).
    """

    name: str
    org_number: str | None = None
    gln: str | None = None
    endpoint: str | None = None
    vat_id: str | None = None
    f_skatt: bool = False
    address: Address = field(default_factory=Address)
    department: str | None = None
    contact_email: str | None = None
    bankgiro: str | None = None
    plusgiro: str | None = None


@dataclass(frozen=True)
class TaxTreatment:
    """The VAT category of every line (UNCL5305: ``S``, ``E``, ``Z``, ``O``…) with its rate and,
    where exempt, the reason (code from the VATEX list and/or text). Data from the pack or the
    registry, never decided here."""

    category: str
    percent: Decimal = Decimal(0)
    exemption_code: str | None = None
    exemption_reason: str | None = None


@dataclass(frozen=True)
class DocLine:
    """One invoice line: one billable event. ``properties`` carry what the agreement demands on
    the line beyond the product (prescriber, unit, patient marker, dispensing date …), each as a
    (name, value) pair in Swedish."""

    number: int
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    varunummer: str | None = None
    properties: tuple[tuple[str, str], ...] = ()
    note: str | None = None
    occurred_on: dt.date | None = None


@dataclass(frozen=True)
class InvoiceDocument:
    kind: Literal["invoice", "credit_note"]
    number: str
    issue_date: dt.date
    due_date: dt.date
    seller: OrgParty
    buyer: OrgParty
    #: BT-10: the recipient's reference (ZZXXX098) or Beställar-ID (9640028).
    buyer_reference: str
    lines: tuple[DocLine, ...]
    tax: TaxTreatment
    currency: str = "SEK"
    #: What the agreement asks the invoice to state (BT-22), e.g. that the cost is the exception
    #: handling of prescription drugs, or the key from line markers to patients' initials.
    notes: tuple[str, ...] = ()
    period: tuple[dt.date, dt.date] | None = None
    #: Credit notes: the invoice corrected (BT-25, BT-26).
    corrects: tuple[str, dt.date] | None = None
    #: Agreement and route the invoice rests on, e.g. "vgr_halland_undantag_2023/bilaga-2".
    contract_reference: str | None = None
    project_reference: str | None = None

    @property
    def line_total(self) -> Decimal:
        return öre(sum((line.amount for line in self.lines), Decimal(0)))

    @property
    def tax_amount(self) -> Decimal:
        return öre(self.line_total * self.tax.percent / Decimal(100))

    @property
    def payable(self) -> Decimal:
        return self.line_total + self.tax_amount


def decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def document_to_json(doc: InvoiceDocument) -> dict[str, Any]:
    """The document as JSON (dates ISO, amounts as text): how it is kept with the invoice.
    orjson walks the dataclasses in C: a run makes thousands of documents."""
    plain: dict[str, Any] = orjson.loads(orjson.dumps(doc, default=decimal_text))
    return plain


def document_from_json(data: dict[str, Any]) -> InvoiceDocument:
    """The stored document back, exactly as issued (the XML and PDF are rendered from it)."""

    def day(value: str | None) -> dt.date | None:
        return dt.date.fromisoformat(value) if value else None

    def party(p: dict[str, Any]) -> OrgParty:
        address = p.get("address") or {}
        return OrgParty(
            **{k: v for k, v in p.items() if k != "address"},
            address=Address(
                tuple(address.get("lines", ())),
                address.get("postcode"),
                address.get("city"),
                address.get("country", "SE"),
            ),
        )

    lines = tuple(  # positional: a document can have a hundred thousand lines
        DocLine(
            line["number"],
            line["description"],
            Decimal(line["quantity"]),
            Decimal(line["unit_price"]),
            Decimal(line["amount"]),
            line.get("varunummer"),
            tuple(map(tuple, line.get("properties", ()))),
            line.get("note"),
            day(line.get("occurred_on")),
        )
        for line in data["lines"]
    )
    tax = data["tax"]
    period = data.get("period")
    corrects = data.get("corrects")
    return InvoiceDocument(
        kind=data["kind"],
        number=data["number"],
        issue_date=dt.date.fromisoformat(data["issue_date"]),
        due_date=dt.date.fromisoformat(data["due_date"]),
        seller=party(data["seller"]),
        buyer=party(data["buyer"]),
        buyer_reference=data["buyer_reference"],
        lines=lines,
        tax=TaxTreatment(
            tax["category"], Decimal(tax["percent"]), tax.get("exemption_code"), tax.get("exemption_reason")
        ),
        currency=data.get("currency", "SEK"),
        notes=tuple(data.get("notes", ())),
        period=(dt.date.fromisoformat(period[0]), dt.date.fromisoformat(period[1])) if period else None,
        corrects=(corrects[0], dt.date.fromisoformat(corrects[1])) if corrects else None,
        contract_reference=data.get("contract_reference"),
        project_reference=data.get("project_reference"),
    )
