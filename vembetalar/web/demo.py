"""Demo organisations, users, the organisation registry and cases, so that `make run` shows a
working desk at once and `vembetalar demo load` gives an invoice run something to invoice.

Passwords are new random ones at every start of ``serve --demo`` (printed once, stored only as
argon2 hashes), so a demo database never holds a password anyone could have written down.
Loading is idempotent: each demo case carries a marker in its note, each of its lines an
idempotency key, so loading again adds nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from vembetalar.billing.registry import apply_registry, read_registry
from vembetalar.clock import Clock
from vembetalar.model.codes import party_name
from vembetalar.model.errors import parse_case
from vembetalar.rules.engine import Engine
from vembetalar.security import hash_password, new_secret, normalise_personnummer, token_digest
from vembetalar.store import repo
from vembetalar.store.event_import import line_of
from vembetalar.store.models import (
    ApiToken,
    BillableEvent,
    CaseRecord,
    Organisation,
    OrganisationDetails,
    User,
)
from vembetalar.supply import demo as supply_demo
from vembetalar.workflow import SelfCareUnit, line_step

ORGANISATIONS = [
    "region:14",
    "region:13",
    "region:12",
    "region:17",
    "kommun:1780",
    *supply_demo.ORGANISATIONS,
]
USERS = [
    ("lakare.vgr", "Lina Läkare", "prescriber", "region:14"),
    ("lakemedel.vgr", "Leo Läkemedelsenhet", "pharma_unit", "region:14"),
    ("admin.vgr", "Ada Administratör", "admin", "region:14"),
    ("faktura.vgr", "Fredrik Fakturahandläggare", "invoice_clerk", "region:14"),
    ("lakare.halland", "Hans Halland", "prescriber", "region:13"),
    ("faktura.halland", "Frida Fakturahandläggare", "invoice_clerk", "region:13"),
    ("hjalpmedel.skane", "Hugo Hjälpmedelsförskrivare", "prescriber", "region:12"),
    ("faktura.skane", "Sara Fakturahandläggare", "invoice_clerk", "region:12"),
    ("faktura.varmland", "Vera Fakturahandläggare", "invoice_clerk", "region:17"),
    ("mas.karlstad", "Maja MAS", "mas", "kommun:1780"),
    ("faktura.karlstad", "Karin Fakturahandläggare", "invoice_clerk", "kommun:1780"),
    *supply_demo.USERS,  # Halland's MAS (Halmstad) and pharmaceutical unit: stocks, shortages, oversight
]
#: The bundled cases that ``vembetalar demo explain`` explains, as cases on the desk (no events).
CASES = [
    ("lakare.vgr", "01_hallandspatient_i_vgr.json", "19811228-9874", "Anna Andersson", "Läkemedel X 10 mg"),
    ("lakare.vgr", "02_vgr_patient_i_halland_nt_avvakta.json", None, None, None),
    ("hjalpmedel.skane", "03_horapparat_i_malmo.json", "19540312-2384", "Bo Berg", "Hörapparat"),
    ("hjalpmedel.skane", "04_rollator_exakt_10000.json", None, None, "Rollator"),
    ("mas.karlstad", "05_sarskilt_boende_karlstad.json", "19351107-6949", "Greta Gran", "Sårförband"),
    ("mas.karlstad", "08_utskrivning_karlstad_delad_kostnad.json", None, "Sixten Svensson", "Stomipåsar"),
    ("mas.karlstad", "09_regionens_bilageprodukt_hemsjukvard.json", None, "Rut Ek", "Insulinpump, tillbehör"),
]
#: The cases with billable events for every invoice route (vembetalar/demo/invoicing.yaml).
INVOICING = "invoicing.yaml"
REGISTRY = "registry.yaml"
#: A demo case's note: the marker that it is loaded (and by which entry).
MARKER = "Demoärende: {words}"
#: How cases were marked before the marker was written in words (databases loaded then).
OLD_MARKER = "Demoärende ({key})"


def marker(key: str) -> str:
    """The case's note: the demo key in words ("01_hallandspatient_i_vgr" → "hallandspatient i
    vgr"), which also finds the case again so that loading twice adds nothing."""
    words = re.sub(r"^\d+_", "", key).replace("_", " ").replace("-", " ")
    return MARKER.format(words=words)


