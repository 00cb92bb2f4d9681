"""What Visma webSesam billed, against what vembetalar says it should have billed.

Region Skåne's devices are invoiced to the home region by webSesam, not by vembetalar (seed 001:
"Då faktureras hemregionen automatiskt via Visma webSesam"). The invoice run therefore lists those
events as *billed elsewhere* and never invoices them. This module closes the loop: it reads
webSesam's invoice export (a CSV whose columns ``websesam_mapping`` names) and puts each export
row beside the event it bills, so the clerk sees what was billed, what was not, what was billed
twice and where the amounts differ.

The export knows nothing of vembetalar's cases, so a row is matched to an event by what both
carry: the recipient region, the date, the article (number or name) and the quantity. Ties are
resolved in a fixed order (events by date and id, rows by their place in the file), so the same
file gives the same result every time. See docs/handoffs.md, "webSesam-avstämning".

The export may carry personal data (a personnummer column); only the mapped columns are read,
and text from the file is shown only after anything shaped like a personnummer is blanked out.
Nothing from the file is logged.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.orm import Session

from vembetalar.billing.run import billed_elsewhere, month_bounds
from vembetalar.handoffs.websesam_mapping import ARTICLE_FIELDS, DELIMITERS, FIELDS, ColumnMapping
from vembetalar.model import codes
from vembetalar.model.money import QUANTITY, SEK, BadAmount, Bounded, to_decimal
from vembetalar.rules.engine import Engine
from vembetalar.spreadsheet import number_cell, text_cell

#: The other system, as the packs' ``billed_by`` names it ("Visma webSesam").
SYSTEM = "webSesam"
#: A larger file is refused before it is read (a month's export is a few hundred kB).
MAX_EXPORT_BYTES = 5 * 1024 * 1024
#: At most this many bad rows are named in one error; the rest are counted.
MAX_ERRORS = 10

Kind = Literal[
    "matchad", "saknas i webSesam", "fakturerad två gånger", "belopp skiljer", "finns bara i webSesam"
]
#: The kinds in the order the page and the CSV show them: what needs doing first.
KINDS: tuple[Kind, ...] = (
    "fakturerad två gånger",
    "belopp skiljer",
    "saknas i webSesam",
    "finns bara i webSesam",
    "matchad",
)
KIND_HELP: dict[Kind, str] = {
    "fakturerad två gånger": "Samma underlag finns på två eller fler rader i webSesams faktura.",
    "belopp skiljer": "Raden matchar underlaget men beloppet är ett annat.",
    "saknas i webSesam": "Underlaget finns i vembetalar men ingen rad i exporten motsvarar det.",
    "finns bara i webSesam": "Raden i exporten motsvarar inget underlag i vembetalar för perioden.",
    "matchad": "En rad i exporten, samma belopp.",
}


class BadExport(ValueError):
    """The export cannot be read; the message says why in Swedish (rows by number, columns by name)."""


@dataclass(frozen=True)
class ExportRow:
    """One row of webSesam's export, as far as the reconciliation reads it (nothing else is kept)."""

    #: The line in the file (the header is line 1), for "rad 7" in messages and the result.
    line: int
    invoice_number: str
    invoice_date: dt.date | None
    #: The customer as the file writes it (personnummer-shaped text blanked).
    customer: str
    #: The party the customer is (``region:13``), or None when it is not recognised.
    recipient: str | None
    delivered_on: dt.date
    article_number: str | None
    article_name: str | None
    quantity: Decimal
    #: Negative on a credit row.
    amount: Decimal


