"""Case work as the store sees it: every read and change is scoped to the user's organisation
and written to the audit log. The web and API layers only translate HTTP to these calls; which
step may be taken when, and by whom, is ``vembetalar.workflow``'s to say — this module asks it
and then writes, each user action in one transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from vembetalar.model import codes
from vembetalar.model.case import Case
from vembetalar.model.decision import Decision
from vembetalar.rules.engine import Engine
from vembetalar.security import can
from vembetalar.store.decisions import decision_id
from vembetalar.store.models import (
    AuditEntry,
    BillableEvent,
    CaseDecision,
    CaseParty,
    CaseRecord,
    CaseStep,
    PaymentCommitment,
    User,
)
from vembetalar.workflow import (
    ENDED,
    LINE_STEPS,
    REPEATABLE,
    BadLine,
    CaseView,
    EventLine,
    Forbidden,
    SelfCareUnit,
    StepRefused,
    authorise,
    bills_case,
    check,
    check_ceiling,
    check_line_date,
    check_unit,
    label,
    line_amount,
    state,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")

__all__ = ["Actor", "BadLine", "EventLine", "Forbidden", "NotFound", "StepRefused"]


class NotFound(LookupError):
    """No such case for this user — also when it exists but belongs to others (no leak)."""


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
    first = state(view_of(record, done=()))  # decided, needs_facts or no_agreement
    db.add(CaseStep(case_id=case_id, step="decided", once="decided", user_id=actor.user_id, note=first))
    db.add(
        CaseDecision(
            case_id=case_id,
            user_id=actor.user_id,
            case_json=record.case_json,
            decision_json=record.decision_json,
            reason=None,
        )
    )
    record.state = state(view_of(record, done=("decided",)))
    audit(db, actor, "case.create", case_id, f"{decision.status} {decision.rule_id or ''}".strip())
    db.commit()
    return record


def visible_to(actor: Actor) -> Any:
    """The condition that a case is one the actor's organisation is party to: how every read
    is scoped."""
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
    reference: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    party: str | None = None,
    patient_id: str | None = None,
) -> Sequence[CaseRecord]:
    """The cases ``actor`` may see, newest first, narrowed by any of: status, kind, state, payer,
    a part of the case number, the case's date (``since``/``until``, both included), a party to
    the case, and the patient (a normalised personnummer; the caller checks who may search by it)."""
    require(actor, "case.read")
    query = select(CaseRecord).where(visible_to(actor))
    for column, value in (
        (CaseRecord.status, status),
        (CaseRecord.kind, kind),
        (CaseRecord.state, state),
        (CaseRecord.payer, payer),
        (CaseRecord.patient_id, patient_id),
    ):
        if value:
            query = query.where(column == value)
    if reference:
        query = query.where(func.upper(CaseRecord.reference).contains(reference.upper(), autoescape=True))
    if since is not None:
        query = query.where(CaseRecord.case_date >= since)
    if until is not None:
        query = query.where(CaseRecord.case_date <= until)
    if party:
        query = query.where(
            exists().where(CaseParty.case_id == CaseRecord.id, CaseParty.organisation_id == party)
        )
    query = query.order_by(CaseRecord.created_at.desc(), CaseRecord.id).limit(limit).offset(offset)
    rows = db.scalars(query).all()
    if rows:
        audit(db, actor, "case.list", None, ",".join(r.reference for r in rows[:50]))
        db.commit()
    return rows


def get_case(db: Session, actor: Actor, case_id: str, *, log: bool = True) -> CaseRecord:
    require(actor, "case.read")
    record = db.scalars(select(CaseRecord).where(CaseRecord.id == case_id, visible_to(actor))).first()
    if record is None:
        raise NotFound("ärendet finns inte")
    if log:
        audit(db, actor, "case.read", case_id)
        db.commit()
    return record


def view_of(
    record: CaseRecord,
    *,
    done: tuple[str, ...] | None = None,
    has_events: bool = False,
    returning: bool = False,
) -> CaseView:
    """The workflow's view of a stored case."""
    return CaseView(
        kind=record.kind,
        decision=Decision.model_validate(record.decision_json),
        owner=record.organisation_id,
        done=done if done is not None else tuple(s.step for s in record.steps),
        has_events=has_events,
        payer_unit=record.payer_unit_organisation,
        returning=returning,
    )


