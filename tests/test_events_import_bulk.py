"""The bulk import (one transaction per case) takes and rejects exactly what the per-row import
(one ``repo.add_step`` per row) does, with the same reasons, and stores the same events, steps,
case states and audit entries."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from vembetalar.model.errors import parse_case
from vembetalar.rules.engine import Engine
from vembetalar.security import hash_password
from vembetalar.store import repo
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.store.event_import import ImportReport, import_events, import_events_bulk
from vembetalar.store.models import AuditEntry, BillableEvent, CaseRecord, CaseStep, Organisation, User

TODAY = dt.date(2025, 9, 15)
USERS = {
    "lakare.vgr": ("prescriber", "region:14"),
    "lakemedel.vgr": ("pharma_unit", "region:14"),
    "lakare.halland": ("prescriber", "region:13"),
    "hjalpmedel.skane": ("prescriber", "region:12"),
    "mas.karlstad": ("mas", "kommun:1780"),
}
HALLAND_AT_VGR = {
    "date": "2025-09-01",
    "kind": "drug_exception",
    "patient": {"home_region": "13", "country": "SE"},
    "care": {"region": "14", "referral": False},
    "product": {"area": "drug", "cost_sek": 18400, "nt_council": "none"},
}
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "ok": ("lakare.vgr", HALLAND_AT_VGR),
    "ok2": ("lakare.vgr", {**HALLAND_AT_VGR, "care": {"region": "14", "referral": True}}),
    "contact_first": (
        "lakare.vgr",
        {**HALLAND_AT_VGR, "product": {"area": "drug", "cost_sek": 18400, "nt_council": "do_not_use"}},
    ),
    "closed": ("lakare.vgr", HALLAND_AT_VGR),
    # VGR pays and sees the case, but Halland treats: VGR may not take its steps.
    "halland_owns": (
        "lakare.halland",
        {**HALLAND_AT_VGR, "patient": {"home_region": "14", "country": "SE"}, "care": {"region": "13"}},
    ),
    "hearing": (
        "hjalpmedel.skane",
        {
            "date": "2025-08-01",
            "kind": "assistive_device",
            "patient": {"home_region": "17", "home_municipality": "1780", "country": "SE"},
            "care": {"region": "12"},
            "product": {"area": "hearing", "cost_sek": 7200, "advanced_adaptation": True},
        },
    ),
    # The municipality carries its own cost: the step stands, nothing is billed.
    "own_cost": (
        "mas.karlstad",
        {
            "date": "2023-10-02",
            "kind": "medtech_product",
            "patient": {"home_region": "17", "home_municipality": "1780", "housing": "special_housing"},
            "care": {"region": "17", "self_care": False, "discharge": False},
            "product": {"area": "medtech", "annex": "kommun"},
        },
    ),
}


def setup(path: Path, engine: Engine) -> dict[str, str]:
    """A database with every kind of case a row can meet; the case references by name."""
    url = f"sqlite:///{path}"
    db_engine = make_engine(url)
    migrate(db_engine)
    refs = {}
    with session_factory(db_engine)() as db:
        for org in sorted({org for _, org in USERS.values()}):
            db.add(Organisation(id=org, name=org, kind=org.split(":")[0]))
        db.flush()
        for name, (role, org) in USERS.items():
            db.add(
                User(
                    username=name,
                    full_name=name,
                    role=role,
                    organisation_id=org,
                    password_hash=hash_password("x"),
                )
            )
        db.commit()
        for key, (username, case) in CASES.items():
            record = repo.create_case(
                db, engine, actor(db, username), parse_case(json.dumps(case)), today=TODAY, product_name="P"
            )
            refs[key] = record.reference
        cases = {
            k: db.scalars(select(CaseRecord).where(CaseRecord.reference == r)).one().id
            for k, r in refs.items()
        }
        skane = actor(db, "hjalpmedel.skane")
        repo.add_step(db, skane, cases["hearing"], "contacted", "ringt", today=TODAY)
        repo.register_commitment(
            db,
            skane,
            cases["hearing"],
            issuer=None,
            amount_ceiling_sek=Decimal("8000"),
            valid_from=dt.date(2025, 8, 10),
            valid_to=dt.date(2025, 12, 31),
            document_reference="BF-1",
        )
        vgr = actor(db, "lakare.vgr")
        repo.add_step(db, vgr, cases["closed"], "closed", "klart", today=TODAY)
        # An event stored before the import: its key is a replay, its amount counts towards totals.
        repo.add_step(
            db,
            skane,
            cases["hearing"],
            "delivered",
            today=TODAY,
            line=repo.EventLine(occurred_on=dt.date(2025, 8, 20), amount_sek=Decimal("1000")),
            idempotency_key="stored-before",
        )
    db_engine.dispose()
    return refs


def actor(db: Session, username: str) -> repo.Actor:
    return repo.Actor.of(db.scalars(select(User).where(User.username == username)).one())


def row(ref: str, occurred_on: str = "2025-09-10", **fields: str) -> dict[str, str]:
    base = {"case_reference": ref, "occurred_on": occurred_on, "quantity": "1", "unit_price_sek": "100"}
    return {**base, **fields}


def crafted(refs: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Rows for each importing user: every reason a row can be refused, replays, and good rows."""
    ok, ok2 = refs["ok"], refs["ok2"]
    return {
        "lakare.vgr": [
            row(ok),
            row(ok),  # the same row again: one line
            row(ok2, varunummer="123456"),
            row(ok, "2025-13-01"),
            row(ok, "2025-09-16"),  # in the future
            row(ok, "2025-08-31"),  # before the case
            row(ok, amount_sek="99"),  # does not add up
            row(ok, quantity="", unit_price_sek=""),  # no amount
            row(ok, varunummer="12345"),
            row(ok, quantity="-1"),
            row(ok, product_name="x" * 201),
            row("VB-2025-FINNSINTE"),
            row(refs["hearing"]),  # another organisation's case: not found
            row(refs["contact_first"]),
            row(refs["closed"]),
            row(refs["halland_owns"]),  # visible, but Halland takes the steps
            row(ok, idempotency_key="k1"),
            row(ok, "2025-09-11", idempotency_key="k1"),  # the same key: the stored line
            row(ok2, "2025-09-12", quantity="3", unit_price_sek="33.33"),
            row(ok, amount_sek="abc", quantity="", unit_price_sek=""),
        ],
        "lakemedel.vgr": [row(ok, "2025-09-09"), row(refs["halland_owns"]), row("VB-X")],
        "hjalpmedel.skane": [
            row(refs["hearing"], "2025-08-20", amount_sek="7000", quantity="", unit_price_sek=""),
            row(
                refs["hearing"], "2025-08-21", amount_sek="1", quantity="", unit_price_sek=""
            ),  # over the ceiling
            row(
                refs["hearing"], "2025-08-05", amount_sek="1", quantity="", unit_price_sek=""
            ),  # before commitment
            row(refs["hearing"], "2025-08-22", idempotency_key="stored-before"),
            row(refs["hearing"], "2025-08-23", idempotency_key="stored-before"),
        ],
        "mas.karlstad": [row(refs["own_cost"], "2023-10-05"), row(refs["own_cost"], "2023-10-05")],
    }


