"""Which column of webSesam's invoice export holds what: a YAML file, because no seed describes the
export and the real file's headers are the region's to confirm (the default ships as
``websesam_columns.yaml``). A bad mapping is refused with one Swedish sentence naming the key."""

from __future__ import annotations

import codecs
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEFAULT_FILE = "websesam_columns.yaml"

#: The fields the reconciliation reads, and what the user calls each one.
FIELDS: dict[str, str] = {
    "invoice_number": "fakturanummer",
    "invoice_date": "fakturadatum",
    "customer": "kund (hemregion)",
    "delivery_date": "leverans-/orderdatum",
    "article_number": "artikelnummer",
    "article_name": "artikelbenämning",
    "quantity": "antal",
    "amount": "belopp",
}
#: Without one of these a row cannot be matched to a product.
ARTICLE_FIELDS = ("article_number", "article_name")
DELIMITERS = (";", ",", "\t")


class BadMapping(ValueError):
    """The mapping file cannot be used; the message says which key is wrong."""


@dataclass(frozen=True)
class Column:
    headers: tuple[str, ...]
    required: bool


@dataclass(frozen=True)
class ColumnMapping:
    columns: Mapping[str, Column]
    #: None: guess with csv.Sniffer.
    delimiter: str | None = None
    encoding: str = "utf-8"
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    #: Export value (casefolded) → party, for customers that are not a region's name or code.
    customers: Mapping[str, str] = field(default_factory=dict)

    def headers_of(self, name: str) -> tuple[str, ...]:
        column = self.columns.get(name)
        return column.headers if column else ()


def _column(name: str, raw: Any) -> Column:
    if isinstance(raw, str | list):
        raw = {"headers": raw}
    if not isinstance(raw, dict):
        raise BadMapping(f"columns.{name}: ska ha headers (en rubrik eller en lista) och required")
    headers = raw.get("headers")
    headers = [headers] if isinstance(headers, str) else headers
    if not headers or not all(isinstance(h, str) and h.strip() for h in headers):
        raise BadMapping(f"columns.{name}.headers: ange minst en kolumnrubrik")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise BadMapping(f"columns.{name}.required: ska vara true eller false")
    unknown = set(raw) - {"headers", "required"}
    if unknown:
        raise BadMapping(f"columns.{name}: okänd nyckel {sorted(unknown)[0]!r}")
    return Column(tuple(h.strip() for h in headers), required)


def _delimiter(raw: Any) -> str | None:
    if raw in (None, "auto"):
        return None
    if raw in ("tab", "\\t"):
        return "\t"
    if raw not in DELIMITERS:
        raise BadMapping('delimiter: ska vara ";", ",", "tab" eller auto')
    return str(raw)


def _encoding(raw: Any) -> str:
    try:
        name = codecs.lookup(str(raw or "utf-8")).name
    except LookupError:
        raise BadMapping(f"encoding: okänd teckenkodning {str(raw)[:30]!r}") from None
    # utf-8-sig reads a file with and without a byte-order mark alike.
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


def _date_formats(raw: Any) -> tuple[str, ...]:
    formats = raw if raw is not None else ["%Y-%m-%d"]
    if not isinstance(formats, list) or not formats or not all(isinstance(f, str) for f in formats):
        raise BadMapping('date_formats: ska vara en lista som ["%Y-%m-%d"]')
    for fmt in formats:
        try:
            dt.datetime.strptime(dt.datetime(2024, 5, 13).strftime(fmt), fmt)
        except ValueError:
            raise BadMapping(f"date_formats: {fmt[:30]!r} är inget datumformat") from None
    return tuple(formats)


def _customers(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadMapping('customers: ska vara en tabell som {"10013": "region:13"}')
    out = {}
    for key, party in raw.items():
        if not isinstance(party, str) or ":" not in party:
            raise BadMapping(f"customers.{str(key)[:30]}: ska vara en part som region:13")
        out[str(key).strip().casefold()] = party.strip()
    return out


def mapping_from(data: Any) -> ColumnMapping:
    """A mapping from parsed YAML; BadMapping names what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
        raise BadMapping("mappningen ska ha en tabell columns: med en post per fält")
    unknown = set(data["columns"]) - set(FIELDS)
    if unknown:
        raise BadMapping(f"columns: okänt fält {sorted(unknown)[0]!r} (kända: {', '.join(FIELDS)})")
    columns = {name: _column(name, raw) for name, raw in data["columns"].items()}
    for name in ("customer", "delivery_date", "quantity", "amount"):
        if name not in columns:
            raise BadMapping(f"columns.{name} saknas: avstämningen behöver {FIELDS[name]}")
    if not any(name in columns for name in ARTICLE_FIELDS):
        raise BadMapping("columns: ange article_number eller article_name (eller båda)")
    return ColumnMapping(
        columns=columns,
        delimiter=_delimiter(data.get("delimiter")),
        encoding=_encoding(data.get("encoding")),
        date_formats=_date_formats(data.get("date_formats")),
        customers=_customers(data.get("customers")),
    )


def load_mapping(path: Path | None = None) -> ColumnMapping:
    """The mapping in ``path``, or the default shipped with vembetalar. The caller names the
    file in front of a BadMapping's message."""
    try:
        if path is None:
            text = resources.files("vembetalar.handoffs").joinpath(DEFAULT_FILE).read_text("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadMapping(f"filen kan inte läsas ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BadMapping("filen ska vara UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (rad {mark.line + 1})" if mark is not None else ""
        raise BadMapping(f"mappningen är inte giltig YAML{where}") from None
    return mapping_from(data)