def returning_patient(db: Session, record: CaseRecord) -> bool:
    """Whether the patient comes back: an earlier case of the same organisation for the same
    personnummer got its go-ahead (klartecken). Without a personnummer nobody can tell."""
    if not record.patient_id or not (record.decision_json or {}).get("clearance"):
        return False
    earlier = (
        select(CaseRecord.id)
        .join(CaseStep, CaseStep.case_id == CaseRecord.id)
        .where(
            CaseRecord.patient_id == record.patient_id,
            CaseRecord.organisation_id == record.organisation_id,
            CaseRecord.id != record.id,
            CaseRecord.created_at <= record.created_at,
            CaseStep.step == "cleared",
        )
        .limit(1)
    )
    return db.scalar(earlier) is not None


def case_view(db: Session, record: CaseRecord) -> CaseView:
    """The workflow's view with what only the database knows: standing events, a returning patient."""
    return view_of(record, has_events=has_events(db, record.id), returning=returning_patient(db, record))


def lock_case(db: Session, case_id: str) -> None:
    """Serialise changes to one case: the first write of the transaction touches the case row,
    so a concurrent request for the same case waits (a row lock on PostgreSQL, the write lock
    on SQLite) and then sees what this one stored."""
    db.execute(update(CaseRecord).where(CaseRecord.id == case_id).values(state=CaseRecord.state))


def _load_for_change(db: Session, actor: Actor, case_id: str) -> CaseRecord:
    get_case(db, actor, case_id, log=False)  # 404 before anything else for a case one may not see
    lock_case(db, case_id)
    record = db.get(CaseRecord, case_id, populate_existing=True)
    assert record is not None
    db.refresh(record, ["steps"])
    return record


def _commit_step(db: Session, step: str) -> None:
    try:
        db.commit()
    except IntegrityError:  # a concurrent request took the same once-only step first
        db.rollback()
        raise StepRefused(f"steget «{label(step)}» är redan registrerat") from None


def _add_step(db: Session, actor: Actor, record: CaseRecord, step: str, note: str | None) -> None:
    once = None if step in REPEATABLE else (ENDED if step in ("closed", "withdrawn") else step)
    db.add(CaseStep(case_id=record.id, step=step, once=once, user_id=actor.user_id, note=note))
    done = (*(s.step for s in record.steps), step)
    record.state = state(view_of(record, done=done))
    audit(db, actor, "case.step", record.id, step)


def add_step(
    db: Session,
    actor: Actor,
    case_id: str,
    step: str,
    note: str | None = None,
    *,
    today: dt.date,
    line: EventLine | None = None,
    idempotency_key: str | None = None,
    unit: SelfCareUnit | None = None,
) -> tuple[CaseRecord, BillableEvent | None, bool]:
    """Take one step, as the workflow allows. A dispensing or delivery that someone bills creates
    one billable event from ``line``; the same ``idempotency_key`` again (within this case)
    returns the event stored the first time and ``False``. ``unit_named`` records ``unit``, whose
    organisation then takes part in the case (it pays, so it reads)."""
    require(actor, "case.read")
    record = _load_for_change(db, actor, case_id)
    view = case_view(db, record)
    authorise(view, step, organisation=actor.organisation_id, role=actor.role)
    if step in LINE_STEPS and idempotency_key:  # a replay gets what the first request stored
        existing = _event_by_key(db, case_id, idempotency_key)
        if existing is not None:
            db.rollback()
            return record, existing, False
    check(view, step, organisation=actor.organisation_id, role=actor.role)
    if step in ("closed", "withdrawn") and not (note or "").strip():
        raise BadLine("note: ange skälet")
    if step == "cleared" and not (note or "").strip():
        raise BadLine("note: ange vem som gav klartecknet")
    event = None
    if step == "unit_named":
        named = check_unit(unit)
        record.payer_unit_organisation = named.organisation
        record.payer_unit_name = named.name
        if all(p.organisation_id != named.organisation for p in record.parties):
            record.parties.append(CaseParty(case_id=record.id, organisation_id=named.organisation))
        note = note or f"{named.name}, {codes.party_name(named.organisation)}"
        view = view_of(record, has_events=view.has_events, returning=view.returning)
    if step in LINE_STEPS and bills_case(view):
        if line is None:
            raise BadLine("line: ange vad som expedierades/levererades (datum, antal, à-pris eller belopp)")
        event = _new_event(db, actor, record, step, line, today=today, key=idempotency_key)
    _add_step(db, actor, record, step, note)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        if event is not None and idempotency_key and (stored := _event_by_key(db, case_id, idempotency_key)):
            return record, stored, False
        raise StepRefused(f"steget «{label(step, view.decision)}» är redan registrerat") from None
    db.refresh(record)
    return record, event, True


