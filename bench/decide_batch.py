"""Benchmark: deciding 1 000 000 cases — vectorised batch vs. the single-case engine per row vs.
GoRules zen-engine per row on the same tables. Prints throughput and ratios; not a test.

    .venv/bin/python bench/decide_batch.py [--cases 1000000] [--per-row 20000] [--repeat 3]

The batch path is timed once cold (the first run in the process fills the engine's caches of
per-situation answers) and then --repeat times warm (best kept). The per-row paths are timed on
the first --per-row cases (a million Python calls would take minutes and tell nothing more);
cases/second is what is compared.

zen-engine is run the cheapest correct way found: the pack is chosen in Python (validity date
and scope conditions, with our own ``Condition.test``), then only that pack's graph is evaluated
through ``ZenEngine`` with a loader (static and callback, both timed); rows that no pack surely
covers cost only the choice. zen is given the validated case, like our engine (a raw row leaves
facts implicit that validation fills in); (c+v) adds that validation to zen's time. zen answers
only "which rule fires in each table" — our engines also build the full decision (outputs,
reasons, unknowns) — so the zen figures flatter zen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import polars as pl
import zen
from zen_tables import all_packs_jdm, callback_loader, choose_pack, output_field, static_loader

from vembetalar.model.case import Case
from vembetalar.rules.batch import decide_frame
from vembetalar.rules.batch_io import prepare
from vembetalar.rules.engine import Engine, conclude
from vembetalar.rules.pack import load_packs
from vembetalar.rules.worlds import enumerate_worlds, summarise
from vembetalar.synthetic import generate_cases, nest

#: The 1 000 000-case target recorded in RESULTS.md before the engine was redesigned.
TARGET_S = 1.2


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
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()},"
        f" Polars {pl.__version__}, zen-engine {version('zen-engine')}"
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def line(label: str, seconds: float, n: int, extra: str = "") -> float:
    rate = n / seconds
    print(f"{label:<46} {seconds:6.2f} s for {n:>9,} = {rate:10,.0f} cases/s {extra}".rstrip())
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--per-row", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="warm runs after the cold one (best kept)")
    parser.add_argument("--no-slow-zen", action="store_true", help="skip the earlier, slow zen layout")
    args = parser.parse_args()
    repeat = max(1, args.repeat)

    engine = Engine(load_packs())
    packs = engine.packs
    print(f"machine: {machine()}")
    seconds, cases = timed(lambda: generate_cases(args.cases, seed=2026))
    print(f"generated {cases.height:,} random valid cases (seed 2026) in {seconds:.1f} s")

    # (a) batch: validation of the columns, then deciding; cold first, then warm.
    prep = [timed(lambda: prepare(cases)) for _ in range(1 + repeat)]
    frame = prep[0][1]
    prep_first, prep_best = prep[0][0], min(s for s, _ in prep)
    cold_s, decided = timed(lambda: decide_frame(engine, frame))
    warm_s = min(timed(lambda: decide_frame(engine, frame))[0] for _ in range(repeat))
    counts = dict(sorted(decided.get_column("status").value_counts().iter_rows()))
    shares = ", ".join(f"{k} {v / cases.height:.0%}" for k, v in counts.items())
    print(f"validation (prepare):{'':25} {prep_first:6.2f} s first, {prep_best:.2f} s best of {1 + repeat}")
    line("(a) batch, cold (first run in the process)", cold_s, cases.height)
    batch_rate = line(f"(a) batch, warm (best of {repeat})", warm_s, cases.height)
    print(f"    statuses: {shares}")

    # (b) single-case engine, one call per row, on the first --per-row cases.
    sample = cases.head(args.per_row)
    rows = [nest(r) for r in sample.iter_rows(named=True)]
    n = len(rows)
    conclude.cache_clear()
    enumerate_worlds.cache_clear()
    single_cold, singles = timed(lambda: [engine.decide(Case.model_validate(r)) for r in rows])
    single_warm = min(
        timed(lambda: [engine.decide(Case.model_validate(r)) for r in rows])[0] for _ in range(repeat)
    )
    line("(b) single-case, validation + decide, cold", single_cold, n)
    single_rate = line("(b) single-case, validation + decide, warm", single_warm, n)
    valid = [Case.model_validate(r) for r in rows]
    flats = [c.flat() for c in valid]
    bare_s = min(timed(lambda: [engine.decide_flat(f) for f in flats])[0] for _ in range(repeat))
    bare_rate = line("(b') single-case, decide only (pre-validated)", bare_s, n)

    # (c) zen-engine: the pack chosen in Python, then only that pack's graph, through a loader.
    # zen gets the validated case (model_dump): validation fills in what the raw row leaves
    # implicit (a known home region means the country is SE), and without it zen answers wrongly.
    docs = [c.model_dump(mode="json") for c in valid]
    engines = {
        "static loader": zen.ZenEngine({"loader": static_loader(packs)}),
        "callback loader": zen.ZenEngine({"loader": callback_loader(packs)}),
    }

    def zen_run(evaluate: Callable[[str, Any], Any]) -> list[Any]:
        out = []
        for flat, doc in zip(flats, docs, strict=True):
            pack = choose_pack(packs, engine.overrides, flat)
            out.append(evaluate(pack.id, doc)["result"] if pack is not None else None)
        return out

    def zen_validating(evaluate: Callable[[str, Any], Any]) -> list[Any]:
        out = []
        for row in rows:
            case = Case.model_validate(row)
            pack = choose_pack(packs, engine.overrides, case.flat())
            out.append(
                evaluate(pack.id, case.model_dump(mode="json"))["result"] if pack is not None else None
            )
        return out

    zen_times: dict[str, list[float]] = {name: [] for name in engines}
    zen_results: dict[str, list[Any]] = {}
    for _ in range(1 + repeat):  # interleaved, so a busy moment does not favour one loader
        for name, zen_engine in engines.items():
            seconds, zen_results[name] = timed(lambda e=zen_engine: zen_run(e.evaluate))
            zen_times[name].append(seconds)
    for name, times in zen_times.items():
        line(f"(c) zen, pack chosen first, {name}", min(times), n, f"(first run {times[0]:.2f} s)")
    best_loader = min(zen_times, key=lambda k: min(zen_times[k]))
    zen_rate = n / min(zen_times[best_loader])
    zen_engine = engines[best_loader]
    zen_v_s = min(timed(lambda: zen_validating(zen_engine.evaluate))[0] for _ in range(repeat))
    zen_v_rate = line(f"(c+v) zen as (c), {best_loader}, + validation", zen_v_s, n)
    choice_s = min(
        timed(lambda: [choose_pack(packs, engine.overrides, f) for f in flats])[0] for _ in range(3)
    )
    chosen = [choose_pack(packs, engine.overrides, f) for f in flats]
    covered = sum(p is not None for p in chosen)
    print(
        f"    {covered:,} of {n:,} rows covered by a pack; the choice alone takes"
        f" {choice_s / n * 1e6:.1f} µs/row; the ratios use the {best_loader}"
    )
    raw = [
        zen_engine.evaluate(p.id, r)["result"] if p is not None else None
        for p, r in zip(chosen, rows, strict=True)
    ]
    wrong = sum(a != b for a, b in zip(raw, zen_results[best_loader], strict=True))
    print(f"    fed the raw, unvalidated rows instead, zen's table hits differ on {wrong:,} rows")
    if not args.no_slow_zen:
        decision = zen.ZenEngine().create_decision(json.dumps(all_packs_jdm(packs)))
        slow_s, _ = timed(lambda: [decision.evaluate(d) for d in docs])
        line("(c0) zen, EARLIER SLOW WAY (not compared)", slow_s, n, "all packs' tables, ZenDecision")

    # Do the tables mean the same in both engines? Every pack's graph on every sample row,
    # compared table by table wherever every field the table reads is known.
    checker = engines["static loader"]
    agree = compared = 0
    for flat, doc in zip(flats, docs, strict=True):
        for pack in packs:
            alive, unknown = summarise(pack, flat)
            worlds = enumerate_worlds(pack, alive, unknown, flat["kind"])
            result = checker.evaluate(pack.id, doc)["result"]
            for t, table in enumerate(pack.tables):
                if any(flat[f] is None for f in table.fields()):
                    continue
                hits = {outcome[t] for outcome in worlds.outcomes}  # one, as the inputs are known
                hit = hits.pop() if len(hits) == 1 else None
                ours = table.rules[hit].id if hit is not None and hit >= 0 else None
                compared += 1
                agree += ours == result.get(output_field(pack, table))
    print(f"table hits agreeing with zen-engine where the table's inputs are known: {agree:,}/{compared:,}")
    same = all(res == zen_results[best_loader] for res in zen_results.values())
    print(f"both zen loaders gave identical results: {same}")
    mismatches = sum(
        1
        for s, b in zip(singles, decided.head(n).iter_rows(named=True), strict=True)
        if (s.status, s.payer, s.rule_id) != (b["status"], b["payer"], b["rule_id"])
    )
    print(f"batch vs single-case mismatches on the sample (status, payer, rule_id): {mismatches}")

    print(
        f"ratios: batch/single = {batch_rate / single_rate:,.0f}×"
        f" (decide only {batch_rate / bare_rate:,.0f}×),"
        f" batch/zen = {batch_rate / zen_rate:,.1f}× (cold {cases.height / cold_s / zen_rate:,.1f}×),"
        f" zen/single = {zen_rate / single_rate:.1f}×"
        f" (both pre-validated {zen_rate / bare_rate:.1f}×, both validating {zen_v_rate / single_rate:.1f}×)"
    )
    if cases.height >= 1_000_000:
        scale = 1_000_000 / cases.height
        for label, seconds in (("cold", cold_s), ("warm", warm_s)):
            per_million = seconds * scale
            verdict = "met" if per_million < TARGET_S else "NOT met"
            print(
                f"target: 1 000 000 cases in < {TARGET_S} s plus validation, {label} → {verdict}"
                f" ({per_million:.2f} s + {prep_best * scale:.2f} s validation)"
            )


if __name__ == "__main__":
    main()
