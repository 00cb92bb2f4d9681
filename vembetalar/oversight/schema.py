"""The import contract for dispensing records: the columns, their types and which are optional.

One source of truth: the importer checks files against it, the store writes Parquet with it, the
synthetic generator produces it and ``docs/oversight.md`` describes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import pyarrow as pa
import yaml

Kind = Literal["date", "string", "int", "bool", "float", "count", "prescriber_code", "atc", "pseudonym"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool
    arrow: pa.DataType


COLUMNS: tuple[Column, ...] = (
    Column("dispensed_on", "date", True, pa.date32()),
    Column("patient_pseudonym", "pseudonym", True, pa.string()),
    Column("patient_home_region", "string", False, pa.string()),
    Column("patient_birth_year", "int", False, pa.int32()),
    Column("patient_sex", "string", False, pa.string()),
    Column("prescriber_code", "prescriber_code", True, pa.string()),
    Column("prescriber_has_personnummer", "bool", True, pa.bool_()),
    Column("prescriber_profession", "string", True, pa.string()),
    Column("prescriber_specialty", "string", False, pa.string()),
    Column("workplace_code", "string", True, pa.string()),
    Column("workplace_region", "string", True, pa.string()),
    Column("workplace_care_type", "string", True, pa.string()),
    Column("pharmacy_id", "string", True, pa.string()),
    Column("atc", "atc", True, pa.string()),
    Column("product_id", "string", False, pa.string()),
    Column("packs", "count", True, pa.int32()),
    Column("ddd", "float", True, pa.float64()),
    Column("cost_sek", "float", True, pa.float64()),
    Column("benefit_cost_sek", "float", True, pa.float64()),
    Column("within_benefit", "bool", True, pa.bool_()),
)
BY_NAME = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
OPTIONAL = tuple(c.name for c in COLUMNS if not c.required)
#: The stored Parquet: the contract's columns, typed, in this order.
ARROW_SCHEMA = pa.schema([pa.field(c.name, c.arrow) for c in COLUMNS])


class BadFile(ValueError):
    """A file that cannot be imported at all (exit 2): unreadable, or the wrong columns."""


def check_header(names: list[str], source: str) -> None:
    """Exactly the contract's columns: every required one present, nothing unknown, no duplicate."""
    seen: set[str] = set()
    doubles = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if doubles:
        raise BadFile(f"{source}: kolumnen {', '.join(doubles)} förekommer flera gånger")
    extra = [n for n in names if n not in BY_NAME]
    missing = [n for n in REQUIRED if n not in names]
    problems = []
    if missing:
        problems.append("saknade kolumner: " + ", ".join(missing))
    if extra:
        problems.append("okända kolumner: " + ", ".join(extra))
    if problems:
        raise BadFile(f"{source}: " + "; ".join(problems) + " (se docs/oversight.md)")


# ---------------------------------------------------------------- the watch list
@dataclass(frozen=True)
class WatchGroup:
    code: str
    name: str
    atc: tuple[str, ...]


class BadWatchlist(ValueError):
    """The watch-list file is not as documented."""


def load_watchlist(path: Path | None = None) -> tuple[WatchGroup, ...]:
    """The bundled watch list (``watchlist.yaml``), or the user's own file in the same shape."""
    where = str(path) if path else "watchlist.yaml"
    try:
        if path is None:
            text = resources.files("vembetalar.oversight").joinpath("watchlist.yaml").read_text("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise BadWatchlist(f"{where}: kan inte läsas ({type(exc).__name__})") from None
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not groups:
        raise BadWatchlist(f"{where}: 'groups' ska vara en lista med minst en grupp")
    out: list[WatchGroup] = []
    for i, group in enumerate(groups, start=1):
        if not isinstance(group, dict) or not {"code", "name", "atc"} <= set(group):
            raise BadWatchlist(f"{where}: grupp {i} ska ha code, name och atc")
        codes = group["atc"] if isinstance(group["atc"], list) else [group["atc"]]
        if not codes or not all(isinstance(c, str) and c.strip() for c in codes):
            raise BadWatchlist(f"{where}: grupp {group['code']}: atc ska vara en lista med ATC-koder")
        out.append(
            WatchGroup(str(group["code"]), str(group["name"]), tuple(c.strip().upper() for c in codes))
        )
    if len({g.code for g in out}) != len(out):
        raise BadWatchlist(f"{where}: två grupper har samma code")
    return tuple(out)
