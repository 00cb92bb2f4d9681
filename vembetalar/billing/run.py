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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Text, cast, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from vembetalar.billing.document import (
    Address,
    DocLine,
    InvoiceDocument,
    OrgParty,
    TaxTreatment,
    decimal_text,
)
from vembetalar.billing.registry import luhn_ok, split_address
from vembetalar.model import codes
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import Pack
from vembetalar.rules.schema import InvoicingData, RecipientData
from vembetalar.store.bulk import insert_many
from vembetalar.store.db import PreEncodedJSON
from vembetalar.store.models import (
    Base,
    BillableEvent,
    BilledEvent,
    CaseRecord,
    DecisionRecord,
    InvoiceSeries,
    OrganisationDetails,
    utcnow,
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
class IssuedInvoice:
    """An invoice a run stored, as its row says, with the document as stored (JSON bytes, parsed
    only when asked for): a run of a large region's month makes thousands."""

    id: int
    issuer: str
    series: str
    number: int
    number_text: str
    kind: str
    recipient: str
    route: str
    period: str
    issue_date: dt.date
    due_date: dt.date
    total_sek: Decimal
    status: str
    buyer_name: str
    line_count: int
    document_bytes: bytes

    @cached_property
    def document_json(self) -> dict[str, Any]:
        document: dict[str, Any] = orjson.loads(self.document_bytes)
        return document


@dataclass
class RunReport:
    issuer: str
    period: str
    invoices: list[IssuedInvoice] = field(default_factory=list)
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
    invoicing = pack.invoicing_for(recipient_id, decision.get("rule_ids") or [rule_id])
    if invoicing is None:
        note = (decision.get("invoice") or {}).get("note") or decision.get("payer_note")
        return note or "avtalet anger inte hur fakturan ska se ut; fråga betalaren"
    if invoicing.billed_by:
        return invoicing
    if recipient_id not in pack.meta.recipients:
        return "avtalet anger ingen fakturamottagare; fråga betalaren vart fakturan ska ställas"
    return _Route(pack, recipient_id, pack.meta.recipients[recipient_id], invoicing)


def _missing(event: Any, case: _CaseFacts, invoicing: InvoicingData) -> list[str]:
    missing = [
        FIELD_NAMES[f] for f in (*invoicing.line_fields, *invoicing.case_fields) if getattr(event, f) is None
    ]
    if invoicing.patient == "personnummer" and not case.patient_id:
        missing.append("patientens personnummer")
    if invoicing.patient == "initials" and not case.patient_initials:
        missing.append("patientens initialer")
    if invoicing.states_self_care and case.self_care is None:
        missing.append("om patienten har egenvård")
    return missing


class _Event(NamedTuple):
    """An event as the run reads it. A plain tuple: a result row's attribute lookup costs ten
    times a tuple's, and a run looks at a million events some twenty times each."""

    id: int
    case_id: str
    occurred_on: dt.date
    recipient: str | None
    amount_sek: Decimal | None
    quantity: Decimal | None
    unit_price_sek: Decimal | None
    product_name: str | None
    varunummer: str | None
    prescriber_name: str | None
    unit_name: str | None
    diarienummer: str | None
    decision_id: int | None
    decision_text: str | None


#: The event columns a run reads, in ``_Event``'s order: the decision comes as its JSON text,
#: parsed once per distinct decision (thousands of dispensings share one), never per event.
_EVENT_COLUMNS = (
    *(getattr(BillableEvent, name) for name in _Event._fields[:-1]),
    cast(BillableEvent.decision_json, Text).label("decision_text"),
)


def _events(db: Session, issuer: str, start: dt.date, end: dt.date) -> list[_Event]:
    """The period's standing, unbilled events, oldest first. Through the connection, not the ORM
    session: these are plain rows."""
    result = db.connection().execute(_standing_unbilled(issuer, start, end))
    return list(map(_Event._make, result))


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
    for event in _events(db, issuer, start, end):
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


class _LineMaker:
    """Builds one invoice's lines. What an agreement demands of a case (the patient's marker or
    personnummer, self-care) is the same on every line of that case, so it is worked out once per
    case, not once per event: a month of a large region is a million lines."""

    def __init__(self, invoicing: InvoicingData) -> None:
        self.invoicing = invoicing
        self.marked = invoicing.several_patients and invoicing.patient == "initials"
        self.markers: dict[str, int] = {}
        self.initials: dict[int, str | None] = {}
        self.by_case: dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {}
        self.diarienummer = "diarienummer" in invoicing.case_fields

    def _case(self, case: _CaseFacts) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        found = self.by_case.get(case.id)
        if found is None:
            head: list[tuple[str, str]] = []
            if self.marked:
                marker = self.markers.setdefault(case.patient_id or case.id, len(self.markers) + 1)
                self.initials.setdefault(marker, case.patient_initials)
                head.append(("Patient", f"{marker} ({case.patient_initials})"))
            if self.invoicing.patient == "personnummer" and case.patient_id:
                head.append(("Personnummer", case.patient_id))
            tail: list[tuple[str, str]] = []
            if self.invoicing.states_self_care:
                tail.append(("Egenvård", "ja" if case.self_care else "nej"))
            if case.self_care_unit:
                tail.append(("Enhet som beslutat om egenvården", case.self_care_unit))
            found = self.by_case[case.id] = (tuple(head), tuple(tail))
        return found

    def line(self, number: int, event: Any, case: _CaseFacts) -> DocLine:
        head, tail = self._case(case)
        middle: list[tuple[str, str]] = []
        if event.diarienummer and self.diarienummer:
            middle.append(("Diarienummer", event.diarienummer))
        if event.prescriber_name:
            middle.append((self.invoicing.prescriber_label, event.prescriber_name))
        if event.unit_name:
            middle.append((self.invoicing.unit_label, event.unit_name))
        amount = event.amount_sek or Decimal(0)
        return DocLine(
            number,
            event.product_name or "Undantagshantering av receptläkemedel",
            event.quantity or Decimal(1),
            event.unit_price_sek if event.unit_price_sek is not None else amount,
            amount,
            event.varunummer,
            (*head, *middle, *tail, ("Datum", event.occurred_on.isoformat())),
            None,
            event.occurred_on,
        )

    def key_note(self) -> str | None:
        """The key from line markers to patients' initials (Värmland: one invoice, several patients)."""
        if not self.markers:
            return None
        return (
            "Raderna är märkta med patientens nummer: "
            + ", ".join(f"{m} = {self.initials[m]}" for m in sorted(self.initials))
            + "."
        )


def _claim_warnings(events: Sequence[tuple[Any, _CaseFacts]], months: int, today: dt.date) -> list[str]:
    """One warning per case and kind (lapsed, or nearing its deadline), not one per event: a case
    can have hundreds of dispensings in a month, and the clerk acts on the case. ``events`` are
    oldest first: when the oldest is far from its deadline, so are the others."""
    oldest = next(iter(events), None)
    if oldest is None or (add_months(oldest[0].occurred_on, months) - today).days > WARN_DAYS:
        return []
    deadlines: dict[dt.date, dt.date] = {}
    by_case: dict[tuple[str, bool], list[tuple[dt.date, dt.date]]] = defaultdict(list)
    for event, case in events:
        day = event.occurred_on
        deadline = deadlines.get(day)
        if deadline is None:
            deadline = deadlines[day] = add_months(day, months)
        if today > deadline:
            by_case[(case.reference, True)].append((day, deadline))
        elif (deadline - today).days <= WARN_DAYS:
            by_case[(case.reference, False)].append((day, deadline))
    out = []
    for (reference, lapsed), found in by_case.items():
        first = min(found)
        days = sorted({day for day, _ in found})
        what = (
            f"underlaget från {first[0]}"
            if len(found) == 1
            else f"{len(found)} underlag från {days[0]}–{days[-1]}"
        )
        if lapsed:
            out.append(
                f"{reference}: {what} skulle ha fakturerats senast {first[1]} ({months} månader); "
                "det faktureras ändå"
            )
        else:
            out.append(f"{reference}: {what} ska faktureras senast {first[1]}")
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


def take_numbers(db: Session, issuer: str, count: int, series: str = SERIES) -> int:
    """Take ``count`` consecutive numbers of the series inside the caller's transaction and
    return the first. The update locks the row until the transaction ends, so a concurrent run
    waits, and a rollback gives the numbers back: the series stays gap-free."""
    table = Base.metadata.tables["invoice_series"]
    after = db.execute(
        update(table)
        .where(table.c.issuer == issuer, table.c.series == series)
        .values(next_number=table.c.next_number + count)
        .returning(table.c.next_number)
    ).scalar_one()
    return int(after) - count


def next_number(db: Session, issuer: str, series: str = SERIES) -> int:
    """Take the series' next number inside the caller's transaction (locking the row)."""
    return take_numbers(db, issuer, 1, series)


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
    on_issued: Callable[[list[IssuedInvoice]], None] | None = None,
) -> RunReport:
    """Invoice ``issuer``'s standing, unbilled events of ``period``. Idempotent: what an earlier
    (or concurrent) run billed is not billed again. ``on_issued`` is told of each batch of
    invoices as soon as it is committed (``invoice run --out`` writes their files meanwhile)."""
    with _without_gc_pauses():
        return _run(db, engine, issuer, period, today, user_id, claim_months_default, on_issued)


