"""Benchmark: deciding 1 000 000 cases — vectorised batch vs. the single-case engine per row vs.
GoRules zen-engine per row on the same tables. Prints throughput and ratios; not a test.

    .venv/bin/python bench/decide_batch.py [--cases 1000000] [--per-row 20000]

The per-row paths are timed on the first --per-row cases (a million Python calls would take
minutes and tell nothing more); cases/second is what is compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import zen
from zen_tables import to_jdm

from vembetalar.model.case import Case
from vembetalar.rules.batch import decide_frame
from vembetalar.rules.batch_io import prepare
from vembetalar.rules.engine import Engine, evaluate_table
from vembetalar.rules.pack import load_packs
from vembetalar.synthetic import generate_cases, nest


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--per-row", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    engine = Engine(load_packs())
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    cases = generate_cases(args.cases, seed=2026)
    print(f"generated {cases.height:,} random valid cases in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    frame = prepare(cases)
    prep_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        decided = decide_frame(engine, frame)
        best = min(best, time.perf_counter() - t0)
    batch_rate = cases.height / best
    counts = dict(decided.get_column("status").value_counts().iter_rows())
    print(
        f"(a) batch (Polars):      {best:6.2f} s for {cases.height:,} cases (+{prep_s:.2f} s validation)"
        f" = {batch_rate:12,.0f} cases/s   {counts}"
    )

    sample = cases.head(args.per_row)
    rows = [nest(r) for r in sample.iter_rows(named=True)]
    t0 = time.perf_counter()
    singles = [engine.decide(Case.model_validate(r)) for r in rows]
    single_s = time.perf_counter() - t0
    single_rate = len(rows) / single_s
    print(
        f"(b) single-case engine:  {single_s:6.2f} s for {len(rows):,} cases"
        f"                 = {single_rate:12,.0f} cases/s"
    )

    decision = zen.ZenEngine().create_decision(json.dumps(to_jdm(engine.packs)))
    t0 = time.perf_counter()
    zen_results = [decision.evaluate(r)["result"] for r in rows]
    zen_s = time.perf_counter() - t0
    zen_rate = len(rows) / zen_s
    print(
        f"(c) zen-engine per row:  {zen_s:6.2f} s for {len(rows):,} cases"
        f"                 = {zen_rate:12,.0f} cases/s"
    )

    # The tables mean the same in both engines wherever every field a table reads is known.
    agree = compared = 0
    for row, result in zip(sample.iter_rows(named=True), zen_results, strict=True):
        flat = Case.model_validate(nest(row)).flat()
        for pack in engine.packs:
            for table in pack.tables:
                if any(flat[f] is None for f in table.fields()):
                    continue
                ours = evaluate_table(table, flat).hit
                theirs = result.get(f"{pack.id}__{table.id}")
                compared += 1
                agree += (ours.id if ours else None) == theirs
    print(f"table hits agreeing with zen-engine on fully known inputs: {agree:,}/{compared:,}")
    mismatches = sum(
        1
        for s, b in zip(singles, decided.head(len(rows)).iter_rows(named=True), strict=True)
        if (s.status, s.payer, s.rule_id) != (b["status"], b["payer"], b["rule_id"])
    )
    print(f"batch vs single-case mismatches on the sample: {mismatches}")
    print(
        f"ratios: batch/single = {batch_rate / single_rate:,.0f}×, batch/zen = {batch_rate / zen_rate:,.0f}×,"
        f" zen/single = {zen_rate / single_rate:.1f}×"
    )
    if cases.height >= 1_000_000:
        verdict = "met" if best < 2 else "NOT met"
        print(f"target: {cases.height:,} cases in < 2 s → {verdict} ({best:.2f} s)")
    print(f"target: batch ≥ 10× zen-engine → {'met' if batch_rate >= 10 * zen_rate else 'NOT met'}")


if __name__ == "__main__":
    main()
