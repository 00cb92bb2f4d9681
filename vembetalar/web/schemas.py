"""Request and response bodies of the JSON API (the Case and Decision models are reused as is)."""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vembetalar.model.case import Case
from vembetalar.model.decision import Decision

#: The shape of a personnummer or samordningsnummer (empty: none given); the check digit is checked
#: when the case is created.
PERSONNUMMER_PATTERN = r"^(([0-9]{2})?[0-9]{6}[-+]?[0-9]{4})?$"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    """A JSON date is ``ÅÅÅÅ-MM-DD`` text, as the schema says; pydantic alone would also read
    ``0``, ``"86400"`` or ``"2024-01-01T00:00"`` as a date."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        if _ISO_DATE.fullmatch(value):
            return value
        raise PydanticCustomError("date_parsing", "Input should be a date as YYYY-MM-DD")
    raise PydanticCustomError("date_type", "Input should be a valid date")


#: A date in the API's JSON input: only ``ÅÅÅÅ-MM-DD``.
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]


def _utc(value: dt.datetime) -> dt.datetime:
    # Times are stored in UTC; SQLite hands them back without the zone.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


#: A time in the API's JSON output: always with its zone (RFC 3339), whatever the database returns.
UtcDateTime = Annotated[dt.datetime, AfterValidator(_utc)]


def _max(integer_digits: int, places: int) -> Decimal:
    return Decimal(10) ** integer_digits - Decimal(1).scaleb(-places)


def _pattern(integer_digits: int, places: int) -> str:
    return rf"^[0-9]{{1,{integer_digits}}}(\.[0-9]{{1,{places}}})?$"


def _decimal(integer_digits: int, places: int) -> Any:
    """A non-negative decimal from a JSON number or text. Text must be exact (at most ``places``
    decimals); a number is rounded to ``places`` decimals, since e.g. 0.57 often arrives as
    0.5700000000000001 from a client that computed it."""
    maximum, quantum = _max(integer_digits, places), Decimal(1).scaleb(-places)
    text = re.compile(_pattern(integer_digits, places))
    wrong = f"ska vara ett tal eller en text som 1234.5 (högst {places} decimaler)"

    def parse(value: Any) -> Any:
        if isinstance(value, Decimal):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise PydanticCustomError("finite_number", wrong)
            number = Decimal(repr(value))
            if number > maximum:
                raise PydanticCustomError("less_than_equal", "too large", {"le": str(maximum)})
            return number.quantize(quantum, ROUND_HALF_UP) if number >= 0 else number
        if isinstance(value, str) and text.match(value):  # as the schema's pattern reads it
            return Decimal(value)
        raise PydanticCustomError("decimal_parsing", wrong)

    return parse


def _decimal_schema(integer_digits: int, places: int, description: str) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "number", "minimum": 0, "maximum": float(_max(integer_digits, places))},
            {"type": "string", "pattern": _pattern(integer_digits, places)},
        ],
        "description": description,
    }


#: Kronor with öre (the database keeps 12 digits, 2 after the point).
Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal(10, 2)),
    Field(ge=0),
    WithJsonSchema(
        _decimal_schema(10, 2, 'Belopp i kronor: ett tal (avrundas till hela ören) eller text som "1234.50"')
    ),
]
#: A quantity (12 digits, 3 after the point).
Quantity = Annotated[
    Decimal,
    BeforeValidator(_decimal(9, 3)),
    Field(ge=0),
    WithJsonSchema(
        _decimal_schema(9, 3, 'Antal: ett tal (avrundas till tre decimaler) eller text som "2.5"')
    ),
]


def _whole_number_fields() -> tuple[tuple[str, str], ...]:
    """(group, field) of the Case's integer-only fields, e.g. ("patient", "age")."""
    found = []
    for group in ("patient", "care", "product"):
        model = Case.model_fields[group].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for name, prop in model.model_json_schema()["properties"].items():
            types = {branch.get("type") for branch in prop.get("anyOf", [prop])} - {"null"}
            if types == {"integer"}:
                found.append((group, name))
    return tuple(found)


_WHOLE_NUMBERS = _whole_number_fields()


