"""Benchmark (not a test): a million billable events through the bulk event import, then one
invoice run per issuer, with a PEPPOL UBL file per invoice.

    .venv/bin/python bench/invoice_run.py [--events 1000000] [--per-case 100] [--profile 10000]

Cases are spread over every issuer/recipient pair of the bundled packs, all in November 2023 (the
one kind of month all three packs are in force): VGR → Halland (bilaga 2 and 3), Halland → VGR
(bilaga 1, a personnummer each), Karlstad and Arvika → Region Värmland (several patients on one
invoice) and Skåne (billed elsewhere by webSesam, so listed, not invoiced). The cases are made
through ``repo.create_case`` (not timed as part of the target), the events through
``import_events_bulk`` (every check of ``repo.add_step``); 10 000 rows go through the per-row
``import_events`` first, to compare. UBL files are written as ``invoice run --out`` writes them:
by ``billing.files.FileWriter`` on every core, batch by batch while the run goes on; PDFs are not
made (WeasyPrint takes ~0.1 s an invoice). SQLite in a temporary folder.

The 60 s target is for the invoice run and its UBL files — turning a million stored events into
invoices. Loading the events is the bulk import's job and is reported beside it, not in it.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import pstats
import random
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vembetalar.billing.files import FileWriter
from vembetalar.billing.run import IssuedInvoice, run_invoices
from vembetalar.model.errors import parse_case
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import load_packs
from vembetalar.security import hash_password
from vembetalar.store import repo
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.store.event_import import import_events, import_events_bulk
from vembetalar.store.models import BilledEvent, CaseRecord, Organisation, User
from vembetalar.web.demo import load

PERIOD = "2023-11"
TODAY = dt.date(2023, 11, 30)
HALLAND = {"home_region": "13", "home_municipality": "1380", "country": "SE"}
KARLSTAD = {"home_region": "17", "home_municipality": "1780", "country": "SE", "housing": "special_housing"}
ARVIKA = {**KARLSTAD, "home_municipality": "1784"}
VARMLAND_CARE = {"region": "17", "self_care": False, "discharge": False}
MEDTECH = {"area": "medtech", "annex": "region", "cost_sek": 450}
#: route → (importing user, share of the events, case facts)
ROUTES: dict[str, tuple[str, float, dict[str, Any]]] = {
    "bilaga-2": (
        "lakare.vgr",
        0.30,
        {"kind": "drug_exception", "patient": HALLAND, "care": {"region": "14", "referral": False}},
    ),
    "bilaga-3": (
        "lakare.vgr",
        0.15,
        {"kind": "drug_exception", "patient": HALLAND, "care": {"region": "14", "referral": True}},
    ),
    "bilaga-1": (
        "lakare.halland",
        0.25,
        {
            "kind": "drug_exception",
            "patient": {"home_region": "14", "country": "SE"},
            "care": {"region": "13", "referral": False},
        },
    ),
    "varmland-karlstad": (
        "mas.karlstad",
        0.12,
        {"kind": "medtech_product", "patient": KARLSTAD, "care": VARMLAND_CARE, "product": MEDTECH},
    ),
    "varmland-arvika": (
        "mas.arvika",
        0.08,
        {"kind": "medtech_product", "patient": ARVIKA, "care": VARMLAND_CARE, "product": MEDTECH},
    ),
    "skane-websesam": (
        "hjalpmedel.skane",
        0.10,
        {
            "kind": "assistive_device",
            "patient": {"home_region": "13", "country": "SE"},
            "care": {"region": "12"},
            "product": {"area": "mobility", "cost_sek": 3000, "advanced_adaptation": False},
        },
    ),
}
DRUG = {"area": "drug", "cost_sek": 18400, "nt_council": "none"}


def personnummer(n: int) -> str:
    """A synthetic personnummer with a valid check digit (born 1940–1999)."""
    born = dt.date(1940, 1, 1) + dt.timedelta(days=n % 21900)
    body = f"{born:%y%m%d}{800 + n // 21900 % 200:03d}"
    total = sum(sum(divmod(int(d) * (2 - i % 2), 10)) for i, d in enumerate(body))
    return f"{born:%Y%m%d}-{body[6:]}{(10 - total % 10) % 10}"


def prepare(db: Session, rules: Engine, events: int, per_case: int) -> dict[str, list[dict[str, str]]]:
    """The demo organisations, users and registry, the cases, and each user's import rows."""
    load(db, rules, TODAY)
    if db.get(Organisation, "kommun:1784") is None:
        db.add(Organisation(id="kommun:1784", name="Arvika", kind="kommun"))
    db.add(
        User(
            username="mas.arvika",
            full_name="Arvid MAS",
            role="mas",
            organisation_id="kommun:1784",
            password_hash=hash_password("bench"),
        )
    )
    db.commit()
    rng = random.Random(2026)
    files: dict[str, list[dict[str, str]]] = {}
    started, made = time.perf_counter(), 0
    for route, (username, share, facts) in ROUTES.items():
        actor = repo.Actor.of(db.scalars(select(User).where(User.username == username)).one())
        case = {"date": "2023-11-01", "product": DRUG, **facts}
        parsed = parse_case(json.dumps(case))
        rows = files.setdefault(username, [])
        for _ in range(max(1, round(events * share / per_case))):
            made += 1
            record = repo.create_case(
                db,
                rules,
                actor,
                parsed,
                today=TODAY,
                patient_id=personnummer(made) if route == "bilaga-1" else None,
                patient_initials="AB",
                product_name="Läkemedel X" if parsed.kind == "drug_exception" else "Produkt",
            )
            for i in range(per_case):
                price = rng.choice(["99.50", "450.00", "920.25", "1840.50"])
                rows.append(
                    {
                        "case_reference": record.reference,
                        "occurred_on": f"2023-11-{1 + i % 29:02d}",
                        "quantity": str(rng.randint(1, 3)),
                        "unit_price_sek": price,
                        "product_name": "",
                        "varunummer": f"{rng.randint(100000, 999999)}",
                        "prescriber_name": "Dr Bench",
                        "unit_name": "Enhet 1",
                        "diarienummer": "RH 2023-0001" if route == "bilaga-1" else "",
                        "idempotency_key": f"b{i}",
                    }
                )
    print(
        f"cases: {made} through repo.create_case in {time.perf_counter() - started:.1f} s (not in the target)"
    )
    for rows in files.values():
        rng.shuffle(rows)
    return files


