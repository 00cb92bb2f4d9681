"""Bulk import of dispensings and deliveries that another system recorded (a pharmacy system, a
hjälpmedel order system), as the unit's own steps.

Every row goes through the same workflow and checks as a line typed into the case page — the
user must belong to the treating party, the step must be allowed, the amount must add up and stay
under the commitment's ceiling, the date must lie within the case's life — so an import cannot
bill what the desk would refuse. Each row's idempotency key is its own column or, when absent, a
digest of the row, so importing the same file again adds nothing.

``import_events`` takes each row in its own transaction through ``repo.add_step``.
``import_events_bulk`` gives the same answer for every row — the same rows taken, the same
rejected with the same reason, the same steps, events and audit entries — but takes each case's
rows in one transaction: the case is locked, loaded and checked once, its standing total and
stored keys read once, and each row then goes through the same workflow checks
(``workflow.authorise``/``check``, ``line_amount``, ``check_line_date``, ``check_ceiling``)
before its rows are written together.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vembetalar.model.errors import quoted
from vembetalar.model.money import QUANTITY, SEK, BadAmount, Bounded, TextRule, to_decimal
from vembetalar.store import repo
from vembetalar.store.bulk import insert_many
from vembetalar.store.decisions import decision_id
from vembetalar.store.models import Base, BillableEvent, CaseRecord, utcnow
from vembetalar.workflow import (
    BadLine,
    EventLine,
    Forbidden,
    StepRefused,
    authorise,
    bills_case,
    check,
    check_ceiling,
    check_line_date,
    line_amount,
    line_step,
    state,
)

REQUIRED = ("case_reference", "occurred_on")
OPTIONAL = (
    "quantity",
    "unit_price_sek",
    "amount_sek",
    "product_name",
    "varunummer",
    "prescriber_name",
    "unit_name",
    "diarienummer",
    "idempotency_key",
)
COLUMNS = REQUIRED + OPTIONAL
_LIMITS = {
    "product_name": 200,
    "prescriber_name": 200,
    "unit_name": 200,
    "diarienummer": 100,
    "idempotency_key": 120,
}
_VARUNUMMER = re.compile(r"[0-9]{6}")


class BadFile(ValueError):
    """The file cannot be used at all (unreadable, wrong columns); nothing was imported."""


@dataclass
class Reject:
    row: int
    case_reference: str
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    already: int = 0
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.created + self.already + len(self.rejects)


def read_rows(path: Path) -> tuple[list[str], Iterator[dict[str, str]]]:
    """The header and the rows; a file that is not UTF-8 CSV with exactly the documented
    columns is refused as a whole, naming what is wrong."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise BadFile(f"{path}: kan inte läsas ({exc.strerror})") from None
    try:
        header = next(csv.reader([handle.readline()]), [])
    except UnicodeDecodeError:
        handle.close()
        raise BadFile(f"{path}: är inte UTF-8") from None
    header = [h.strip() for h in header]
    extra = [h for h in header if h not in COLUMNS]
    missing = [h for h in REQUIRED if h not in header]
    if extra or missing:
        handle.close()
        parts = []
        if missing:
            parts.append(f"saknar kolumnerna {', '.join(missing)}")
        if extra:
            parts.append(f"okända kolumner {', '.join(extra)}")
        raise BadFile(f"{path}: {'; '.join(parts)} (tillåtna: {', '.join(COLUMNS)})")

    def rows() -> Iterator[dict[str, str]]:
        with handle:
            try:
                for values in csv.reader(handle):
                    if not any(v.strip() for v in values):
                        continue
                    yield dict(zip(header, (v.strip() for v in values), strict=False))
            except UnicodeDecodeError:
                raise BadFile(f"{path}: är inte UTF-8") from None

    return header, rows()


def decimal_field(row: Mapping[str, str], name: str, bounds: Bounded, numbers: TextRule) -> Decimal | None:
    """A number from a form ("swedish": "1 840,50") or a file ("plain": dot decimals), None when
    empty; anything else (Infinity, 1e30, -5, too many decimals) names the field."""
    text = row.get(name, "").strip()
    if not text:
        return None
    try:
        return to_decimal(text, bounds, text=numbers)
    except BadAmount as exc:
        raise BadLine(f"{name}: {quoted(text)} {exc}") from None


def line_of(row: Mapping[str, str], numbers: TextRule = "plain") -> EventLine:
    """An invoice line from text fields: a file's row (``numbers="plain"``: dot decimals, as the
    contract says) or the case page's form (``"swedish"``: "1 840,50"). Wrong values are named;
    nothing is cut short or dropped."""
    row = {k: v.strip() for k, v in row.items() if isinstance(v, str)}
    try:
        occurred_on = dt.date.fromisoformat(row.get("occurred_on", ""))
    except ValueError:
        raise BadLine("occurred_on: ska vara ett datum ÅÅÅÅ-MM-DD") from None
    for name, limit in _LIMITS.items():
        if len(row.get(name, "")) > limit:
            raise BadLine(f"{name}: högst {limit} tecken")
    varunummer = row.get("varunummer") or None
    if varunummer is not None and not _VARUNUMMER.fullmatch(varunummer):
        raise BadLine("varunummer: sex siffror")
    return EventLine(
        occurred_on=occurred_on,
        quantity=decimal_field(row, "quantity", QUANTITY, numbers),
        unit_price_sek=decimal_field(row, "unit_price_sek", SEK, numbers),
        amount_sek=decimal_field(row, "amount_sek", SEK, numbers),
        product_name=row.get("product_name") or None,
        varunummer=varunummer,
        prescriber_name=row.get("prescriber_name") or None,
        unit_name=row.get("unit_name") or None,
        diarienummer=row.get("diarienummer") or None,
    )