def _event_by_key(db: Session, case_id: str, key: str) -> BillableEvent | None:
    return db.scalars(
        select(BillableEvent).where(BillableEvent.case_id == case_id, BillableEvent.idempotency_key == key)
    ).first()


def _standing(case_id: str) -> Any:
    """The condition that an event of the case stands: not superseded, not a cancellation. In SQL,
    so that a case with thousands of dispensings is not loaded row by row for each new one."""
    later = aliased(BillableEvent)
    return (
        (BillableEvent.case_id == case_id)
        & BillableEvent.cancelled.is_(False)
        & ~exists().where(later.supersedes_id == BillableEvent.id)
    )


def has_events(db: Session, case_id: str) -> bool:
    """Whether the case has events that stand (then it may be closed, not withdrawn)."""
    return db.scalar(select(BillableEvent.id).where(_standing(case_id)).limit(1)) is not None


def standing_total(db: Session, case_id: str, excluding: int | None = None) -> Decimal:
    query = select(func.coalesce(func.sum(BillableEvent.amount_sek), 0)).where(_standing(case_id))
    if excluding is not None:
        query = query.where(BillableEvent.id != excluding)
    return Decimal(db.scalar(query) or 0)


def ended_on(record: CaseRecord) -> dt.date | None:
    for s in record.steps:
        if s.step in ("closed", "withdrawn"):
            at = s.at if s.at.tzinfo else s.at.replace(tzinfo=dt.UTC)
            return at.astimezone(STOCKHOLM).date()
    return None


def ceiling(db: Session, case_id: str, on: dt.date) -> Decimal | None:
    """The ceiling of the newest commitment that covers the date; None when no commitment is
    registered. A registered commitment that does not cover the date refuses the line."""
    return ceiling_of(commitments_of(db, case_id), on)


def commitments_of(db: Session, case_id: str) -> Sequence[PaymentCommitment]:
    return db.scalars(
        select(PaymentCommitment).where(PaymentCommitment.case_id == case_id).order_by(PaymentCommitment.id)
    ).all()


def ceiling_of(commitments: Sequence[PaymentCommitment], on: dt.date) -> Decimal | None:
    """``ceiling`` for commitments already read (a bulk import reads a case's once)."""
    if not commitments:
        return None
    covering = [c for c in commitments if c.valid_from <= on <= c.valid_to]
    if not covering:
        spans = ", ".join(f"{c.valid_from}–{c.valid_to}" for c in commitments)
        raise StepRefused(f"occurred_on: {on} ligger utanför betalningsförbindelsens giltighet ({spans})")
    return covering[-1].amount_ceiling_sek


def party_of(party: str | None, record: CaseRecord) -> str | None:
    """``unit`` (the care unit that decided) is billed through, or bills from, its organisation:
    the one the case named (``unit_named``), else the organisation that took the case."""
    if party == "unit":
        return record.payer_unit_organisation or record.organisation_id
    return party


def _new_event(
    db: Session,
    actor: Actor,
    record: CaseRecord,
    kind: str,
    line: EventLine,
    *,
    today: dt.date,
    key: str | None,
    supersedes: BillableEvent | None = None,
    reason: str | None = None,
) -> BillableEvent:
    amount = line_amount(line)
    check_line_date(line.occurred_on, case_date=record.case_date, today=today, ended_on=ended_on(record))
    total = standing_total(db, record.id, supersedes.id if supersedes is not None else None) + amount
    check_ceiling(total, ceiling(db, record.id, line.occurred_on))
    decision = record.decision_json
    event = BillableEvent(
        idempotency_key=key or f"line:{uuid.uuid4()}",
        case_id=record.id,
        kind=kind,
        occurred_on=line.occurred_on,
        issuer=party_of(decision.get("invoicer"), record),
        recipient=party_of(decision.get("payer"), record),
        amount_sek=amount,
        quantity=line.quantity,
        unit_price_sek=line.unit_price_sek,
        product_name=line.product_name or record.product_name,
        varunummer=line.varunummer,
        prescriber_name=line.prescriber_name,
        unit_name=line.unit_name,
        diarienummer=line.diarienummer,
        supersedes_id=supersedes.id if supersedes is not None else None,
        reason=reason,
        decision_id=decision_id(db, decision),
        created_by=actor.user_id,
    )
    db.add(event)
    audit(db, actor, "event.create", record.id, event.idempotency_key)
    return event


