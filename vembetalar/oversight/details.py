"""What the review page and the report plot for a flag: the entity's months, and its peers.

Computed once when flags are published, with DuckDB over the same store (whatever engine ran the
indicators): the base steps of ``sql/00_base.sql`` and a few grouped queries for all flags at
once. The result is small JSON kept with the flag, so the web app never reads the Parquet store.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from vembetalar.oversight.engines import DuckDBEngine
from vembetalar.oversight.run import Flag, Options, parameters, steps
from vembetalar.oversight.schema import load_watchlist
from vembetalar.oversight.store import Store

#: At most this many peer values are kept per flag (a sample, the entity always among them).
MAX_PEERS = 400


def _month_label(month_no: int) -> str:
    year, month = divmod(int(month_no), 12)
    return f"{year:04d}-{month + 1:02d}"


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def compute(store: Store, options: Options, flags: list[Flag]) -> dict[str, dict[str, Any]]:
    """flag_id → {"series": [{month, n, cost}], "peers": [the other peers' values], "own": the
    entity's value in the same measure, "unit": "uttag" | "kr"}."""
    if not flags:
        return {}
    date_from = dt.date.fromisoformat(flags[0].period_from)
    date_to = dt.date.fromisoformat(flags[0].period_to)
    engine = DuckDBEngine()
    try:
        engine.load(store, load_watchlist(options.watchlist))
        values = parameters(options, date_from, date_to, engine)
        for step in steps():
            if step.source.startswith("00_"):
                engine.keep(step.name, step.sql.format(**values), step.kind)
        months = [r["month_no"] for r in engine.fetch("SELECT month_no FROM months ORDER BY month_no")]
        out: dict[str, dict[str, Any]] = {}
        for flag in flags:
            peers, own = _peers(engine, flag)
            out[flag.flag_id] = {
                "series": _series(engine, flag, months),
                "peers": peers,
                "own": own,
                "unit": "kr" if flag.subject == "förmånskostnad" else "uttag",
            }
        return out
    finally:
        engine.close()


def _subject_filter(flag: Flag, alias: str = "a") -> tuple[str, str]:
    """A join and a condition restricting monthly rows to the flag's substance or group."""
    if flag.subject in ("watched",):
        return f"JOIN atc_group g ON {alias}.atc = g.atc", "TRUE"
    if flag.subject == "förmånskostnad":
        return "", "TRUE"
    if flag.indicator == "rare_for_peers":
        return "", f"{alias}.atc = {_sql_text(flag.subject)}"
    return f"JOIN atc_group g ON {alias}.atc = g.atc", f"g.group_code = {_sql_text(flag.subject)}"


def _series(engine: DuckDBEngine, flag: Flag, months: list[int]) -> list[dict[str, Any]]:
    """Uttag of the flag's subject and all benefit cost, per month of the period (zeros kept)."""
    join, condition = _subject_filter(flag)
    code = _sql_text(flag.entity_code)
    if flag.entity_kind == "patient":
        rows = engine.fetch(
            f"SELECT a.month_no, count(*) AS n, CAST(sum(a.cost) AS DOUBLE) AS cost FROM d a {join} "
            f"WHERE a.patient = {code} AND {condition} GROUP BY a.month_no"
        )
        costs: dict[int, float] = {}
    else:
        column = "prescriber" if flag.entity_kind == "prescriber" else "workplace"
        rows = engine.fetch(
            f"SELECT a.month_no, sum(a.n) AS n FROM agg a {join} "
            f"WHERE a.{column} = {code} AND {condition} GROUP BY a.month_no"
        )
        costs = {
            int(r["month_no"]): float(r["cost"] or 0)
            for r in engine.fetch(
                f"SELECT month_no, CAST(sum(cost) AS DOUBLE) AS cost FROM agg "
                f"WHERE {column} = {code} GROUP BY month_no"
            )
        }
    counts = {int(r["month_no"]): int(r["n"] or 0) for r in rows}
    if flag.entity_kind == "patient":
        costs = {int(r["month_no"]): float(r["cost"] or 0) for r in rows}
    return [
        {"month": _month_label(m), "n": counts.get(m, 0), "cost": round(costs.get(m, 0.0), 2)} for m in months
    ]


def _peers(engine: DuckDBEngine, flag: Flag) -> tuple[list[float], float | None]:
    """The subject's uttag in the period for every entity of the flag's peer group (zeros kept);
    benefit cost for the cost trend. Patients and own-history flags have no peer plot."""
    if flag.entity_kind == "patient" or flag.indicator == "sudden_growth":
        return [], None
    column = "prescriber" if flag.entity_kind == "prescriber" else "workplace"
    join, condition = _subject_filter(flag)
    measure = (
        "CAST(sum(a.cost) AS DOUBLE)" if flag.subject == "förmånskostnad" else "CAST(sum(a.n) AS DOUBLE)"
    )
    rows = engine.fetch(
        f"SELECT e.entity_code, coalesce(v.value, 0) AS value FROM ent e LEFT JOIN ("
        f"SELECT a.{column} AS code, {measure} AS value FROM agg a {join} WHERE {condition} "
        f"GROUP BY a.{column}) v ON v.code = e.entity_code "
        f"WHERE e.entity_kind = {_sql_text(flag.entity_kind)} AND e.peer_group = {_sql_text(flag.peer_group)}"
    )
    values = {str(row["entity_code"]): float(row["value"]) for row in rows}
    own = values.pop(flag.entity_code, None)
    peers = sorted(values.values())
    if len(peers) > MAX_PEERS:
        step = len(peers) / MAX_PEERS
        peers = [peers[int(i * step)] for i in range(MAX_PEERS)]
    return [round(v, 2) for v in peers], (round(own, 2) if own is not None else None)
