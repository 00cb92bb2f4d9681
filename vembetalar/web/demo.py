"""Demo organisations, users and cases, so that `make run` shows a working desk at once.

Passwords are new random ones at every start (printed once, stored only as argon2 hashes), so
a demo database never holds a password anyone could have written down.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from vembetalar.model.codes import party_name
from vembetalar.model.errors import parse_case
from vembetalar.rules.engine import Engine
from vembetalar.security import hash_password, new_secret, normalise_personnummer, token_digest
from vembetalar.store import repo
from vembetalar.store.models import ApiToken, CaseRecord, Organisation, User

ORGANISATIONS = ["region:14", "region:13", "region:12", "region:17", "kommun:1780"]
USERS = [
    ("lakare.vgr", "Lina Läkare", "prescriber", "region:14"),
    ("lakemedel.vgr", "Leo Läkemedelsenhet", "pharma_unit", "region:14"),
    ("admin.vgr", "Ada Administratör", "admin", "region:14"),
    ("faktura.halland", "Frida Fakturahandläggare", "invoice_clerk", "region:13"),
    ("hjalpmedel.skane", "Hugo Hjälpmedelsförskrivare", "prescriber", "region:12"),
    ("faktura.varmland", "Vera Fakturahandläggare", "invoice_clerk", "region:17"),
    ("mas.karlstad", "Maja MAS", "mas", "kommun:1780"),
]
CASES = [
    ("lakare.vgr", "01_hallandspatient_i_vgr.json", "19811228-9874", "Anna Andersson", "Läkemedel X 10 mg"),
    ("lakare.vgr", "02_vgr_patient_i_halland_nt_avvakta.json", None, None, None),
    ("hjalpmedel.skane", "03_horapparat_i_malmo.json", "19540312-2384", "Bo Berg", "Hörapparat"),
    ("hjalpmedel.skane", "04_rollator_exakt_10000.json", None, None, "Rollator"),
    ("mas.karlstad", "05_sarskilt_boende_karlstad.json", "19351107-6949", "Greta Gran", "Sårförband"),
    ("mas.karlstad", "08_utskrivning_karlstad_delad_kostnad.json", None, "Sixten Svensson", "Stomipåsar"),
    ("mas.karlstad", "09_regionens_bilageprodukt_hemsjukvard.json", None, "Rut Ek", "Insulinpump, tillbehör"),
]


#: The demo token is made anew at every start; it need not outlive a working week.
DEMO_TOKEN_DAYS = 7


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    organisation: str


def seed(db: Session, engine: Engine, today: dt.date) -> tuple[list[DemoLogin], str]:
    """Create what is missing, give every demo user a fresh password; return logins and a token."""
    for org_id in ORGANISATIONS:
        if db.get(Organisation, org_id) is None:
            db.add(Organisation(id=org_id, name=party_name(org_id), kind=org_id.split(":")[0]))
    db.flush()
    logins = []
    for username, full_name, role, org_id in USERS:
        password = new_secret(9)
        user = db.scalars(select(User).where(User.username == username)).first()
        if user is None:
            user = User(
                username=username,
                full_name=full_name,
                role=role,
                organisation_id=org_id,
                password_hash=hash_password(password),
            )
            db.add(user)
        else:
            user.password_hash = hash_password(password)
        logins.append(DemoLogin(username, password, role, party_name(org_id)))
    db.flush()
    prescriber = db.scalars(select(User).where(User.username == "lakare.vgr")).one()
    db.execute(delete(ApiToken).where(ApiToken.user_id == prescriber.id, ApiToken.label == "demo"))
    token = "vbt_" + new_secret(24)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=DEMO_TOKEN_DAYS)
    db.add(ApiToken(user_id=prescriber.id, token_hash=token_digest(token), label="demo", expires_at=expires))
    db.commit()
    if not db.scalar(select(func.count()).select_from(CaseRecord)):
        folder = resources.files("vembetalar.demo")
        for username, name, patient_id, patient_name, product in CASES:
            user = db.scalars(select(User).where(User.username == username)).one()
            case = parse_case(folder.joinpath(name).read_text(encoding="utf-8"))
            initials = "".join(p[0] for p in patient_name.split()) if patient_name else None
            repo.create_case(
                db,
                engine,
                repo.Actor.of(user),
                case,
                today=today,
                patient_id=normalise_personnummer(patient_id) if patient_id else None,
                patient_initials=initials,
                product_name=product,
            )
    return logins, token
