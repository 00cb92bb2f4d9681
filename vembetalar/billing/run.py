"""The invoice run: a period's billable events of one issuer become invoices, as each agreement says.

What an invoice must show comes from the pack the event's decision rests on (``invoicing`` in
pack.yaml); who the seller and buyer are, with their numbers, from the organisation registry. An
event that lacks what its agreement requires is not invoiced but listed with what is missing; an
event another system bills (webSesam) is listed as billed elsewhere and never invoiced here.

Correctness under failure rests on the database, not on this code being careful: each invoice is
stored in one transaction that also advances the issuer's number series and marks its events
billed (``billed_events`` is keyed by the event). A run that dies leaves whole invoices or none;
running again bills only what is left; two runs at once cannot bill an event twice or leave a gap.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gc
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, cast, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from vembetalar.billing.document import (
    Address,
    DocLine,
    InvoiceDocument,
    OrgParty,
    TaxTreatment,
    document_to_json,
)
from vembetalar.billing.registry import luhn_ok, split_address
from vembetalar.model import codes
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import Pack
from vembetalar.rules.schema import InvoicingData, RecipientData
from vembetalar.store.models import (
    Base,
    BillableEvent,
    BilledEvent,
    CaseRecord,
    DecisionRecord,
    Invoice,
    InvoiceSeries,
    OrganisationDetails,
)

#: Riksavtalet för utomlänsvård: invoice within six months. No seed states a claim period, so this
#: is the default where a pack gives none (a deployment may set another).
DEFAULT_CLAIM_MONTHS = 6
#: Warn this many days before an event's claim period ends.
WARN_DAYS = 30
SERIES = "F"

FIELD_NAMES = {
    "occurred_on": "datum",
    "product_name": "benämning",
    "varunummer": "varunummer",
    "quantity": "kvantitet",
    "unit_price_sek": "à-pris",
    "amount_sek": "belopp",
    "prescriber_name": "förskrivarens namn",
    "unit_name": "enhet",
    "diarienummer": "diarienummer",
}


class RegistryIncomplete(ValueError):
    """The issuer's registry entry lacks what an invoice needs; the message lists it."""


@dataclass(frozen=True)
class Pending:
    """An event not invoiced in this run, and why (what is missing, or who bills it)."""

    event_id: int
    case_reference: str
    recipient: str | None
    reason: str


@dataclass
class RunReport:
    issuer: str
    period: str
    invoices: list[Invoice] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    billed_elsewhere: list[Pending] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lost_races: int = 0


def month_bounds(period: str) -> tuple[dt.date, dt.date]:
    """``2024-05`` → the first and last day of May 2024; anything else is a ValueError naming it."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", period)
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"--period: {period!r} ska vara en månad som ÅÅÅÅ-MM")
    year, month = int(match[1]), int(match[2])
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _digits(value: str | None) -> str | None:
    return re.sub(r"\D", "", value) if value else None


def _as_address(lines: list[str]) -> tuple[tuple[str, ...], str | None, str | None]:
    street, postcode, city = split_address(lines)
    return tuple(street), postcode, city


def registry_gaps(details: OrganisationDetails | None) -> list[str]:
    """What an issuer's registry entry lacks for an invoice that a Swedish public buyer accepts."""
    if details is None:
        return ["hela registerposten (juridiskt namn, organisationsnummer, adress, bankgiro/plusgiro)"]
    gaps = []
    number = _digits(details.org_number)
    if not number or len(number) != 10 or not luhn_ok(number):
        gaps.append("organisationsnummer (tio siffror med rätt kontrollsiffra)")
    if not (details.address_lines or {}).get("lines") and not details.postcode:
        gaps.append("postadress")
    if not details.postcode or not details.city:
        gaps.append("postnummer och ort")
    if not details.bankgiro and not details.plusgiro:
        gaps.append("bankgiro eller plusgiro")
    return gaps


def _seller(details: OrganisationDetails) -> OrgParty:
    number = _digits(details.org_number)
    return OrgParty(
        name=details.legal_name,
        org_number=number,
        gln=details.gln,
        endpoint=details.peppol_id or (f"0007:{number}" if number else None),
        vat_id=details.vat_id,
        f_skatt=details.f_skatt,
        address=Address(
            tuple((details.address_lines or {}).get("lines", [])), details.postcode, details.city
        ),
        contact_email=details.email,
        bankgiro=_digits(details.bankgiro),
        plusgiro=_digits(details.plusgiro),
    )


