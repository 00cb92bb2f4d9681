"""Dose-dispensed patients and shortage notices, read from files and stored.

Both are checked row by row first; a file with a bad row stores nothing and names every bad row.
The dose-patient list is a snapshot from the dose supplier: importing one replaces the stored list
in a single transaction. Notices are added, or updated by (varunummer, from).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vembetalar.model import codes
from vembetalar.model.errors import quoted
from vembetalar.store.supply_models import SupplyDosePatient, SupplyProduct, SupplyShortage
from vembetalar.supply.catalogue import MAX_ERRORS_SHOWN, csv_rows
from vembetalar.supply.errors import BadSupplyInput
from vembetalar.supply.ledger import check_pseudonym

DOSE_COLUMNS = ("patient_pseudonym", "municipality", "varunummer")
NOTICE_FIELDS = ("varunummer", "from", "expected_to", "advice")
_VARUNUMMER = re.compile(r"[0-9]{6}")
MAX_ADVICE = 2000


def _all_or_nothing(errors: list[str]) -> None:
    if errors:
        more = f"\n… och {len(errors) - MAX_ERRORS_SHOWN} fel till" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise BadSupplyInput(
            f"{len(errors)} rad(er) med fel; inget lästes in:\n" + "\n".join(errors[:MAX_ERRORS_SHOWN]) + more
        )


def parse_dose_patients(text: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    errors: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for line, row in csv_rows(text, DOSE_COLUMNS, DOSE_COLUMNS):
        try:
            pseudonym = check_pseudonym(row["patient_pseudonym"])
            municipality = row["municipality"].strip()
            if municipality not in codes.municipalities():
                raise BadSupplyInput(
                    f"municipality: {quoted(municipality)} är ingen kommunkod (SCB, fyra siffror)"
                )
            varunummer = row["varunummer"].strip()
            if not _VARUNUMMER.fullmatch(varunummer):
                raise BadSupplyInput(f"varunummer: {quoted(varunummer)} ska vara sex siffror")
        except BadSupplyInput as exc:
            errors.append(f"rad {line}: {exc}")
            continue
        key = (pseudonym, municipality, varunummer)
        if key not in seen:
            seen.add(key)
            rows.append(key)
    _all_or_nothing(errors)
    return rows


def import_dose_patients(db: Session, rows: list[tuple[str, str, str]]) -> int:
    """Replace the stored list with ``rows`` in one transaction."""
    try:
        db.execute(delete(SupplyDosePatient))
        db.add_all(SupplyDosePatient(patient_pseudonym=p, municipality=m, varunummer=v) for p, m, v in rows)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return len(rows)


@dataclass(frozen=True)
class Notice:
    varunummer: str
    from_date: dt.date
    expected_to: dt.date | None
    advice: str

    def active_on(self, day: dt.date) -> bool:
        return self.from_date <= day and (self.expected_to is None or self.expected_to >= day)

    def overlaps(self, other: Notice) -> bool:
        """Whether the two shortages share a day (an open end lasts until further notice)."""
        starts_before_other_ends = other.expected_to is None or self.from_date <= other.expected_to
        ends_after_other_starts = self.expected_to is None or self.expected_to >= other.from_date
        return starts_before_other_ends and ends_after_other_starts

    def as_json(self) -> dict[str, Any]:
        return {
            "varunummer": self.varunummer,
            "from": self.from_date.isoformat(),
            "expected_to": self.expected_to.isoformat() if self.expected_to else None,
            "advice": self.advice,
        }

    @classmethod
    def of(cls, row: SupplyShortage) -> Notice:
        return cls(row.varunummer, row.from_date, row.expected_to, row.advice)


def _date(value: Any, name: str, optional: bool = False) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise BadSupplyInput(f"{name}: saknas men är obligatoriskt")
    if not isinstance(value, str):
        raise BadSupplyInput(f"{name}: ska vara ett datum (ÅÅÅÅ-MM-DD)")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise BadSupplyInput(f"{name}: {quoted(value)} är inte ett giltigt datum (ÅÅÅÅ-MM-DD)") from None


def notice_of(data: Any) -> Notice:
    """One notice from a JSON object (or a CSV row) with the fields NOTICE_FIELDS."""
    if not isinstance(data, dict):
        raise BadSupplyInput("notisen: ska vara ett JSON-objekt")
    unknown = [k for k in data if k not in NOTICE_FIELDS]
    if unknown:
        raise BadSupplyInput(f"{unknown[0]}: okänt fält (tillåtna: {', '.join(NOTICE_FIELDS)})")
    varunummer = data.get("varunummer")
    if not isinstance(varunummer, str) or not _VARUNUMMER.fullmatch(varunummer.strip()):
        shown = quoted(varunummer) if isinstance(varunummer, str | int | float) else "värdet"
        raise BadSupplyInput(f"varunummer: {shown} ska vara sex siffror som text")
    start = _date(data.get("from"), "from")
    end = _date(data.get("expected_to"), "expected_to", optional=True)
    assert start is not None
    if end is not None and end < start:
        raise BadSupplyInput("expected_to: ligger före from")
    advice = data.get("advice", "")
    if advice is None:
        advice = ""
    if not isinstance(advice, str):
        raise BadSupplyInput("advice: ska vara en textsträng")
    if len(advice) > MAX_ADVICE:
        raise BadSupplyInput(f"advice: högst {MAX_ADVICE} tecken")
    return Notice(varunummer.strip(), start, end, advice.strip())


def parse_notice_json(text: str) -> list[Notice]:
    """A JSON object (one notice) or a list of them."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadSupplyInput(f"ogiltig JSON på rad {exc.lineno}, kolumn {exc.colno}: {exc.msg}") from None
    items = data if isinstance(data, list) else [data]
    notices, errors = [], []
    for n, item in enumerate(items, start=1):
        try:
            notices.append(notice_of(item))
        except BadSupplyInput as exc:
            errors.append(f"notis {n}: {exc}")
    if errors:
        raise BadSupplyInput("; ".join(errors[:MAX_ERRORS_SHOWN]))
    if not notices:
        raise BadSupplyInput("filen har inga notiser")
    return notices