@dataclass(frozen=True)
class ElsewhereEvent:
    """A standing event that webSesam should have billed: what the clerk already sees of it."""

    event_id: int
    case_reference: str
    occurred_on: dt.date
    recipient: str | None
    product_name: str | None
    varunummer: str | None
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Line:
    """One finding: an event with the export rows that bill it, or an export row alone."""

    kind: Kind
    event: ElsewhereEvent | None
    rows: tuple[ExportRow, ...] = ()

    @property
    def expected(self) -> Decimal | None:
        return self.event.amount if self.event else None

    @property
    def billed(self) -> Decimal | None:
        return sum((r.amount for r in self.rows), Decimal(0)) if self.rows else None

    @property
    def difference(self) -> Decimal:
        """What webSesam billed minus what it should have: positive is billed too much."""
        return (self.billed or Decimal(0)) - (self.expected or Decimal(0))

    @property
    def recipient(self) -> str | None:
        return self.event.recipient if self.event else self.rows[0].recipient

    @property
    def date(self) -> dt.date:
        return self.event.occurred_on if self.event else self.rows[0].delivered_on

    @property
    def article(self) -> str:
        if self.event:
            return self.event.product_name or self.event.varunummer or ""
        row = self.rows[0]
        return row.article_name or row.article_number or ""

    @property
    def article_number(self) -> str:
        if self.event and self.event.varunummer:
            return self.event.varunummer
        return next((r.article_number for r in self.rows if r.article_number), "")

    @property
    def quantity(self) -> Decimal:
        return self.event.quantity if self.event else self.rows[0].quantity


@dataclass(frozen=True)
class KindTotal:
    kind: Kind
    count: int
    expected: Decimal
    billed: Decimal

    @property
    def difference(self) -> Decimal:
        return self.billed - self.expected


@dataclass
class Reconciliation:
    issuer: str
    period: str
    lines: list[Line] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def of_kind(self, kind: Kind) -> list[Line]:
        return [line for line in self.lines if line.kind == kind]

    @property
    def totals(self) -> list[KindTotal]:
        """Count and sums per kind, every kind listed (a zero says "none of these")."""
        out = []
        for kind in KINDS:
            lines = self.of_kind(kind)
            out.append(
                KindTotal(
                    kind,
                    len(lines),
                    sum((line.expected or Decimal(0) for line in lines), Decimal(0)),
                    sum((line.billed or Decimal(0) for line in lines), Decimal(0)),
                )
            )
        return out

    @property
    def has_differences(self) -> bool:
        return any(line.kind != "matchad" for line in self.lines)

    def summary(self) -> str:
        """One line for the audit log and the terminal: counts only, no content of the file."""
        return ", ".join(f"{t.count} {t.kind}" for t in self.totals)


# ---------------------------------------------------------------- the events


def elsewhere_events(db: Session, engine: Engine, *, issuer: str, period: str) -> list[ElsewhereEvent]:
    """The issuer's standing events of ``period`` that the invoice run lists as billed by
    webSesam (the same selection: ``billing.run.billed_elsewhere``), oldest first."""
    out = []
    for event, reference, invoicing in billed_elsewhere(db, engine, issuer=issuer, period=period):
        if SYSTEM.casefold() not in (invoicing.billed_by or "").casefold():
            continue
        out.append(
            ElsewhereEvent(
                event_id=event.id,
                case_reference=reference,
                occurred_on=event.occurred_on,
                recipient=event.recipient,
                product_name=event.product_name,
                varunummer=event.varunummer,
                quantity=Decimal(event.quantity) if event.quantity else Decimal(1),
                amount=Decimal(event.amount_sek) if event.amount_sek is not None else Decimal(0),
            )
        )
    return out


# ---------------------------------------------------------------- reading the export

#: A personnummer or samordningsnummer in any of its usual forms (and an organisation number,
#: which is harmless to blank): never echoed from a file.
_PNR = re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+\s]?\d{4}(?!\d)")
_MINUS = ("-", "\u2212")