def _buyer(recipient: RecipientData, details: OrganisationDetails | None) -> OrgParty | str:
    """The buyer as the agreement names it, with numbers from the seed or else the registry; a
    string says what is missing."""
    number = _digits(recipient.org_number) or (_digits(details.org_number) if details else None)
    gln = recipient.gln or (details.gln if details else None)
    endpoint = recipient.peppol_id or (details.peppol_id if details else None)
    endpoint = endpoint or (f"0088:{gln}" if gln else None) or (f"0007:{number}" if number else None)
    if endpoint is None:
        return "mottagarens organisationsnummer, GLN eller PEPPOL-id saknas i organisationsregistret"
    return OrgParty(
        name=recipient.name,
        org_number=number if number and len(number) == 10 else None,
        gln=gln,
        endpoint=endpoint,
        address=Address(*_as_address(recipient.address)),
        department=recipient.department,
    )


@dataclass(frozen=True)
class _Route:
    pack: Pack
    recipient_id: str
    recipient: RecipientData
    invoicing: InvoicingData


def _route(db: Session, engine: Engine, event: Any, seen: dict[Any, Any]) -> _Route | InvoicingData | str:
    """Where the event's agreement sends its invoice: a route, the InvoicingData of another
    system that bills it, or a reason it cannot be invoiced. Memoised per decision: thousands
    of events share one (by ``decision_id``; events stored before carry their own copy)."""
    key = event.decision_id if event.decision_id is not None else event.decision_text
    if key not in seen:
        if event.decision_id is not None:
            text = db.scalar(
                select(cast(DecisionRecord.decision_json, Text)).where(DecisionRecord.id == event.decision_id)
            )
        else:
            text = event.decision_text
        seen[key] = _route_of(engine, json.loads(text or "{}"))
    found: _Route | InvoicingData | str = seen[key]
    return found


def _route_of(engine: Engine, decision: dict[str, Any]) -> _Route | InvoicingData | str:
    rule_id = decision.get("rule_id") or ""
    try:
        pack = engine.pack(rule_id.split("/", 1)[0])
    except KeyError:
        return "avtalet som beslutet vilar på finns inte längre bland de inlästa avtalen"
    recipient = ((decision.get("invoice") or {}).get("recipient")) or {}
    recipient_id = recipient.get("id")
    invoicing = pack.invoicing_for(recipient_id)
    if invoicing is None:
        note = (decision.get("invoice") or {}).get("note") or decision.get("payer_note")
        return note or "avtalet anger inte hur fakturan ska se ut; fråga betalaren"
    if invoicing.billed_by:
        return invoicing
    if recipient_id not in pack.meta.recipients:
        return "avtalet anger ingen fakturamottagare; fråga betalaren vart fakturan ska ställas"
    return _Route(pack, recipient_id, pack.meta.recipients[recipient_id], invoicing)


def _missing(event: Any, case: _CaseFacts, invoicing: InvoicingData) -> list[str]:
    missing = [FIELD_NAMES[f] for f in invoicing.line_fields if getattr(event, f) is None]
    missing += [FIELD_NAMES[f] for f in invoicing.case_fields if getattr(event, f) is None]
    if invoicing.patient == "personnummer" and not case.patient_id:
        missing.append("patientens personnummer")
    if invoicing.patient == "initials" and not case.patient_initials:
        missing.append("patientens initialer")
    if invoicing.states_self_care and case.self_care is None:
        missing.append("om patienten har egenvård")
    return missing


#: The event columns a run reads: the decision comes as its JSON text, parsed once per distinct
#: decision (thousands of dispensings share one), never per event.
_EVENT_COLUMNS = (
    BillableEvent.id,
    BillableEvent.case_id,
    BillableEvent.occurred_on,
    BillableEvent.recipient,
    BillableEvent.amount_sek,
    BillableEvent.quantity,
    BillableEvent.unit_price_sek,
    BillableEvent.product_name,
    BillableEvent.varunummer,
    BillableEvent.prescriber_name,
    BillableEvent.unit_name,
    BillableEvent.diarienummer,
    BillableEvent.decision_id,
    cast(BillableEvent.decision_json, Text).label("decision_text"),
)


