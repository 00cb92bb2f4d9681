"""Invoice runs under failure, for real: a run killed with SIGKILL half-way, and two runs at once.
Whatever happens, numbers stay unique and gap-free per issuer, every invoice is whole (its events
marked billed in the same transaction), and no event is billed twice or lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_api import HALLAND_AT_VGR
from test_billing_run import DEMO_REGISTRY
from webapp import TODAY
from webapp import TestApp as Desk

from vembetalar.billing.registry import apply_registry, read_registry
from vembetalar.billing.run import run_invoices
from vembetalar.model.case import Case
from vembetalar.store import repo
from vembetalar.store.models import BillableEvent, BilledEvent, Invoice, User
from vembetalar.workflow import EventLine

PERIOD = TODAY.strftime("%Y-%m")


def seed_patients(desk: Desk, count: int) -> None:
    """``count`` Halland patients dispensed at VGR: one invoice each (bilaga 2 names one patient)."""
    with desk.app.state.sessions() as db:
        apply_registry(db, read_registry(DEMO_REGISTRY))
        user = db.scalars(select(User).where(User.username == "lakare.vgr")).one()
        actor = repo.Actor.of(user)
        case = Case.model_validate(HALLAND_AT_VGR)
        for n in range(count):
            record = repo.create_case(db, desk.app.state.engine, actor, case, today=TODAY, patient_id=f"p{n}")
            line = EventLine(
                occurred_on=TODAY,
                quantity=Decimal(1),
                unit_price_sek=Decimal("100.00") + n,
                product_name="Testoprazol",
                varunummer="123456",
                prescriber_name="Lina Läkare",
                unit_name="Medicinmottagningen",
            )
            repo.add_step(db, actor, record.id, "dispensed", today=TODAY, line=line)


def assert_whole_and_gap_free(desk: Desk, expected_events: int) -> list[int]:
    with desk.app.state.sessions() as db:
        numbers = sorted(db.scalars(select(Invoice.number).where(Invoice.issuer == "region:14")))
        billed = db.scalar(select(func.count()).select_from(BilledEvent))
        events = db.scalar(select(func.count()).select_from(BillableEvent))
        per_invoice = dict(
            db.execute(select(BilledEvent.invoice_id, func.count()).group_by(BilledEvent.invoice_id)).all()
        )
        invoices = db.scalars(select(Invoice)).all()
    assert numbers == list(range(1, len(numbers) + 1)), f"gaps or doubles: {numbers}"
    assert events == expected_events
    assert billed == expected_events, "every event billed exactly once"
    for invoice in invoices:  # whole: each invoice has exactly the lines its document shows
        assert per_invoice.get(invoice.id) == len(invoice.document_json["lines"])
    return numbers


def test_two_runs_at_once_never_double_bill_or_leave_a_gap(desk: Desk) -> None:
    seed_patients(desk, 12)
    barrier = threading.Barrier(2, timeout=30)
    results: list[Any] = [None, None]

    def job(index: int) -> None:
        try:
            barrier.wait()
            with desk.app.state.sessions() as db:
                report = run_invoices(
                    db, desk.app.state.engine, issuer="region:14", period=PERIOD, today=TODAY
                )
                results[index] = (len(report.invoices), report.lost_races)
        except Exception as exc:  # reported below
            results[index] = exc

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(isinstance(r, BaseException) for r in results), results
    assert sum(made for made, _ in results) == 12, results
    assert assert_whole_and_gap_free(desk, 12) == list(range(1, 13))


RUNNER = """
import sys, datetime as dt
sys.path.insert(0, {tests!r})
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import load_packs
from vembetalar.store.db import make_engine, session_factory
from vembetalar.billing import run as billing
engine = make_engine({url!r})
rules = Engine(load_packs([]))
billing.BATCH_INVOICES = 3  # several transactions, each of several invoices
original = billing._insert if {inside!r} else billing._store
def slow(*args, **kwargs):
    made = original(*args, **kwargs)
    print("issued", flush=True)  # inside: the batch is inserted, not yet committed
    import time; time.sleep(0.15)
    return made