def parse_notice_csv(text: str) -> list[Notice]:
    notices, errors = [], []
    for line, row in csv_rows(text, ("varunummer", "from"), NOTICE_FIELDS):
        try:
            notices.append(notice_of({k: v for k, v in row.items() if k in NOTICE_FIELDS}))
        except BadSupplyInput as exc:
            errors.append(f"rad {line}: {exc}")
    _all_or_nothing(errors)
    if not notices:
        raise BadSupplyInput("filen har inga notiser")
    return notices


def parse_notices(text: str, filename: str) -> list[Notice]:
    return parse_notice_csv(text) if filename.lower().endswith(".csv") else parse_notice_json(text)


def check_known(db: Session, notices: list[Notice]) -> None:
    known = set(db.scalars(select(SupplyProduct.varunummer)))
    missing = sorted({n.varunummer for n in notices if n.varunummer not in known})
    if missing:
        raise BadSupplyInput(
            f"varunummer finns inte i katalogen: {', '.join(missing[:10])} (läs in katalogen först)"
        )


def import_notices(db: Session, notices: list[Notice]) -> tuple[int, int]:
    """Store the notices (added, updated), all or none."""
    check_known(db, notices)
    added = updated = 0
    try:
        for notice in notices:
            row = db.scalars(
                select(SupplyShortage).where(
                    SupplyShortage.varunummer == notice.varunummer,
                    SupplyShortage.from_date == notice.from_date,
                )
            ).first()
            if row is None:
                db.add(
                    SupplyShortage(
                        varunummer=notice.varunummer,
                        from_date=notice.from_date,
                        expected_to=notice.expected_to,
                        advice=notice.advice,
                    )
                )
                added += 1
            else:
                row.expected_to, row.advice = notice.expected_to, notice.advice
                updated += 1
            db.flush()
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return added, updated


def stored_notices(db: Session) -> list[Notice]:
    return [Notice.of(r) for r in db.scalars(select(SupplyShortage).order_by(SupplyShortage.from_date))]
