"""The JSON API under /api/v1. Thin: HTTP in, a call to rules/ or store/, HTTP out."""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from vembetalar.model.decision import Decision
from vembetalar.security import BadPersonnummer, initials, normalise_personnummer, patient_id_for
from vembetalar.spreadsheet import cell
from vembetalar.store import repo
from vembetalar.store.models import BillableEvent, CaseRecord
from vembetalar.store.repo import StepRefused
from vembetalar.web.auth import Principal, api_user, get_db
from vembetalar.web.schemas import (
    PERSONNUMMER_PATTERN,
    AuditOut,
    CaseCompletionIn,
    CaseCreate,
    CaseIn,
    CaseOut,
    CaseSummary,
    CommitmentIn,
    CommitmentOut,
    DecisionHistoryOut,
    ErrorOut,
    EventCorrectionIn,
    EventLineIn,
    EventOut,
    EventReplacementIn,
    Me,
    PackOut,
    PlannedStepOut,
    SelfCareUnitOut,
    StepIn,
    StepOut,
)
from vembetalar.workflow import EventLine, SelfCareUnit, history_label, offers, plan

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Felaktig begäran (t.ex. ogiltig JSON)"},
    401: {"model": ErrorOut, "description": "Inte inloggad / ogiltig token"},
    403: {"model": ErrorOut, "description": "Rollen saknar behörighet eller CSRF-token saknas"},
    404: {"model": ErrorOut, "description": "Finns inte (eller tillhör en annan organisation)"},
    409: {"model": ErrorOut, "description": "Steget kan inte tas nu"},
    422: {"model": ErrorOut, "description": "Ogiltigt fält; meddelandet namnger fältet"},
}

router = APIRouter(prefix="/api/v1", responses=ERRORS)
UserDep = Annotated[Principal, Depends(api_user)]
DbDep = Annotated[Session, Depends(get_db)]


def case_out(record: CaseRecord, user: Principal, db: Session) -> CaseOut:
    shown = patient_id_for(user.role, record.patient_id)
    decision = Decision.model_validate(record.decision_json)
    view = repo.case_view(db, record)
    return CaseOut(
        id=record.id,
        reference=record.reference,
        created_at=record.created_at,
        organisation_id=record.organisation_id,
        kind=record.kind,
        status=record.status,
        state=record.state,
        payer=record.payer,
        decider=record.decider,
        invoicer=record.invoicer,
        patient_id=shown,
        patient_initials=record.patient_initials,
        product_name=record.product_name,
        note=record.note,
        case=record.case_json,
        decision=decision,
        self_care_unit=(
            SelfCareUnitOut(organisation=record.payer_unit_organisation, name=record.payer_unit_name)
            if record.payer_unit_organisation and record.payer_unit_name
            else None
        ),
        steps=[
            StepOut(
                step=s.step,
                label=history_label(s.step, s.note, decision),
                at=s.at,
                by=s.user.full_name,
                note=s.note,
            )
            for s in record.steps
        ],
        plan=[PlannedStepOut(step=p.step, label=p.label, mark=p.mark, why=p.why) for p in plan(view)],
        offers=offers(view, organisation=user.organisation_id, role=user.role),
    )


def line_of(body: EventLineIn) -> EventLine:
    return EventLine(**body.model_dump())


def event_out(event: BillableEvent, superseded_by: int | None = None) -> EventOut:
    return EventOut.model_validate({**_columns(event), "superseded_by": superseded_by})


def _columns(event: BillableEvent) -> dict[str, Any]:
    return {c.key: getattr(event, c.key) for c in BillableEvent.__table__.columns}


def summary_out(record: CaseRecord, user: Principal) -> CaseSummary:
    summary = CaseSummary.model_validate(record, from_attributes=True)
    return summary.model_copy(update={"patient_id": patient_id_for(user.role, record.patient_id)})


@router.post("/decisions", response_model=Decision, tags=["beslut"], summary="Avgör ett ärende (sparas inte)")
async def decide(case: CaseIn, request: Request, user: UserDep) -> Decision:
    """The DESIGN.md §5 contract: the same function as ``vembetalar decide``; nothing is stored."""
    return request.app.state.engine.decide(case)  # type: ignore[no-any-return]


@router.get("/me", response_model=Me, tags=["konto"])
async def me(user: UserDep) -> Me:
    return Me(
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        organisation_id=user.organisation_id,
        organisation=user.organisation_name,
    )