if {inside!r}:
    billing._insert = slow
else:
    billing._store = slow
with session_factory(engine)() as db:
    today = dt.date.fromisoformat({today!r})
    billing.run_invoices(db, rules, issuer="region:14", period={period!r}, today=today)
print("done", flush=True)
"""


@pytest.mark.parametrize("inside", [False, True], ids=["between-batches", "inside-a-batch"])
def test_a_run_killed_half_way_leaves_whole_invoices_and_the_next_run_completes_it(
    desk: Desk, tmp_path: Path, inside: bool
) -> None:
    """Killed between two committed batches, or while a batch is written but not committed: the
    invoices that exist are whole batches of whole invoices, and the next run bills the rest."""
    seed_patients(desk, 30)
    script = RUNNER.format(
        tests=str(Path(__file__).parent),
        url=desk.app.state.settings.database_url,
        period=PERIOD,
        today=TODAY.isoformat(),
        inside=inside,
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    issued = 0
    deadline = time.monotonic() + 120
    while issued < 4 and time.monotonic() < deadline:  # let a few batches be made, then kill
        if proc.stdout.readline().strip() == "issued":
            issued += 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""

    with desk.app.state.sessions() as db:
        made_before = db.scalar(select(func.count()).select_from(Invoice)) or 0
    # Four batches of three were stored; killed inside the fourth, its three were never committed.
    assert made_before == (9 if inside else 12), made_before
    assert_whole_and_gap_free_partial(desk)

    with desk.app.state.sessions() as db:
        report = run_invoices(db, desk.app.state.engine, issuer="region:14", period=PERIOD, today=TODAY)
    assert len(report.invoices) == 30 - made_before
    assert assert_whole_and_gap_free(desk, 30) == list(range(1, 31))


def assert_whole_and_gap_free_partial(desk: Desk) -> None:
    """After the kill: the invoices that exist are whole and numbered 1..n without gaps."""
    with desk.app.state.sessions() as db:
        numbers = sorted(db.scalars(select(Invoice.number)))
        invoices = db.scalars(select(Invoice)).all()
        per_invoice = dict(
            db.execute(select(BilledEvent.invoice_id, func.count()).group_by(BilledEvent.invoice_id)).all()
        )
    assert numbers == list(range(1, len(numbers) + 1))
    for invoice in invoices:
        assert per_invoice.get(invoice.id) == len(invoice.document_json["lines"])


def test_files_are_written_batch_by_batch_while_the_run_goes_on(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``invoice run --out``: each committed batch goes to the writer's processes at once; every
    invoice gets exactly the XML its stored document gives, and only committed invoices do."""
    from vembetalar.billing import files, run
    from vembetalar.billing.document import document_from_json
    from vembetalar.billing.ubl import to_ubl

    seed_patients(desk, 20)
    monkeypatch.setattr(run, "BATCH_INVOICES", 3)
    monkeypatch.setattr(files, "POOL_FROM", 4)  # a pool even for this small month
    handed: list[int] = []

    def issued(batch: list[Any]) -> None:
        handed.append(len(batch))
        for invoice in batch:
            writer.add(invoice.document_bytes, invoice.line_count)

    with desk.app.state.sessions() as db, files.FileWriter(tmp_path / "ut", pdf=False, workers=2) as writer:
        report = run_invoices(
            db, desk.app.state.engine, issuer="region:14", period=PERIOD, today=TODAY, on_issued=issued
        )
    assert handed == [3, 3, 3, 3, 3, 3, 2] and writer.written == 20
    with desk.app.state.sessions() as db:
        stored = {i.number_text: i.document_json for i in db.scalars(select(Invoice))}
    assert (
        sorted(p.stem for p in (tmp_path / "ut").iterdir())
        == sorted(stored)
        == sorted(i.number_text for i in report.invoices)
    )
    for number, document in stored.items():
        assert (tmp_path / "ut" / f"{number}.xml").read_bytes() == to_ubl(document_from_json(document))