class CaseIn(Case):
    """The Case as the API reads it: the same fields and checks, with the date only as ``ÅÅÅÅ-MM-DD``."""

    date: IsoDate

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data: Any) -> Any:
        # JSON does not tell 16 from 16.0 (nor does JSON Schema's "integer"): a whole float is that integer.
        if not isinstance(data, dict):
            return data
        for group, name in _WHOLE_NUMBERS:
            part = data.get(group)
            if isinstance(part, dict) and isinstance(part.get(name), float) and part[name].is_integer():
                data = {**data, group: {**part, name: int(part[name])}}
        return data


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseCreate(_In):
    case: CaseIn
    patient_id: StrictStr | None = Field(
        default=None,
        description="Personnummer eller samordningsnummer, t.ex. 19811228-9874; kontrollsiffran ska stämma",
        json_schema_extra={"format": "personnummer", "pattern": PERSONNUMMER_PATTERN},
    )
    patient_name: StrictStr | None = Field(
        default=None, max_length=200, description="Används bara för initialer"
    )
    product_name: StrictStr | None = Field(default=None, max_length=200)
    note: StrictStr | None = Field(default=None, max_length=2000)


class StepIn(_In):
    step: Literal["contacted", "commitment_registered", "dispensed", "delivered"]
    note: StrictStr | None = Field(default=None, max_length=2000)


class StepOut(BaseModel):
    step: str
    label: str
    at: UtcDateTime
    by: str
    note: str | None


class CaseOut(BaseModel):
    id: str
    reference: str
    created_at: UtcDateTime
    organisation_id: str
    kind: str
    status: str
    state: str
    payer: str | None
    decider: str | None
    invoicer: str | None
    patient_id: str | None = Field(description="Maskerat för roller som inte behöver det")
    patient_initials: str | None
    product_name: str | None
    note: str | None
    case: dict[str, Any]
    decision: Decision
    steps: list[StepOut]


class CaseSummary(BaseModel):
    id: str
    reference: str
    created_at: UtcDateTime
    kind: str
    status: str
    state: str
    payer: str | None
    patient_id: str | None
    product_name: str | None


class CommitmentIn(_In):
    case_id: StrictStr
    issuer: str = Field(pattern=r"^region:\d\d$", description="Den region som utfärdar (betalaren)")
    amount_ceiling_sek: Amount
    valid_from: IsoDate
    valid_to: IsoDate
    document_reference: str = Field(min_length=1, max_length=100)


class CommitmentOut(BaseModel):
    id: int
    case_id: str
    issuer: str
    amount_ceiling_sek: Decimal
    valid_from: dt.date
    valid_to: dt.date
    document_reference: str
    created_at: UtcDateTime


class EventIn(_In):
    case_id: StrictStr
    idempotency_key: str = Field(min_length=1, max_length=120)
    kind: Literal["dispensed", "delivered", "ordered"]
    occurred_on: IsoDate
    amount_sek: Amount | None = None
    quantity: Quantity | None = None
    product_name: str | None = Field(default=None, max_length=200)


class EventOut(BaseModel):
    id: int
    idempotency_key: str
    case_id: str
    kind: str
    occurred_on: dt.date
    issuer: str | None
    recipient: str | None
    amount_sek: Decimal | None
    quantity: Decimal | None
    product_name: str | None
    created_at: UtcDateTime


class AuditOut(BaseModel):
    id: int
    at: UtcDateTime
    username: str
    organisation_id: str | None
    action: str
    case_id: str | None
    detail: str | None


class PackOut(BaseModel):
    id: str
    title: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    source: str
    rules: int


class Me(BaseModel):
    username: str
    full_name: str
    role: str
    organisation_id: str
    organisation: str


class ErrorOut(BaseModel):
    detail: str = Field(description="En rad som namnger fältet")


# -- API tokens (appended: the user's own tokens) -------------------------------------------------


def _whole(value: Any) -> Any:
    """JSON Schema's integer includes 36.0; a text or a fraction stays an error (strict int)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: StrictStr = Field(min_length=1, max_length=100, description="Vad token används till")
    days: Annotated[int, BeforeValidator(_whole)] = Field(
        default=90, ge=1, le=365, strict=True, description="Giltighetstid i dagar"
    )


class TokenOut(BaseModel):
    id: int
    label: str
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    active: bool


class TokenCreated(TokenOut):
    token: str = Field(description="Visas bara nu; spara den, vi lagrar bara dess SHA-256")