def row_key(row: dict[str, str]) -> str:
    """The row's own key, else a digest of what it says: the same row imported twice is one line."""
    if row.get("idempotency_key"):
        return row["idempotency_key"]
    canonical = "\x1f".join(row.get(c, "") for c in COLUMNS if c != "idempotency_key")
    return "import:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


NO_EVENT = "inget fakturaunderlag: ingen annan part ska faktureras i ärendet"
NOT_FOUND = "case_reference: ärendet finns inte (eller tillhör en annan organisation)"


def _find_case(db: Session, actor: repo.Actor, reference: str) -> CaseRecord | None:
    return db.scalars(
        select(CaseRecord).where(CaseRecord.reference == reference, repo.visible_to(actor))
    ).first()


def _import_row(
    db: Session,
    actor: repo.Actor,
    cases: dict[str, CaseRecord | None],
    number: int,
    row: dict[str, str],
    report: ImportReport,
    today: dt.date,
) -> None:
    """One row in its own transaction, through ``repo.add_step``."""
    reference = row.get("case_reference", "")
    try:
        if reference not in cases:
            cases[reference] = _find_case(db, actor, reference)
        record = cases[reference]
        if record is None:
            raise repo.NotFound(NOT_FOUND)
        _, event, created = repo.add_step(
            db,
            actor,
            record.id,
            line_step(record.kind),
            "import",
            today=today,
            line=line_of(row),
            idempotency_key=row_key(row),
        )
        if event is None:
            raise StepRefused(NO_EVENT)
        if created:
            report.created += 1
        else:
            report.already += 1
    except (BadLine, StepRefused, Forbidden, repo.NotFound) as exc:
        db.rollback()
        report.rejects.append(Reject(number, reference[:40], str(exc)))


def import_events(
    db: Session,
    actor: repo.Actor,
    rows: Iterator[dict[str, str]],
    *,
    today: dt.date,
    progress: Callable[[], None] | None = None,
) -> ImportReport:
    """Each row in its own transaction: one bad row is rejected with its reason, the rest stand."""
    report = ImportReport()
    cases: dict[str, CaseRecord | None] = {}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        _import_row(db, actor, cases, number, row, report, today)
        if progress is not None:
            progress()
    return report


#: Cases looked up per query, and rows written per statement, in the bulk path.
LOOKUP_CHUNK = 500


