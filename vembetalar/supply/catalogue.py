"""The drug catalogue: one pack per row of a CSV file (columns in ``COLUMNS``), checked field by
field, imported all-or-nothing.

A file with any bad row imports nothing: every bad row is reported with its line number and
reason, so a pharmacist can mend the file and run it again. The rows are written in one
transaction, so a crash half-way leaves the catalogue as it was.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vembetalar.model.errors import quoted
from vembetalar.model.money import NEGATIVE, SEK, BadAmount, Bounded, to_decimal
from vembetalar.store.supply_models import SupplyProduct
from vembetalar.supply.errors import BadSupplyInput

REQUIRED = (
    "npl_pack_id",
    "varunummer",
    "name",
    "substance",
    "atc",
    "strength",
    "form",
    "pack_size",
    "price_sek",
)
OPTIONAL = ("ddd_per_pack", "narcotic_class", "substitution_group")
COLUMNS = REQUIRED + OPTIONAL
#: Units in a pack, in a stock or in a movement: whole units (tablets, ampoules …).
MAX_UNITS = 1_000_000
_UNITS_TEXT = re.compile(r"[0-9]{1,7}")
_NEGATIVE = re.compile(r"[-\u2212][0-9]+(\.[0-9]*)?")
DDD = Bounded(4, Decimal(1_000_000), "DDD", "3.3333")
#: Swedish narcotic classes (förteckning I–V).
NARCOTIC_CLASSES = ("I", "II", "III", "IV", "V")
_VARUNUMMER = re.compile(r"[0-9]{6}")
_NPL_PACK_ID = re.compile(r"[0-9]{14}")
_ATC = re.compile(r"[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}")
_LIMITS = {"name": 200, "substance": 120, "strength": 60, "form": 60, "substitution_group": 40}
MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class Product:
    """A pack as the pure code (substitutes, reorder) needs it."""

    varunummer: str
    npl_pack_id: str
    name: str
    substance: str
    atc: str
    strength: str
    form: str
    pack_size: int
    price_sek: Decimal
    ddd_per_pack: Decimal | None = None
    narcotic_class: str | None = None
    substitution_group: str | None = None

    @property
    def narcotic(self) -> bool:
        return self.narcotic_class is not None

    @property
    def price_per_unit(self) -> Decimal:
        return self.price_sek / self.pack_size

    @property
    def price_per_ddd(self) -> Decimal | None:
        return self.price_sek / self.ddd_per_pack if self.ddd_per_pack else None

    def as_json(self) -> dict[str, object]:
        return {
            "varunummer": self.varunummer,
            "npl_pack_id": self.npl_pack_id,
            "name": self.name,
            "substance": self.substance,
            "atc": self.atc,
            "strength": self.strength,
            "form": self.form,
            "pack_size": self.pack_size,
            "price_sek": float(self.price_sek),
            "ddd_per_pack": float(self.ddd_per_pack) if self.ddd_per_pack is not None else None,
            "narcotic_class": self.narcotic_class,
            "substitution_group": self.substitution_group,
        }

    @classmethod
    def of(cls, row: SupplyProduct) -> Product:
        return cls(
            varunummer=row.varunummer,
            npl_pack_id=row.npl_pack_id,
            name=row.name,
            substance=row.substance,
            atc=row.atc,
            strength=row.strength,
            form=row.form,
            pack_size=row.pack_size,
            price_sek=Decimal(row.price_sek),
            ddd_per_pack=Decimal(row.ddd_per_pack) if row.ddd_per_pack is not None else None,
            narcotic_class=row.narcotic_class,
            substitution_group=row.substitution_group,
        )


def units(text: str, name: str, *, positive: bool = True) -> int:
    """Whole units from text ("10"); refuses 2.5, -1, NaN, 1e999 and words, naming the field.
    (``money.to_decimal`` is for amounts with decimals; a count of units has none.)"""
    text = text.strip()
    if not _UNITS_TEXT.fullmatch(text):
        if _NEGATIVE.fullmatch(text):
            raise BadSupplyInput(f"{name}: {quoted(text)} {NEGATIVE}")
        raise BadSupplyInput(f"{name}: {quoted(text)} ska vara ett heltal (antal enheter, t.ex. 10)")
    value = int(text)
    if value > MAX_UNITS:
        raise BadSupplyInput(f"{name}: {quoted(text)} är för stort (högst {MAX_UNITS} st)")
    if positive and value == 0:
        raise BadSupplyInput(f"{name}: ska vara minst 1")
    return value


def product_of(row: Mapping[str, str]) -> Product:
    """One catalogue row as a Product, or BadSupplyInput naming the first wrong field."""
    row = {k: (v or "").strip() for k, v in row.items() if k is not None}
    for name in REQUIRED:
        if not row.get(name):
            raise BadSupplyInput(f"{name}: saknas men är obligatoriskt")
    for name, limit in _LIMITS.items():
        if len(row.get(name, "")) > limit:
            raise BadSupplyInput(f"{name}: högst {limit} tecken")
    if not _VARUNUMMER.fullmatch(row["varunummer"]):
        raise BadSupplyInput(f"varunummer: {quoted(row['varunummer'])} ska vara sex siffror")
    if not _NPL_PACK_ID.fullmatch(row["npl_pack_id"]):
        raise BadSupplyInput(f"npl_pack_id: {quoted(row['npl_pack_id'])} ska vara 14 siffror")
    if not _ATC.fullmatch(row["atc"]):
        raise BadSupplyInput(f"atc: {quoted(row['atc'])} ska vara en ATC-kod på nivå 5, t.ex. N02AA01")
    try:
        price = to_decimal(row["price_sek"], SEK, text="plain")
    except BadAmount as exc:
        raise BadSupplyInput(f"price_sek: {quoted(row['price_sek'])} {exc}") from None
    ddd: Decimal | None = None
    if row.get("ddd_per_pack"):
        try:
            ddd = to_decimal(row["ddd_per_pack"], DDD, text="plain")
        except BadAmount as exc:
            raise BadSupplyInput(f"ddd_per_pack: {quoted(row['ddd_per_pack'])} {exc}") from None
        if ddd == 0:
            raise BadSupplyInput("ddd_per_pack: ska vara större än 0 (lämna tomt när DDD är okänd)")
    narcotic = row.get("narcotic_class") or None
    if narcotic is not None and narcotic not in NARCOTIC_CLASSES:
        raise BadSupplyInput(
            f"narcotic_class: {quoted(narcotic)} ska vara en av {', '.join(NARCOTIC_CLASSES)} eller tom"
        )
    return Product(
        varunummer=row["varunummer"],
        npl_pack_id=row["npl_pack_id"],
        name=row["name"],
        substance=row["substance"],
        atc=row["atc"],
        strength=row["strength"],
        form=row["form"],
        pack_size=units(row["pack_size"], "pack_size"),
        price_sek=price,
        ddd_per_pack=ddd,
        narcotic_class=narcotic,
        substitution_group=row.get("substitution_group") or None,
    )


def csv_rows(text: str, required: Iterable[str], allowed: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """The data rows of a comma-separated file with a header, each with its line number; an
    unknown or missing column is an error for the whole file."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        raise BadSupplyInput("filen är tom (rubrikraden saknas)")
    reader.fieldnames = header
    allowed_set = set(allowed)
    unknown = [h for h in header if h not in allowed_set]
    if unknown:
        raise BadSupplyInput(f"okänd kolumn: {', '.join(unknown)} (tillåtna: {', '.join(allowed)})")
    missing = [c for c in required if c not in header]
    if missing:
        raise BadSupplyInput(f"kolumn saknas: {', '.join(missing)}")
    rows = []
    for row in reader:
        if None in row:
            raise BadSupplyInput(f"rad {reader.line_num}: fler fält än rubrikraden har")
        rows.append((reader.line_num, {k: v or "" for k, v in row.items()}))
    return rows


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadSupplyInput(f"{path}: kan inte läsas ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BadSupplyInput(f"{path}: är inte UTF-8") from None


@dataclass
class CatalogueReport:
    added: int
    updated: int


def parse_catalogue(text: str) -> list[Product]:
    """Every row checked; BadSupplyInput lists the bad rows (line: field: reason), one per line."""
    products: list[Product] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    seen_npl: dict[str, int] = {}
    for line, row in csv_rows(text, REQUIRED, COLUMNS):
        try:
            product = product_of(row)
        except BadSupplyInput as exc:
            errors.append(f"rad {line}: {exc}")
            continue
        if product.varunummer in seen:
            errors.append(
                f"rad {line}: varunummer {product.varunummer} finns redan på rad {seen[product.varunummer]}"
            )
            continue
        if product.npl_pack_id in seen_npl:
            errors.append(
                f"rad {line}: npl_pack_id {product.npl_pack_id} "
                f"finns redan på rad {seen_npl[product.npl_pack_id]}"
            )
            continue
        seen[product.varunummer] = line
        seen_npl[product.npl_pack_id] = line
        products.append(product)
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f"\n… och {len(errors) - MAX_ERRORS_SHOWN} fel till" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise BadSupplyInput(f"{len(errors)} rad(er) med fel; inget lästes in:\n" + "\n".join(shown) + more)
    if not products:
        raise BadSupplyInput("filen har inga rader att läsa in")
    return products


def import_catalogue(db: Session, products: list[Product]) -> CatalogueReport:
    """Add new packs and update known ones (by varunummer), in one transaction."""
    report = CatalogueReport(0, 0)
    try:
        for product in products:
            row = db.get(SupplyProduct, product.varunummer)
            values = product.as_json() | {
                "price_sek": product.price_sek,
                "ddd_per_pack": product.ddd_per_pack,
            }
            if row is None:
                db.add(SupplyProduct(**values))
                report.added += 1
            else:
                for key, value in values.items():
                    setattr(row, key, value)
                report.updated += 1
            try:
                db.flush()
            except IntegrityError:
                raise BadSupplyInput(
                    f"varunummer {product.varunummer}: npl_pack_id {product.npl_pack_id} finns redan i "
                    "katalogen för ett annat varunummer; inget lästes in"
                ) from None
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return report


def load_products(db: Session) -> dict[str, Product]:
    from sqlalchemy import select

    return {row.varunummer: Product.of(row) for row in db.scalars(select(SupplyProduct))}
