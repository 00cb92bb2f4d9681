"""The database schema (SQLAlchemy 2). Alembic migrations in ``migrations/`` create it.

Billable events and the audit log are append-only: the migration installs triggers that refuse
UPDATE and DELETE, on SQLite and PostgreSQL alike, so not even a bug in our code can rewrite them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        dt.datetime: DateTime(timezone=True),
    }


class Organisation(Base):
    """A region, a municipality or a care unit; ``id`` is the party string (``region:13``)."""

    __tablename__ = "organisations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # region | kommun | unit
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # prescriber | invoice_clerk | pharma_unit | mas | admin
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    organisation: Mapped[Organisation] = relationship(lazy="joined")


class ApiToken(Base):
    """Only the SHA-256 of a token is stored; the token itself is shown once. A token ends at
    ``expires_at`` or when revoked, whichever comes first."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    user: Mapped[User] = relationship(lazy="joined")


class WebSession(Base):
    """A signed-in browser. The cookie carries only a random id whose SHA-256 is kept here, so
    logout, a password change or deactivation end the session at once."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class LoginFailure(Base):
    """One failed login, keyed by address and user name; the throttle counts these, so every
    worker process sees the same count."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class CaseRecord(Base):
    """A case: the Case as asked, its Decision, the workflow state and who the parties are."""

    __tablename__ = "cases"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(String(30), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(30))
    case_date: Mapped[dt.date] = mapped_column(Date)
    case_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))  # decision status
    state: Mapped[str] = mapped_column(String(30))  # workflow step reached
    decider: Mapped[str | None] = mapped_column(String(40))
    payer: Mapped[str | None] = mapped_column(String(40))
    invoicer: Mapped[str | None] = mapped_column(String(40))
    rule_id: Mapped[str | None] = mapped_column(String(120))
    patient_id: Mapped[str | None] = mapped_column(String(13))  # personnummer/samordningsnummer
    patient_initials: Mapped[str | None] = mapped_column(String(10))
    product_name: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    #: Under self-care (payer ``unit``): the unit that decided it and its organisation, named by
    #: the step ``unit_named``; the invoice goes to that organisation and names the unit.
    payer_unit_organisation: Mapped[str | None] = mapped_column(String(40), default=None)
    payer_unit_name: Mapped[str | None] = mapped_column(String(200), default=None)
    steps: Mapped[list[CaseStep]] = relationship(order_by="CaseStep.id", lazy="selectin")
    parties: Mapped[list[CaseParty]] = relationship(lazy="selectin", cascade="all, delete-orphan")


class CaseParty(Base):
    """Which organisations take part in a case; a user sees a case only through this table."""

    __tablename__ = "case_parties"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    __table_args__ = (Index("ix_case_parties_org", "organisation_id"),)


class CaseStep(Base):
    """The status history: one row per step taken, never edited.

    ``once`` repeats the step's name for steps a case takes at most once (and is NULL for
    repeatable ones such as a dispensing), so the database itself refuses a second "contacted"
    sent by two concurrent requests.
    """

    __tablename__ = "case_steps"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    step: Mapped[str] = mapped_column(String(30))
    once: Mapped[str | None] = mapped_column(String(30), default=None)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    user: Mapped[User] = relationship(lazy="joined")
    __table_args__ = (UniqueConstraint("case_id", "once", name="uq_case_steps_once"),)


class CaseDecision(Base):
    """Every decision a case has had, oldest first: completing a case re-decides it and keeps
    the earlier facts and decision here. Append-only."""

    __tablename__ = "case_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    case_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)