#: The demo token is made anew at every start; it need not outlive a working week.
DEMO_TOKEN_DAYS = 7


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    organisation: str


@dataclass
class LoadReport:
    """What one load added; all zero when the demo data was already there."""

    organisations: int = 0
    users: int = 0
    registry: int = 0
    cases: int = 0
    events: int = 0
    commitments: int = 0
    oversight_flags: int = 0
    supply: int = 0

    @property
    def added(self) -> int:
        return (
            self.organisations
            + self.users
            + self.registry
            + self.cases
            + self.events
            + self.commitments
            + self.oversight_flags
        ) + self.supply


def _initials(name: str | None) -> str | None:
    return "".join(p[0] for p in name.split()) if name else None


def _user(db: Session, username: str) -> User:
    return db.scalars(select(User).where(User.username == username)).one()


def _marked(db: Session, key: str) -> CaseRecord | None:
    notes = (marker(key), OLD_MARKER.format(key=key))
    return db.scalars(select(CaseRecord).where(CaseRecord.note.in_(notes))).first()


def invoicing_cases() -> list[dict[str, Any]]:
    """The demo cases with events (``vembetalar/demo/invoicing.yaml``)."""
    text = resources.files("vembetalar.demo").joinpath(INVOICING).read_text(encoding="utf-8")
    cases: list[dict[str, Any]] = yaml.safe_load(text)["cases"]
    return cases


def _load_parties(db: Session, report: LoadReport) -> None:
    for org_id in ORGANISATIONS:
        if db.get(Organisation, org_id) is None:
            db.add(Organisation(id=org_id, name=party_name(org_id), kind=org_id.split(":")[0]))
            report.organisations += 1
    db.flush()
    for username, full_name, role, org_id in USERS:
        if db.scalars(select(User).where(User.username == username)).first() is None:
            # Nobody knows this password: ``serve --demo`` gives every demo user a fresh one.
            db.add(
                User(
                    username=username,
                    full_name=full_name,
                    role=role,
                    organisation_id=org_id,
                    password_hash=hash_password(new_secret(9)),
                )
            )
            report.users += 1
    db.commit()
    with resources.as_file(resources.files("vembetalar.demo").joinpath(REGISTRY)) as path:
        entries = read_registry(path)
    # Only entries that are missing: an organisation's own registry values are never overwritten.
    missing = {p: e for p, e in entries.items() if db.get(OrganisationDetails, p) is None}
    if missing:
        report.registry += apply_registry(db, missing)


def _load_bundled(db: Session, engine: Engine, today: dt.date, report: LoadReport) -> None:
    """The explained cases, on a database that has none of them and no cases of its own."""
    keys = [name.removesuffix(".json") for _, name, *_ in CASES]
    if any(_marked(db, key) for key in keys):
        return
    if db.scalar(select(func.count()).select_from(CaseRecord)):
        return  # seeded before the cases carried markers, or a database in real use
    folder = resources.files("vembetalar.demo")
    for (username, name, patient_id, patient_name, product), key in zip(CASES, keys, strict=True):
        case = parse_case(folder.joinpath(name).read_text(encoding="utf-8"))
        repo.create_case(
            db,
            engine,
            repo.Actor.of(_user(db, username)),
            case,
            today=today,
            patient_id=normalise_personnummer(patient_id) if patient_id else None,
            patient_initials=_initials(patient_name),
            product_name=product,
            note=marker(key),
        )
        report.cases += 1