@dataclass(frozen=True)
class _CaseFacts:
    """What an invoice may say about a case: its reference and the patient data an agreement
    can demand (read once per case)."""

    id: str
    reference: str
    patient_id: str | None
    patient_initials: str | None
    self_care: bool | None
    #: Under self-care: the unit that decided it, which the invoice names.
    self_care_unit: str | None = None


def _standing_unbilled(issuer: str, start: dt.date, end: dt.date) -> Any:
    later = aliased(BillableEvent)
    return (
        select(*_EVENT_COLUMNS)
        .where(
            BillableEvent.issuer == issuer,
            BillableEvent.occurred_on >= start,
            BillableEvent.occurred_on <= end,
            BillableEvent.cancelled.is_(False),
            ~exists().where(later.supersedes_id == BillableEvent.id),
            ~exists().where(BilledEvent.event_id == BillableEvent.id),
        )
        .order_by(BillableEvent.occurred_on, BillableEvent.id)
    )


def billed_elsewhere(
    db: Session, engine: Engine, *, issuer: str, period: str
) -> list[tuple[Any, str, InvoicingData]]:
    """The events a run of ``issuer`` and ``period`` lists as billed elsewhere, each with its
    case's reference and the agreement's invoicing data (``billed_by``): what a reconciliation
    with the other system's invoices starts from. Reads only; needs no registry entry, since
    nothing is invoiced. Same selection and routing as ``run_invoices``, so the two agree."""
    start, end = month_bounds(period)
    seen: dict[Any, Any] = {}
    found = []
    for event in db.execute(_standing_unbilled(issuer, start, end)).all():
        route = _route(db, engine, event, seen)
        if isinstance(route, InvoicingData):
            found.append((event, route))
    cases = _case_facts(db, {event.case_id for event, _ in found})
    return [(event, cases[event.case_id].reference, route) for event, route in found]


def _case_facts(db: Session, case_ids: set[str]) -> dict[str, _CaseFacts]:
    facts = {}
    ids = sorted(case_ids)
    for start in range(0, len(ids), 500):
        rows = db.execute(
            select(
                CaseRecord.id,
                CaseRecord.reference,
                CaseRecord.patient_id,
                CaseRecord.patient_initials,
                cast(CaseRecord.case_json, Text),
                CaseRecord.payer_unit_name,
            ).where(CaseRecord.id.in_(ids[start : start + 500]))
        ).all()
        for case_id, reference, patient_id, initials, case_text, unit in rows:
            care = (json.loads(case_text) or {}).get("care") or {}
            facts[case_id] = _CaseFacts(case_id, reference, patient_id, initials, care.get("self_care"), unit)
    return facts


def _line(number: int, event: Any, case: _CaseFacts, invoicing: InvoicingData, marker: int | None) -> DocLine:
    properties: list[tuple[str, str]] = []
    if marker is not None:
        properties.append(("Patient", f"{marker} ({case.patient_initials})"))
    if invoicing.patient == "personnummer" and case.patient_id:
        properties.append(("Personnummer", case.patient_id))
    if event.diarienummer and "diarienummer" in invoicing.case_fields:
        properties.append(("Diarienummer", event.diarienummer))
    if event.prescriber_name:
        properties.append((invoicing.prescriber_label, event.prescriber_name))
    if event.unit_name:
        properties.append((invoicing.unit_label, event.unit_name))
    if invoicing.states_self_care:
        properties.append(("Egenvård", "ja" if case.self_care else "nej"))
    if case.self_care_unit:
        properties.append(("Enhet som beslutat om egenvården", case.self_care_unit))
    properties.append(("Datum", event.occurred_on.isoformat()))
    amount = event.amount_sek or Decimal(0)
    quantity = event.quantity if event.quantity else Decimal(1)
    price = event.unit_price_sek if event.unit_price_sek is not None else amount
    return DocLine(
        number=number,
        description=event.product_name or "Undantagshantering av receptläkemedel",
        quantity=quantity,
        unit_price=price,
        amount=amount,
        varunummer=event.varunummer,
        properties=tuple(properties),
        occurred_on=event.occurred_on,
    )


def _claim_warnings(events: Iterable[tuple[Any, _CaseFacts]], months: int, today: dt.date) -> list[str]:
    out = []
    for event, case in events:
        deadline = add_months(event.occurred_on, months)
        if today > deadline:
            out.append(
                f"{case.reference}: underlaget från {event.occurred_on} skulle ha fakturerats senast "
                f"{deadline} ({months} månader); det faktureras ändå"
            )
        elif (deadline - today).days <= WARN_DAYS:
            out.append(
                f"{case.reference}: underlaget från {event.occurred_on} ska faktureras senast {deadline}"
            )
    return out


