"""Passwords, API tokens, roles and personnummer: what decides who may see what.

Personnummer are sensitive (Patientdatalagen): they are validated with their check digit,
shown in full only to roles whose work needs them, and never written to a log or a URL.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from personnummer import personnummer as pnr_lib

Role = Literal["prescriber", "invoice_clerk", "pharma_unit", "mas", "admin"]
ROLES: tuple[Role, ...] = ("prescriber", "invoice_clerk", "pharma_unit", "mas", "admin")
ROLE_NAMES = {
    "prescriber": "Förskrivare",
    "invoice_clerk": "Fakturahandläggare",
    "pharma_unit": "Läkemedelsenhet/hjälpmedelscentral",
    "mas": "MAS",
    "admin": "Administratör",
}

#: What each role may do. Seeing personnummer in full is a permission of its own.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "case.create": frozenset({"prescriber", "mas"}),
    "case.read": frozenset(ROLES),
    "case.step": frozenset({"prescriber", "mas", "invoice_clerk"}),
    "commitment.create": frozenset({"prescriber", "invoice_clerk"}),
    "event.create": frozenset({"prescriber", "mas", "invoice_clerk"}),
    "event.read": frozenset({"invoice_clerk", "pharma_unit", "admin", "prescriber", "mas"}),
    "patient_id.read": frozenset({"prescriber", "invoice_clerk", "mas"}),
    "audit.read": frozenset({"admin"}),
    "invoice.read": frozenset({"invoice_clerk", "admin"}),
    "invoice.write": frozenset({"invoice_clerk"}),
    # oversight (issue 9): the pharmaceutical unit owns its region's dispensing flags
    "oversight.read": frozenset({"pharma_unit"}),
    "oversight.review": frozenset({"pharma_unit"}),
    # supply (drug stocks and shortages): see vembetalar/supply/access.py for which stocks
    "supply.read": frozenset({"mas", "pharma_unit", "admin"}),
    "supply.withdraw": frozenset({"mas"}),
    "supply.manage": frozenset({"mas", "pharma_unit"}),
}

_hasher = PasswordHasher()


def can(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """API tokens are long random strings, so a plain SHA-256 is the right (fast) lookup key."""
    return hashlib.sha256(token.encode()).hexdigest()


class BadPersonnummer(ValueError):
    """Not a valid personnummer or samordningsnummer."""


def normalise_personnummer(raw: str) -> str:
    """``YYYYMMDD-NNNN`` (or with + for 100 years and older), checked with the Luhn digit.

    Samordningsnummer (day + 60) are accepted, as Skatteverket issues them.
    """
    try:
        parsed = pnr_lib.Personnummer(raw.strip())
    except (pnr_lib.PersonnummerException, ValueError, TypeError):
        raise BadPersonnummer("är inte ett giltigt personnummer eller samordningsnummer") from None
    long = parsed.format(True)
    return f"{long[:8]}-{long[8:]}"


def mask_personnummer(value: str | None) -> str | None:
    """``19811228-****``: the birth date stays readable, the identifying digits do not."""
    if not value:
        return value
    return value[:9] + "****"


def patient_id_for(role: str, value: str | None) -> str | None:
    """The personnummer as this role may see it: in full, or masked."""
    return value if can(role, "patient_id.read") else mask_personnummer(value)


def initials(full_name: str) -> str:
    """Patient initials, which is all Region Värmland's invoices may carry."""
    return "".join(part[0].upper() for part in full_name.split() if part)[:6]
