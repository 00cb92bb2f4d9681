"""Request and response bodies of the JSON API (the Case and Decision models are reused as is)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from vembetalar.model.case import Case
from vembetalar.model.decision import Decision


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseCreate(_In):
    case: Case
    patient_id: StrictStr | None = Field(default=None, description="Personnummer eller samordningsnummer")
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
    at: dt.datetime
    by: str
    note: str | None


class CaseOut(BaseModel):
    id: str
    reference: str
    created_at: dt.datetime
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
    created_at: dt.datetime
    kind: str
    status: str
    state: str
    payer: str | None
    patient_id: str | None
    product_name: str | None


class CommitmentIn(_In):
    case_id: StrictStr
    issuer: str = Field(pattern=r"^region:\d\d$", description="Den region som utfärdar (betalaren)")
    amount_ceiling_sek: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    valid_from: dt.date
    valid_to: dt.date
    document_reference: str = Field(min_length=1, max_length=100)


class CommitmentOut(BaseModel):
    id: int
    case_id: str
    issuer: str
    amount_ceiling_sek: Decimal
    valid_from: dt.date
    valid_to: dt.date
    document_reference: str
    created_at: dt.datetime


class EventIn(_In):
    case_id: StrictStr
    idempotency_key: str = Field(min_length=1, max_length=120)
    kind: Literal["dispensed", "delivered", "ordered"]
    occurred_on: dt.date
    amount_sek: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    quantity: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=3)
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
    created_at: dt.datetime


class AuditOut(BaseModel):
    id: int
    at: dt.datetime
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
