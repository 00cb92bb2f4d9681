"""The YAML shape of a rule pack, as pydantic models: the contract an agreement's author writes to.

Unknown keys are errors so that a misspelt ``valid_to`` can never make an agreement last forever.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PARTY_PATTERN = r"^(region:(\d\d|\{[a-z_.]+\})|kommun:(\d{4}|\{[a-z_.]+\})|patient|unit)$"


class _Yaml(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CitationData(_Yaml):
    """A stable citation: the document, where in it, and the Swedish sentence the rule rests on."""

    document: str
    section: str
    quote: str = Field(min_length=10)


class SourceData(_Yaml):
    document: str
    title: str
    excerpt: str = "source.txt"
    url: str | None = None


class RecipientData(_Yaml):
    name: str
    #: The party this recipient is (``region:17``): a run sends nothing else to its address.
    party: str | None = Field(default=None, pattern=PARTY_PATTERN)
    department: str | None = None
    address: list[str] = []
    reference: str | None = None
    project_code: str | None = None
    orderer_id: str | None = None
    gln: str | None = Field(default=None, pattern=r"^\d{13}$")
    peppol_id: str | None = Field(default=None, pattern=r"^\d{4}:\S+$")
    org_number: str | None = Field(default=None, pattern=r"^\d{6}-\d{4}$")
    van_operator: str | None = None
    enquiries_email: str | None = None
    channel: str | None = None
    cite: list[str] = []


class ContactData(_Yaml):
    name: str
    phone: str | None = None
    email: str | None = None
    address: list[str] = []
    note: str | None = None
    #: The contact is told by a copy of the order (Värmland's invoice handler), which the desk
    #: prepares from the case and sends to ``email``.
    order_copy: bool = False
    cite: list[str] = []


#: What a registration request may carry, in the words the agreement lists them (seed 001).
RequestField = Literal[
    "personnummer", "name", "street_address", "postcode_town", "phone", "door_code", "prescriber"
]


class RequestData(_Yaml):
    """A registration request the prescriber sends before anything is handed out: exactly these
    fields, by the channels the agreement offers."""

    fields: list[RequestField] = Field(min_length=1)
    email: str | None = None
    #: The agreement asks for encrypted e-mail; a plain SMTP hand-off is then refused.
    encrypted_email: bool = False
    fax: str | None = None
    post: list[str] = []
    cite: list[str] = Field(min_length=1)


class ClearanceData(_Yaml):
    """A go-ahead another party must give before anything is handed out (VO Hjälpmedel's
    klartecken and the registration in Sesam). The workflow refuses the hand-out until it is
    recorded, quoting ``cite[0]``."""

    title: str
    system: str
    #: The contact (``contacts``) that gives the go-ahead.
    by: str
    request: RequestData | None = None
    #: What the prescriber does instead of a new registration when the patient is inactivated.
    inactive: str | None = None
    inactive_cite: list[str] = []
    #: What a returning patient needs first.
    returning: str | None = None
    returning_cite: list[str] = []
    cite: list[str] = Field(min_length=1)


class ParameterData(_Yaml):
    """A named value the rules use (a threshold, a number of days), with where it comes from."""

    value: int | float
    unit: str
    description: str
    cite: list[str] = Field(min_length=1)


#: What an invoice line can be required to show, named as billable events name it.
LineField = Literal[
    "occurred_on",
    "product_name",
    "varunummer",
    "quantity",
    "unit_price_sek",
    "amount_sek",
    "prescriber_name",
    "unit_name",
]


class InvoicingData(_Yaml):
    """How the agreement's invoice to one recipient is made, in machine-checkable terms beside the
    agreement's own words (``required_fields`` in the rule): which of the recipient's identifiers
    is the buyer's reference, what the invoice must state, what every line must show, what it may
    say about the patient, and whether another system bills instead."""

    buyer_reference: Literal["reference", "orderer_id"] | None = None
    notes: list[str] = []
    line_fields: list[LineField] = []
    #: Facts of the case every line must carry (bilaga 1: the diarienummer).
    case_fields: list[Literal["diarienummer"]] = []
    #: The personal data the agreement demands on the invoice, and nothing more.
    patient: Literal["none", "personnummer", "initials"] = "none"
    #: One invoice may cover several patients, each line marked by a number for the patient.
    several_patients: bool = False
    prescriber_label: str = "Förskrivare"
    unit_label: str = "Enhet"
    #: Whether the invoice must say if the patient has self-care (Värmland).
    states_self_care: bool = False
    #: Another system invoices these events (webSesam): vembetalar never invoices them again.
    billed_by: str | None = None
    cite: list[str] = []
    #: Where the agreement leaves something open and the pack had to read it (recorded, shown).
    interpretation: str | None = None


class VatData(_Yaml):
    """The VAT treatment of the agreement's invoices (UNCL5305 category, rate, exemption)."""

    category: Literal["S", "E", "Z", "O"]
    percent: float = 0
    exemption_code: str | None = None
    exemption_reason: str | None = None
    #: Why this treatment: no seed states one, so it is recorded as an interpretation.
    interpretation: str | None = None