class PaymentCommitment(Base):
    """Betalningsförbindelse: the paying region's written promise, kept by the prescribing unit."""

    __tablename__ = "payment_commitments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    issuer: Mapped[str] = mapped_column(String(40))
    amount_ceiling_sek: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date] = mapped_column(Date)
    document_reference: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class DecisionRecord(Base):
    """A decision as billable events rest on it, stored once however many events share it
    (``digest`` is the SHA-256 of its canonical JSON). Append-only, like the events."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    decision_json: Mapped[dict[str, Any]] = mapped_column(JSON)


class BillableEvent(Base):
    """One invoice line's worth of what happened (a dispensing, a delivered order line), with
    the decision it rests on. Immutable: a correction is a new event that ``supersedes`` this
    one (or cancels it), and the old one stays, marked by being superseded.

    The idempotency key is the caller's, unique within its case only, so no one can take
    another case's key.
    """

    __tablename__ = "billable_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(120))
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # dispensed | delivered
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    issuer: Mapped[str | None] = mapped_column(String(40))
    recipient: Mapped[str | None] = mapped_column(String(40))
    amount_sek: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    quantity: Mapped[Decimal | None] = mapped_column(Numeric(12, 3))
    product_name: Mapped[str | None] = mapped_column(String(200))
    varunummer: Mapped[str | None] = mapped_column(String(20), default=None)
    unit_price_sek: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), default=None)
    prescriber_name: Mapped[str | None] = mapped_column(String(200), default=None)
    unit_name: Mapped[str | None] = mapped_column(String(200), default=None)
    diarienummer: Mapped[str | None] = mapped_column(String(100), default=None)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("billable_events.id"), default=None)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    #: The decision the event rests on: a row of ``decisions`` (since 2026-11), or — for events
    #: stored before — its own copy here. Thousands of dispensings share one decision.
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), default=None)
    decision_json: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    decision_row: Mapped[DecisionRecord | None] = relationship(lazy="select")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))

    @property
    def decision_data(self) -> dict[str, Any]:
        """The decision the event rests on, wherever it is stored."""
        if self.decision_row is not None:
            return self.decision_row.decision_json
        return self.decision_json or {}

    __table_args__ = (
        UniqueConstraint("case_id", "idempotency_key", name="uq_billable_events_case_key"),
        UniqueConstraint("supersedes_id", name="uq_billable_events_supersedes"),
        # The invoice run's question: one issuer's events of one month (migration 0010).
        Index("ix_billable_events_issuer_day", "issuer", "occurred_on"),
    )


class AuditEntry(Base):
    """Who read or changed which case, when, and what. Append-only (Patientdatalagen)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(80))
    organisation_id: Mapped[str | None] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[str | None] = mapped_column(String(36), index=True)
    detail: Mapped[str | None] = mapped_column(Text)


class OrganisationDetails(Base):
    """What an invoice needs to know about an organisation as seller or buyer: configuration the
    users fill in (never guessed); ``demo`` marks made-up values of the demo registry."""

    __tablename__ = "organisation_details"
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    org_number: Mapped[str | None] = mapped_column(String(11))
    vat_id: Mapped[str | None] = mapped_column(String(14))
    f_skatt: Mapped[bool] = mapped_column(Boolean, default=False)
    bankgiro: Mapped[str | None] = mapped_column(String(20))
    plusgiro: Mapped[str | None] = mapped_column(String(20))
    peppol_id: Mapped[str | None] = mapped_column(String(60))
    gln: Mapped[str | None] = mapped_column(String(13))
    address_lines: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    postcode: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(200))
    payment_days: Mapped[int] = mapped_column(default=30)
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InvoiceSeries(Base):
    """The next number of an issuer's series. Taken and advanced in the same transaction that
    stores the invoice, so numbers are unique and gap-free even when a run dies half-way."""

    __tablename__ = "invoice_series"
    issuer: Mapped[str] = mapped_column(String(40), primary_key=True)
    series: Mapped[str] = mapped_column(String(10), primary_key=True)
    next_number: Mapped[int] = mapped_column(default=1)


class Invoice(Base):
    """An invoice or credit note as issued. The document (what the XML and PDF render) is kept as
    issued; only the status moves on (draft → sent → paid / credited)."""

    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(40), index=True)
    series: Mapped[str] = mapped_column(String(10))
    number: Mapped[int] = mapped_column()
    number_text: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))  # invoice | credit_note
    recipient: Mapped[str] = mapped_column(String(40), index=True)
    route: Mapped[str] = mapped_column(String(160))  # pack/recipient id the requirements came from
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    issue_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    total_sek: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), default=None)
    document_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    __table_args__ = (UniqueConstraint("issuer", "series", "number", name="uq_invoices_number"),)


class BilledEvent(Base):
    """Which invoice billed an event. The primary key is the event: the database itself refuses
    to bill an event twice, whatever two runs do at once."""

    __tablename__ = "billed_events"
    event_id: Mapped[int] = mapped_column(ForeignKey("billable_events.id"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    line_number: Mapped[int] = mapped_column()


class InvoiceReceipt(Base):
    """The recipient's own handling of an incoming invoice (received → checked → attested |
    disputed). No row means "received": the issuer's status stays on ``invoices``."""

    __tablename__ = "invoice_receipts"
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="received")
    checked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
