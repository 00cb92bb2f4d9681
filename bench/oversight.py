"""Benchmark (not a test): oversight import and a full indicator run over N synthetic dispensings.

    .venv/bin/python bench/oversight.py [--rows 100000000] [--engine duckdb] [--memory 6GB]

The synthetic Parquet is made once and cached under ``var/bench/`` (with what was planted beside
it); the store is imported once per size (``--reimport`` times it again). Import and run each run
in a child process, so that wall time and peak memory (the child's max RSS, DuckDB included) are
measured for that phase alone. Detection quality: precision and recall of the planted anomalies
in the top 50 (and recall in the top 500). A flag counts as a hit when it names a planted entity,
or the workplace where a planted prescriber's anomaly happened (that workplace's data carry it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

VAR = Path("var") / "bench"


def _child(args: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run ``python bench/oversight.py --phase …`` and return wall seconds, peak RSS (bytes), stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"phase {args} failed with {proc.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss * 1024, output


def phase_generate(rows: int, path: Path) -> None:
    from vembetalar.oversight import synthetic

    synthetic.write(path, rows, seed=2024, months=24)


def phase_import(path: Path, store_root: Path) -> None:
    from vembetalar.oversight.importer import import_file
    from vembetalar.oversight.store import Store

    report = import_file(path, Store(store_root))
    print(json.dumps({"rows": report.rows, "imported": report.imported, "rejected": report.rejected}))


def phase_run(store_root: Path, engine: str, out: Path) -> None:
    from vembetalar.oversight.run import Options, run, write_flags
    from vembetalar.oversight.store import Store

    timings: dict[str, float] = {}
    last = [time.perf_counter()]

    def step(name: str, done: int, total: int) -> None:
        now = time.perf_counter()
        timings[name] = round(now - last[0], 2)
        last[0] = now

    result = run(Store(store_root), Options(top=500), engine, step)
    write_flags(result.flags, out)
    slow = dict(sorted(timings.items(), key=lambda kv: -kv[1])[:6])
    print(json.dumps({"flags": len(result.flags), "candidates": result.candidates, "slowest": slow}))


def quality(source: Path, flags_file: Path) -> dict[str, float]:
    import duckdb

    from vembetalar.oversight import synthetic

    planted = synthetic.read_planted(source)
    prescribers = [p.entity_code for p in planted if p.entity_kind == "prescriber"]
    workplaces: set[tuple[str, str]] = set()
    if prescribers:
        codes = ", ".join(f"'{c}'" for c in prescribers)
        workplaces = {
            ("workplace", str(code))
            for (code,) in duckdb.sql(
                f"SELECT DISTINCT workplace_code FROM read_parquet('{source}') "
                f"WHERE prescriber_code IN ({codes})"
            ).fetchall()
        }
    wanted = {(p.entity_kind, p.entity_code) for p in planted}
    related = wanted | workplaces
    ranked = duckdb.sql(
        f"SELECT entity_kind, entity_code FROM read_parquet('{flags_file}') ORDER BY rank"
    ).fetchall()
    top50 = [tuple(r) for r in ranked[:50]]
    hits = sum(1 for r in top50 if r in related)
    return {
        "planted": len(wanted),
        "precision_top50": round(hits / max(1, len(top50)), 3),
        "recall_top50": round(len(wanted & set(top50)) / max(1, len(wanted)), 3),
        "recall_top500": round(len(wanted & {tuple(r) for r in ranked}) / max(1, len(wanted)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    parser.add_argument("--memory", default="6GB", help="DuckDB memory_limit for the run")
    parser.add_argument("--reimport", action="store_true")
    parser.add_argument("--phase", choices=["generate", "import", "run"])
    parser.add_argument("--path", type=Path)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.phase == "generate":
        return phase_generate(args.rows, args.path)
    if args.phase == "import":
        return phase_import(args.path, args.store)
    if args.phase == "run":
        return phase_run(args.store, args.engine, args.out)

    VAR.mkdir(parents=True, exist_ok=True)
    source = VAR / f"oversight-{args.rows}.parquet"
    store = VAR / f"oversight-store-{args.rows}"
    flags = VAR / f"oversight-flags-{args.rows}-{args.engine}.parquet"
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, python {platform.python_version()}")
    if not source.exists():
        seconds, rss, _ = _child(["--phase", "generate", "--rows", str(args.rows), "--path", str(source)])
        print(
            f"generated {args.rows:,} rows in {seconds:.0f} s (peak {rss / 2**30:.1f} GiB), "
            f"{source.stat().st_size / 2**30:.2f} GiB"
        )
    if args.reimport or not store.exists():
        shutil.rmtree(store, ignore_errors=True)
        seconds, rss, output = _child(["--phase", "import", "--path", str(source), "--store", str(store)])
        report = json.loads(output.strip().splitlines()[-1])
        print(
            f"import: {report['imported']:,} rows in {seconds:.1f} s = "
            f"{report['imported'] / seconds:,.0f} rows/s, "
            f"peak {rss / 2**30:.2f} GiB, {report['rejected']} rejected"
        )
    size = sum(p.stat().st_size for p in store.rglob("*.parquet"))
    print(f"store: {size / 2**30:.2f} GiB in {len(list(store.rglob('*.parquet')))} files")
    env = {"VEMBETALAR_DUCKDB_MEMORY": args.memory} if args.engine == "duckdb" else {}
    seconds, rss, output = _child(
        ["--phase", "run", "--store", str(store), "--engine", args.engine, "--out", str(flags)], env
    )
    report = json.loads(output.strip().splitlines()[-1])
    print(
        f"run ({args.engine}): {args.rows:,} rows in {seconds:.1f} s = {args.rows / seconds:,.0f} rows/s, "
        f"peak {rss / 2**30:.2f} GiB; {report['flags']} flags of {report['candidates']} candidates"
    )
    print(f"slowest steps (s): {report['slowest']}")
    print(f"detection: {quality(source, flags)}")


if __name__ == "__main__":
    main()