class BillingData(_Yaml):
    vat: VatData | None = None
    #: Months after the event within which it must be invoiced; None when the agreement states
    #: none (then the deployment's default applies, Riksavtalet's six months).
    claim_months: int | None = None
    #: Per recipient id of ``recipients`` (or ``"*"`` for any recipient the rules name).
    recipients: dict[str, InvoicingData] = {}
    #: Per rule id of this pack, before ``recipients``: where the agreement says that a rule's
    #: events are invoiced otherwise (Skåne: diabetes and incontinence by VO Hjälpmedel through
    #: Sesam LMN, everything else by Visma webSesam).
    rules: dict[str, InvoicingData] = {}


class PackMeta(_Yaml):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    parties: list[str] = Field(min_length=1)
    decided_by: str | None = None
    decided_on: dt.date | None = None
    valid_from: dt.date | None
    valid_to: dt.date | None
    validity_note: str | None = None
    validity_cite: list[str] = []
    source: SourceData
    scope: dict[str, Any] = Field(min_length=1)
    citations: dict[str, CitationData] = Field(min_length=1)
    recipients: dict[str, RecipientData] = {}
    contacts: dict[str, ContactData] = {}
    clearances: dict[str, ClearanceData] = {}
    sets: dict[str, list[str]] = {}
    parameters: dict[str, ParameterData] = {}
    #: Packs this one takes precedence over where both cover a case (declared, never inferred),
    #: and packs that take precedence over this one (a general agreement yielding to local ones).
    overrides: list[str] = []
    yields_to: list[str] = []
    invoicing: BillingData | None = None

    @field_validator("parties")
    @classmethod
    def _parties(cls, value: list[str]) -> list[str]:
        import re

        for party in value:
            if not re.match(PARTY_PATTERN, party):
                raise ValueError(f"{party!r} är ingen part (region:NN, kommun:NNNN, patient, unit)")
        return value


class InvoiceData(_Yaml):
    """``recipient: null`` with a ``note`` says that the agreement names no recipient."""

    recipient: str | None
    channel: str | None = None
    required_fields: list[str] = []
    forbidden_fields: list[str] = []
    note: str | None = None


class ShareData(_Yaml):
    """The first part of a split cost; the rest falls on the ordinary payer (``then``)."""

    payer: str = Field(pattern=PARTY_PATTERN)
    what: str
    max_days: int | dict[str, str] | None = None
    then: str = "därefter"


class Outputs(_Yaml):
    """What a rule decides. A rule with ``status: no_agreement`` says why the agreement does not
    cover the case, instead of leaving a silent gap."""

    status: Literal["decided", "no_agreement"] = "decided"
    reason: str | None = None
    decider: str | None = Field(default=None, pattern=PARTY_PATTERN)
    payer: str | None = Field(default=None, pattern=PARTY_PATTERN)
    payer_note: str | None = None
    invoicer: str | None = Field(default=None, pattern=PARTY_PATTERN)
    prior_contact_required: bool | None = None
    contact: str | None = None
    payment_commitment_required: bool | None = None
    #: A go-ahead (``clearances``) needed before anything is handed out.
    clearance: str | None = None
    actions: list[str] = []
    invoice: InvoiceData | None = None
    first_share: ShareData | None = None


class RuleData(_Yaml):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    when: dict[str, Any]
    then: Outputs
    cite: list[str] = Field(min_length=1)
    interpretation: str | None = None


class TableData(_Yaml):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    hit_policy: Literal["unique", "first"]
    rules: list[RuleData] = Field(min_length=1)


class RulesFile(_Yaml):
    tables: list[TableData] = Field(min_length=1)


class TestCaseData(_Yaml):
    name: str
    note: str | None = None
    #: The agreement's own words the case rests on; ``packs test`` checks they are in the source.
    quote: str | None = None
    case: dict[str, Any]
    expect: dict[str, Any] = Field(min_length=1)


class TestsFile(_Yaml):
    defaults: dict[str, Any] = {}
    cases: list[TestCaseData] = Field(min_length=1)


OUTPUT_SCALARS = (
    "decider",
    "payer",
    "payer_note",
    "invoicer",
    "prior_contact_required",
    "contact",
    "payment_commitment_required",
    "invoice",
    "first_share",
    "clearance",
)
