"""The Decision: who decides, pays and invoices, what comes first, and why (DESIGN.md §5)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["decided", "no_agreement", "incomplete"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Recipient(_Out):
    """Where an invoice goes, with every identifier the agreement gives for it."""

    id: str | None = None
    name: str
    department: str | None = None
    address: list[str] = []
    reference: str | None = None
    project_code: str | None = None
    orderer_id: str | None = None
    gln: str | None = None
    peppol_id: str | None = None
    org_number: str | None = None
    van_operator: str | None = None
    email: str | None = None
    channel: str | None = None


class InvoiceSpec(_Out):
    recipient: Recipient | None = None
    channel: str | None = None
    required_fields: list[str] = []
    forbidden_fields: list[str] = []


class Contact(_Out):
    """Whom to contact before acting: a party (e.g. the paying region) or a named function."""

    party: str | None = None
    name: str
    phone: str | None = None
    email: str | None = None
    address: list[str] = []
    note: str | None = None


class RuleMatch(_Out):
    """One rule that fired, with the conditions that made it fire."""

    table: str
    rule_id: str
    title: str
    matched: list[str]
    interpretation: str | None = None


class Explanation(_Out):
    pack: str | None = None
    pack_title: str | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    precedence: str | None = None
    rules: list[RuleMatch] = []


class Decision(_Out):
    status: Status
    decider: str | None = None
    payer: str | None = None
    payer_note: str | None = None
    invoicer: str | None = None
    prior_contact_required: bool = False
    contact: Contact | None = None
    payment_commitment_required: bool = False
    actions: list[str] = []
    invoice: InvoiceSpec | None = None
    rule_id: str | None = None
    rule_ids: list[str] = []
    citations: list[str] = []
    missing: list[str] = []
    reason: str | None = None
    explanation: Explanation = Explanation()
