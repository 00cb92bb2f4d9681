"""The Decision: who decides, pays and invoices, what comes first, and why (DESIGN.md §5).

Each output is answered on its own. An output that depends on a fact nobody has filled in is
``null`` and named in ``undetermined``, and the facts it waits for are in ``missing``; the rest of
the answer still stands. ``status`` is ``incomplete`` only when the payer (or the split of the
cost) is among the undetermined outputs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["decided", "no_agreement", "incomplete"]

#: The outputs a Decision answers, each separately (names as in the JSON).
OUTPUTS = (
    "decider",
    "payer",
    "shares",
    "payer_note",
    "invoicer",
    "prior_contact_required",
    "contact",
    "payment_commitment_required",
    "invoice",
    "clearance",
)


class _Out(BaseModel):
    """Frozen: one Decision may be shared by every case in the same situation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipient(_Out):
    """Where an invoice goes, with every identifier the agreement gives for it."""

    id: str | None = None
    name: str
    #: The party the recipient is, where the agreement's data says (``region:17``).
    party: str | None = None
    department: str | None = None
    address: list[str] = Field(default_factory=list)
    reference: str | None = None
    project_code: str | None = None
    orderer_id: str | None = None
    gln: str | None = None
    peppol_id: str | None = None
    org_number: str | None = None
    van_operator: str | None = None
    #: An address for questions about invoices — not a way to send one.
    enquiries_email: str | None = None
    channel: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_email(cls, data: Any) -> Any:
        """Decisions stored before 2026-11 called the questions address ``email``."""
        if isinstance(data, dict) and "email" in data:
            data = dict(data)
            data.setdefault("enquiries_email", data.pop("email"))
        return data


class InvoiceSpec(_Out):
    """What the agreement says about the invoice. ``recipient`` is null when the agreement names
    none (``note`` then says whom to ask)."""

    recipient: Recipient | None = None
    channel: str | None = None
    required_fields: list[str] = Field(default_factory=list)
    #: Only what an agreement itself forbids on the invoice.
    forbidden_fields: list[str] = Field(default_factory=list)
    #: vembetalar's own data minimisation: not needed under the agreement, so left off.
    not_needed_fields: list[str] = Field(default_factory=list)
    note: str | None = None


class Contact(_Out):
    """Whom to contact: the paying region, or a named function such as VO Hjälpmedel."""

    party: str | None = None
    name: str
    phone: str | None = None
    email: str | None = None
    address: list[str] = Field(default_factory=list)
    note: str | None = None
    #: The contact gets a copy of the order (see the pack's contact).
    order_copy: bool = False


class RegistrationRequest(_Out):
    """What a registration request carries (exactly ``fields``) and where it may go."""

    fields: list[str]
    email: str | None = None
    encrypted_email: bool = False
    fax: str | None = None
    post: list[str] = Field(default_factory=list)


class Clearance(_Out):
    """A go-ahead needed before anything is handed out, and how to get it: ``reason`` is the
    agreement's own sentence, which the desk shows when it refuses a hand-out."""

    id: str
    title: str
    system: str
    by: Contact
    reason: str
    request: RegistrationRequest | None = None
    inactive: str | None = None
    returning: str | None = None


class Share(_Out):
    """One part of a split cost, in the order the parts apply (e.g. the discharge week first)."""

    payer: str | None
    what: str
    max_days: int | None = None


class RuleMatch(_Out):
    """One rule that fired, with the conditions that made it fire.

    ``alternative``: one of several rules that could fire while a fact is unknown, all of which
    give the same answer for the outputs shown."""

    table: str
    rule_id: str
    title: str
    matched: list[str]
    interpretation: str | None = None
    alternative: bool = False


class Explanation(_Out):
    pack: str | None = None
    pack_title: str | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    precedence: str | None = None
    rules: list[RuleMatch] = Field(default_factory=list)


class Decision(_Out):
    status: Status
    decider: str | None = None
    payer: str | None = None
    shares: list[Share] = Field(default_factory=list)
    payer_note: str | None = None
    invoicer: str | None = None
    prior_contact_required: bool | None = False
    contact: Contact | None = None
    payment_commitment_required: bool | None = False
    clearance: Clearance | None = None
    actions: list[str] = Field(default_factory=list)
    invoice: InvoiceSpec | None = None
    rule_id: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    citations: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    undetermined: list[str] = Field(default_factory=list)
    reason: str | None = None
    explanation: Explanation = Field(default_factory=Explanation)