def number_text(series: str, issuer: str, number: int) -> str:
    """``F14-000001``: series, the issuer's SCB code, the number. Unique across issuers too, so
    one folder can hold every issuer's files, each named by its number."""
    return f"{series}{issuer.split(':', 1)[-1]}-{number:06d}"


def ensure_series(db: Session, issuer: str, series: str = SERIES) -> None:
    """Create the issuer's series row once (a concurrent run may create it first)."""
    if db.get(InvoiceSeries, (issuer, series)) is None:
        db.add(InvoiceSeries(issuer=issuer, series=series, next_number=1))
        try:
            db.commit()
        except IntegrityError:
            db.rollback()


def next_number(db: Session, issuer: str, series: str = SERIES) -> int:
    """Take the series' next number inside the caller's transaction (locking the row)."""
    db.execute(
        update(InvoiceSeries)
        .where(InvoiceSeries.issuer == issuer, InvoiceSeries.series == series)
        .values(next_number=InvoiceSeries.next_number)
    )
    row = db.get(InvoiceSeries, (issuer, series), populate_existing=True, with_for_update=True)
    assert row is not None  # ensure_series made it
    number = row.next_number
    row.next_number = number + 1
    return number


@contextmanager
def _without_gc_pauses() -> Iterator[None]:
    """A run holds a period's events, lines and documents — millions of small objects that live
    until it ends — and the cyclic collector would rescan them over and over (a quarter of the
    run's time at 100 000 events, measured). Reference counting still frees what is dropped;
    collection resumes when the run ends. Process-wide, so it is only switched back on by the
    run that switched it off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_invoices(
    db: Session,
    engine: Engine,
    *,
    issuer: str,
    period: str,
    today: dt.date,
    user_id: int | None = None,
    claim_months_default: int = DEFAULT_CLAIM_MONTHS,
) -> RunReport:
    """Invoice ``issuer``'s standing, unbilled events of ``period``. Idempotent: what an earlier
    (or concurrent) run billed is not billed again."""
    with _without_gc_pauses():
        return _run(db, engine, issuer, period, today, user_id, claim_months_default)


def _run(
    db: Session,
    engine: Engine,
    issuer: str,
    period: str,
    today: dt.date,
    user_id: int | None,
    claim_months_default: int,
) -> RunReport:
    start, end = month_bounds(period)
    report = RunReport(issuer, period)
    details = db.get(OrganisationDetails, issuer)
    gaps = registry_gaps(details)
    if gaps:
        who = codes.party_name(issuer)
        raise RegistryIncomplete(
            f"{who} kan inte fakturera: i organisationsregistret saknas {', '.join(gaps)}"
        )
    assert details is not None
    seller = _seller(details)
    ensure_series(db, issuer)
    events = db.execute(_standing_unbilled(issuer, start, end)).all()
    cases = _case_facts(db, {e.case_id for e in events})
    rows = [(event, cases[event.case_id]) for event in events]
    groups: dict[tuple[str, str, str, str], list[tuple[Any, _CaseFacts]]] = defaultdict(list)
    routes: dict[tuple[str, str, str, str], _Route] = {}
    seen: dict[str, Any] = {}
    for event, case in rows:
        route = _route(db, engine, event, seen)
        if isinstance(route, str):
            report.pending.append(Pending(event.id, case.reference, event.recipient, route))
            continue
        if isinstance(route, InvoicingData):
            shows = ", ".join(FIELD_NAMES[f] for f in route.line_fields)
            report.billed_elsewhere.append(
                Pending(
                    event.id,
                    case.reference,
                    event.recipient,
                    f"faktureras av {route.billed_by}; den fakturan ska visa {shows}",
                )
            )
            continue
        party = route.recipient.party
        if party is not None and event.recipient != party:
            report.pending.append(
                Pending(
                    event.id,
                    case.reference,
                    event.recipient,
                    f"avtalets fakturaväg gäller {codes.party_name(party)}, inte "
                    f"{codes.party_name(event.recipient or '?')}; avtalet anger ingen väg dit – "
                    "fråga betalaren vart fakturan ska ställas",
                )
            )
            continue
        missing = _missing(event, case, route.invoicing)
        if missing:
            report.pending.append(
                Pending(event.id, case.reference, event.recipient, "saknas: " + ", ".join(missing))
            )
            continue
        patient = "" if route.invoicing.several_patients else (case.patient_id or case.id)
        key = (event.recipient or "", route.pack.id, route.recipient_id, patient)
        groups[key].append((event, case))
        routes[key] = route
    for key in sorted(groups):
        route = routes[key]
        months = (
            route.pack.meta.invoicing and route.pack.meta.invoicing.claim_months
        ) or claim_months_default
        report.warnings += _claim_warnings(groups[key], months, today)
        invoice = _issue(db, report, seller, details, key, route, groups[key], today, start, end, user_id)
        if invoice is not None:
            report.invoices.append(invoice)
    return report


def _issue(
    db: Session,
    report: RunReport,
    seller: OrgParty,
    details: OrganisationDetails,
    key: tuple[str, str, str, str],
    route: _Route,
    events: list[tuple[Any, _CaseFacts]],
    today: dt.date,
    start: dt.date,
    end: dt.date,
    user_id: int | None,
) -> Invoice | None:
    recipient_party = key[0]
    buyer = _buyer(route.recipient, db.get(OrganisationDetails, recipient_party))
    if isinstance(buyer, str):
        for event, case in events:
            report.pending.append(Pending(event.id, case.reference, recipient_party, buyer))
        return None
    invoicing = route.invoicing
    markers: dict[str, int] = {}
    initials: dict[int, str | None] = {}
    lines = []
    marked = invoicing.several_patients and invoicing.patient == "initials"
    for number, (event, case) in enumerate(events, start=1):
        marker = None
        if marked:
            marker = markers.setdefault(case.patient_id or case.id, len(markers) + 1)
            initials.setdefault(marker, case.patient_initials)
        lines.append(_line(number, event, case, invoicing, marker))
    notes = list(invoicing.notes)
    if markers:
        notes.append(
            "Raderna är märkta med patientens nummer: "
            + ", ".join(f"{m} = {initials[m]}" for m in sorted(initials))
            + "."
        )
    vat = route.pack.meta.invoicing.vat if route.pack.meta.invoicing else None
    tax = (
        TaxTreatment(vat.category, Decimal(str(vat.percent)), vat.exemption_code, vat.exemption_reason)
        if vat
        else TaxTreatment("E", Decimal(0), None, "Undantagen från skatteplikt")
    )
    reference = getattr(route.recipient, invoicing.buyer_reference) if invoicing.buyer_reference else None
    if tax.category in ("S", "E", "Z") and not seller.vat_id:
        why = (
            f"säljarens momsregistreringsnummer saknas i organisationsregistret (momskategori {tax.category})"
        )
        for event, case in events:
            report.pending.append(Pending(event.id, case.reference, recipient_party, why))
        return None
    try:
        number = next_number(db, report.issuer)
        document = InvoiceDocument(
            kind="invoice",
            number=number_text(SERIES, report.issuer, number),
            issue_date=today,
            due_date=today + dt.timedelta(days=details.payment_days),
            seller=seller,
            buyer=buyer,
            buyer_reference=reference or route.recipient.name,
            lines=tuple(lines),
            tax=tax,
            notes=tuple(notes),
            period=(start, end),
            contract_reference=f"{route.pack.id}/{route.recipient_id}",
            project_reference=route.recipient.project_code,
        )
        invoice = Invoice(
            issuer=report.issuer,
            series=SERIES,
            number=number,
            number_text=document.number,
            kind="invoice",
            recipient=recipient_party,
            route=document.contract_reference or "",
            period=report.period,
            issue_date=today,
            due_date=document.due_date,
            total_sek=document.payable,
            status="draft",
            document_json=document_to_json(document),
            created_by=user_id,
        )
        db.add(invoice)
        db.flush()
        db.execute(  # the table, not the mapped class: no ORM bookkeeping per billed event
            insert(Base.metadata.tables["billed_events"]),
            [
                {"event_id": event.id, "invoice_id": invoice.id, "line_number": n}
                for n, (event, _) in enumerate(events, start=1)
            ],
        )
        db.commit()
    except IntegrityError:  # a concurrent run billed some of these events first: it keeps them
        db.rollback()
        report.lost_races += 1
        return None
    return invoice
