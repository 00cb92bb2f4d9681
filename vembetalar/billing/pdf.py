"""The invoice or credit note on paper: one A4 PDF in Swedish, rendered from exactly the
``InvoiceDocument`` the UBL writer sends, so the paper says what the e-invoice says (every note,
every line property, every identifier).

Some recipients still take paper (Region Halland's Box 310 address); others want the PDF beside
the e-invoice. A Jinja2 template (autoescaped) is laid out by WeasyPrint; nothing is fetched
from outside the package: the stylesheet is inlined and every URL is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from weasyprint import HTML  # type: ignore[import-untyped]
from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

from vembetalar.billing.document import Address, InvoiceDocument

NBSP = "\u00a0"

#: UNCL5305 VAT categories as a Swedish invoice names them.
VAT_CATEGORIES: dict[str, str] = {
    "S": "normalskattesats",
    "Z": "nollskattesats",
    "E": "undantagen från moms",
    "AE": "omvänd skattskyldighet",
    "K": "unionsintern leverans, undantagen från moms",
    "G": "export, undantagen från moms",
    "O": "utanför momsens tillämpningsområde",
    "L": "Kanarieöarna (IGIC)",
    "M": "Ceuta och Melilla (IPSI)",
}


def swedish_number(value: Decimal, *, min_places: int = 0) -> str:
    """``Decimal("1840.5")`` → ``1 840,50`` (with ``min_places=2``): no-break spaces between
    thousands, a comma before the decimals, trailing zeros beyond ``min_places`` dropped."""
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    sign = "-" if value < 0 else ""
    text = f"{abs(value):f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(min_places, "0")
    groups = f"{int(whole):,}".replace(",", NBSP)
    return f"{sign}{groups},{fraction}" if fraction else f"{sign}{groups}"


def money(value: Decimal) -> str:
    """An amount with öre: ``1 840,50``; more decimals only where the value has them (à-pris)."""
    return swedish_number(value, min_places=2)


def org_number(value: str) -> str:
    """``2321000156`` → ``232100-0156``; anything not ten digits is shown as given."""
    digits = value.replace("-", "").replace(" ", "")
    if len(digits) == 10 and digits.isascii() and digits.isdigit():
        return f"{digits[:6]}-{digits[6:]}"
    return value


def swedish_date(value: dt.date) -> str:
    return value.isoformat()


def address_lines(address: Address) -> list[str]:
    lines = list(address.lines)
    town = " ".join(part for part in (address.postcode, address.city) if part)
    if town:
        lines.append(town)
    if address.country and address.country != "SE":
        lines.append(address.country)
    return lines


def vat_label(doc: InvoiceDocument) -> tuple[str, str]:
    """``Moms 25 %`` and what it rests on: ``Kategori E – undantagen från moms. Undantag:
    VATEX-EU-132-1B, Sjukvård …`` (the category and, where exempt, the reason)."""
    tax = doc.tax
    label = f"Moms {swedish_number(tax.percent)}{NBSP}%"
    name = VAT_CATEGORIES.get(tax.category)
    detail = f"Kategori {tax.category} – {name}" if name else f"Kategori {tax.category}"
    reason = ", ".join(part for part in (tax.exemption_code, tax.exemption_reason) if part)
    if reason:
        detail += f". Undantag: {reason}"
    return label, detail


def currency_unit(doc: InvoiceDocument) -> str:
    return "kr" if doc.currency == "SEK" else doc.currency


class NoFetching(URLFetcher):  # type: ignore[misc]
    """Refuse every URL: the invoice is built from the template and the document alone."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols=set(), fail_on_errors=True)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("vembetalar.billing", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["number"] = swedish_number
    env.filters["orgnr"] = org_number
    env.filters["date"] = swedish_date
    env.globals["address_lines"] = address_lines
    return env


def render_html(doc: InvoiceDocument) -> str:
    """The HTML the PDF is laid out from (also handy for looking at the layout in a browser)."""
    return (
        _environment()
        .get_template("invoice.html")
        .render(
            doc=doc,
            title="Kreditnota" if doc.kind == "credit_note" else "Faktura",
            vat=vat_label(doc),
            unit=currency_unit(doc),
        )
    )


def render_pdf(doc: InvoiceDocument) -> bytes:
    """One A4 PDF of the invoice or credit note, in Swedish. Same document, same bytes, apart
    from nothing: the PDF identifier is derived from the content and no dates are stamped."""
    return pdf_of(render_html(doc))


def pdf_of(html: str) -> bytes:
    """A PDF from our own HTML, fetching nothing; its identifier comes from the content, so the
    same page gives the same bytes."""
    identifier = hashlib.sha256(html.encode()).hexdigest()[:32].encode()
    pdf: bytes = HTML(string=html, url_fetcher=NoFetching()).write_pdf(pdf_identifier=identifier)
    return pdf