_GroupKey = tuple[str, str, str, str]


def _run(
    db: Session,
    engine: Engine,
    issuer: str,
    period: str,
    today: dt.date,
    user_id: int | None,
    claim_months_default: int,
    on_issued: Callable[[list[IssuedInvoice]], None] | None,
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
    events = _events(db, issuer, start, end)
    cases = _case_facts(db, {e.case_id for e in events})
    groups: dict[_GroupKey, list[tuple[Any, _CaseFacts]]] = defaultdict(list)
    routes: dict[_GroupKey, _Route] = {}
    seen: dict[str, Any] = {}
    for event in events:
        case = cases[event.case_id]
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
    del events
    buyers: dict[str, OrganisationDetails | None] = {}
    batch: list[_Draft] = []
    lines_in_batch = 0
    for key in sorted(groups):
        route = routes[key]
        months = (
            route.pack.meta.invoicing and route.pack.meta.invoicing.claim_months
        ) or claim_months_default
        report.warnings += _claim_warnings(groups[key], months, today)
        if key[0] not in buyers:
            buyers[key[0]] = db.get(OrganisationDetails, key[0])
        draft = _draft(
            report, seller, details, key, route, groups.pop(key), buyers[key[0]], today, start, end
        )
        if draft is None:
            continue
        batch.append(draft)
        lines_in_batch += len(draft.lines)
        if len(batch) >= BATCH_INVOICES or lines_in_batch >= BATCH_LINES:
            _store(db, report, batch, user_id, on_issued)
            batch, lines_in_batch = [], 0
    if batch:
        _store(db, report, batch, user_id, on_issued)
    return report


#: Invoices are stored in batches, each batch one transaction: a run that dies leaves whole
#: invoices (whole batches) or none, and a month of ten thousand invoices is not ten thousand
#: commits. A batch ends at whichever limit it reaches first.
BATCH_INVOICES = 200
BATCH_LINES = 50_000


@dataclass
class _Draft:
    """An invoice ready but for its number, which is taken when it is stored."""

    recipient: str
    route: _Route
    document: InvoiceDocument
    events: list[int]

    @property
    def lines(self) -> tuple[DocLine, ...]:
        return self.document.lines


def _draft(
    report: RunReport,
    seller: OrgParty,
    details: OrganisationDetails,
    key: _GroupKey,
    route: _Route,
    events: list[tuple[Any, _CaseFacts]],
    buyer_details: OrganisationDetails | None,
    today: dt.date,
    start: dt.date,
    end: dt.date,
) -> _Draft | None:
    recipient_party = key[0]
    buyer = _buyer(route.recipient, buyer_details)
    if isinstance(buyer, str):
        for event, case in events:
            report.pending.append(Pending(event.id, case.reference, recipient_party, buyer))
        return None
    invoicing = route.invoicing
    vat = route.pack.meta.invoicing.vat if route.pack.meta.invoicing else None
    tax = (
        TaxTreatment(vat.category, Decimal(str(vat.percent)), vat.exemption_code, vat.exemption_reason)
        if vat
        else TaxTreatment("E", Decimal(0), None, "Undantagen från skatteplikt")
    )
    if tax.category in ("S", "E", "Z") and not seller.vat_id:
        why = (
            f"säljarens momsregistreringsnummer saknas i organisationsregistret (momskategori {tax.category})"
        )
        for event, case in events:
            report.pending.append(Pending(event.id, case.reference, recipient_party, why))
        return None
    maker = _LineMaker(invoicing)
    lines = tuple(maker.line(number, event, case) for number, (event, case) in enumerate(events, start=1))
    notes = list(invoicing.notes)
    if (key_note := maker.key_note()) is not None:
        notes.append(key_note)
    reference = getattr(route.recipient, invoicing.buyer_reference) if invoicing.buyer_reference else None
    document = InvoiceDocument(
        kind="invoice",
        number="",  # taken when stored
        issue_date=today,
        due_date=today + dt.timedelta(days=details.payment_days),
        seller=seller,
        buyer=buyer,
        buyer_reference=reference or route.recipient.name,
        lines=lines,
        tax=tax,
        notes=tuple(notes),
        period=(start, end),
        contract_reference=f"{route.pack.id}/{route.recipient_id}",
        project_reference=route.recipient.project_code,
    )
    return _Draft(recipient_party, route, document, [event.id for event, _ in events])


def _store(
    db: Session,
    report: RunReport,
    batch: list[_Draft],
    user_id: int | None,
    on_issued: Callable[[list[IssuedInvoice]], None] | None,
) -> None:
    """Store a batch in one transaction; if a concurrent run billed any of its events first,
    store its invoices one by one instead, so only the groups that run took are given up."""
    try:
        issued = _insert(db, report, batch, user_id)
        db.commit()
    except IntegrityError:
        db.rollback()
        if len(batch) == 1:
            report.lost_races += 1
            return
        for draft in batch:
            _store(db, report, [draft], user_id, on_issued)
        return
    report.invoices += issued
    if on_issued is not None:
        on_issued(issued)


_INVOICES = Base.metadata.tables["invoices"]


def _insert(db: Session, report: RunReport, batch: list[_Draft], user_id: int | None) -> list[IssuedInvoice]:
    """Tables, not mapped classes: no ORM bookkeeping for thousands of invoices and a million
    billed events."""
    first = take_numbers(db, report.issuer, len(batch))
    issued: list[IssuedInvoice] = []
    billed: list[tuple[int, int, int]] = []
    now = utcnow()
    for number, draft in enumerate(batch, start=first):
        document = replace(draft.document, number=number_text(SERIES, report.issuer, number))
        route = document.contract_reference or ""
        encoded = orjson.dumps(document, default=decimal_text)
        row = {
            "issuer": report.issuer,
            "series": SERIES,
            "number": number,
            "number_text": document.number,
            "kind": "invoice",
            "recipient": draft.recipient,
            "route": route,
            "period": report.period,
            "issue_date": document.issue_date,
            "due_date": document.due_date,
            "total_sek": document.payable,
            "status": "draft",
            "document_json": PreEncodedJSON(encoded),
            "created_at": now,
            "created_by": user_id,
        }
        invoice_id = db.execute(insert(_INVOICES).returning(_INVOICES.c.id), row).scalar_one()
        billed += [(event_id, invoice_id, n) for n, event_id in enumerate(draft.events, start=1)]
        issued.append(
            IssuedInvoice(
                id=invoice_id,
                issuer=report.issuer,
                series=SERIES,
                number=number,
                number_text=document.number,
                kind="invoice",
                recipient=draft.recipient,
                route=route,
                period=report.period,
                issue_date=document.issue_date,
                due_date=document.due_date,
                total_sek=document.payable,
                status="draft",
                buyer_name=document.buyer.name,
                line_count=len(document.lines),
                document_bytes=encoded,
            )
        )
    _insert_billed(db, billed)
    return issued


def _insert_billed(db: Session, rows: list[tuple[int, int, int]]) -> None:
    """``billed_events``, one per invoice line: a million in a large month (``store.bulk``)."""
    insert_many(db, Base.metadata.tables["billed_events"], rows, ("event_id", "invoice_id", "line_number"))