@router.get("/cases", response_model=list[CaseSummary], tags=["ärenden"])
def list_cases(
    user: UserDep,
    db: DbDep,
    status: Annotated[str | None, Query(pattern="^(decided|no_agreement|incomplete)$")] = None,
    kind: Annotated[
        str | None, Query(pattern="^(drug_exception|assistive_device|medtech_product|nutrition_product)$")
    ] = None,
    state: Annotated[str | None, Query(max_length=30)] = None,
    payer: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[CaseSummary]:
    rows = repo.list_cases(
        db,
        repo.Actor.of(user),
        status=status,
        kind=kind,
        state=state,
        payer=payer,
        limit=limit,
        offset=offset,
    )
    return [summary_out(r, user) for r in rows]


@router.post("/cases", response_model=CaseOut, status_code=201, tags=["ärenden"])
def create_case(body: CaseCreate, request: Request, user: UserDep, db: DbDep) -> CaseOut:
    patient_id = None
    if body.patient_id:
        try:
            if not re.match(PERSONNUMMER_PATTERN, body.patient_id):
                raise BadPersonnummer("är inte ett giltigt personnummer eller samordningsnummer")
            patient_id = normalise_personnummer(body.patient_id)
        except BadPersonnummer as exc:
            raise FieldError("patient_id", str(exc)) from None
    record = repo.create_case(
        db,
        request.app.state.engine,
        repo.Actor.of(user),
        body.case,
        today=request.app.state.clock.today(),
        patient_id=patient_id,
        patient_initials=initials(body.patient_name) if body.patient_name else None,
        product_name=body.product_name,
        note=body.note,
    )
    return case_out(record, user, db)


@router.get("/cases/{case_id}", response_model=CaseOut, tags=["ärenden"])
def get_case(case_id: str, user: UserDep, db: DbDep) -> CaseOut:
    return case_out(repo.get_case(db, repo.Actor.of(user), case_id), user, db)


@router.post("/cases/{case_id}/steps", response_model=CaseOut, tags=["ärenden"])
def add_step(case_id: str, body: StepIn, request: Request, user: UserDep, db: DbDep) -> CaseOut:
    """Take the next step. Only the treating/prescribing organisation takes steps (403 for
    others); a step out of order is 409 with what must come first."""
    record, _, _ = repo.add_step(
        db,
        repo.Actor.of(user),
        case_id,
        body.step,
        body.note,
        today=request.app.state.clock.today(),
        line=line_of(body.line) if body.line else None,
        idempotency_key=body.idempotency_key,
        unit=SelfCareUnit(body.unit.organisation, body.unit.name) if body.unit else None,
    )
    return case_out(record, user, db)


@router.post(
    "/cases/{case_id}/events",
    response_model=EventOut,
    status_code=201,
    tags=["fakturaunderlag"],
    summary="Registrera en expediering/leverans (en fakturarad)",
    responses={
        200: {"model": EventOut, "description": "Samma idempotency_key i ärendet: det sparade underlaget"}
    },
)
def add_line(
    case_id: str,
    body: EventLineIn,
    request: Request,
    response: Response,
    user: UserDep,
    db: DbDep,
    idempotency_key: Annotated[str | None, Query(min_length=1, max_length=120)] = None,
) -> EventOut:
    """The dispensing (drugs) or delivery (everything else) step with its invoice line: the
    billable event comes from the workflow, never from a free-form post."""
    record = repo.get_case(db, repo.Actor.of(user), case_id, log=False)
    step = "dispensed" if record.kind == "drug_exception" else "delivered"
    _, event, created = repo.add_step(
        db,
        repo.Actor.of(user),
        case_id,
        step,
        None,
        today=request.app.state.clock.today(),
        line=line_of(body),
        idempotency_key=idempotency_key,
    )
    if event is None:
        raise StepRefused("inget fakturaunderlag: ingen annan part ska faktureras i det här ärendet")
    if not created:
        response.status_code = 200
    return event_out(event)


@router.post(
    "/cases/{case_id}/events/{event_id}/corrections",
    response_model=EventOut,
    status_code=201,
    tags=["fakturaunderlag"],
    summary="Komplettera, rätta eller makulera ett underlag (det gamla sparas och markeras)",
)
def correct_event(
    case_id: str, event_id: int, body: EventCorrectionIn, request: Request, user: UserDep, db: DbDep
) -> EventOut:
    event = repo.correct_event(
        db,
        repo.Actor.of(user),
        case_id,
        event_id,
        line=line_of(body.line) if isinstance(body, EventReplacementIn) else None,
        reason=body.reason,
        today=request.app.state.clock.today(),
    )
    return event_out(event)


@router.post("/cases/{case_id}/completion", response_model=CaseOut, tags=["ärenden"])
def complete_case(
    case_id: str, body: CaseCompletionIn, request: Request, user: UserDep, db: DbDep
) -> CaseOut:
    """Add the facts the decision was missing and decide again; the earlier decision is kept."""
    record = repo.complete_case(
        db, request.app.state.engine, repo.Actor.of(user), case_id, body.case, reason=body.reason
    )
    return case_out(record, user, db)


@router.get("/cases/{case_id}/decisions", response_model=list[DecisionHistoryOut], tags=["ärenden"])
def decision_history(case_id: str, user: UserDep, db: DbDep) -> list[DecisionHistoryOut]:
    rows = repo.decision_history(db, repo.Actor.of(user), case_id)
    return [
        DecisionHistoryOut(
            at=r.at, case=r.case_json, decision=Decision.model_validate(r.decision_json), reason=r.reason
        )
        for r in rows
    ]


@router.get("/payment-commitments", response_model=list[CommitmentOut], tags=["betalningsförbindelser"])
def list_commitments(
    user: UserDep, db: DbDep, case_id: Annotated[str | None, Query(max_length=36)] = None
) -> list[CommitmentOut]:
    rows = repo.list_commitments(db, repo.Actor.of(user), case_id)
    return [CommitmentOut.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/payment-commitments", response_model=CommitmentOut, status_code=201, tags=["betalningsförbindelser"]
)
def create_commitment(body: CommitmentIn, user: UserDep, db: DbDep) -> CommitmentOut:
    """Register the commitment the paying region issued, and with it the step (one transaction)."""
    row = repo.register_commitment(
        db,
        repo.Actor.of(user),
        body.case_id,
        issuer=body.issuer,
        amount_ceiling_sek=body.amount_ceiling_sek,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        document_reference=body.document_reference,
    )
    return CommitmentOut.model_validate(row, from_attributes=True)


@router.get("/events", response_model=list[EventOut], tags=["fakturaunderlag"])
def list_events(
    user: UserDep, db: DbDep, case_id: Annotated[str | None, Query(max_length=36)] = None
) -> list[EventOut]:
    """Every event, superseded ones too (``superseded_by`` says by which)."""
    return [event_out(e, by) for e, by in repo.list_events(db, repo.Actor.of(user), case_id)]


@router.get("/audit", response_model=list[AuditOut], tags=["granskningslogg"])
def list_audit(
    user: UserDep,
    db: DbDep,
    case_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AuditOut]:
    rows = repo.list_audit(db, repo.Actor.of(user), limit=limit, case_id=case_id)
    return [AuditOut.model_validate(r, from_attributes=True) for r in rows]


def audit_csv(rows: list[AuditOut]) -> StreamingResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "tid", "användare", "organisation", "händelse", "ärende", "detalj"])
    for r in rows:
        writer.writerow(
            [
                cell(v)
                for v in (
                    r.id,
                    r.at.isoformat(),
                    r.username,
                    r.organisation_id,
                    r.action,
                    r.case_id,
                    r.detail,
                )
            ]
        )
    return StreamingResponse(
        iter([buffer.getvalue()]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="granskningslogg.csv"'},
    )


@router.get(
    "/audit/export.csv",
    tags=["granskningslogg"],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Granskningsloggen som CSV (UTF-8)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def export_audit(user: UserDep, db: DbDep) -> StreamingResponse:
    rows = repo.list_audit(db, repo.Actor.of(user), limit=1_000_000)
    return audit_csv([AuditOut.model_validate(r, from_attributes=True) for r in rows])


@router.get("/packs", response_model=list[PackOut], tags=["avtal"])
def list_packs(request: Request, user: UserDep) -> list[PackOut]:
    return [
        PackOut(
            id=p.id,
            title=p.meta.title,
            valid_from=p.meta.valid_from,
            valid_to=p.meta.valid_to,
            source=p.meta.source.document,
            rules=sum(1 for _ in p.rules()),
        )
        for p in request.app.state.engine.packs
    ]


class FieldError(Exception):
    """A field the models accepted but our own check refused (e.g. a personnummer's check digit)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


__all__ = ["FieldError", "StepRefused", "router"]