def correct_event(
    db: Session,
    actor: Actor,
    case_id: str,
    event_id: int,
    *,
    line: EventLine | None,
    reason: str,
    today: dt.date,
) -> BillableEvent:
    """Complete or correct an event by a new one that supersedes it (``line``), or cancel it
    (``line`` None). The old event is kept, marked superseded; nothing is ever edited."""
    require(actor, "case.read")
    if not reason.strip():
        raise BadLine("reason: ange varför underlaget rättas")
    record = _load_for_change(db, actor, case_id)
    view = case_view(db, record)
    check(view, "event_corrected", organisation=actor.organisation_id, role=actor.role)
    old = db.get(BillableEvent, event_id)
    if old is None or old.case_id != case_id:
        raise NotFound("underlaget finns inte i ärendet")
    if db.scalar(select(BillableEvent.id).where(_standing(case_id), BillableEvent.id == old.id)) is None:
        raise StepRefused("underlaget är redan ersatt eller makulerat; rätta det senaste")
    if line is None:
        event = BillableEvent(
            idempotency_key=f"cancel:{old.id}",
            case_id=case_id,
            kind=old.kind,
            occurred_on=old.occurred_on,
            issuer=old.issuer,
            recipient=old.recipient,
            amount_sek=None,
            supersedes_id=old.id,
            cancelled=True,
            reason=reason,
            decision_id=old.decision_id,
            decision_json=old.decision_json,
            created_by=actor.user_id,
        )
        db.add(event)
        audit(db, actor, "event.cancel", case_id, str(old.id))
    else:
        event = _new_event(
            db,
            actor,
            record,
            old.kind,
            line,
            today=today,
            key=f"correction:{old.id}",
            supersedes=old,
            reason=reason,
        )
    _add_step(db, actor, record, "event_corrected", reason)
    try:
        db.commit()
    except IntegrityError:  # a concurrent correction of the same event won
        db.rollback()
        raise StepRefused("underlaget har just rättats av någon annan; ladda om") from None
    return event


def register_commitment(
    db: Session,
    actor: Actor,
    case_id: str,
    *,
    issuer: str | None,
    amount_ceiling_sek: Decimal,
    valid_from: dt.date,
    valid_to: dt.date,
    document_reference: str,
) -> PaymentCommitment:
    """Store the commitment the paying region issued and take the step, in one transaction:
    a refused step stores nothing."""
    require(actor, "commitment.create")
    record = _load_for_change(db, actor, case_id)
    view = case_view(db, record)
    check(view, "commitment_registered", organisation=actor.organisation_id, role=actor.role)
    if valid_to < valid_from:
        raise BadLine("valid_to: slutar före valid_from")
    payer = view.decision.payer
    issuer = issuer or payer
    if issuer != payer:
        raise BadLine(f"issuer: betalningsförbindelsen ska utfärdas av betalaren ({payer})")
    assert issuer is not None
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
    _add_step(db, actor, record, "commitment_registered", document_reference)
    _commit_step(db, "commitment_registered")
    return commitment


def complete_case(
    db: Session,
    engine: Engine,
    actor: Actor,
    case_id: str,
    case: Case,
    *,
    reason: str | None,
) -> CaseRecord:
    """Add the facts a decision was missing and decide again; the earlier facts and decision
    stay in the history. Only facts that were unknown may be added: a known fact that was wrong
    means a new case, since steps and events rest on it."""
    require(actor, "case.read")
    record = _load_for_change(db, actor, case_id)
    view = case_view(db, record)
    check(view, "completed", organisation=actor.organisation_id, role=actor.role)
    new = case.model_dump(mode="json")
    changed = _changed_facts(record.case_json, new)
    if changed:
        raise BadLine(
            f"{changed[0]}: en känd uppgift kan inte ändras vid komplettering "
            "(avsluta ärendet och skapa ett nytt om den var fel)"
        )
    decision = engine.decide(case)
    record.case_json = new
    record.decision_json = decision.model_dump(mode="json")
    record.status = decision.status
    record.decider, record.payer, record.invoicer = decision.decider, decision.payer, decision.invoicer
    record.rule_id = decision.rule_id
    known = {p.organisation_id for p in record.parties}
    for party in sorted(_parties(actor, decision) - known):
        db.add(CaseParty(case_id=case_id, organisation_id=party))
    db.add(
        CaseDecision(
            case_id=case_id,
            user_id=actor.user_id,
            case_json=new,
            decision_json=record.decision_json,
            reason=reason,
        )
    )
    _add_step(db, actor, record, "completed", reason or decision.status)
    db.commit()
    db.refresh(record)
    return record


