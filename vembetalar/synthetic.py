"""Random valid cases, for the benchmark and for proving batch ≡ single-case decisions.

Values are drawn near the agreements' boundaries (9 999 / 9 999.995 / 10 000 / 10 001 kr, 2.9 / 3 weeks,
validity dates) and with a share of unknowns, so that every route and every ``incomplete``
path is exercised — uniform noise would mostly produce ``no_agreement``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from vembetalar.model import codes
from vembetalar.model.case import KIND_AREAS, case_fields


def _pick(rng: np.random.Generator, n: int, values: list[Any], null: float = 0.0) -> list[Any]:
    chosen = rng.choice(np.array(values, dtype=object), size=n)
    if null:
        chosen[rng.random(n) < null] = None
    return list(chosen)


def _bools(rng: np.random.Generator, n: int, p_true: float = 0.5, null: float = 0.05) -> pl.Series:
    draw = rng.random(n)
    values = np.where(draw < p_true, True, False).astype(object)
    values[rng.random(n) < null] = None
    return pl.Series(list(values), dtype=pl.Boolean)


def generate_cases(n: int, seed: int = 7) -> pl.DataFrame:
    """``n`` random valid cases as a flat frame in the batch input format."""
    rng = np.random.default_rng(seed)
    regions = list(codes.regions())
    focus = ["12", "13", "14", "17"]
    by_region: dict[str, list[str]] = {}
    for code in codes.municipalities():
        by_region.setdefault(code[:2], []).append(code)

    kinds = list(KIND_AREAS)
    kind = np.array(_pick(rng, n, kinds), dtype=object)
    area = np.empty(n, dtype=object)
    for k, areas in KIND_AREAS.items():
        mask = kind == k
        area[mask] = rng.choice(np.array(areas, dtype=object), size=int(mask.sum()))
    area[rng.random(n) < 0.03] = None

    # Steer most cases into some agreement's scope: drugs between VGR and Halland, devices
    # prescribed in Skåne, medtech and SärNär for Värmland residents.
    home_focus = {
        "drug_exception": ["13", "14"],
        "assistive_device": focus,
        "medtech_product": ["17"],
        "nutrition_product": ["17"],
    }
    care_focus = {
        "drug_exception": ["13", "14"],
        "assistive_device": ["12"],
        "medtech_product": ["17"],
        "nutrition_product": ["17"],
    }
    home = np.array(_pick(rng, n, regions, null=0.03), dtype=object)
    care = np.array(_pick(rng, n, regions, null=0.03), dtype=object)
    steer = rng.random(n) < 0.85
    for k in kinds:
        mask = (kind == k) & steer
        home[mask & (home != None)] = rng.choice(  # noqa: E711
            np.array(home_focus[k], dtype=object),
            size=int((mask & (home != None)).sum()),  # noqa: E711
        )
        care[mask & (care != None)] = rng.choice(  # noqa: E711
            np.array(care_focus[k], dtype=object),
            size=int((mask & (care != None)).sum()),  # noqa: E711
        )
    muni = np.empty(n, dtype=object)
    for region, munis in by_region.items():
        mask = home == region
        muni[mask] = rng.choice(np.array(munis, dtype=object), size=int(mask.sum()))
    muni[rng.random(n) < 0.05] = None

    start = dt.date(2020, 6, 1).toordinal()
    days = rng.integers(0, dt.date(2027, 6, 30).toordinal() - start, size=n)
    edges = [
        dt.date(2020, 12, 31),
        dt.date(2021, 1, 1),
        dt.date(2022, 12, 31),
        dt.date(2023, 1, 1),
        dt.date(2024, 2, 1),
        dt.date(2024, 2, 2),
        dt.date(2026, 12, 31),
        dt.date(2027, 1, 1),
    ]
    dates = [dt.date.fromordinal(start + int(d)) for d in days]
    for i in np.flatnonzero(rng.random(n) < 0.05):
        dates[i] = edges[int(rng.integers(0, len(edges)))]

    cost = rng.uniform(0, 30000, size=n).round(2).astype(object)
    edge = rng.random(n) < 0.2
    # Besides whole kronor: amounts a client computed, which are rounded to öre half up as they
    # read — 9 999.995 is 10 000 kr, 9 999.994999999999 is not — alike in batch and single case.
    limits = [9999, 9999.5, 10000, 10001, 9999.995, 9999.994999999999, 9999.99, 10000.01]
    cost[edge] = rng.choice(np.array(limits, dtype=object), size=int(edge.sum()))
    cost[rng.random(n) < 0.05] = None

    weeks = np.array(_pick(rng, n, [0, 1, 2, 2.9, 3, 4, 10], null=0.05), dtype=object)
    supply = np.array(_pick(rng, n, [3, 6, 7, 8, 14], null=0.05), dtype=object)
    age = rng.integers(0, 100, size=n).astype(object)
    age[rng.random(n) < 0.05] = None

    columns: dict[str, pl.Series] = {
        "date": pl.Series(dates, dtype=pl.Date),
        "kind": pl.Series(list(kind), dtype=pl.String),
        "patient.home_region": pl.Series(list(home), dtype=pl.String),
        "patient.home_municipality": pl.Series(list(muni), dtype=pl.String),
        "patient.country": pl.Series(
            _pick(rng, n, ["SE"] * 14 + ["DK", "NO", "DE", "CH", "US", "TH"], null=0.03),
            dtype=pl.String,
        ),
        "patient.last_home_region": pl.Series(_pick(rng, n, regions, null=0.5), dtype=pl.String),
        "patient.swedish_citizen": _bools(rng, n, 0.6),
        "patient.housing": pl.Series(
            _pick(rng, n, ["ordinary", "ordinary", "special_housing", "lss_group_home"], null=0.04),
            dtype=pl.String,
        ),
        "patient.home_care_weeks": pl.Series(list(weeks), dtype=pl.Float64),
        "patient.short_term_stay": _bools(rng, n, 0.2),
        "patient.age": pl.Series(list(age), dtype=pl.Int64),
        "care.region": pl.Series(list(care), dtype=pl.String),
        "care.referral": _bools(rng, n, 0.4),
        "care.self_care": _bools(rng, n, 0.1),
        "care.discharge": _bools(rng, n, 0.15),
        "care.municipality_has_product": _bools(rng, n, 0.5),
        "care.late_handover": _bools(rng, n, 0.3),
        "product.area": pl.Series(list(area), dtype=pl.String),
        "product.cost_sek": pl.Series(list(cost), dtype=pl.Float64),
        "product.advanced_adaptation": _bools(rng, n, 0.2),
        "product.nt_council": pl.Series(
            _pick(rng, n, ["do_not_use", "await", "use", "may_use", "none", None]), dtype=pl.String
        ),
        "product.annex": pl.Series(
            _pick(rng, n, ["kommun", "kommun", "region", "not_listed"], null=0.05), dtype=pl.String
        ),
        "product.replaces_listed": _bools(rng, n, 0.3),
        "product.supply_days": pl.Series(list(supply), dtype=pl.Int64),
    }
    assert list(columns) == list(case_fields())
    return pl.DataFrame(columns)


def nest(row: dict[str, Any]) -> dict[str, Any]:
    """A flat row → the nested Case JSON shape, leaving out unknown (null) values."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or key not in case_fields():
            continue
        if isinstance(value, dt.date):
            value = value.isoformat()
        if isinstance(value, float) and key == "patient.home_care_weeks" and value.is_integer():
            value = int(value)
        group, _, name = key.partition(".")
        if name:
            out.setdefault(group, {})[name] = value
        else:
            out[group] = value
    return out
