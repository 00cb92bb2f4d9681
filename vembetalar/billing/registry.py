"""The organisation registry: each organisation's legal name, numbers, address and payment details,
as its users fill them in (YAML or CSV import, or the admin page). Invoices are only as good as
these, so every value is checked the way the PEPPOL rules will check it, at import."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.orm import Session

from vembetalar.model import codes
from vembetalar.model.errors import describe
from vembetalar.store.models import Organisation, OrganisationDetails


class BadRegistry(ValueError):
    """The registry file cannot be used; the message names the organisation and field."""


def luhn_ok(digits: str) -> bool:
    """The Luhn check digit of an organisation number (PEPPOL-COMMON-R049, SE-R-003)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def gs1_ok(digits: str) -> bool:
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


class RegistryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_name: str = Field(min_length=1, max_length=200)
    org_number: str | None = None
    vat_id: str | None = Field(default=None, pattern=r"^SE\d{12}$")
    f_skatt: bool = False
    bankgiro: str | None = Field(default=None, pattern=r"^\d{3,4}-?\d{4}$")
    plusgiro: str | None = Field(default=None, pattern=r"^\d{1,7}-?\d$")
    peppol_id: str | None = Field(default=None, pattern=r"^(0007|0088|9955):\S+$")
    gln: str | None = None
    address: list[str] = Field(default_factory=list, max_length=4)
    email: str | None = None
    payment_days: int = Field(default=30, ge=0, le=120)
    #: Made-up values of the demo registry: shown as such, never for real use.
    demo: bool = False

    @field_validator("org_number")
    @classmethod
    def _org_number(cls, value: str | None) -> str | None:
        if value is None:
            return value
        digits = re.sub(r"\D", "", value)
        if len(digits) != 10 or not luhn_ok(digits):
            raise ValueError("ska vara tio siffror (NNNNNN-NNNN) med rätt kontrollsiffra")
        return f"{digits[:6]}-{digits[6:]}"

    @field_validator("gln")
    @classmethod
    def _gln(cls, value: str | None) -> str | None:
        if value is not None and not (re.fullmatch(r"\d{13}", value) and gs1_ok(value)):
            raise ValueError("ska vara ett GLN: tretton siffror med rätt kontrollsiffra")
        return value


#: The CSV form's columns: one row per organisation; address lines separated by " | ".
CSV_COLUMNS = (
    "party",
    "legal_name",
    "org_number",
    "vat_id",
    "f_skatt",
    "bankgiro",
    "plusgiro",
    "peppol_id",
    "gln",
    "address",
    "email",
    "payment_days",
    "demo",
)


def _from_csv(text: str, path: Path) -> dict[str, Any]:
    rows = list(
        csv.DictReader(io.StringIO(text), delimiter=";" if text.count(";") > text.count(",") else ",")
    )
    if rows and set(rows[0]) - set(CSV_COLUMNS):
        raise BadRegistry(f"{path}: okända kolumner {', '.join(sorted(set(rows[0]) - set(CSV_COLUMNS)))}")
    orgs: dict[str, Any] = {}
    for row in rows:
        data: dict[str, Any] = {k: v.strip() for k, v in row.items() if k != "party" and v and v.strip()}
        if "address" in data:
            data["address"] = [line.strip() for line in data["address"].split("|") if line.strip()]
        for flag in ("f_skatt", "demo"):
            if flag in data:
                data[flag] = data[flag].lower() in ("ja", "true", "1", "yes")
        orgs[(row.get("party") or "").strip()] = data
    return {"organisations": orgs}


def split_address(lines: list[str]) -> tuple[list[str], str | None, str | None]:
    """Street lines, postcode and town: Swedish addresses end with "737 26 FAGERSTA"."""
    lines = [line for line in lines if line]
    if lines and (match := re.fullmatch(r"(\d{3}) ?(\d{2})\s+(.+)", lines[-1])):
        return lines[:-1], f"{match[1]} {match[2]}", match[3]
    return lines, None, None


def read_registry(path: Path) -> dict[str, RegistryEntry]:
    """``organisations: {"region:14": {...}}`` from YAML, or one row per organisation from CSV
    (CSV_COLUMNS, comma or semicolon); every error names the party and field."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        raw = _from_csv(text, path) if path.suffix.lower() == ".csv" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, csv.Error) as exc:
        raise BadRegistry(f"{path}: kan inte läsas ({type(exc).__name__})") from None
    orgs = raw.get("organisations") if isinstance(raw, dict) else None
    if not isinstance(orgs, dict):
        raise BadRegistry(f"{path}: ska ha en nyckel 'organisations' med en post per part")
    entries = {}
    for party, data in orgs.items():
        if not isinstance(party, str) or not re.fullmatch(r"region:\d\d|kommun:\d{4}", party):
            raise BadRegistry(f"{path}: {party!r} är ingen part (region:NN eller kommun:NNNN)")
        try:
            entries[party] = RegistryEntry.model_validate(data)
        except ValidationError as exc:
            raise BadRegistry(f"{path}: {party}: {describe(dict(exc.errors()[0]))}") from None
    return entries


def apply_registry(db: Session, entries: dict[str, RegistryEntry]) -> int:
    """Create or update each organisation's registry entry (and the organisation if new)."""
    for party, entry in entries.items():
        if db.get(Organisation, party) is None:
            db.add(Organisation(id=party, name=codes.party_name(party), kind=party.split(":")[0]))
            db.flush()
        address, postcode, city = split_address(list(entry.address))
        values: dict[str, Any] = {
            "legal_name": entry.legal_name,
            "org_number": entry.org_number,
            "vat_id": entry.vat_id,
            "f_skatt": entry.f_skatt,
            "bankgiro": entry.bankgiro,
            "plusgiro": entry.plusgiro,
            "peppol_id": entry.peppol_id,
            "gln": entry.gln,
            "address_lines": {"lines": address},
            "postcode": postcode,
            "city": city,
            "email": entry.email,
            "payment_days": entry.payment_days,
            "demo": entry.demo,
        }
        details = db.get(OrganisationDetails, party)
        if details is None:
            db.add(OrganisationDetails(organisation_id=party, **values))
        else:
            for key, value in values.items():
                setattr(details, key, value)
    db.commit()
    return len(entries)
