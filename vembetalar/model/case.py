"""The Case: what a prescriber or clerk knows when asking "who pays?" (DESIGN.md §5).

Every optional field may be missing, and missing means *not known* — the engine then answers
``incomplete`` rather than guessing. Unknown fields are an error, so a typo never silently drops a fact.
"""

from __future__ import annotations

import datetime as dt
import math
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vembetalar.model import codes
from vembetalar.model.money import Bounded, BoundedDecimal, Sek

Kind = Literal["drug_exception", "assistive_device", "medtech_product", "nutrition_product"]
Housing = Literal["ordinary", "special_housing", "lss_group_home"]
Area = Literal[
    "hearing",
    "mobility",
    "communication",
    "cognition",
    "vision",
    "orthopedic",
    "medtech",
    "diabetes",
    "incontinence",
    "nutrition",
    "drug",
]
NtCouncil = Literal["do_not_use", "await", "use", "may_use", "none"]
Annex = Literal["kommun", "region", "not_listed"]

#: Fields that no longer exist, with what to give instead; old files and clients get told, not ignored.
RETIRED: dict[str, str] = {
    "product.listed": (
        'fältet finns inte längre; ange product.annex: "kommun" eller "region" (var avtalets '
        'produktbilaga lägger kostnadsansvaret) eller "not_listed" (utanför listorna)'
    ),
}

#: Which product areas make sense for which kind of case; a drug is never an assistive device.
KIND_AREAS: dict[str, tuple[str, ...]] = {
    "drug_exception": ("drug",),
    "assistive_device": (
        "hearing",
        "mobility",
        "communication",
        "cognition",
        "vision",
        "orthopedic",
        "medtech",
        "diabetes",
        "incontinence",
        "nutrition",
    ),
    "medtech_product": ("medtech", "diabetes", "incontinence", "nutrition"),
    "nutrition_product": ("nutrition",),
}


@dataclass(frozen=True)
class CodeDomain:
    """Marks a string field whose values come from a reference code list (for analysis and UI)."""

    name: Literal["region", "municipality", "country"]


def _region(value: str) -> str:
    if value not in codes.regions():
        raise PydanticCustomError(
            "region_code", "'{value}' är inte en länskod enligt SCB (01–25)", {"value": value}
        )
    return value


def _municipality(value: str) -> str:
    if value not in codes.municipalities():
        raise PydanticCustomError(
            "municipality_code", "'{value}' är inte en kommunkod enligt SCB", {"value": value}
        )
    return value


def _country(value: str) -> str:
    if value not in codes.countries():
        raise PydanticCustomError(
            "country_code",
            "'{value}' är inte en landskod enligt ISO 3166-1 (t.ex. SE, NO, DE)",
            {"value": value},
        )
    return value


RegionCode = Annotated[str, AfterValidator(_region), CodeDomain("region")]
MunicipalityCode = Annotated[str, AfterValidator(_municipality), CodeDomain("municipality")]
CountryCode = Annotated[str, AfterValidator(_country), CodeDomain("country")]


def _finite(value: int | float) -> int | float:
    # Not pydantic's allow_inf_nan: on a union with int it calls math.isfinite on the int, and
    # 10**400 (valid JSON) then raises OverflowError instead of a message.
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    return value


