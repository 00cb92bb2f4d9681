"""Case work as the store sees it: every read and change is scoped to the user's organisation
and written to the audit log. The web and API layers only translate HTTP to these calls."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vembetalar.model.case import Case
from vembetalar.model.decision import Decision
from vembetalar.rules.engine import Engine
from vembetalar.security import can
from vembetalar.store.models import (
    AuditEntry,
    BillableEvent,
    CaseParty,
    CaseRecord,
    CaseStep,
    PaymentCommitment,
    User,
)

#: The case's steps in order, with the words staff use for them.
STEPS: dict[str, str] = {
    "decided": "Beslut fattat",
    "contacted": "Hemregionen kontaktad",
    "commitment_registered": "Betalningsförbindelse registrerad",
    "dispensed": "Expedierat (läkemedel)",
    "delivered": "Levererat/utlämnat",
    "billable": "Fakturaunderlag skapat",
}
USER_STEPS = ("contacted", "commitment_registered", "dispensed", "delivered")


class NotFound(LookupError):
    """No such case for this user — also when it exists but belongs to others (no leak)."""


class Forbidden(PermissionError):
    """The user's role does not allow this."""


class StepRefused(ValueError):
    """The step cannot be taken now; the message says what must come first."""


class _HasIdentity(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def organisation_id(self) -> str: ...


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    role: str
    organisation_id: str

    @classmethod
    def of(cls, user: User | _HasIdentity) -> Actor:
        return cls(user.id, user.username, user.role, user.organisation_id)


def require(actor: Actor, permission: str) -> None:
    if not can(actor.role, permission):
        raise Forbidden(f"rollen {actor.role} får inte göra detta ({permission})")


def audit(
    db: Session, actor: Actor | None, action: str, case_id: str | None = None, detail: str | None = None
) -> None:
    db.add(
        AuditEntry(
            user_id=actor.user_id if actor and actor.user_id else None,
            username=actor.username if actor else "-",
            organisation_id=actor.organisation_id if actor else None,
            action=action,
            case_id=case_id,
            detail=detail,
        )
    )


def _parties(actor: Actor, decision: Decision) -> set[str]:
    parties = {actor.organisation_id}
    for party in (decision.decider, decision.payer, decision.invoicer):
        if party and party.startswith(("region:", "kommun:")):
            parties.add(party)
    return parties


def create_case(
    db: Session,
    engine: Engine,
    actor: Actor,
    case: Case,
    *,
    today: dt.date,
    patient_id: str | None = None,
    patient_initials: str | None = None,
    product_name: str | None = None,
    note: str | None = None,
) -> CaseRecord:
    require(actor, "case.create")
    decision = engine.decide(case)
    case_id = str(uuid.uuid4())
    record = CaseRecord(
        id=case_id,
        reference=f"VB-{today.year}-{case_id[:8].upper()}",
        created_by=actor.user_id,
        organisation_id=actor.organisation_id,
        kind=case.kind,
        case_date=case.date,
        case_json=case.model_dump(mode="json"),
        decision_json=decision.model_dump(mode="json"),
        status=decision.status,
        state="decided",
        decider=decision.decider,
        payer=decision.payer,
        invoicer=decision.invoicer,
        rule_id=decision.rule_id,
        patient_id=patient_id,
        patient_initials=patient_initials,
        product_name=product_name,
        note=note,
    )
    record.parties = [
        CaseParty(case_id=case_id, organisation_id=p) for p in sorted(_parties(actor, decision))
    ]
    db.add(record)
    db.flush()
    db.add(CaseStep(case_id=case_id, step="decided", user_id=actor.user_id, note=decision.status))
    audit(db, actor, "case.create", case_id, f"{decision.status} {decision.rule_id or ''}".strip())
    db.commit()
    return record


def _visible(actor: Actor) -> Any:
    return exists().where(
        CaseParty.case_id == CaseRecord.id, CaseParty.organisation_id == actor.organisation_id
    )


def list_cases(
    db: Session,
    actor: Actor,
    *,
    status: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    payer: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> Sequence[CaseRecord]:
    require(actor, "case.read")
    query = select(CaseRecord).where(_visible(actor))
    for column, value in (
        (CaseRecord.status, status),
        (CaseRecord.kind, kind),
        (CaseRecord.state, state),
        (CaseRecord.payer, payer),
    ):
        if value:
            query = query.where(column == value)
    query = query.order_by(CaseRecord.created_at.desc(), CaseRecord.id).limit(limit).offset(offset)
    rows = db.scalars(query).all()
    if rows:
        audit(db, actor, "case.list", None, ",".join(r.reference for r in rows[:50]))
        db.commit()
    return rows


def get_case(db: Session, actor: Actor, case_id: str, *, log: bool = True) -> CaseRecord:
    require(actor, "case.read")
    record = db.scalars(select(CaseRecord).where(CaseRecord.id == case_id, _visible(actor))).first()
    if record is None:
        raise NotFound("ärendet finns inte")
    if log:
        audit(db, actor, "case.read", case_id)
        db.commit()
    return record


def _done(record: CaseRecord) -> set[str]:
    return {s.step for s in record.steps}


def add_step(
    db: Session, actor: Actor, case_id: str, step: str, note: str | None = None, *, today: dt.date
) -> CaseRecord:
    """Take one step; delivering creates the billable event (once, whatever happens), dated
    ``today``."""
    require(actor, "case.step")
    if step not in USER_STEPS:
        raise StepRefused(f"okänt steg {step!r} (tillåtna: {', '.join(USER_STEPS)})")
    record = get_case(db, actor, case_id, log=False)
    done = _done(record)
    if record.status != "decided":
        raise StepRefused("ärendet saknar ett beslut (inget avtal eller uppgifter saknas); inga steg kan tas")
    if step in done:
        raise StepRefused(f"steget «{STEPS[step]}» är redan registrerat")
    if step in ("dispensed", "delivered"):
        expected = "dispensed" if record.kind == "drug_exception" else "delivered"
        if step != expected:
            raise StepRefused(f"för ärendetypen {record.kind} registreras «{STEPS[expected]}»")
        _check_ready_to_bill(record)
    if (
        step == "commitment_registered"
        and not db.scalars(select(PaymentCommitment.id).where(PaymentCommitment.case_id == case_id)).first()
    ):
        raise StepRefused("registrera betalningsförbindelsen (utfärdare, belopp, giltighet, dokument) först")
    db.add(CaseStep(case_id=case_id, step=step, user_id=actor.user_id, note=note))
    record.state = step
    audit(db, actor, "case.step", case_id, step)
    if step in ("dispensed", "delivered"):
        _billable_event(db, actor, record, step, today)
        db.add(CaseStep(case_id=case_id, step="billable", user_id=actor.user_id))
        record.state = "billable"
    try:
        db.commit()
    except IntegrityError:  # the same delivery registered by a concurrent request: its event key won
        db.rollback()
        raise StepRefused(f"steget «{STEPS[step]}» är redan registrerat") from None
    db.refresh(record)
    return record


def _check_ready_to_bill(record: CaseRecord) -> None:
    """What the agreement demands before treatment or hand-out must be done before billing."""
    decision, done = record.decision_json, _done(record)
    waiting = [
        k for k in ("prior_contact_required", "payment_commitment_required") if decision.get(k) is None
    ]
    if waiting:
        missing = ", ".join(decision.get("missing") or []) or "uppgifter"
        raise StepRefused(
            f"beslutet är inte färdigt ({', '.join(waiting)} är öppet tills {missing} är ifyllt); "
            "komplettera ärendet först"
        )
    if decision.get("prior_contact_required") and "contacted" not in done:
        raise StepRefused(
            "hemregionen måste kontaktas innan behandling/utlämning (steget «Hemregionen kontaktad»)"
        )
    if decision.get("payment_commitment_required") and "commitment_registered" not in done:
        raise StepRefused("en betalningsförbindelse måste registreras först")


def _billable_event(
    db: Session, actor: Actor, record: CaseRecord, kind: str, today: dt.date
) -> BillableEvent:
    cost = (record.case_json.get("product") or {}).get("cost_sek")
    event = BillableEvent(
        idempotency_key=f"case:{record.id}:{kind}",
        case_id=record.id,
        kind=kind,
        occurred_on=today,
        issuer=record.invoicer,
        recipient=record.payer,
        amount_sek=Decimal(str(cost)) if cost is not None else None,
        quantity=Decimal(1),
        product_name=record.product_name,
        decision_json=record.decision_json,
        created_by=actor.user_id,
    )
    db.add(event)
    audit(db, actor, "event.create", record.id, event.idempotency_key)
    return event


def register_commitment(
    db: Session,
    actor: Actor,
    case_id: str,
    *,
    issuer: str,
    amount_ceiling_sek: Decimal,
    valid_from: dt.date,
    valid_to: dt.date,
    document_reference: str,
) -> PaymentCommitment:
    require(actor, "commitment.create")
    record = get_case(db, actor, case_id, log=False)
    if valid_to < valid_from:
        raise StepRefused("valid_to: slutar före valid_from")
    if record.payer and issuer != record.payer:
        raise StepRefused(f"issuer: betalningsförbindelsen ska utfärdas av betalaren ({record.payer})")
    commitment = PaymentCommitment(
        case_id=case_id,
        issuer=issuer,
        amount_ceiling_sek=amount_ceiling_sek,
        valid_from=valid_from,
        valid_to=valid_to,
        document_reference=document_reference,
        created_by=actor.user_id,
    )
    db.add(commitment)
    audit(db, actor, "commitment.create", case_id, document_reference)
    db.commit()
    return commitment


def list_commitments(db: Session, actor: Actor, case_id: str | None = None) -> Sequence[PaymentCommitment]:
    require(actor, "case.read")
    query = (
        select(PaymentCommitment)
        .join(CaseRecord, CaseRecord.id == PaymentCommitment.case_id)
        .where(_visible(actor))
    )
    if case_id:
        query = query.where(PaymentCommitment.case_id == case_id)
    return db.scalars(query.order_by(PaymentCommitment.id)).all()


def create_event(
    db: Session,
    actor: Actor,
    case_id: str,
    *,
    idempotency_key: str,
    kind: str,
    occurred_on: dt.date,
    amount_sek: Decimal | None,
    quantity: Decimal | None,
    product_name: str | None,
) -> tuple[BillableEvent, bool]:
    """Store an event once: the same key again returns the stored event and ``False``."""
    require(actor, "event.create")
    record = get_case(db, actor, case_id, log=False)
    if record.status != "decided":
        raise StepRefused("ärendet saknar ett beslut; inget fakturaunderlag kan skapas")
    existing = db.scalars(
        select(BillableEvent).where(
            BillableEvent.case_id == case_id, BillableEvent.idempotency_key == idempotency_key
        )
    ).first()
    if existing is not None:
        return existing, False
    _check_ready_to_bill(record)
    event = BillableEvent(
        idempotency_key=idempotency_key,
        case_id=case_id,
        kind=kind,
        occurred_on=occurred_on,
        issuer=record.invoicer,
        recipient=record.payer,
        amount_sek=amount_sek,
        quantity=quantity,
        product_name=product_name,
        decision_json=record.decision_json,
        created_by=actor.user_id,
    )
    db.add(event)
    audit(db, actor, "event.create", case_id, idempotency_key)
    try:
        db.commit()
    except IntegrityError:  # a concurrent request stored the same key first
        db.rollback()
        stored = db.scalars(
            select(BillableEvent).where(
                BillableEvent.case_id == case_id, BillableEvent.idempotency_key == idempotency_key
            )
        ).one()
        return stored, False
    return event, True


def list_events(db: Session, actor: Actor, case_id: str | None = None) -> Sequence[BillableEvent]:
    require(actor, "event.read")
    query = (
        select(BillableEvent).join(CaseRecord, CaseRecord.id == BillableEvent.case_id).where(_visible(actor))
    )
    if case_id:
        query = query.where(BillableEvent.case_id == case_id)
    return db.scalars(query.order_by(BillableEvent.id)).all()


def list_audit(
    db: Session, actor: Actor, *, limit: int = 500, case_id: str | None = None
) -> Sequence[AuditEntry]:
    """An admin sees what the users of their organisation did, and everything done to cases
    their organisation is party to."""
    require(actor, "audit.read")
    about_ours = exists().where(
        CaseParty.case_id == AuditEntry.case_id, CaseParty.organisation_id == actor.organisation_id
    )
    query = select(AuditEntry).where((AuditEntry.organisation_id == actor.organisation_id) | about_ours)
    if case_id:
        query = query.where(AuditEntry.case_id == case_id)
    rows = db.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)).all()
    audit(db, actor, "audit.read", None, f"{len(rows)} rader")
    db.commit()
    return rows
