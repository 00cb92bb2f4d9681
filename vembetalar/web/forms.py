"""The new-case form: which facts to ask for, and form text → Case.

Which fields exist for a kind of case is read from the packs that can cover it (their scope, the
conditions of their rules and the case values their answers print), not kept by hand. Which of
those are *shown* follows the live decision: the facts it still waits for (``missing``) and what
the user has already filled in — a question that cannot change the answer is not asked.
Field names are the Case's dotted names, so an error from the model points at the right input.
Empty inputs mean "not known". An amount is read as a Swedish user writes it (``12 000,50``) by
``money``, exactly: text with three decimals is refused rather than rounded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from vembetalar.model import codes
from vembetalar.model.case import HELP, KIND_AREAS, LABELS, Case, case_fields
from vembetalar.model.decision import Decision
from vembetalar.model.errors import BadCase, describe, quoted
from vembetalar.model.money import BadAmount, parse_sek
from vembetalar.rules.conditions import all_of
from vembetalar.rules.engine import Engine

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
        ("do_not_use", "Avråder från användning"),
        ("await", "Avvakta"),
        ("use", "Använd"),
        ("may_use", "Kan användas"),
        ("none", "Inget yttrande från NT-rådet"),
    ],
    "product.annex": [
        ("kommun", "Kommunens kostnadsansvar enligt produktbilagan"),
        ("region", "Regionens kostnadsansvar enligt produktbilagan"),
        ("not_listed", "Utanför listorna"),
    ],
}
#: Kinds whose product area is fixed by the kind itself.
FIXED_AREA = {"drug_exception": "drug", "nutrition_product": "nutrition"}


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    type: str  # select | bool | number | text | date
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    #: Long lists: the form offers a search by name (static/form.js) over the same select.
    combobox: bool = False


def _regions() -> tuple[tuple[str, str], ...]:
    return tuple((code, f"{code} {name}") for code, name in codes.regions().items())


def _municipalities() -> tuple[tuple[str, str], ...]:
    """By name (``Karlstad (1780)``), so that typing the name finds it; the first two digits of
    the code are the region's, which the form uses to offer only the chosen region's."""
    found = sorted(codes.municipalities().items(), key=lambda item: (item[1], item[0]))
    return tuple((code, f"{name} ({code})") for code, name in found)


def _countries() -> tuple[tuple[str, str], ...]:
    """By Swedish name where there is one (``Norge (NO)``), the Nordic countries first."""
    from vembetalar.web.plain import country_name

    first = ["SE", "NO", "DK", "FI", "IS"]
    rest = sorted((c for c in codes.countries() if c not in first), key=lambda c: (country_name(c), c))
    return tuple((c, f"{country_name(c)} ({c})" if country_name(c) != c else c) for c in first + rest)


def _field(name: str, kind: str) -> Input:
    spec = case_fields()[name]
    label, help_text = LABELS[name], HELP.get(name, "")
    if spec.domain == "region":
        return Input(name, label, "select", _regions(), help_text)
    if spec.domain == "municipality":
        return Input(name, label, "select", _municipalities(), help_text, combobox=True)
    if spec.domain == "country":
        return Input(name, label, "select", _countries(), help_text, combobox=True)
    if name == "product.area":
        return Input(name, label, "select", tuple((a, AREA_NAMES[a]) for a in KIND_AREAS[kind]), help_text)
    if name in CHOICES:
        return Input(name, label, "select", tuple(CHOICES[name]), help_text)
    if spec.type in ("number", "integer"):
        return Input(name, label, "number", help=help_text)
    return Input(name, label, "bool", help=help_text)


def candidate_fields(engine: Engine, kind: str) -> list[str]:
    """Every fact the agreements that can cover this kind of case read, in form order."""
    probe = dict.fromkeys(case_fields())
    probe["kind"] = kind
    wanted: set[str] = set()
    for pack in engine.packs:
        if all_of([c for c in pack.scope if c.field == "kind"], probe) is False:
            continue
        wanted |= {c.field for c in pack.scope}
        wanted |= {c.field for r in pack.rules() for c in r.conditions}
        wanted |= {f for r in pack.rules() for f in r.template_fields}
    wanted -= {"date", "kind"}
    if kind in FIXED_AREA:
        wanted.discard("product.area")
    return [name for name in case_fields() if name in wanted]


def form_fields(engine: Engine, kind: str) -> list[Input]:
    return [_field(name, kind) for name in candidate_fields(engine, kind)]


def scope_fields(engine: Engine, kind: str) -> set[str]:
    """The facts that say which agreement covers a case of this kind (its packs' scopes)."""
    probe = dict.fromkeys(case_fields())
    probe["kind"] = kind
    return {
        c.field
        for pack in engine.packs
        if all_of([c for c in pack.scope if c.field == "kind"], probe) is not False
        for c in pack.scope
    } - {"kind", "date"}


def asked(
    decision: Decision | None,
    form: dict[str, str],
    candidates: Iterable[str],
    scope: Iterable[str] = (),
) -> list[str]:
    """The fields to show: what the decision still waits for, and what the user has filled in.
    While no agreement covers the case yet, the facts that pick an agreement (``scope``) are
    asked too: they can change the answer from "no agreement" to one."""
    wanted = set(decision.missing) if decision else set()
    if decision is None or (decision.status == "no_agreement" and not decision.explanation.pack):
        wanted |= set(scope)
    wanted |= {name for name in candidates if (form.get(name) or "").strip()}
    return [name for name in candidates if name in wanted]


def amount_from_form(name: str, raw: str) -> Decimal:
    """An amount in kronor as a Swedish user types it (``12 000,50``), or BadCase naming the
    field — for every form with money in it (the case's cost, a commitment's ceiling)."""
    try:
        return parse_sek(raw)
    except BadAmount as exc:
        raise BadCase(f"{name}: {quoted(raw)} {exc}") from None


def _value(name: str, raw: str) -> Any:
    spec = case_fields()[name]
    if spec.type == "bool":
        if raw not in ("true", "false"):
            raise BadCase(f"{name}: ska vara ja eller nej")
        return raw == "true"
    if spec.money is not None:
        return amount_from_form(name, raw)
    if spec.type in ("number", "integer"):
        text = raw.replace(" ", "").replace("\u00a0", "").replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise BadCase(f"{name}: {raw!r} är inte ett tal") from None
        if spec.type == "integer":
            if not number.is_integer():
                raise BadCase(f"{name}: {raw!r} ska vara ett heltal")
            return int(number)
        return int(number) if number.is_integer() else number
    return raw


def case_from_form(form: dict[str, str], today: dt.date) -> Case:
    """Form text → Case, or BadCase naming the first wrong field. ``today`` fills an empty date."""
    kind = form.get("kind", "")
    if kind not in KIND_NAMES:
        raise BadCase("kind: välj ärendetyp")
    data: dict[str, Any] = {"kind": kind, "date": form.get("date") or today.isoformat()}
    if kind in FIXED_AREA:
        data["product"] = {"area": FIXED_AREA[kind]}
    for name in case_fields():
        if name in ("date", "kind"):
            continue
        raw = (form.get(name) or "").strip()
        if raw:
            group, _, key = name.partition(".")
            data.setdefault(group, {})[key] = _value(name, raw)
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        raise BadCase(describe(dict(exc.errors()[0]))) from None