def import_all(db: Session, files: dict[str, list[dict[str, str]]], per_row: int) -> tuple[float, int]:
    """The per-row sample first (reported), then the rest in bulk; returns bulk seconds and rows."""
    total = sum(len(rows) for rows in files.values())
    sample = files["lakare.vgr"][:per_row]
    if sample:
        actor = repo.Actor.of(db.scalars(select(User).where(User.username == "lakare.vgr")).one())
        started = time.perf_counter()
        report = import_events(db, actor, iter(sample), today=TODAY)
        took = time.perf_counter() - started
        assert report.created == len(sample), report.rejects[:3]
        print(
            f"import, per row (repo.add_step): {len(sample)} rows in {took:.1f} s "
            f"= {len(sample) / took:,.0f} "
            f"events/s → {total / (len(sample) / took) / 60:.0f} min for {total:,}"
        )
    started, rows_done = time.perf_counter(), 0
    for username, rows in files.items():
        rest = rows[per_row:] if username == "lakare.vgr" else rows
        actor = repo.Actor.of(db.scalars(select(User).where(User.username == username)).one())
        report = import_events_bulk(db, actor, iter(rest), today=TODAY)
        assert not report.rejects, report.rejects[:3]
        rows_done += len(rest)
    took = time.perf_counter() - started
    print(
        f"import, bulk (one transaction per case): {rows_done:,} rows in {took:.1f} s "
        f"= {rows_done / took:,.0f} events/s"
    )
    return took, rows_done


def invoice_all(db: Session, rules: Engine, out: Path) -> tuple[float, float, int, int]:
    """One run per issuer, as ``invoice run --all --out`` does it: each committed batch's UBL
    files are written on the other cores while the run issues the next. Returns the time until
    the last run returned, the time until the last file was written, invoices and events."""
    started = time.perf_counter()
    issuers = ["region:12", "region:13", "region:14", "kommun:1780", "kommun:1784"]
    invoices, pending, elsewhere, lines = 0, 0, 0, Counter[int]()

    def issued(batch: list[IssuedInvoice]) -> None:
        for invoice in batch:
            writer.add(invoice.document_bytes, invoice.line_count)
            lines[invoice.line_count] += 1

    with FileWriter(out, pdf=False) as writer:
        for issuer in issuers:
            report = run_invoices(db, rules, issuer=issuer, period=PERIOD, today=TODAY, on_issued=issued)
            invoices += len(report.invoices)
            pending += len(report.pending)
            elsewhere += len(report.billed_elsewhere)
            db.expunge_all()
        run_took = time.perf_counter() - started
    total_took = time.perf_counter() - started
    billed = db.scalar(select(func.count()).select_from(BilledEvent)) or 0
    assert writer.written == invoices == len(list(out.glob("*.xml")))
    print(
        f"invoice run: {invoices:,} invoices, {billed:,} events billed, {pending} pending, "
        f"{elsewhere:,} billed elsewhere, in {run_took:.1f} s = {billed / run_took:,.0f} events/s, "
        f"{invoices / run_took:,.0f} invoices/s"
    )
    print(
        f"UBL: {invoices:,} files (no PDFs) written on every core during the run; the last "
        f"{total_took - run_took:.1f} s after the run ended"
    )
    print(f"lines per invoice: largest {max(lines)}, most common {lines.most_common(1)[0][0]}")
    return run_took, total_took, invoices, billed


def run(events: int, per_case: int, per_row: int, folder: Path) -> float:
    db_engine = make_engine(f"sqlite:///{folder}/bench.db")
    migrate(db_engine)
    rules = Engine(load_packs([]))
    with session_factory(db_engine)() as db:
        files = prepare(db, rules, events, per_case)
        import_took, _ = import_all(db, files, per_row)
        _, total, _, _ = invoice_all(db, rules, folder / "ubl")
        cases = db.scalar(select(func.count()).select_from(CaseRecord))
    db_engine.dispose()
    print(
        f"{cases:,} cases; invoice run with its UBL files: {total:.1f} s "
        f"(loading the events through the bulk import took {import_took:.1f} s more)"
    )
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-case", type=int, default=100)
    parser.add_argument("--per-row", type=int, default=10_000, help="rows through the per-row path first")
    parser.add_argument("--profile", type=int, default=10_000, help="events in the profiled sample (0: none)")
    args = parser.parse_args()
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            profiler = cProfile.Profile()
            profiler.enable()
            run(args.profile, args.per_case, 0, Path(tmp))
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(18)
            print("--- profile of the sample (import + run + UBL, cases included), by own time ---")
            print("\n".join(text.getvalue().splitlines()[6:32]))
    with tempfile.TemporaryDirectory() as tmp:
        total = run(args.events, args.per_case, args.per_row, Path(tmp))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = "met" if total < 60 else "NOT met"
    print(f"peak memory (maxrss): {peak:,.0f} MiB; target 60 s for run + UBL: {verdict} ({total:.1f} s)")


if __name__ == "__main__":
    main()