def _load_invoicing(db: Session, engine: Engine, spec: dict[str, Any], report: LoadReport) -> None:
    """One case with its steps and lines, through the store's checks (the same as the desk's).
    A case loaded before gets only what it lacks (e.g. after an interrupted load)."""
    key = str(spec["key"])
    actor = repo.Actor.of(_user(db, spec["user"]))
    today = spec["loaded_on"]
    assert isinstance(today, dt.date), f"{key}: loaded_on ska vara ett datum"
    record = _marked(db, key)
    if record is None:
        patient = spec.get("patient") or {}
        record = repo.create_case(
            db,
            engine,
            actor,
            parse_case(json.dumps(spec["case"])),
            today=today,
            patient_id=normalise_personnummer(patient["id"]) if patient.get("id") else None,
            patient_initials=_initials(patient.get("name")),
            product_name=spec.get("product"),
            note=marker(key),
        )
        report.cases += 1
    done = {s.step for s in record.steps}
    if spec.get("contacted") and "contacted" not in done:
        repo.add_step(db, actor, record.id, "contacted", spec["contacted"], today=today)
    if (commitment := spec.get("commitment")) and "commitment_registered" not in done:
        repo.register_commitment(
            db,
            actor,
            record.id,
            issuer=None,
            amount_ceiling_sek=Decimal(commitment["amount_ceiling_sek"]),
            valid_from=dt.date.fromisoformat(commitment["valid_from"]),
            valid_to=dt.date.fromisoformat(commitment["valid_to"]),
            document_reference=commitment["document_reference"],
        )
        report.commitments += 1
    if (unit := spec.get("unit")) and "unit_named" not in done:
        named = SelfCareUnit(unit["organisation"], unit["name"])
        repo.add_step(db, actor, record.id, "unit_named", None, today=today, unit=named)
    for number, row in enumerate(spec.get("lines") or [], start=1):
        _, event, created = repo.add_step(
            db,
            actor,
            record.id,
            line_step(record.kind),
            "demo",
            today=today,
            line=line_of({k: str(v) for k, v in row.items()}),
            idempotency_key=f"demo:{key}:{number}",
        )
        assert event is not None, f"{key}: raden ger inget fakturaunderlag"
        report.events += created


def load(db: Session, engine: Engine, today: dt.date | None = None) -> LoadReport:
    """Organisations, demo users, the demo registry, the explained cases and the cases with
    events for every invoice route. Idempotent: what is there already is left as it is."""
    today = today or Clock.from_env().today()
    report = LoadReport()
    _load_parties(db, report)
    _load_bundled(db, engine, today, report)
    for spec in invoicing_cases():
        _load_invoicing(db, engine, spec, report)
    report.supply = supply_demo.load(db, today)  # drug stocks and shortages (vembetalar/supply/demo.py)
    # Issue 9: Region Halland's pharmaceutical unit gets synthetic dispensings' flags to review.
    from vembetalar.oversight import demo as oversight_demo

    report.oversight_flags = oversight_demo.load(db)
    return report


def new_logins(db: Session) -> tuple[list[DemoLogin], str]:
    """Give every demo user a fresh password and lakare.vgr a fresh API token; return them."""
    logins = []
    for username, _, role, org_id in USERS:
        password = new_secret(9)
        _user(db, username).password_hash = hash_password(password)
        logins.append(DemoLogin(username, password, role, party_name(org_id)))
    prescriber = _user(db, "lakare.vgr")
    db.execute(delete(ApiToken).where(ApiToken.user_id == prescriber.id, ApiToken.label == "demo"))
    token = "vbt_" + new_secret(24)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=DEMO_TOKEN_DAYS)
    db.add(ApiToken(user_id=prescriber.id, token_hash=token_digest(token), label="demo", expires_at=expires))
    db.commit()
    return logins, token


def seed(db: Session, engine: Engine, today: dt.date | None = None) -> tuple[list[DemoLogin], str]:
    """``serve --demo``: load what is missing, give every demo user a fresh password; return the
    logins and a token."""
    load(db, engine, today)
    return new_logins(db)


#: The months the demo's events fall in: Värmland's agreement ended 2024-02-01.
DEMO_PERIODS = ("2023-10", "2024-05")


def run_demo_invoices(db: Session, engine: Engine, today: dt.date) -> int:
    """Invoice the demo months for every issuer whose registry entry is complete, so the desk
    shows invoices at once (idempotent: a second start invoices nothing new)."""
    from vembetalar.billing.run import RegistryIncomplete, run_invoices

    issuers = sorted({i for i in db.scalars(select(BillableEvent.issuer).distinct()) if i})
    made = 0
    for issuer in issuers:
        for period in DEMO_PERIODS:
            try:
                made += len(run_invoices(db, engine, issuer=issuer, period=period, today=today).invoices)
            except RegistryIncomplete:
                db.rollback()
    return made