NonNegativeNumber = Annotated[StrictInt | StrictFloat, AfterValidator(_finite), Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        if isinstance(data, dict):
            group = cls.__name__.lower()
            for key in data:
                message = RETIRED.get(f"{group}.{key}")
                if message is not None:
                    raise PydanticCustomError(
                        "retired_field", "{field}: {message}", {"field": f"{group}.{key}", "message": message}
                    )
        return data


class Patient(_Strict):
    home_region: RegionCode | None = None
    home_municipality: MunicipalityCode | None = None
    country: CountryCode | None = None
    last_home_region: RegionCode | None = None
    swedish_citizen: StrictBool | None = None
    housing: Housing | None = None
    home_care_weeks: NonNegativeNumber | None = None
    short_term_stay: StrictBool | None = None
    age: Annotated[StrictInt, Field(ge=0, le=130)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _registered_means_resident(cls, data: Any) -> Any:
        """Folkbokförd in a Swedish region means living in Sweden: a home region given without a
        country gives the country SE (a patient abroad has a *last* home region, not a home one)."""
        if isinstance(data, dict) and data.get("home_region") is not None and data.get("country") is None:
            data = {**data, "country": "SE"}
        return data

    @model_validator(mode="after")
    def _municipality_in_region(self) -> Patient:
        muni, region = self.home_municipality, self.home_region
        if muni is not None and region is not None and muni[:2] != region:
            raise PydanticCustomError(
                "municipality_region",
                "kommun {muni} ligger inte i län {region} (patient.home_region)",
                {"muni": muni, "region": region},
            )
        return self


class Care(_Strict):
    region: RegionCode | None = None
    referral: StrictBool | None = None
    self_care: StrictBool | None = None
    discharge: StrictBool | None = None
    municipality_has_product: StrictBool | None = None
    late_handover: StrictBool | None = None


class Product(_Strict):
    area: Area | None = None
    cost_sek: Sek | None = None
    advanced_adaptation: StrictBool | None = None
    nt_council: NtCouncil | None = None
    annex: Annex | None = None
    replaces_listed: StrictBool | None = None
    supply_days: Annotated[StrictInt, Field(ge=0)] | None = None


class Case(_Strict):
    """One question of cost responsibility. ``date`` is the day care, prescribing or delivery happens."""

    date: dt.date
    kind: Kind
    patient: Patient = Patient()
    care: Care = Care()
    product: Product = Product()

    @model_validator(mode="after")
    def _area_fits_kind(self) -> Case:
        area = self.product.area
        if area is not None and area not in KIND_AREAS[self.kind]:
            raise PydanticCustomError(
                "area_kind",
                "'{area}' passar inte ärendetypen '{kind}' (tillåtna: {allowed})",
                {"area": area, "kind": self.kind, "allowed": ", ".join(KIND_AREAS[self.kind])},
            )
        return self

    def flat(self) -> dict[str, Any]:
        """Dotted field name → value, as the rule tables address them (``patient.home_region``)."""
        out: dict[str, Any] = {"date": self.date, "kind": self.kind}
        for group in ("patient", "care", "product"):
            for name, value in getattr(self, group).model_dump().items():
                out[f"{group}.{name}"] = value
        return out


#: The words staff use for each field, for explanations and forms.
LABELS: dict[str, str] = {
    "date": "datum",
    "kind": "ärendetyp",
    "patient.home_region": "hemregion",
    "patient.home_municipality": "hemkommun",
    "patient.country": "bosättningsland",
    "patient.last_home_region": "senaste hemregion före utflytt",
    "patient.swedish_citizen": "svensk medborgare",
    "patient.housing": "boende",
    "patient.home_care_weeks": (
        "hemsjukvård (av eller delegerad av sjuksköterska), planerad varaktighet i veckor"
    ),
    "patient.short_term_stay": "korttidsplats",
    "patient.age": "ålder",
    "care.region": "vårdregion",
    "care.referral": "remiss",
    "care.self_care": "egenvård",
    "care.discharge": "utskrivning från sjukhus",
    "care.municipality_has_product": "kommunen har redan produkten vid utskrivningen",
    "care.late_handover": "sen informationsöverföring till kommunen",
    "product.area": "produktområde",
    "product.cost_sek": "kostnad (kr)",
    "product.advanced_adaptation": "kräver avancerad anpassning/service",
    "product.nt_council": "NT-rådets yttrande",
    "product.annex": "produktbilagan (bilaga 1) lägger kostnaden på",
    "product.replaces_listed": "ersätter produkt i produktbilagan (ingen likvärdig kan användas)",
    "product.supply_days": "utskrivningsförsörjning (dagar)",
}

#: What a field means, where the label alone could be misread (forms, docs, API schema).
HELP: dict[str, str] = {
    "patient.home_care_weeks": (
        "Planerad varaktighet i veckor för hälso- och sjukvårdsinsatser som utförs av sjuksköterska "
        "eller har delegerats av sjuksköterska (avtalets definition av hemsjukvård: minst tre veckor)."
    ),
    "product.nt_council": (
        'NT-rådets yttrande om läkemedlet. Välj "inget yttrande" om NT-rådet inte har yttrat sig; '
        "lämna tomt om det inte är känt."
    ),
    "product.annex": (
        "Produktbilagan (bilaga 1) anger både kommunens och regionens produkter: kommun, region, "
        "eller utanför listorna."
    ),
    "care.municipality_has_product": (
        "Har kommunen redan produkten när patienten skrivs ut? Om inte skickar regionen med den, "
        "högst för en vecka."
    ),
    "product.supply_days": "Antal dagars förbrukning som lämnas vid utskrivningen (upplysning).",
    "patient.country": (
        "Landet där patienten bor. Den som är folkbokförd i en svensk region bor i Sverige: anges "
        "hemregion räknas landet som SE."
    ),
}


@dataclass(frozen=True)
class FieldSpec:
    """What the engine, the batch path and the static analysis need to know about one case field."""

    name: str
    type: Literal["category", "bool", "number", "integer", "date"]
    values: tuple[str, ...] = ()
    required: bool = False
    #: For code fields: which reference list the codes come from.
    domain: Literal["region", "municipality", "country"] | None = None
    #: For amounts (a ``Decimal`` in the case, a rounded float in the batch): decimals kept, and
    #: the bounds every path checks (``money``).
    money: Bounded | None = None


def _spec_for(name: str, annotation: Any, metadata: list[Any], required: bool) -> FieldSpec:
    domain = next((m for m in metadata if isinstance(m, CodeDomain)), None)
    inner = annotation
    if get_origin(annotation) in (Union, types.UnionType):
        inner = next(a for a in get_args(annotation) if a is not type(None))
    while get_origin(inner) is Annotated:
        inner_args = get_args(inner)
        metadata = [*metadata, *inner_args[1:]]
        domain = domain or next((m for m in inner_args[1:] if isinstance(m, CodeDomain)), None)
        inner = inner_args[0]
    if domain is not None:
        values = {
            "region": lambda: tuple(codes.regions()),
            "municipality": lambda: tuple(codes.municipalities()),
            "country": lambda: tuple(sorted(codes.countries())),
        }[domain.name]()
        return FieldSpec(name, "category", values, required, domain.name)
    if get_origin(inner) is Literal:
        values = tuple(str(v) for v in get_args(inner))
        return FieldSpec(name, "category", values, required)
    if inner is dt.date:
        return FieldSpec(name, "date", required=required)
    if inner is bool:
        return FieldSpec(name, "bool", required=required)
    if inner is int:
        return FieldSpec(name, "integer", required=required)
    money = next((m.bounds for m in metadata if isinstance(m, BoundedDecimal)), None)
    return FieldSpec(name, "number", required=required, money=money)


_FIELDS: dict[str, FieldSpec] = {}


def case_fields() -> dict[str, FieldSpec]:
    """The flattened field catalogue, derived from the pydantic models so the two never drift."""
    if not _FIELDS:
        for name, info in Case.model_fields.items():
            if name in ("patient", "care", "product"):
                group = info.annotation
                assert isinstance(group, type) and issubclass(group, BaseModel)
                for sub, sub_info in group.model_fields.items():
                    full = f"{name}.{sub}"
                    _FIELDS[full] = _spec_for(full, sub_info.annotation, sub_info.metadata, False)
            else:
                _FIELDS[name] = _spec_for(name, info.annotation, info.metadata, True)
    return _FIELDS