def snapshot(path: Path) -> dict[str, Any]:
    """What the database holds, without ids or times."""
    db_engine = make_engine(f"sqlite:///{path}")
    with session_factory(db_engine)() as db:
        events = Counter(
            (
                e.case_id,
                e.idempotency_key,
                e.kind,
                e.occurred_on,
                e.issuer,
                e.recipient,
                e.amount_sek,
                e.quantity,
                e.unit_price_sek,
                e.product_name,
                e.varunummer,
                e.created_by,
                json.dumps(e.decision_data, sort_keys=True),
            )
            for e in db.scalars(select(BillableEvent))
        )
        steps = Counter((s.case_id, s.step, s.once, s.user_id, s.note) for s in db.scalars(select(CaseStep)))
        audit = Counter(
            (a.user_id, a.username, a.organisation_id, a.action, a.case_id, a.detail)
            for a in db.scalars(select(AuditEntry))
        )
        states = {c.id: c.state for c in db.scalars(select(CaseRecord))}
    db_engine.dispose()
    return {"events": events, "steps": steps, "audit": audit, "states": states}


def run_both(
    tmp_path: Path, engine: Engine, batches: list[tuple[str, list[dict[str, str]]]], base: Path
) -> tuple[list[ImportReport], list[ImportReport]]:
    results = []
    for name, importer in (("per_row", import_events), ("bulk", import_events_bulk)):
        path = tmp_path / f"{name}.db"
        shutil.copy(base, path)
        db_engine = make_engine(f"sqlite:///{path}")
        reports = []
        with session_factory(db_engine)() as db:
            for username, rows in batches:
                reports.append(importer(db, actor(db, username), iter(rows), today=TODAY))  # type: ignore[operator]
        db_engine.dispose()
        results.append(reports)
    assert snapshot(tmp_path / "per_row.db") == snapshot(tmp_path / "bulk.db")
    return results[0], results[1]