def scrub(text: str, limit: int = 120) -> str:
    """Text from the file as it may be shown: personnummer-shaped digits blanked, one line, short."""
    text = " ".join(_PNR.sub("[dolt]", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _decode(data: bytes, mapping: ColumnMapping) -> str:
    if len(data) > MAX_EXPORT_BYTES:
        raise BadExport(f"Filen är för stor (högst {MAX_EXPORT_BYTES // (1024 * 1024)} MB).")
    if b"\x00" in data[:4096]:
        raise BadExport("Filen ser inte ut som en CSV-fil (den innehåller binära data).")
    try:
        text = data.decode(mapping.encoding)
    except UnicodeDecodeError:
        raise BadExport(
            f"Filen är inte kodad som {mapping.encoding.removesuffix('-sig').upper()}: spara den som "
            "«CSV UTF-8» i Excel, eller ange filens teckenkodning (encoding) i mappningen."
        ) from None
    if not text.strip():
        raise BadExport("Filen är tom.")
    return text


def _delimiter(text: str, mapping: ColumnMapping) -> str:
    """The mapping's delimiter, or csv.Sniffer's guess from the first lines; failing that the
    character the header line has most of."""
    if mapping.delimiter:
        return mapping.delimiter
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        header = text.splitlines()[0]
        return max(DELIMITERS, key=header.count)


def _key(header: str) -> str:
    return " ".join(header.replace("\ufeff", "").split()).casefold()


def _columns(header: list[str], mapping: ColumnMapping) -> dict[str, int]:
    """Each field's column index; BadExport naming every required column that is missing."""
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        index.setdefault(_key(name), position)
    found: dict[str, int] = {}
    for name in FIELDS:
        for wanted in mapping.headers_of(name):
            if _key(wanted) in index:
                found[name] = index[_key(wanted)]
                break
    missing = [
        " eller ".join(f"«{h}»" for h in column.headers[:3])
        for name, column in mapping.columns.items()
        if column.required and name not in found
    ]
    if not any(name in found for name in ARTICLE_FIELDS):
        missing.append(
            " eller ".join(f"«{h}»" for name in ARTICLE_FIELDS for h in mapping.headers_of(name)[:2])
        )
    if missing:
        has = ", ".join(f"«{scrub(h, 40)}»" for h in header[:15] if h.strip()) or "inga rubriker"
        raise BadExport(
            f"Kolumner saknas i filen: {'; '.join(missing)}. Filen har: {has}. "
            "Byt rubrikerna i filen, eller ange filens egna rubriker i kolumnmappningen."
        )
    return found


def _number(text: str, bounds: Bounded) -> Decimal:
    """A number as a Swede types it ("1 234,50"), with a leading minus on a credit row."""
    text = text.strip()
    negative = text[:1] in _MINUS
    value = to_decimal(text[1:].strip() if negative else text, bounds, text="swedish")
    return -value if negative else value


def _date(text: str, formats: Sequence[str]) -> dt.date | None:
    for fmt in formats:
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _party(customer: str, mapping: ColumnMapping) -> str | None:
    """The party a customer cell names: the mapping's own table first, then a region by SCB code
    (``13``, ``region:13``) or name (``Region Halland``, ``Halland``)."""
    key = " ".join(customer.split()).casefold()
    if key in mapping.customers:
        return mapping.customers[key]
    code = key.removeprefix("region:").strip()
    if code.isdigit() and code.zfill(2) in codes.regions():
        return f"region:{code.zfill(2)}"
    for scb, name in codes.regions().items():
        full = name.casefold()
        if key in (full, full.removeprefix("region ").strip()):
            return f"region:{scb}"
    return None


class _Cells:
    """One data row's cells by field, with the header names for messages."""

    def __init__(self, cells: list[str], columns: dict[str, int], header: list[str]) -> None:
        self.cells, self.columns, self.header = cells, columns, header

    def text(self, name: str) -> str:
        position = self.columns.get(name)
        if position is None or position >= len(self.cells):
            return ""
        return self.cells[position].strip()

    def label(self, name: str) -> str:
        position = self.columns.get(name)
        return f"«{scrub(self.header[position], 40)}»" if position is not None else FIELDS[name]


def _row(line: int, cells: _Cells, mapping: ColumnMapping) -> ExportRow:
    """One row, or BadExport naming the row and the column (never the cell's value: a wrongly
    mapped column could hold a personnummer)."""

    def fail(name: str, why: str) -> BadExport:
        return BadExport(f"rad {line}: {cells.label(name)} {why}")

    def number(name: str, bounds: Bounded) -> Decimal:
        text = cells.text(name)
        if not text:
            raise fail(name, "saknas")
        try:
            return _number(text, bounds)
        except BadAmount as exc:
            raise fail(name, str(exc)) from None

    def date(name: str, required: bool) -> dt.date | None:
        text = cells.text(name)
        if not text:
            if required:
                raise fail(name, "saknas")
            return None
        found = _date(text, mapping.date_formats)
        if found is None:
            raise fail(name, "är inte ett datum (skriv ÅÅÅÅ-MM-DD)")
        return found

    numbered = mapping.columns.get("invoice_number")
    if numbered is not None and numbered.required and not cells.text("invoice_number"):
        raise fail("invoice_number", "saknas")
    customer = cells.text("customer")
    if not customer:
        raise fail("customer", "saknas")
    article_number = scrub(cells.text("article_number"), 40) or None
    article_name = scrub(cells.text("article_name"), 200) or None
    if article_number is None and article_name is None:
        raise fail(next(n for n in ARTICLE_FIELDS if n in cells.columns), "saknas")
    delivered_on = date("delivery_date", True)
    assert delivered_on is not None
    return ExportRow(
        line=line,
        invoice_number=scrub(cells.text("invoice_number"), 40),
        invoice_date=date("invoice_date", False),
        customer=scrub(customer, 80),
        recipient=_party(customer, mapping),
        delivered_on=delivered_on,
        article_number=article_number,
        article_name=article_name,
        quantity=number("quantity", QUANTITY),
        amount=number("amount", SEK),
    )


def read_export(data: bytes, mapping: ColumnMapping) -> list[ExportRow]:
    """The export's rows; BadExport with every bad row named (up to MAX_ERRORS) otherwise.
    Empty lines are skipped; a file with a header and no rows is refused as empty."""
    text = _decode(data, mapping)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text, mapping))
    rows: list[ExportRow] = []
    errors: list[str] = []
    header: list[str] | None = None
    columns: dict[str, int] = {}
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = cells
                columns = _columns(header, mapping)
                continue
            try:
                rows.append(_row(reader.line_num, _Cells(cells, columns, header), mapping))
            except BadExport as exc:
                errors.append(str(exc))
    except csv.Error:
        raise BadExport(f"rad {reader.line_num}: filen går inte att läsa som CSV (citattecken?)") from None
    if errors:
        more = f" … och {len(errors) - MAX_ERRORS} rader till" if len(errors) > MAX_ERRORS else ""
        raise BadExport("; ".join(errors[:MAX_ERRORS]) + more + ".")
    if not rows:
        raise BadExport("Filen har inga fakturarader (bara rubriker).")
    return rows


