"""Hand-made dispensing rows for the oversight tests: one row per call, sensible defaults."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from vembetalar.oversight.importer import import_file
from vembetalar.oversight.schema import COLUMNS
from vembetalar.oversight.store import Store

DEFAULTS: dict[str, Any] = {
    "dispensed_on": "2024-06-15",
    "patient_pseudonym": "P1",
    "patient_home_region": "13",
    "patient_birth_year": "1970",
    "patient_sex": "K",
    "prescriber_code": "1000001",
    "prescriber_has_personnummer": "true",
    "prescriber_profession": "LK",
    "prescriber_specialty": "allmänmedicin",
    "workplace_code": "W1",
    "workplace_region": "13",
    "workplace_care_type": "vårdcentral",
    "pharmacy_id": "A1",
    "atc": "C09AA05",
    "product_id": "",
    "packs": "1",
    "ddd": "10",
    "cost_sek": "100",
    "benefit_cost_sek": "80",
    "within_benefit": "true",
}
HEADER = [c.name for c in COLUMNS]


def row(**values: Any) -> dict[str, str]:
    out = dict(DEFAULTS)
    for key, value in values.items():
        assert key in DEFAULTS, key
        out[key] = str(value)
    return out


def rows(count: int, **values: Any) -> list[dict[str, str]]:
    return [row(**values) for _ in range(count)]


def monthly(months: list[str], per_month: int, **values: Any) -> list[dict[str, str]]:
    """``per_month`` rows on the 15th of each ``YYYY-MM``; patients vary so no one hoards."""
    out = []
    for month in months:
        for i in range(per_month):
            out.append(row(dispensed_on=f"{month}-15", patient_pseudonym=f"P-{month}-{i}", **values))
    return out


def months_of(year: int, count: int = 12) -> list[str]:
    return [f"{year}-{m:02d}" for m in range(1, count + 1)]


def write_csv(path: Path, data: list[dict[str, str]], header: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, header or HEADER, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(data)
    return path


def store_with(tmp_path: Path, data: list[dict[str, str]]) -> Store:
    store = Store(tmp_path / "store")
    report = import_file(write_csv(tmp_path / "in.csv", data), store)
    assert report.rejected == 0, report.reasons
    return store


def day(text: str, plus: int = 0) -> str:
    return (dt.date.fromisoformat(text) + dt.timedelta(days=plus)).isoformat()