@dataclass
class _CaseBatch:
    """One case's rows, taken in one transaction."""

    case_id: str
    reference: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def import_events_bulk(
    db: Session,
    actor: repo.Actor,
    rows: Iterator[dict[str, str]],
    *,
    today: dt.date,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """As ``import_events`` — the same rows taken and rejected, with the same reasons, and the
    same steps, events and audit entries stored — but one transaction per case. Should a case's
    transaction fail at commit (a concurrent request stored one of its keys first), that case's
    rows are taken again one by one through ``repo.add_step``."""
    report = ImportReport()
    numbered = list(enumerate(rows, start=2))  # row 1 is the header
    references = list(dict.fromkeys(row.get("case_reference", "") for _, row in numbered))
    found: dict[str, str] = {}
    for start in range(0, len(references), LOOKUP_CHUNK):
        chunk = references[start : start + LOOKUP_CHUNK]
        query = select(CaseRecord.reference, CaseRecord.id).where(
            CaseRecord.reference.in_(chunk), repo.visible_to(actor)
        )
        for reference, case_id in db.execute(query):
            found.setdefault(reference, case_id)
    db.rollback()  # the lookups' read transaction ends here; each case is read again under its lock
    batches: dict[str, _CaseBatch] = {}
    for number, row in numbered:
        reference = row.get("case_reference", "")
        if reference not in found:
            report.rejects.append(Reject(number, reference[:40], NOT_FOUND))
            continue
        batch = batches.setdefault(reference, _CaseBatch(found[reference], reference))
        batch.rows.append((number, row))
    for batch in batches.values():
        try:
            _import_case(db, actor, batch, report, today)
        except IntegrityError:
            db.rollback()
            retry: dict[str, CaseRecord | None] = {batch.reference: db.get(CaseRecord, batch.case_id)}
            for number, row in batch.rows:
                _import_row(db, actor, retry, number, row, report, today)
        if progress is not None:
            progress(len(batch.rows))
    report.rejects.sort(key=lambda r: r.row)
    return report


def _import_case(
    db: Session, actor: repo.Actor, batch: _CaseBatch, report: ImportReport, today: dt.date
) -> None:
    """One case's rows in one transaction, each through the checks ``repo.add_step`` makes, in
    its order; rejects are counted only once the transaction is stored."""
    case_id = batch.case_id
    rejects: list[Reject] = []
    lines: list[tuple[int, str, EventLine, str]] = []
    for number, row in batch.rows:  # the row's own text first, as import_events reads it
        reference = row.get("case_reference", "")[:40]
        try:
            lines.append((number, reference, line_of(row), row_key(row)))
        except BadLine as exc:
            rejects.append(Reject(number, reference, str(exc)))
    if not lines:
        report.rejects += rejects
        return
    try:
        repo.require(actor, "case.read")
    except Forbidden as exc:
        report.rejects += rejects + [Reject(n, ref, str(exc)) for n, ref, _, _ in lines]
        return
    repo.lock_case(db, case_id)
    record = db.get(CaseRecord, case_id, populate_existing=True)
    assert record is not None
    db.refresh(record, ["steps"])
    step = line_step(record.kind)
    done = tuple(s.step for s in record.steps)
    view = replace(repo.case_view(db, record), done=done)
    stored = set(db.scalars(select(BillableEvent.idempotency_key).where(BillableEvent.case_id == case_id)))
    billing = bills_case(view)
    ended_on = repo.ended_on(record)
    total = repo.standing_total(db, case_id) if billing else None
    ceilings: dict[dt.date, Decimal | None] = {}
    commitments = repo.commitments_of(db, case_id) if billing else ()
    decision = record.decision_json
    decision_ref = decision_id(db, decision) if billing else None
    now = utcnow()  # the lightweight table below has no column defaults
    issuer = repo.party_of(decision.get("invoicer"), record)
    recipient = repo.party_of(decision.get("payer"), record)
    events: list[dict[str, object]] = []
    steps = 0
    audits: list[dict[str, object]] = []
    created = already = 0
    for number, reference, line, key in lines:
        try:
            authorise(view, step, organisation=actor.organisation_id, role=actor.role)
            if key in stored:  # a replay gets what the first request stored
                already += 1
                continue
            check(view, step, organisation=actor.organisation_id, role=actor.role)
            if billing:
                assert total is not None
                amount = line_amount(line)
                check_line_date(line.occurred_on, case_date=record.case_date, today=today, ended_on=ended_on)
                if line.occurred_on not in ceilings:
                    ceilings[line.occurred_on] = repo.ceiling_of(commitments, line.occurred_on)
                check_ceiling(total + amount, ceilings[line.occurred_on])
                total += amount
                stored.add(key)
                events.append(
                    {
                        "idempotency_key": key,
                        "case_id": case_id,
                        "kind": step,
                        "occurred_on": line.occurred_on,
                        "issuer": issuer,
                        "recipient": recipient,
                        "amount_sek": amount,
                        "quantity": line.quantity,
                        "unit_price_sek": line.unit_price_sek,
                        "product_name": line.product_name or record.product_name,
                        "varunummer": line.varunummer,
                        "prescriber_name": line.prescriber_name,
                        "unit_name": line.unit_name,
                        "diarienummer": line.diarienummer,
                        "supersedes_id": None,
                        "cancelled": False,
                        "reason": None,
                        "decision_id": decision_ref,
                        "decision_json": None,
                        "created_at": now,
                        "created_by": actor.user_id,
                    }
                )
                audits.append(_audit_row(actor, "event.create", case_id, key))
            steps += 1
            audits.append(_audit_row(actor, "case.step", case_id, step))
            if step not in view.done or (billing and not view.has_events):  # what the step changes
                has_events = view.has_events or billing
                view = replace(view, done=(*view.done, step), has_events=has_events)
            if billing:
                created += 1
            else:  # the step stands (as through repo.add_step), but nothing is billed
                rejects.append(Reject(number, reference, NO_EVENT))
        except (BadLine, StepRefused, Forbidden) as exc:
            rejects.append(Reject(number, reference, str(exc)))
    if steps:
        step_row = {"case_id": case_id, "step": step, "once": None, "user_id": actor.user_id}
        step_row["note"] = "import"
        # Straight to the driver (store.bulk): no ORM bookkeeping and no per-row parameter work.
        for start in range(0, len(events), LOOKUP_CHUNK * 10):
            insert_many(db, TABLES["billable_events"], events[start : start + LOOKUP_CHUNK * 10])
        insert_many(db, TABLES["case_steps"], [step_row] * steps)
        insert_many(db, TABLES["audit_log"], audits)
        record.state = state(view)
    db.commit()
    report.created += created
    report.already += already
    report.rejects += rejects


#: The tables themselves, for Core inserts without the ORM's per-row bookkeeping.
TABLES = Base.metadata.tables


def _audit_row(actor: repo.Actor, action: str, case_id: str, detail: str) -> dict[str, object]:
    return {
        "user_id": actor.user_id or None,
        "username": actor.username,
        "organisation_id": actor.organisation_id,
        "action": action,
        "case_id": case_id,
        "detail": detail,
    }


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rad", "case_reference", "skäl"])
        for r in rejects:
            writer.writerow([r.row, r.case_reference, r.reason])
