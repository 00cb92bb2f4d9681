"""The new-case form: which fields each kind of case asks for, and form text → Case.

Field names are the Case's dotted names, so an error from the model points at the right input.
Empty inputs mean "not known" — the engine will say if it needs them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from vembetalar.model import codes
from vembetalar.model.case import KIND_AREAS, LABELS, Case
from vembetalar.model.errors import BadCase, describe

KIND_NAMES = {
    "drug_exception": "Läkemedel – undantagshantering (utomlänspatient)",
    "assistive_device": "Hjälpmedel – patient från annat län eller land",
    "medtech_product": "Medicintekniska produkter (kommun/region)",
    "nutrition_product": "SärNär – livsmedel för speciella medicinska ändamål",
}
AREA_NAMES = {
    "hearing": "Hörsel",
    "mobility": "Rörelse",
    "communication": "Kommunikation",
    "cognition": "Kognition",
    "vision": "Syn",
    "orthopedic": "Ortopedi",
    "medtech": "Medicinteknik",
    "diabetes": "Diabetes",
    "incontinence": "Inkontinens",
    "nutrition": "Nutrition",
    "drug": "Läkemedel",
}
CHOICES: dict[str, list[tuple[str, str]]] = {
    "patient.housing": [
        ("ordinary", "Ordinärt boende"),
        ("special_housing", "Särskilt boende"),
        ("lss_group_home", "Gruppboende enligt LSS"),
    ],
    "product.nt_council": [
        ("await", "Avvakta"),
        ("do_not_use", "Avråder från användning"),
        ("use", "Använd"),
        ("may_use", "Kan användas"),
    ],
}


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    type: str  # select | bool | number | text | date
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""


def _regions() -> tuple[tuple[str, str], ...]:
    return tuple((code, f"{code} {name}") for code, name in codes.regions().items())


def _municipalities() -> tuple[tuple[str, str], ...]:
    return tuple((code, f"{code} {name}") for code, name in codes.municipalities().items())


def _countries() -> tuple[tuple[str, str], ...]:
    first = ["SE", "NO", "DK", "FI", "DE"]
    return tuple((c, c) for c in first + sorted(c for c in codes.countries() if c not in first))


def _field(name: str, kind: str) -> Input:
    label = LABELS[name]
    if name in ("patient.home_region", "patient.last_home_region", "care.region"):
        return Input(name, label, "select", _regions())
    if name == "patient.home_municipality":
        return Input(name, label, "select", _municipalities())
    if name == "patient.country":
        return Input(name, label, "select", _countries())
    if name == "product.area":
        return Input(name, label, "select", tuple((a, AREA_NAMES[a]) for a in KIND_AREAS[kind]))
    if name in CHOICES:
        return Input(name, label, "select", tuple(CHOICES[name]))
    if name in ("product.cost_sek", "patient.home_care_weeks", "patient.age", "product.supply_days"):
        return Input(name, label, "number")
    return Input(name, label, "bool")


FIELDS_BY_KIND: dict[str, list[str]] = {
    "drug_exception": [
        "patient.home_region",
        "patient.home_municipality",
        "care.region",
        "care.referral",
        "product.nt_council",
        "product.cost_sek",
    ],
    "assistive_device": [
        "patient.country",
        "patient.home_region",
        "patient.home_municipality",
        "patient.swedish_citizen",
        "patient.last_home_region",
        "care.region",
        "product.area",
        "product.cost_sek",
        "product.advanced_adaptation",
    ],
    "medtech_product": [
        "patient.home_region",
        "patient.home_municipality",
        "patient.housing",
        "patient.home_care_weeks",
        "patient.short_term_stay",
        "care.self_care",
        "care.discharge",
        "product.supply_days",
        "product.area",
        "product.listed",
        "product.replaces_listed",
    ],
    "nutrition_product": [
        "patient.home_region",
        "patient.home_municipality",
        "patient.age",
        "patient.housing",
        "patient.home_care_weeks",
        "patient.short_term_stay",
        "care.self_care",
        "care.discharge",
        "care.late_handover",
        "product.supply_days",
        "product.listed",
        "product.replaces_listed",
    ],
}


def form_fields(kind: str) -> list[Input]:
    return [_field(name, kind) for name in FIELDS_BY_KIND[kind]]


def _value(name: str, raw: str) -> Any:
    spec_type = _field(name, "assistive_device").type
    if spec_type == "bool":
        if raw not in ("true", "false"):
            raise BadCase(f"{name}: ska vara ja eller nej")
        return raw == "true"
    if spec_type == "number":
        text = raw.replace(" ", "").replace("\u00a0", "").replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise BadCase(f"{name}: {raw!r} är inte ett tal") from None
        if name in ("patient.age", "product.supply_days"):
            if not number.is_integer():
                raise BadCase(f"{name}: {raw!r} ska vara ett heltal")
            return int(number)
        return int(number) if number.is_integer() else number
    return raw


def case_from_form(form: dict[str, str]) -> Case:
    """Form text → Case, or BadCase naming the first wrong field."""
    kind = form.get("kind", "")
    if kind not in FIELDS_BY_KIND:
        raise BadCase("kind: välj ärendetyp")
    data: dict[str, Any] = {"kind": kind, "date": form.get("date") or dt.date.today().isoformat()}
    if kind == "drug_exception":
        data["product"] = {"area": "drug"}
    if kind == "nutrition_product":
        data["product"] = {"area": "nutrition"}
    for name in FIELDS_BY_KIND[kind]:
        raw = (form.get(name) or "").strip()
        if raw:
            group, _, key = name.partition(".")
            data.setdefault(group, {})[key] = _value(name, raw)
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        raise BadCase(describe(dict(exc.errors()[0]))) from None
