"""Request and response bodies of the JSON API (the Case and Decision models are reused as is)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vembetalar.model.case import Case
from vembetalar.model.decision import Decision
from vembetalar.model.money import QUANTITY, SEK, BoundedDecimal

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


#: Kronor with öre (Numeric(12,2)): a JSON number (rounded to whole öre) or exact text; see ``money``.
Amount = Annotated[
    Decimal,
    BoundedDecimal(
        SEK,
        "plain",
        'Belopp i kronor, högst 9 999 999 999,99: ett tal (avrundas till hela ören) eller text som "1234.50"',
    ),
]
#: A quantity (Numeric(12,3)).
Quantity = Annotated[
    Decimal,
    BoundedDecimal(
        QUANTITY,
        "plain",
        'Antal, högst 999 999 999,999: ett tal (avrundas till tre decimaler) eller text som "2.5"',
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


class EventLineIn(_In):
    """One dispensing or delivered order line, as the invoice must show it (seed 000 bilaga 2–3:
    benämning, varunummer, kvantitet, à-pris och belopp; prescriber and unit). Give the amount, or
    quantity and à-pris (the amount is then computed); all three must agree."""

    occurred_on: IsoDate = Field(description="Expedierings- eller leveransdag; inte i framtiden")
    quantity: Quantity | None = None
    unit_price_sek: Amount | None = None
    amount_sek: Amount | None = None
    product_name: str | None = Field(default=None, max_length=200)
    varunummer: str | None = Field(default=None, pattern=r"^[0-9]{6}$", description="Varunummer, sex siffror")
    prescriber_name: str | None = Field(default=None, max_length=200, description="Förskrivarens namn")
    unit_name: str | None = Field(
        default=None, max_length=200, description="Arbetsplats, remitterande eller ordinerande enhet"
    )
    diarienummer: str | None = Field(default=None, max_length=100)


class SelfCareUnitIn(_In):
    """The unit/mottagning that decided self-care and the organisation it belongs to."""

    organisation: str = Field(
        pattern=r"^(region:\d\d|kommun:\d{4})$", description="region:17 eller kommun:1780"
    )
    name: StrictStr = Field(min_length=1, max_length=200)


class SelfCareUnitOut(BaseModel):
    organisation: str
    name: str


class StepIn(_In):
    step: Literal[
        "contacted",
        "payer_rechecked",
        "activation_requested",
        "cleared",
        "unit_named",
        "dispensed",
        "delivered",
        "closed",
        "withdrawn",
    ] = Field(
        description=(
            "Betalningsförbindelse registreras med POST /api/v1/payment-commitments, "
            "registreringsbegäran till Sesam med POST /api/v1/cases/{id}/sesam-request"
        )
    )
    unit: SelfCareUnitIn | None = Field(default=None, description="För unit_named (egenvård)")
    note: StrictStr | None = Field(
        default=None, max_length=2000, description="Skäl krävs för closed/withdrawn"
    )
    line: EventLineIn | None = Field(default=None, description="För dispensed/delivered när någon faktureras")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="Samma nyckel igen inom ärendet ger samma underlag (gäller bara detta ärende)",
    )


class EventReplacementIn(_In):
    """Complete or correct an event: the new line supersedes the old one, which is kept."""

    reason: str = Field(min_length=1, max_length=2000)
    line: EventLineIn


class EventCancellationIn(_In):
    """Cancel an event: a cancellation supersedes it, and the old one is kept."""

    reason: str = Field(min_length=1, max_length=2000)
    cancel: Literal[True]


#: A correction is one or the other, and the schema says so (no hidden "one of" rule).
EventCorrectionIn = EventReplacementIn | EventCancellationIn


class CaseCompletionIn(_In):
    case: CaseIn
    reason: str | None = Field(default=None, max_length=2000)


class PlannedStepOut(BaseModel):
    step: str
    label: str
    mark: Literal["done", "next", "waiting", "optional", "not_needed"]
    why: str | None


class DecisionHistoryOut(BaseModel):
    at: UtcDateTime
    case: dict[str, Any]
    decision: Decision
    reason: str | None


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
    self_care_unit: SelfCareUnitOut | None = Field(
        default=None, description="Enheten som beslutat om egenvården (när betalaren är den enheten)"
    )
    steps: list[StepOut]
    plan: list[PlannedStepOut] = Field(description="Stegen i avtalets ordning: gjort, nästa, väntar")
    offers: list[str] = Field(description="Steg som den här användaren kan ta nu")


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
    unit_price_sek: Decimal | None
    product_name: str | None
    varunummer: str | None
    prescriber_name: str | None
    unit_name: str | None
    diarienummer: str | None
    supersedes_id: int | None
    cancelled: bool
    reason: str | None
    superseded_by: int | None = Field(description="Underlaget som ersatte detta (null: gäller)")
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
