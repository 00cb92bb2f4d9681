"""The registration request for Sesam LMN (seed 001), with exactly the fields the agreement lists.

"Skicka in följande uppgifter för att få hjälp med registrering av patient i Sesam LMN:
personnummer, namn, gatuadress (inklusive eventuell c/o-namn), postnummer och postadress,
telefonnummer, (eventuell portkod eller om det finns porttelefon), namn och e-postadress till
ansvarig förskrivare". The name, address and phone are asked for at this step and used only to
compose the request: they are never stored, logged, or copied into the case or an invoice. What
the case keeps is that the request went, how, and to whom.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from vembetalar.billing.pdf import pdf_of
from vembetalar.model.decision import Clearance
from vembetalar.security import BadPersonnummer, normalise_personnummer

#: The agreement's fields in its own words, in its order.
FIELD_LABELS: dict[str, str] = {
    "personnummer": "Patientens personnummer",
    "name": "Namn",
    "street_address": "Gatuadress (inklusive eventuell c/o-namn)",
    "postcode_town": "Postnummer och postadress",
    "phone": "Telefonnummer",
    "door_code": "Portkod eller porttelefon",
    "prescriber": "Ansvarig förskrivare (namn och e-postadress) för återkoppling",
}
SUBJECT = "Registrering av patient i {system}"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_POSTCODE = re.compile(r"^\d{3} ?\d{2}$")
_PHONE = re.compile(r"^\+?[\d\s-]{6,20}$")


class BadRequest(ValueError):
    """A field of the request that cannot be right; the message names it."""


@dataclass(frozen=True)
class RegistrationForm:
    """What the prescriber types at the step: held in memory while the request is made."""

    personnummer: str
    name: str
    street_address: str
    co_name: str
    postcode: str
    town: str
    phone: str
    door_code: str
    prescriber_name: str
    prescriber_email: str


def _text(value: str, field: str, *, limit: int = 120, required: bool = True) -> str:
    cleaned = " ".join(value.split())
    if required and not cleaned:
        raise BadRequest(f"{field}: fyll i")
    if len(cleaned) > limit:
        raise BadRequest(f"{field}: högst {limit} tecken")
    return cleaned


def request_values(form: RegistrationForm) -> dict[str, str]:
    """The request's values by field, checked (Luhn, postcode, phone, e-mail)."""
    try:
        personnummer = normalise_personnummer(form.personnummer)
    except BadPersonnummer:
        raise BadRequest("personnummer: inte ett giltigt personnummer eller samordningsnummer") from None
    postcode = _text(form.postcode, "postcode", limit=6)
    if not _POSTCODE.match(postcode):
        raise BadRequest("postcode: fem siffror, t.ex. 291 33")
    phone = _text(form.phone, "phone", limit=20)
    if not _PHONE.match(phone):
        raise BadRequest("phone: ett telefonnummer, t.ex. 070-123 45 67")
    email = _text(form.prescriber_email, "prescriber_email", limit=120)
    if not _EMAIL.match(email):
        raise BadRequest("prescriber_email: en e-postadress, t.ex. namn@skane.se")
    street = _text(form.street_address, "street_address")
    co_name = _text(form.co_name, "co_name", required=False)
    door = _text(form.door_code, "door_code", limit=60, required=False)
    return {
        "personnummer": personnummer,
        "name": _text(form.name, "name"),
        "street_address": f"c/o {co_name}, {street}" if co_name else street,
        "postcode_town": f"{postcode[:3]} {postcode[-2:]} {_text(form.town, 'town', limit=60)}",
        "phone": phone,
        "door_code": door or "Ingen portkod eller porttelefon angiven",
        "prescriber": f"{_text(form.prescriber_name, 'prescriber_name')}, {email}",
    }


def request_lines(clearance: Clearance, values: dict[str, str]) -> list[tuple[str, str]]:
    """Exactly the fields the agreement lists for this request, labelled in its words."""
    assert clearance.request is not None
    return [(FIELD_LABELS[f], values[f]) for f in clearance.request.fields]


def request_text(clearance: Clearance, values: dict[str, str]) -> str:
    """The e-mail body: a heading and the fields, nothing else."""
    lines = [f"Registrering av patient i {clearance.system}", ""]
    lines += [f"{label}: {value}" for label, value in request_lines(clearance, values)]
    return "\n".join(lines) + "\n"


def subject(clearance: Clearance) -> str:
    """No personal data in the subject line (it travels in clear in many mail systems)."""
    return SUBJECT.format(system=clearance.system)


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("vembetalar.handoffs", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def request_pdf(clearance: Clearance, values: dict[str, str]) -> bytes:
    """One A4 page for fax or post, addressed as the agreement says, with the same fields."""
    assert clearance.request is not None
    html = (
        _environment()
        .get_template("sesam_request.html")
        .render(clearance=clearance, request=clearance.request, lines=request_lines(clearance, values))
    )
    return pdf_of(html)
