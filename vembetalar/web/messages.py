"""What a form's error says to the person who typed it, and where it is shown.

The model and the store name the field an error is about by its internal name
(``product.cost_sek: "12.5" har punkt …``, ``amount_sek: ange belopp …``), which the API passes on
as it is. A page shows the same message with the field's Swedish label instead, beside the field
(``aria-describedby``), and the form keeps what was typed. ``FieldError`` is that split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from vembetalar.model.case import LABELS
from vembetalar.model.money import SEK, BadAmount, Bounded, echo_sek, to_decimal

#: Form fields outside the Case (the case page's forms, the new-case form's patient part).
FORM_LABELS: dict[str, str] = {
    "kind": "ärendetyp",
    "patient_id": "personnummer",
    "occurred_on": "datum",
    "quantity": "antal",
    "unit_price_sek": "à-pris (kr)",
    "amount_sek": "belopp (kr)",
    "product_name": "benämning",
    "varunummer": "varunummer",
    "prescriber_name": "förskrivare",
    "unit_name": "arbetsplats/enhet",
    "diarienummer": "diarienummer",
    "amount_ceiling_sek": "högsta belopp (kr)",
    "valid_from": "gäller från",
    "valid_to": "gäller till",
    "valid_from/valid_to": "giltighetstid",
    "document_reference": "dokumentets diarienummer",
    "issuer": "utfärdare",
    "note": "anteckning",
    "reason": "skäl",
    "line": "fakturaunderlaget",
    "unit": "enheten",
    "unit.organisation": "organisation",
    "unit.name": "enhetens namn",
    "case_reference": "ärendenummer",
}

#: The amount fields of the desk's forms, read by ``money`` (``parse_sek``'s rules).
MONEY_FIELDS: dict[str, Bounded] = {
    "unit_price_sek": SEK,
    "amount_sek": SEK,
    "amount_ceiling_sek": SEK,
    **{name: SEK for name in LABELS if name.endswith("_sek")},
}

_PREFIX = re.compile(r"^(?P<field>[a-z_]+(?:[./][a-z_]+)*): (?P<text>.*)$", re.DOTALL)


def label(name: str) -> str:
    """A field's Swedish label, as it starts a sentence."""
    text = LABELS.get(name) or FORM_LABELS.get(name) or name
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class FieldError:
    """An error split into the field it is about (``None``: the form as a whole) and its text,
    which names the field by its label."""

    field: str | None
    text: str
    #: Only the reason, for the message beside the field (whose label is right above it).
    reason: str

    @property
    def element_id(self) -> str:
        return error_id(self.field or "form")


def error_id(name: str) -> str:
    """An HTML id for the message beside field ``name`` (dots are not welcome in CSS selectors)."""
    return "err-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def field_error(message: str) -> FieldError:
    match = _PREFIX.match(message)
    if match is None or not (match["field"] in LABELS or match["field"] in FORM_LABELS):
        return FieldError(None, message, message)
    name, reason = match["field"], match["text"]
    field = name.split("/", 1)[0]
    return FieldError(field, f"{label(name)}: {reason}", reason)


def echo_amount(text: str, bounds: Bounded = SEK) -> tuple[bool, str]:
    """What a typed amount is read as (``True, "12 000 kr"``), or why it is not one
    (``False, "har punkt som decimaltecken: skriv 12,5 kr"``); empty text says nothing."""
    if not text.strip():
        return True, ""
    try:
        value: Decimal = to_decimal(text, bounds, text="swedish")
    except BadAmount as exc:
        return False, str(exc)
    return True, f"= {echo_sek(value)}"