def _changed_facts(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of facts that had a value and now have another (or none)."""
    changed = []
    for key, value in old.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        other = new.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            changed += _changed_facts(value, other, f"{name}.")
        elif other != value:
            changed.append(name)
    return changed


def decision_history(db: Session, actor: Actor, case_id: str) -> Sequence[CaseDecision]:
    get_case(db, actor, case_id, log=False)
    return db.scalars(
        select(CaseDecision).where(CaseDecision.case_id == case_id).order_by(CaseDecision.id)
    ).all()


def list_commitments(db: Session, actor: Actor, case_id: str | None = None) -> Sequence[PaymentCommitment]:
    require(actor, "case.read")
    query = (
        select(PaymentCommitment)
        .join(CaseRecord, CaseRecord.id == PaymentCommitment.case_id)
        .where(visible_to(actor))
    )
    if case_id:
        query = query.where(PaymentCommitment.case_id == case_id)
    return db.scalars(query.order_by(PaymentCommitment.id)).all()


def list_events(
    db: Session, actor: Actor, case_id: str | None = None
) -> list[tuple[BillableEvent, int | None]]:
    """Events with the id of the event that superseded each (None while it stands)."""
    require(actor, "event.read")
    query = (
        select(BillableEvent)
        .join(CaseRecord, CaseRecord.id == BillableEvent.case_id)
        .where(visible_to(actor))
    )
    if case_id:
        query = query.where(BillableEvent.case_id == case_id)
    events = db.scalars(query.order_by(BillableEvent.id)).all()
    by: dict[int, int] = {}
    for e in events:
        if e.supersedes_id is not None:
            by[e.supersedes_id] = e.id
    return [(e, by.get(e.id)) for e in events]


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log is searched by (every part optional): who, which case(s), which
    action, and a time range ``[since, until)``. ``case_ids`` holds the cases of a searched
    patient; the personnummer itself is never written anywhere, ``by_patient`` only says it was
    used (for the log of the search)."""

    username: str | None = None
    case_ids: tuple[str, ...] | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    by_patient: bool = False

    def describe(self) -> str:
        parts = [
            f"användare {self.username}" if self.username else "",
            "ärende" if self.case_ids is not None and not self.by_patient else "",
            "personnummer" if self.by_patient else "",
            f"händelse {self.action}" if self.action else "",
            "tid" if self.since or self.until else "",
        ]
        used = [p for p in parts if p]
        return f"filter: {', '.join(used)}" if used else ""


def list_audit(
    db: Session,
    actor: Actor,
    *,
    limit: int = 500,
    case_id: str | None = None,
    where: AuditFilter | None = None,
    offset: int = 0,
) -> Sequence[AuditEntry]:
    """An admin sees what the users of their organisation did, everything done to cases their
    organisation is party to, and failed logins under names nobody has (they belong to no
    organisation; the entry holds the address, never the typed name, which may be a password).
    ``where`` narrows it, newest first from ``offset``."""
    require(actor, "audit.read")
    about_ours = exists().where(
        CaseParty.case_id == AuditEntry.case_id, CaseParty.organisation_id == actor.organisation_id
    )
    nobodys = AuditEntry.organisation_id.is_(None) & (AuditEntry.action == "login.failed")
    query = select(AuditEntry).where(
        (AuditEntry.organisation_id == actor.organisation_id) | about_ours | nobodys
    )
    if case_id:
        query = query.where(AuditEntry.case_id == case_id)
    if where is not None:
        if where.username:
            query = query.where(AuditEntry.username == where.username)
        if where.case_ids is not None:
            query = query.where(AuditEntry.case_id.in_(where.case_ids))
        if where.action:
            query = query.where(AuditEntry.action == where.action)
        if where.since is not None:
            query = query.where(AuditEntry.at >= where.since)
        if where.until is not None:
            query = query.where(AuditEntry.at < where.until)
    query = query.order_by(AuditEntry.id.desc())
    rows = db.scalars(query.offset(max(offset, 0)).limit(limit)).all()
    described = where.describe() if where is not None else ""
    audit(db, actor, "audit.read", None, f"{len(rows)} rader" + (f" ({described})" if described else ""))
    db.commit()
    return rows
