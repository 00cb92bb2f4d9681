"""Värmland's order copy (seed 004): "skall mejla kopia på beställningen till sakattestant och
fakturahandläggare Isabell Hassel". The desk writes the copy from the case — what was ordered,
by which unit and doctor, for which patient by initials (all the region's invoice may carry) —
sends it to the address in the pack, and records that it went.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from vembetalar import mail
from vembetalar.billing.pdf import money
from vembetalar.model import codes
from vembetalar.store import repo
from vembetalar.workflow import StepRefused, check


@dataclass(frozen=True)
class CopyOutcome:
    kind: Literal["sent", "preview"]
    to: str
    subject: str
    text: str


def compose(db: Session, actor: repo.Actor, case_id: str) -> tuple[str, str, str]:
    """(to, subject, text) of the copy, for a case whose decision asks for one."""
    record = repo.get_case(db, actor, case_id, log=False)
    view = repo.case_view(db, record)
    check(view, "contacted", organisation=actor.organisation_id, role=actor.role)
    contact = view.decision.contact
    if contact is None or not contact.order_copy or not contact.email:
        raise StepRefused("beslutet kräver ingen kopia på beställningen")
    lines = [
        f"Kopia på beställning – {record.reference}",
        "",
        f"Beställande kommun: {codes.party_name(record.organisation_id)}",
        f"Betalare enligt avtalet: {codes.party_name(record.payer or '')}",
        f"Vårdtagarens initialer: {record.patient_initials or 'ej angivna'}",
    ]
    standing = [
        e
        for e, superseded_by in repo.list_events(db, actor, case_id)
        if superseded_by is None and not e.cancelled
    ]
    if not standing:
        lines.append(f"Produkt: {record.product_name or 'ej angiven'}")
    for e in standing:
        parts = [e.occurred_on.isoformat(), e.product_name or record.product_name or "produkt"]
        parts += [f"varunummer {e.varunummer}"] if e.varunummer else []
        parts += [f"antal {e.quantity.normalize():f}"] if e.quantity is not None else []
        parts += [f"{money(e.amount_sek)} kr"] if e.amount_sek is not None else []
        parts += [f"ordinerande enhet {e.unit_name}"] if e.unit_name else []
        parts += [f"ordinerande läkare {e.prescriber_name}"] if e.prescriber_name else []
        lines.append("- " + ", ".join(parts))
    return contact.email, f"Kopia på beställning {record.reference}", "\n".join(lines) + "\n"


def send_copy(
    db: Session, actor: repo.Actor, case_id: str, *, today: dt.date, settings: mail.MailSettings | None
) -> CopyOutcome:
    """Send the copy and record the step; without a mail server (the demo) only show it."""
    to, subject, text = compose(db, actor, case_id)
    if settings is None:
        return CopyOutcome("preview", to, subject, text)
    mail.send(settings, mail.message(settings.sender, to, subject, text))
    repo.add_step(db, actor, case_id, "contacted", f"kopia på beställningen mejlad till {to}", today=today)
    return CopyOutcome("sent", to, subject, text)
