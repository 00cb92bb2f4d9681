"""Credit notes: the only way an issued invoice is corrected. An invoice is never edited; a credit
note in the issuer's own gap-free series ("K") refers to it and reverses it in full.

The credited invoice's events are released in the same transaction: those that still stand can be
invoiced again by the next run (to the right recipient, or with a corrected line), and those that
were superseded stay out, since their correction is a new event of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vembetalar.billing.document import document_from_json, document_to_json
from vembetalar.billing.run import ensure_series, next_number
from vembetalar.billing.run import number_text as format_number
from vembetalar.store.models import BilledEvent, Invoice

CREDIT_SERIES = "K"


class CannotCredit(ValueError):
    """The invoice cannot be credited (not found, already credited, itself a credit note)."""


def credit_invoice(
    db: Session,
    *,
    issuer: str,
    number_text: str,
    reason: str,
    today: dt.date,
    user_id: int | None = None,
) -> Invoice:
    """A credit note reversing ``issuer``'s invoice ``number_text`` in full, with ``reason`` as its
    note; the original's status becomes ``credited``."""
    if not reason.strip():
        raise CannotCredit("ange varför fakturan krediteras (skäl)")
    original = db.scalars(
        select(Invoice).where(Invoice.issuer == issuer, Invoice.number_text == number_text)
    ).first()
    if original is None:
        raise CannotCredit(f"{issuer} har ingen faktura {number_text}")
    if original.kind != "invoice":
        raise CannotCredit(f"{number_text} är en kreditnota; den krediteras inte i sin tur")
    ensure_series(db, issuer, CREDIT_SERIES)
    number = next_number(db, issuer, CREDIT_SERIES)
    db.refresh(original)  # after the lock: a concurrent credit of the same invoice is seen
    if original.status == "credited":
        db.rollback()
        raise CannotCredit(f"{number_text} är redan krediterad")
    invoiced = document_from_json(original.document_json)
    document = replace(
        invoiced,
        kind="credit_note",
        number=format_number(CREDIT_SERIES, issuer, number),
        issue_date=today,
        due_date=today,
        notes=(f"Kreditnota för faktura {invoiced.number}: {reason.strip()}", *invoiced.notes),
        corrects=(invoiced.number, invoiced.issue_date),
    )
    credit = Invoice(
        issuer=issuer,
        series=CREDIT_SERIES,
        number=number,
        number_text=document.number,
        kind="credit_note",
        recipient=original.recipient,
        route=original.route,
        period=original.period,
        issue_date=today,
        due_date=today,
        total_sek=document.payable,
        status="draft",
        corrects_id=original.id,
        document_json=document_to_json(document),
        created_by=user_id,
    )
    db.add(credit)
    original.status = "credited"
    db.execute(delete(BilledEvent).where(BilledEvent.invoice_id == original.id))
    db.commit()
    return credit