# ---------------------------------------------------------------- matching


def _name(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def _number_key(text: str | None) -> str:
    return re.sub(r"[\s.\-]", "", text or "").casefold()


def same_article(event: ElsewhereEvent, row: ExportRow) -> bool:
    """The same article: the numbers agree (varunummer and article number), or the names do.
    Either is enough, since webSesam's own article numbers need not be the varunummer."""
    if (
        event.varunummer
        and row.article_number
        and _number_key(event.varunummer) == _number_key(row.article_number)
    ):
        return True
    return bool(
        event.product_name and row.article_name and _name(event.product_name) == _name(row.article_name)
    )


def _same_billing(a: ExportRow, b: ExportRow) -> bool:
    return (
        a.customer == b.customer
        and a.delivered_on == b.delivered_on
        and abs(a.quantity) == abs(b.quantity)
        and a.article_number == b.article_number
        and _name(a.article_name) == _name(b.article_name)
    )


def _cancel_credits(rows: list[ExportRow], warnings: list[str]) -> tuple[list[ExportRow], list[ExportRow]]:
    """A credit row (negative amount) takes back the first debit row with the same customer,
    date, article, quantity and amount; both leave the comparison. Returns the debit rows left
    and the credits that took back nothing (shown as rows only in webSesam, never paired)."""
    debits = [r for r in rows if r.amount >= 0]
    unmatched = []
    for credit in (r for r in rows if r.amount < 0):
        debit = next((r for r in debits if r.amount == -credit.amount and _same_billing(r, credit)), None)
        if debit is None:
            unmatched.append(credit)
            continue
        debits.remove(debit)
        warnings.append(f"rad {credit.line} krediterar rad {debit.line}; ingen av dem stäms av.")
    return debits, unmatched


def _pair(
    events: list[ElsewhereEvent], rows: list[ExportRow]
) -> tuple[dict[int, list[ExportRow]], list[ExportRow]]:
    """Rows to events within one bucket (same recipient, date and quantity), in three passes so
    that ties resolve the same way every time: first a row with the same article and amount,
    then one with the same article, then any further row with the same article goes to the
    event it matches (preferring the same amount, then the earliest) as a second billing."""
    taken: dict[int, list[ExportRow]] = {e.event_id: [] for e in events}
    free = sorted(rows, key=lambda r: r.line)
    for exact in (True, False):
        for event in events:
            if taken[event.event_id]:
                continue
            row = next(
                (r for r in free if same_article(event, r) and (not exact or r.amount == event.amount)),
                None,
            )
            if row is not None:
                taken[event.event_id].append(row)
                free.remove(row)
    left = []
    for row in free:
        owners = [e for e in events if same_article(e, row)]
        if not owners:
            left.append(row)
            continue
        owner = min(owners, key=lambda e: (e.amount != row.amount, e.occurred_on, e.event_id))
        taken[owner.event_id].append(row)
    return taken, left


def _kind(event: ElsewhereEvent, rows: list[ExportRow]) -> Kind:
    if not rows:
        return "saknas i webSesam"
    if len(rows) > 1:
        return "fakturerad två gånger"
    return "matchad" if rows[0].amount == event.amount else "belopp skiljer"


def _rows_word(count: int) -> str:
    return "1 rad" if count == 1 else f"{count} rader"


def reconcile(
    events: Iterable[ElsewhereEvent], rows: Iterable[ExportRow], *, issuer: str, period: str
) -> Reconciliation:
    """Each event of the period beside the export rows that bill it; rows outside the period are
    set aside with a warning (they belong to another month's reconciliation)."""
    start, end = month_bounds(period)
    result = Reconciliation(issuer, period)
    rows = list(rows)
    outside = [r for r in rows if not start <= r.delivered_on <= end]
    if outside:
        lines = ", ".join(str(r.line) for r in outside[:10]) + (" …" if len(outside) > 10 else "")
        result.warnings.append(
            f"{_rows_word(len(outside))} gäller leveranser utanför {period} (rad {lines}) och stäms "
            "inte av här; stäm av dem mot sin egen månad."
        )
    unknown: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.recipient is None:
            unknown[row.customer].append(row.line)
    for customer, lines_of in unknown.items():
        result.warnings.append(
            f"Kunden «{customer}» (rad {', '.join(map(str, lines_of[:5]))}) känns inte igen som en region; "
            "ange den under customers i mappningen."
        )
    inside, credits = _cancel_credits([r for r in rows if start <= r.delivered_on <= end], result.warnings)
    buckets_e: dict[tuple[Any, ...], list[ElsewhereEvent]] = defaultdict(list)
    buckets_r: dict[tuple[Any, ...], list[ExportRow]] = defaultdict(list)
    for event in sorted(events, key=lambda e: (e.occurred_on, e.event_id)):
        buckets_e[(event.recipient, event.occurred_on, event.quantity)].append(event)
    for row in inside:
        key = (row.recipient, row.delivered_on, abs(row.quantity)) if row.recipient else ("?", row.line)
        buckets_r[key].append(row)
    only = list(credits)
    for key in buckets_e.keys() | buckets_r.keys():
        taken, left = _pair(buckets_e.get(key, []), buckets_r.get(key, []))
        for event in buckets_e.get(key, []):
            result.lines.append(
                Line(_kind(event, taken[event.event_id]), event, tuple(taken[event.event_id]))
            )
        only += left
    result.lines += [Line("finns bara i webSesam", None, (row,)) for row in only]
    order = {kind: n for n, kind in enumerate(KINDS)}
    result.lines.sort(
        key=lambda line: (
            order[line.kind],
            line.date,
            line.event.event_id if line.event else 0,
            line.rows[0].line if line.rows else 0,
        )
    )
    return result


# ---------------------------------------------------------------- the result as CSV for Swedish Excel

CSV_HEADER = (
    "Resultat",
    "Ärende",
    "Hemregion",
    "Datum",
    "Artikelnummer",
    "Benämning",
    "Antal",
    "Belopp i vembetalar (kr)",
    "Fakturerat i webSesam (kr)",
    "Skillnad (kr)",
    "Fakturanummer i webSesam",
    "Rader i filen",
)


def result_rows(result: Reconciliation) -> list[list[str]]:
    """One row per finding, as CSV_HEADER names the columns. Text from the file is made safe
    for a spreadsheet here; numbers (a credit is negative) are left as numbers."""
    out = []
    for line in result.lines:
        numbers = sorted({r.invoice_number for r in line.rows if r.invoice_number})
        out.append(
            [
                line.kind,
                line.event.case_reference if line.event else "",
                text_cell(codes.party_name(line.recipient) if line.recipient else line.rows[0].customer),
                line.date.isoformat(),
                text_cell(line.article_number),
                text_cell(line.article),
                number_cell(line.quantity, None),
                number_cell(line.expected),
                number_cell(line.billed),
                number_cell(line.difference) if line.kind != "matchad" else number_cell(Decimal(0)),
                text_cell(", ".join(numbers)),
                ", ".join(str(r.line) for r in line.rows),
            ]
        )
    return out


def result_csv(result: Reconciliation) -> bytes:
    """The reconciliation for Swedish Excel: ``;``, UTF-8 with BOM, comma decimals, ISO dates,
    formula-like text neutralised, one row per finding (no personal data beyond the case reference)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in result_rows(result):
        writer.writerow(row)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# ---------------------------------------------------------------- rows carried between requests


def rows_to_data(rows: Iterable[ExportRow]) -> list[list[Any]]:
    """The read rows in plain JSON (no personal data: only the mapped, scrubbed columns), so a
    page can offer the result as CSV without the file being sent again."""
    return [
        [
            r.line,
            r.invoice_number,
            r.invoice_date.isoformat() if r.invoice_date else None,
            r.customer,
            r.recipient,
            r.delivered_on.isoformat(),
            r.article_number,
            r.article_name,
            str(r.quantity),
            str(r.amount),
        ]
        for r in rows
    ]


def _row_from(item: list[Any]) -> ExportRow:
    line, number, invoiced, customer, recipient, delivered, article_number, article_name, quantity, amount = (
        item
    )
    return ExportRow(
        line=int(line),
        invoice_number=str(number),
        invoice_date=dt.date.fromisoformat(invoiced) if invoiced else None,
        customer=str(customer),
        recipient=recipient,
        delivered_on=dt.date.fromisoformat(delivered),
        article_number=article_number,
        article_name=article_name,
        quantity=Decimal(quantity),
        amount=Decimal(amount),
    )


def rows_from_data(data: list[list[Any]]) -> list[ExportRow]:
    """The inverse of rows_to_data (the caller has checked the data's signature)."""
    return [_row_from(item) for item in data]


def reconcile_export(
    db: Session, engine: Engine, *, issuer: str, period: str, data: bytes, mapping: ColumnMapping
) -> Reconciliation:
    """Read the export and reconcile it with the issuer's webSesam events of ``period``.
    ValueError for a bad period, BadExport for a bad file."""
    month_bounds(period)
    rows = read_export(data, mapping)
    return reconcile(
        elsewhere_events(db, engine, issuer=issuer, period=period), rows, issuer=issuer, period=period
    )
