"""The registry of stocks: Halland's stocks from the seed's table (``data/halland_stocks.yaml``)
with their assortment and levels (``data/assortments.yaml``), written to the store.

Loading is idempotent: a stock that exists keeps its ledger; its configuration (operator, payer,
site) is taken from the file only where the file says something, and stock items not yet there are
added with the file's levels (levels a MAS has changed are kept).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from vembetalar.model import codes
from vembetalar.store.supply_models import SupplyProduct, SupplyStock, SupplyStockItem
from vembetalar.supply.errors import BadSupplyInput

STOCKS_FILE = "halland_stocks.yaml"
ASSORTMENT_FILE = "assortments.yaml"
KIND_NAMES = {"kommunalt": "Kommunalt läkemedelsförråd", "boende": "Boendeförråd"}


@dataclass(frozen=True)
class StockSpec:
    id: str
    municipality: str
    name: str
    kind: str
    site: str
    operator: str
    payer: str
    source: str


@dataclass(frozen=True)
class MunicipalityRow:
    """One row of the seed's table of stocks and places."""

    code: str
    name: str
    stocks: int
    sabo: int
    short_term: int
    home_care: int
    total: int
    comment: str
    quote: str


@dataclass
class Registry:
    stocks: list[StockSpec]
    municipalities: list[MunicipalityRow]
    source: str
    assortments: dict[str, list[tuple[str, str, int, int]]] = field(default_factory=dict)
    list_titles: dict[str, str] = field(default_factory=dict)


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(c if c.isalnum() else "-" for c in plain).strip("-")


def _yaml(path: Path | None, name: str) -> dict[str, Any]:
    try:
        text = (
            path.read_text(encoding="utf-8")
            if path is not None
            else resources.files("vembetalar.supply.data").joinpath(name).read_text(encoding="utf-8")
        )
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise BadSupplyInput(f"{path or name}: kan inte läsas ({exc})") from None
    if not isinstance(data, dict):
        raise BadSupplyInput(f"{path or name}: ska vara ett YAML-objekt")
    return data


def read_registry(stocks_file: Path | None = None, assortment_file: Path | None = None) -> Registry:
    """The stocks named by the files (the bundled Halland files by default)."""
    data = _yaml(stocks_file, STOCKS_FILE)
    where = str(stocks_file or STOCKS_FILE)
    try:
        unknown = str(data.get("unknown", "okänt"))
        config: dict[str, dict[str, str]] = data.get("stocks") or {}
        source = f"{data['source']['document']}: ”{data['source']['quote']}”"
        rows: list[MunicipalityRow] = []
        specs: list[StockSpec] = []

        def spec(stock_id: str, municipality: str, name: str, kind: str, site: str, quote: str) -> StockSpec:
            own = config.get(stock_id) or {}
            return StockSpec(
                id=stock_id,
                municipality=municipality,
                name=name,
                kind=kind,
                site=str(own.get("site") or site),
                operator=str(own.get("operator") or unknown),
                payer=str(own.get("payer") or unknown),
                source=f"{data['source']['document']}: ”{quote}”",
            )

        for m in data["municipalities"]:
            code = str(m["code"])
            if code not in codes.municipalities():
                raise BadSupplyInput(f"{where}: kommunkoden {code} finns inte")
            row = MunicipalityRow(
                code,
                str(m["name"]),
                int(m["stocks"]),
                int(m["sabo"]),
                int(m["short_term"]),
                int(m["home_care"]),
                int(m["total"]),
                str(m.get("comment") or ""),
                str(m["quote"]),
            )
            rows.append(row)
            for n in range(1, row.stocks + 1):
                specs.append(
                    spec(
                        f"{_slug(row.name)}-{n}",
                        code,
                        f"{row.name} {n}",
                        "kommunalt",
                        f"{unknown} (källan anger bara antalet förråd)",
                        row.quote,
                    )
                )
        residential = data.get("residential") or {}
        for site in residential.get("sites") or []:
            code = str(residential["municipality"])
            name = codes.municipalities()[code]
            specs.append(
                spec(
                    f"{_slug(name)}-boende-{_slug(site)}",
                    code,
                    f"{site}",
                    "boende",
                    f"{site} (särskilt boende, {name})",
                    str(residential["quote"]),
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadSupplyInput):
            raise
        raise BadSupplyInput(f"{where}: fel i filen ({exc})") from None
    registry = Registry(specs, rows, source)
    _read_assortments(registry, assortment_file)
    return registry


def _read_assortments(registry: Registry, path: Path | None) -> None:
    data = _yaml(path, ASSORTMENT_FILE)
    try:
        for list_name, body in data["lists"].items():
            registry.list_titles[list_name] = str(body["title"])
            for item in body["items"]:
                for kind in KIND_NAMES:
                    low, high = (int(v) for v in item[kind])
                    if not 0 <= low <= high:
                        raise BadSupplyInput(f"{item['varunummer']}: min {low} och max {high} för {kind}")
                    registry.assortments.setdefault(kind, []).append(
                        (str(item["varunummer"]), list_name, low, high)
                    )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadSupplyInput):
            raise
        raise BadSupplyInput(f"{path or ASSORTMENT_FILE}: fel i filen ({exc})") from None


@dataclass
class RegistryReport:
    stocks: int = 0
    items: int = 0
    missing_products: set[str] = field(default_factory=set)


def apply_registry(db: Session, registry: Registry) -> RegistryReport:
    """Write the stocks and their assortment; products not (yet) in the catalogue are skipped and named."""
    report = RegistryReport()
    known = set(db.scalars(select(SupplyProduct.varunummer)))
    have = {(i.stock_id, i.varunummer) for i in db.scalars(select(SupplyStockItem))}
    try:
        for spec in registry.stocks:
            stock = db.get(SupplyStock, spec.id)
            if stock is None:
                db.add(SupplyStock(**spec.__dict__))
                report.stocks += 1
            else:
                for key in ("operator", "payer", "site", "name", "source"):
                    setattr(stock, key, getattr(spec, key))
            for varunummer, list_name, low, high in registry.assortments.get(spec.kind, []):
                if varunummer not in known:
                    report.missing_products.add(varunummer)
                    continue
                if (spec.id, varunummer) not in have:
                    db.add(
                        SupplyStockItem(
                            stock_id=spec.id,
                            varunummer=varunummer,
                            assortment=list_name,
                            min_units=low,
                            max_units=high,
                        )
                    )
                    report.items += 1
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return report
