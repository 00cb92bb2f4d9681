"""Bulk import of dispensings and deliveries that another system recorded (a pharmacy system, a
hjälpmedel order system), as the unit's own steps.

Every row goes through the same workflow and checks as a line typed into the case page — the
user must belong to the treating party, the step must be allowed, the amount must add up and stay
under the commitment's ceiling, the date must lie within the case's life — so an import cannot
bill what the desk would refuse. Each row's idempotency key is its own column or, when absent, a
digest of the row, so importing the same file again adds nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from vembetalar.model.errors import quoted
from vembetalar.model.money import QUANTITY, SEK, BadAmount, Bounded, TextRule, to_decimal
from vembetalar.store import repo
from vembetalar.store.models import CaseRecord
from vembetalar.workflow import BadLine, EventLine, Forbidden, StepRefused, line_step

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


def _decimal(row: Mapping[str, str], name: str, bounds: Bounded, numbers: TextRule) -> Decimal | None:
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
        quantity=_decimal(row, "quantity", QUANTITY, numbers),
        unit_price_sek=_decimal(row, "unit_price_sek", SEK, numbers),
        amount_sek=_decimal(row, "amount_sek", SEK, numbers),
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
        reference = row.get("case_reference", "")
        try:
            if reference not in cases:
                cases[reference] = db.scalars(
                    select(CaseRecord).where(CaseRecord.reference == reference, repo.visible_to(actor))
                ).first()
            record = cases[reference]
            if record is None:
                raise repo.NotFound(
                    "case_reference: ärendet finns inte (eller tillhör en annan organisation)"
                )
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
                raise StepRefused("inget fakturaunderlag: ingen annan part ska faktureras i ärendet")
            if created:
                report.created += 1
            else:
                report.already += 1
        except (BadLine, StepRefused, Forbidden, repo.NotFound) as exc:
            db.rollback()
            report.rejects.append(Reject(number, reference[:40], str(exc)))
        if progress is not None:
            progress()
    return report


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rad", "case_reference", "skäl"])
        for r in rejects:
            writer.writerow([r.row, r.case_reference, r.reason])
