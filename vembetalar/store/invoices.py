"""The invoice clerk's desk as the store sees it: invoices scoped to the user's organisation, the
issuer's status and the recipient's own handling, the invoice run, and totals.

An invoice has two sides. Its issuer moves ``invoices.status`` (draft → sent → paid; a credit
note, not this module, makes it credited). Its recipient keeps its own handling in
``invoice_receipts`` (received → checked → attested | disputed), so neither side can move the
other's status. A draft has not been sent: the recipient does not see it at all (404, as for an
invoice of other organisations). Every change and every read of an invoice is audited.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from vembetalar.billing.run import RegistryIncomplete, RunReport, month_bounds, run_invoices
from vembetalar.rules.engine import Engine
from vembetalar.store import repo
from vembetalar.store.models import AuditEntry, Invoice, InvoiceReceipt, utcnow

Direction = Literal["out", "in"]

#: The issuer's status (``invoices.status``) as the desk names it.
ISSUER_STATES: dict[str, str] = {
    "draft": "Utkast",
    "sent": "Skickad",
    "paid": "Betald",
    "credited": "Krediterad",
}
#: The recipient's own handling (``invoice_receipts.status``; no row is "received").
RECIPIENT_STATES: dict[str, str] = {
    "received": "Mottagen",
    "checked": "Granskad",
    "attested": "Attesterad",
    "disputed": "Bestriden",
}
STATUS_NAMES: dict[str, str] = {**ISSUER_STATES, **RECIPIENT_STATES}
#: Which status may follow which, per side. ``credited`` comes only from a credit note.
ISSUER_STEPS: dict[str, tuple[str, ...]] = {"draft": ("sent",), "sent": ("paid",)}
RECIPIENT_STEPS: dict[str, tuple[str, ...]] = {"received": ("checked",), "checked": ("attested", "disputed")}
#: The button for each move.
STEP_NAMES: dict[str, str] = {
    "sent": "Markera som skickad",
    "paid": "Markera som betald",
    "checked": "Markera som granskad",
    "attested": "Attestera",
    "disputed": "Bestrid",
}
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class InvoiceView:
    """An invoice as one organisation sees it: which side it is on and the status that side keeps."""

    invoice: Invoice
    direction: Direction
    #: The issuer's status (the recipient sees it too: sent, paid).
    issuer_status: str
    #: The recipient's own handling; None on the issuer's side (it is the recipient's business).
    receipt_status: str | None

    @property
    def status(self) -> str:
        """The status this side moves."""
        return self.receipt_status if self.direction == "in" and self.receipt_status else self.issuer_status

    @property
    def counterparty(self) -> str:
        return self.invoice.recipient if self.direction == "out" else self.invoice.issuer

    @property
    def next_steps(self) -> tuple[str, ...]:
        steps = ISSUER_STEPS if self.direction == "out" else RECIPIENT_STEPS
        return steps.get(self.status, ())


@dataclass(frozen=True)
class TotalRow:
    direction: Direction
    counterparty: str
    period: str
    count: int
    total: Decimal


def valid_period(period: str | None) -> str | None:
    """``2025-09``, or None for anything else (filters ignore it; the run refuses it)."""
    return period if period and PERIOD.fullmatch(period) else None


def _side(actor: repo.Actor, invoice: Invoice) -> Direction | None:
    if invoice.issuer == actor.organisation_id:
        return "out"
    if invoice.recipient == actor.organisation_id and invoice.status != "draft":
        return "in"
    return None


def _query(actor: repo.Actor, direction: Direction) -> Select[Invoice, str | None]:
    """The actor's side's invoices, for lists and sums: without their documents (one can have a
    hundred thousand lines; loaded if asked for)."""
    query = (
        select(Invoice, InvoiceReceipt.status)
        .outerjoin(InvoiceReceipt, InvoiceReceipt.invoice_id == Invoice.id)
        .options(defer(Invoice.document_json))
    )
    if direction == "out":
        return query.where(Invoice.issuer == actor.organisation_id)
    return query.where(Invoice.recipient == actor.organisation_id, Invoice.status != "draft")


def _view(invoice: Invoice, receipt: str | None, direction: Direction) -> InvoiceView:
    return InvoiceView(
        invoice, direction, invoice.status, (receipt or "received") if direction == "in" else None
    )


def list_invoices(
    db: Session,
    actor: repo.Actor,
    *,
    direction: Direction = "out",
    status: str | None = None,
    period: str | None = None,
    limit: int = 1000,
) -> list[InvoiceView]:
    """Outgoing: the actor's organisation issued them; incoming: it is the recipient (drafts are
    not yet sent and not listed). ``status`` filters on the status this side keeps."""
    repo.require(actor, "invoice.read")
    query = _query(actor, direction)
    if status:
        if direction == "out":
            query = query.where(Invoice.status == status)
        else:
            query = query.where(func.coalesce(InvoiceReceipt.status, "received") == status)
    if period:
        query = query.where(Invoice.period == period)
    query = query.order_by(Invoice.issue_date.desc(), Invoice.id.desc()).limit(limit)
    return [_view(invoice, receipt, direction) for invoice, receipt in db.execute(query).all()]


def _load(db: Session, actor: repo.Actor, invoice_id: int, *, lock: bool = False) -> InvoiceView:
    query = (
        select(Invoice, InvoiceReceipt.status)
        .outerjoin(InvoiceReceipt, InvoiceReceipt.invoice_id == Invoice.id)
        .where(Invoice.id == invoice_id)
    )
    row = db.execute(query).first()
    direction = _side(actor, row[0]) if row else None
    if row is None or direction is None:
        raise repo.NotFound("fakturan finns inte")
    if lock:  # serialise concurrent changes of one invoice (SQLite locks the database anyway)
        db.execute(select(Invoice.id).where(Invoice.id == invoice_id).with_for_update())
    return _view(row[0], row[1], direction)


def get_invoice(db: Session, actor: repo.Actor, invoice_id: int, *, what: str = "sida") -> InvoiceView:
    """One invoice the actor's organisation issued or received; NotFound otherwise (no leak).
    The read is audited (``what``: page, xml, pdf), as the document may carry patient data."""
    repo.require(actor, "invoice.read")
    view = _load(db, actor, invoice_id)
    repo.audit(db, actor, "invoice.read", None, f"{view.invoice.number_text} {what} (id {invoice_id})")
    db.commit()
    return view


def _refuse_other_side(view: InvoiceView, status: str) -> None:
    if view.direction == "out" and status in RECIPIENT_STATES:
        raise repo.Forbidden(
            f"«{STATUS_NAMES[status]}» är mottagarens egen handläggning; den sätts av mottagaren, "
            "inte av avsändaren"
        )
    if view.direction == "in" and status in ISSUER_STATES:
        raise repo.Forbidden(
            f"«{STATUS_NAMES[status]}» är avsändarens status; den sätts av avsändaren, inte av mottagaren"
        )


def set_status(db: Session, actor: repo.Actor, invoice_id: int, status: str) -> InvoiceView:
    """Move this side's status one step (see ISSUER_STEPS and RECIPIENT_STEPS), audited.

    Forbidden (403) for a role without ``invoice.write`` or a status the other side keeps;
    StepRefused (409) for a move the status does not allow (or that another user made first)."""
    repo.require(actor, "invoice.write")
    view = _load(db, actor, invoice_id, lock=True)
    if status not in STATUS_NAMES:
        raise repo.StepRefused(f"okänd status {status[:20]!r} (tillåtna: {', '.join(STATUS_NAMES)})")
    _refuse_other_side(view, status)
    old, invoice = view.status, view.invoice
    if status == "credited":
        raise repo.StepRefused("en faktura krediteras med en kreditnota, inte genom att ändra status")
    if status not in view.next_steps:
        allowed = ", ".join(STATUS_NAMES[s] for s in view.next_steps) or "ingen"
        raise repo.StepRefused(
            f"fakturan {invoice.number_text} är {STATUS_NAMES[old].lower()} och kan inte bli "
            f"{STATUS_NAMES[status].lower()} (härifrån: {allowed.lower()})"
        )
    now = utcnow()
    try:
        if view.direction == "out":
            result = db.execute(
                update(Invoice).where(Invoice.id == invoice_id, Invoice.status == old).values(status=status)
            )
            changed = int(getattr(result, "rowcount", 0) or 0)
        elif view.receipt_status == "received" and db.get(InvoiceReceipt, invoice_id) is None:
            db.add(
                InvoiceReceipt(
                    invoice_id=invoice_id,
                    status=status,
                    checked_at=now if status == "checked" else None,
                    updated_at=now,
                )
            )
            db.flush()
            changed = 1
        else:
            values: dict[str, object] = {"status": status, "updated_at": now}
            if status == "checked":
                values["checked_at"] = now
            result = db.execute(
                update(InvoiceReceipt)
                .where(InvoiceReceipt.invoice_id == invoice_id, InvoiceReceipt.status == old)
                .values(**values)
            )
            changed = int(getattr(result, "rowcount", 0) or 0)
    except IntegrityError:
        changed = 0
    if not changed:
        db.rollback()
        raise repo.StepRefused(f"fakturan {invoice.number_text} ändrades av någon annan; ladda om sidan")
    repo.audit(db, actor, "invoice.status", None, f"{invoice.number_text} {old}→{status} (id {invoice_id})")
    db.commit()
    return _load(db, actor, invoice_id)


def history(db: Session, actor: repo.Actor, invoice_id: int) -> Sequence[AuditEntry]:
    """This side's status changes of the invoice, oldest first, from the audit log (the other
    side's handling and its staff's names are its own)."""
    repo.require(actor, "invoice.read")
    _load(db, actor, invoice_id)
    return db.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.action == "invoice.status",
            AuditEntry.organisation_id == actor.organisation_id,
            AuditEntry.detail.like(f"% (id {invoice_id})"),
        )
        .order_by(AuditEntry.id)
    ).all()


def status_change(entry: AuditEntry) -> tuple[str, str] | None:
    """(old, new) from an ``invoice.status`` entry's detail, or None."""
    match = re.search(r" (\w+)→(\w+) \(id \d+\)$", entry.detail or "")
    return (match[1], match[2]) if match else None