def as_tuple(report: ImportReport) -> tuple[int, int, list[tuple[int, str, str]]]:
    return report.created, report.already, [(r.row, r.case_reference, r.reason) for r in report.rejects]


@pytest.fixture
def base(tmp_path: Path, engine: Engine) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "base.db"
    return path, setup(path, engine)


def test_bulk_rejects_exactly_what_the_per_row_path_rejects(
    tmp_path: Path, engine: Engine, base: tuple[Path, dict[str, str]]
) -> None:
    path, refs = base
    batches = list(crafted(refs).items())
    per_row, bulk = run_both(tmp_path, engine, batches, path)
    assert [as_tuple(r) for r in bulk] == [as_tuple(r) for r in per_row]
    vgr = as_tuple(per_row[0])
    assert vgr[0] == 4 and vgr[1] == 2  # four lines stored; the repeated row and key are replays
    reasons = " ".join(r[2] for r in vgr[2])
    for expected in (
        "framtiden",
        "före ärendets datum",
        "stämmer inte",
        "sex siffror",
        "finns inte",
        "avslutat",
    ):
        assert expected in reasons
    assert all("rollen pharma_unit" in r.reason or "finns inte" in r.reason for r in per_row[1].rejects)
    skane = as_tuple(per_row[2])
    assert skane[0] == 1 and skane[1] == 2 and "tak" in skane[2][0][2] and "giltighet" in skane[2][1][2]
    assert [r.reason for r in per_row[3].rejects] == [
        "inget fakturaunderlag: ingen annan part ska faktureras i ärendet"
    ] * 2
    # Importing the same files again adds nothing, in both paths alike.
    again_row, again_bulk = run_both(tmp_path, engine, batches + batches, path)
    assert [as_tuple(r) for r in again_bulk] == [as_tuple(r) for r in again_row]
    assert again_bulk[4].created == 0 and again_bulk[6].created == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_equals_per_row_on_shuffled_random_rows(
    tmp_path: Path, engine: Engine, base: tuple[Path, dict[str, str]], seed: int
) -> None:
    path, refs = base
    rng = random.Random(seed)
    pool = [r for rows in crafted(refs).values() for r in rows]
    batches = []
    for username in ("lakare.vgr", "hjalpmedel.skane", "mas.karlstad", "lakare.vgr"):
        rows = [dict(rng.choice(pool)) for _ in range(60)]
        for r in rows:
            if rng.random() < 0.5:
                r["occurred_on"] = f"2025-09-{rng.randint(1, 16):02d}"
            if rng.random() < 0.3:
                r.update(quantity="", unit_price_sek="", amount_sek=str(rng.choice([1, 500, 2500, 6999])))
        batches.append((username, rows))
    per_row, bulk = run_both(tmp_path, engine, batches, path)
    assert [as_tuple(r) for r in bulk] == [as_tuple(r) for r in per_row]
    assert sum(r.created for r in bulk) > 0 and sum(len(r.rejects) for r in bulk) > 0
