"""What a received invoice must show, taken from the agreement it falls under.

The packs say, per invoice recipient, what the agreement's invoice must carry (``invoicing`` in
pack.yaml: the buyer's reference, notes, line fields, patient data, labels). For a received
invoice this module finds the agreement and recipient it is addressed to and turns that data into
:class:`~vembetalar.billing.inbound.Requirement` s with Swedish labels, for ``check_invoice``.

Which agreement: the recipient is recognised by the invoice's BuyerReference (a recipient's
``reference`` or ``orderer_id``), or else by the buyer's identifiers (PEPPOL endpoint, GLN,
organisation number) as the pack records them; the agreement must have been in force on the
invoice's issue date or in its invoicing period — not today: an invoice for October 2023 falls
under the agreement that applied then. When nothing, or more than one recipient, fits, there is no
answer (None) rather than a guess.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from vembetalar.billing.inbound import ReceivedInvoice, Requirement
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import Pack
from vembetalar.rules.schema import InvoicingData, RecipientData


@dataclass(frozen=True)
class AgreementRequirements:
    """The agreement and recipient a received invoice is addressed to, and what it must show."""

    pack: Pack
    recipient_id: str
    recipient: RecipientData
    requirements: tuple[Requirement, ...]

    @property
    def name(self) -> str:
        """``Region Värmland – kommunerna … (Region Värmland, Beställar-ID 9640028)``"""
        reference = self.recipient.reference or self.recipient.orderer_id
        whom = self.recipient.name + (f", {reference}" if reference else "")
        return f"{self.pack.meta.title} ({whom})"


def _digits(value: str | None) -> str:
    return re.sub(r"\D", "", value or "")


def _norm(value: str | None) -> str:
    return " ".join((value or "").split()).casefold()


def _days(invoice: ReceivedInvoice) -> list[dt.date]:
    days = [invoice.issue_date] if invoice.issue_date else []
    if invoice.period:
        days += [day for day in invoice.period if day]
    return days


def _by_reference(invoice: ReceivedInvoice, recipient: RecipientData) -> bool:
    given = _norm(invoice.buyer_reference)
    return bool(given) and given in {_norm(recipient.reference), _norm(recipient.orderer_id)} - {""}


def _by_identifier(invoice: ReceivedInvoice, recipient: RecipientData) -> bool:
    buyer = invoice.buyer
    endpoint = _norm(buyer.endpoint)
    scheme, _, value = endpoint.partition(":")
    if recipient.peppol_id and endpoint == _norm(recipient.peppol_id):
        return True
    if recipient.gln and recipient.gln in {buyer.gln, value if scheme == "0088" else None}:
        return True
    number = _digits(recipient.org_number)
    given = {_digits(buyer.org_number), value if scheme == "0007" else ""}
    return len(number) == 10 and number in given


def _match(engine: Engine, invoice: ReceivedInvoice, how: str) -> list[tuple[Pack, str, RecipientData]]:
    days = _days(invoice)
    found = []
    for pack in engine.packs:
        if not any(pack.in_force(day) for day in days):
            continue
        for recipient_id, recipient in pack.meta.recipients.items():
            if pack.invoicing_for(recipient_id) is None:
                continue
            fits = _by_reference if how == "reference" else _by_identifier
            if fits(invoice, recipient):
                found.append((pack, recipient_id, recipient))
    return found


def requirements_for(engine: Engine, invoice: ReceivedInvoice) -> AgreementRequirements | None:
    """The agreement's requirements for ``invoice``, or None when no single recipient of an
    agreement in force at the invoice's date fits its buyer."""
    for how in ("reference", "identifier"):
        found = _match(engine, invoice, how)
        if len(found) == 1:
            pack, recipient_id, recipient = found[0]
            invoicing = pack.invoicing_for(recipient_id)
            assert invoicing is not None  # _match kept only recipients with invoicing data
            return AgreementRequirements(
                pack, recipient_id, recipient, tuple(requirements(invoicing, recipient))
            )
        if found:
            return None  # several recipients fit: no guessing which
    return None


#: Line fields of the packs (as billable events name them) → what a received line must carry.
_LINE_FIELDS: dict[str, Requirement] = {
    "occurred_on": Requirement.line_property("Datum", "datum"),
    "product_name": Requirement.line_field("name", "benämning"),
    "varunummer": Requirement.line_field("varunummer", "varunummer"),
    "quantity": Requirement.line_field("quantity", "kvantitet"),
    "unit_price_sek": Requirement.line_field("price", "à-pris"),
    "amount_sek": Requirement.line_field("amount", "belopp"),
}


def requirements(invoicing: InvoicingData, recipient: RecipientData) -> list[Requirement]:
    """A recipient's invoicing data as requirements, in the order a clerk reads an invoice:
    the reference, the notes, then what every line must show."""
    found: list[Requirement] = []
    if invoicing.buyer_reference:
        value = getattr(recipient, invoicing.buyer_reference)
        if value:
            label = "Beställar-ID" if invoicing.buyer_reference == "orderer_id" else "Referensnummer"
            found.append(Requirement.buyer_reference(value, label))
    for note in invoicing.notes:
        text = note.strip().rstrip(".")
        found.append(Requirement.note(text, f"uppgiften «{text}»"))
    for name in invoicing.line_fields:
        if name in _LINE_FIELDS:
            found.append(_LINE_FIELDS[name])
        elif name == "prescriber_name":
            found.append(Requirement.line_property(invoicing.prescriber_label))
        elif name == "unit_name":
            found.append(Requirement.line_property(invoicing.unit_label))
    if "diarienummer" in invoicing.case_fields:
        found.append(Requirement.line_property("Diarienummer", "diarienummer"))
    if invoicing.patient == "initials":
        found.append(Requirement.line_property("Patient", "patientens initialer"))
    elif invoicing.patient == "personnummer":
        found.append(Requirement.line_property("Personnummer", "patientens personnummer"))
    if invoicing.states_self_care:
        found.append(Requirement.line_property("Egenvård", "uppgift om egenvård"))
    return found