def totals(db: Session, actor: repo.Actor) -> list[TotalRow]:
    """Sums per direction, counterparty and month (the invoice's period), oldest month first.
    Credit notes count negative. Amounts are summed as Decimal here, not by the database."""
    repo.require(actor, "invoice.read")
    sums: dict[tuple[Direction, str, str], list[Decimal]] = defaultdict(list)
    sides: tuple[Direction, ...] = ("out", "in")
    for side in sides:
        for invoice, _ in db.execute(_query(actor, side)).all():
            sign = -1 if invoice.kind == "credit_note" else 1
            counterparty = invoice.recipient if side == "out" else invoice.issuer
            sums[(side, counterparty, invoice.period)].append(sign * Decimal(invoice.total_sek))
    return [
        TotalRow(direction, counterparty, period, len(amounts), sum(amounts, Decimal(0)))
        for (direction, counterparty, period), amounts in sorted(
            sums.items(), key=lambda item: (item[0][2], item[0][0] != "out", item[0][1])
        )
    ]


def run_for(db: Session, engine: Engine, actor: repo.Actor, period: str, today: dt.date) -> RunReport:
    """Invoice the actor's own organisation's standing events of ``period`` (an invoice clerk
    runs their own organisation's invoices, never another's), audited. RegistryIncomplete and
    a bad period (ValueError) reach the caller with a message for the user."""
    repo.require(actor, "invoice.write")
    if not valid_period(period):
        raise ValueError(f"perioden {period[:20]!r} ska vara en månad som ÅÅÅÅ-MM")
    month_bounds(period)
    try:
        report = run_invoices(
            db, engine, issuer=actor.organisation_id, period=period, today=today, user_id=actor.user_id
        )
    except RegistryIncomplete:
        db.rollback()
        repo.audit(
            db, actor, "invoice.run", None, f"{period}: avbruten, organisationsregistret ofullständigt"
        )
        db.commit()
        raise
    numbers = ", ".join(i.number_text for i in report.invoices[:50])
    repo.audit(
        db,
        actor,
        "invoice.run",
        None,
        f"{period}: {len(report.invoices)} fakturor{f' ({numbers})' if numbers else ''}, "
        f"{len(report.pending)} väntar, {len(report.billed_elsewhere)} faktureras annanstans",
    )
    db.commit()
    return report


def credit(db: Session, actor: repo.Actor, invoice_id: int, reason: str, today: dt.date) -> Invoice:
    """The issuer's clerk credits one of their invoices in full (a credit note, never an edit)."""
    from vembetalar.billing.credit import CannotCredit, credit_invoice

    repo.require(actor, "invoice.write")
    view = _load(db, actor, invoice_id)
    if view.direction != "out":
        raise repo.Forbidden("bara den som skickat fakturan kan kreditera den")
    try:
        note = credit_invoice(
            db,
            issuer=view.invoice.issuer,
            number_text=view.invoice.number_text,
            reason=reason,
            today=today,
            user_id=actor.user_id,
        )
    except CannotCredit as exc:
        raise repo.StepRefused(str(exc)) from None
    repo.audit(
        db,
        actor,
        "invoice.credit",
        None,
        f"{view.invoice.number_text} → {note.number_text} (id {invoice_id})",
    )
    db.commit()
    return note
