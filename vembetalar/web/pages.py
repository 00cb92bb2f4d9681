"""Server-rendered pages in Swedish (Jinja2 + htmx). They call the same store and engine as
the API; nothing here decides anything on its own."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
import uuid
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from vembetalar.explain import NOT_NEEDED, OPEN, OUTPUT_NAMES
from vembetalar.handoffs.sesam import FIELD_LABELS
from vembetalar.model import codes
from vembetalar.model.case import HELP, LABELS
from vembetalar.model.decision import Decision
from vembetalar.model.errors import BadCase
from vembetalar.model.money import SEK, format_amount, format_quantity, format_sek
from vembetalar.rules.pack import Pack
from vembetalar.security import (
    ROLE_NAMES,
    BadPersonnummer,
    can,
    initials,
    normalise_personnummer,
    patient_id_for,
    verify_password,
)
from vembetalar.spreadsheet import text_cell
from vembetalar.store import accounts, repo
from vembetalar.store.event_import import decimal_field, line_of
from vembetalar.store.models import CaseRecord, User
from vembetalar.store.repo import BadLine, StepRefused
from vembetalar.web import plain
from vembetalar.web.auth import Principal, check_csrf, csrf_token, get_db, page_user
from vembetalar.web.forms import (
    AREA_NAMES,
    CHOICES,
    KIND_NAMES,
    asked,
    candidate_fields,
    case_from_form,
    form_fields,
    scope_fields,
)
from vembetalar.web.messages import MONEY_FIELDS, echo_amount, error_id, field_error
from vembetalar.web.messages import label as field_label
from vembetalar.workflow import (
    STATE_NAMES,
    SelfCareUnit,
    allowed,
    history_label,
    label,
    line_step,
    offers,
    plan,
)

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


STOCKHOLM = ZoneInfo("Europe/Stockholm")  # tzdata is a dependency, so this works without system files


def _local_time(moment: dt.datetime) -> str:
    """Times are stored in UTC and shown as Swedish staff read a clock."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local"] = _local_time
templates.env.filters["kr"] = format_sek
templates.env.filters["amount_text"] = format_amount
templates.env.filters["quantity"] = format_quantity
templates.env.globals.update(
    party_name=lambda p: codes.party_name(p) if p else "—",
    kind_names=KIND_NAMES,
    area_names=AREA_NAMES,
    labels=LABELS,
    help_texts=HELP,
    value_names={name: dict(choices) for name, choices in CHOICES.items()},
    output_names=OUTPUT_NAMES,
    open_text=OPEN,
    not_needed_text=NOT_NEEDED,
    step_names=STATE_NAMES,
    step_label=label,
    history_label=history_label,
    role_names=ROLE_NAMES,
    money_fields=MONEY_FIELDS,
    echo_amount=echo_amount,
    error_id=error_id,
)


def _packs(request: Request) -> list[Pack]:
    return list(request.app.state.engine.packs)


def _pack_standing(request: Request, pack: Pack | str | None) -> plain.Standing | None:
    """How an agreement stands today (expired, ending within 90 days), by the pack or its id."""
    if isinstance(pack, str):
        pack = next((p for p in _packs(request) if p.id == pack), None)
    if pack is None:
        return None
    return plain.standing(pack, request.app.state.clock.today())


def _agreement_badge(request: Request, pack: Pack) -> Markup:
    found = _pack_standing(request, pack)
    if found is None or found.status == "in_force":
        return Markup("")
    return Markup(' <strong class="badge standing-{}">{}</strong>').format(found.status, found.text)


templates.env.globals.update(
    condition_text=plain.condition_text,
    hit_policy_name=plain.hit_policy_name,
    action_name=plain.action_name,
    plain_text=lambda request, text: plain.plain_text(text, _packs(request)),
    rule_reasons=lambda request, match: plain.rule_reasons(match, _packs(request)),
    pack_titles=lambda request, ids: [
        next((f"«{p.meta.title}»" for p in _packs(request) if p.id == i), i) for i in ids
    ],
    parameter_text=lambda p: plain.parameter_text(p.value, p.unit),
    agreement_status=_agreement_badge,
    pack_standing=_pack_standing,
    pack_by_id=lambda request, pack_id: next((p for p in _packs(request) if p.id == pack_id), None),
)
templates.env.filters["party_name_of"] = codes.party_name


def _watch_group_name(code: str) -> str:
    """A watch group's name (``botulinum_toxin`` → ``botulinumtoxin``); anything else as it is."""
    from vembetalar.oversight.schema import load_watchlist

    return next((g.name for g in load_watchlist() if g.code == code), code)


templates.env.filters["watch_group"] = _watch_group_name
router = APIRouter(include_in_schema=False)
UserDep = Annotated[Principal, Depends(page_user)]
DbDep = Annotated[Session, Depends(get_db)]


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    user = getattr(request.state, "user", None)
    return templates.TemplateResponse(
        request, name, {"user": user, "csrf": csrf_token(request), **context}, status_code=status_code
    )


async def form_data(request: Request) -> dict[str, str]:
    """The posted form's text fields, after the CSRF check."""
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, data.get("csrf"))
    return data


_form = form_data


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, db: DbDep) -> Response:
    """Argon2 runs in a worker thread, a few at a time (``hash_limiter``), so logins never stall
    the event loop. Failures are counted in the database per (address, name) with backoff; the
    address is the socket's unless a trusted proxy says otherwise (see ``web.server``)."""
    form = await _form(request)
    username = form.get("username", "").strip()[:200]
    address = request.client.host if request.client else "?"
    throttle = request.app.state.login_throttle
    wait = throttle.blocked_for(db, address, username)
    if wait:
        db.rollback()
        return render(request, "login.html", 429, error=f"För många försök. Försök igen om {wait} sekunder.")
    user = db.scalars(select(User).where(User.username == username)).first()
    # An unknown name costs a hash check too, so the answer time does not tell which names exist.
    stored = user.password_hash if user is not None else request.app.state.dummy_hash
    # Give the connection back to the pool while the hash runs: many logins at once must not
    # hold every connection while they wait their turn (the rest of the app needs them).
    db.rollback()
    password_ok = await anyio.to_thread.run_sync(
        verify_password, stored, form.get("password", ""), limiter=request.app.state.hash_limiter
    )
    if user is None or not user.active or not password_ok:
        throttle.failed(db, address, username)
        if user is not None:
            who = repo.Actor(0, username[:80], "-", user.organisation_id)
            repo.audit(db, who, "login.failed", None, username[:80])
        else:
            # Not the typed name: it may be a password typed in the wrong field.
            repo.audit(db, None, "login.failed", None, f"okänt användarnamn, från {address[:45]}")
        db.commit()
        return render(request, "login.html", 401, error="Fel användarnamn eller lösenord.", username=username)
    throttle.succeeded(db, address, username)
    session_id = accounts.start_session(db, user.id, request.app.state.settings.session_hours)
    request.session.clear()
    request.session["sid"] = session_id
    csrf_token(request)
    repo.audit(db, repo.Actor.of(user), "login", None)
    db.commit()
    return RedirectResponse("/cases", status_code=303)


@router.post("/logout")
async def logout(request: Request, db: DbDep) -> Response:
    """Ends the session row too, so a copy of the cookie is worth nothing afterwards."""
    await _form(request)
    sid = request.session.get("sid")
    if isinstance(sid, str) and sid:
        accounts.end_session(db, sid)
        db.commit()
        request.app.state.principals.forget(f"session:{accounts.session_digest(sid)}")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(user: UserDep) -> Response:
    return RedirectResponse("/cases", status_code=303)


def _date_or_none(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _case_search(
    request: Request,
    user: Principal,
    db: Session,
    params: dict[str, str],
    patient_id: str | None = None,
    refused: str | None = None,
) -> HTMLResponse:
    """The case list, narrowed by the filters (GET) or also by the patient (POST); ``refused``:
    the personnummer could not be read (nothing is listed, what was typed is kept)."""
    status = params.get("status") or None
    status = status if status in ("decided", "no_agreement", "incomplete") else None
    kind = params.get("kind") or None
    kind = kind if kind in KIND_NAMES else None
    state = params.get("state") or None
    state = state if state in STATE_NAMES else None
    reference = params.get("q", "").strip()[:30] or None
    since, until = _date_or_none(params.get("from", "")), _date_or_none(params.get("to", ""))
    party = params.get("party") or None
    party = party if party and _PARTY_ID.fullmatch(party) else None
    error = None
    if (params.get("from") and since is None) or (params.get("to") and until is None):
        error = "Datum: skriv datum som ÅÅÅÅ-MM-DD"
    rows = (
        []
        if refused
        else repo.list_cases(
            db,
            repo.Actor.of(user),
            status=status,
            kind=kind,
            state=state,
            reference=reference,
            since=since,
            until=until,
            party=party,
            patient_id=patient_id,
        )
    )
    return render(
        request,
        "cases.html",
        422 if refused else 200,
        cases=rows,
        patient_id=lambda value: patient_id_for(user.role, value),
        filters={
            "status": status,
            "kind": kind,
            "state": state,
            "q": reference or "",
            "from": params.get("from", "")[:10],
            "to": params.get("to", "")[:10],
            "party": party,
        },
        parties=_party_choices(user),
        may_search_patients=can(user.role, "patient_id.read"),
        by_patient=patient_id is not None,
        personnummer=params.get("personnummer", "")[:20] if (patient_id or refused) else "",
        error=refused or error,
    )


_PARTY_ID = re.compile(r"(?:region:[0-9]{2}|kommun:[0-9]{4})")


def _party_choices(user: Principal) -> list[tuple[str, str]]:
    """Parties to search by: the regions, and the municipalities of the user's own region."""
    home = user.organisation_id.split(":", 1)[1][:2] if ":" in user.organisation_id else ""
    regions = [(f"region:{code}", name) for code, name in codes.regions().items()]
    municipalities = sorted(
        (
            (f"kommun:{code}", f"{name} kommun")
            for code, name in codes.municipalities().items()
            if code[:2] == home
        ),
        key=lambda item: item[1],
    )
    return regions + municipalities


@router.get("/cases", response_class=HTMLResponse)
def case_list(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    return _case_search(request, user, db, dict(request.query_params))


@router.post("/cases/search", response_class=HTMLResponse)
async def case_search_by_patient(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    """Cases by personnummer (with the other filters): by POST, so the number is in no URL or
    log; only for a role that may see personnummer."""
    form = await _form(request)
    if not can(user.role, "patient_id.read"):
        raise repo.Forbidden("din roll får inte söka på personnummer")
    try:
        number = normalise_personnummer(form.get("personnummer", ""))
    except BadPersonnummer as exc:
        return _case_search(request, user, db, form, refused=f"Personnummer: {exc}")
    return _case_search(request, user, db, form, patient_id=number)


def _new_case_page(
    request: Request, user: Principal, kind: str, values: dict[str, str], status_code: int = 200, **extra: Any
) -> HTMLResponse:
    """The form, showing only the facts that can change the answer (see ``forms.asked``)."""
    engine = request.app.state.engine
    decision = None
    with contextlib.suppress(BadCase):  # a form with an error shows the fields as filled in
        decision = engine.decide(case_from_form({**values, "kind": kind}, request.app.state.clock.today()))
    fields = form_fields(engine, kind)
    shown = asked(decision, values, [f.name for f in fields], scope_fields(engine, kind))
    error = extra.get("error")
    return render(
        request,
        "case_new.html",
        status_code,
        kind=kind,
        fields=fields,
        shown=shown,
        values=values,
        decision=decision,
        can_create=can(user.role, "case.create"),
        err=field_error(error) if isinstance(error, str) else None,
        **extra,
    )


@router.get("/cases/new", response_class=HTMLResponse)
def new_case(request: Request, user: UserDep, kind: str = "drug_exception") -> HTMLResponse:
    kind = kind if kind in KIND_NAMES else "drug_exception"
    today = request.app.state.clock.today().isoformat()
    return _new_case_page(request, user, kind, {"date": today, "patient.country": "SE"})


@router.post("/cases/preview", response_class=HTMLResponse)
async def preview(request: Request, user: UserDep) -> HTMLResponse:
    """Validate and decide as the user types (htmx); nothing is stored or logged. The answer
    also says which fields to show (``data-ask``), so the form asks only what can matter."""
    form = await _form(request)
    try:
        case = case_from_form(form, request.app.state.clock.today())
    except BadCase as exc:
        err = field_error(str(exc))
        return render(request, "_preview_error.html", message=err.text, field=err.field or "")
    decision = request.app.state.engine.decide(case)
    engine = request.app.state.engine
    shown = asked(decision, form, candidate_fields(engine, case.kind), scope_fields(engine, case.kind))
    return render(request, "_decision.html", decision=decision, preview=True, ask=shown)


@router.post("/amounts/echo", response_class=HTMLResponse)
async def amount_echo(request: Request, user: UserDep) -> HTMLResponse:
    """The amount a form field is read as ("= 12 000 kr"), or why it is not one, as the user
    types (htmx); the same parser as the form's own (``money``). Nothing is stored or logged."""
    form = await _form(request)
    name = request.headers.get("HX-Trigger-Name", "")
    target = request.headers.get("HX-Target", "")
    if name not in MONEY_FIELDS or not re.fullmatch(r"echo-[A-Za-z0-9_.:-]{1,80}", target):
        return HTMLResponse("", status_code=422)
    ok, text = echo_amount(form.get(name, ""), MONEY_FIELDS[name])
    return render(request, "_echo.html", target=target, ok=ok, text=text, label=field_label(name))


@router.post("/cases", response_class=HTMLResponse)
async def create_case(request: Request, user: UserDep, db: DbDep) -> Response:
    form = await _form(request)
    kind = form.get("kind", "drug_exception")
    kind = kind if kind in KIND_NAMES else "drug_exception"

    def again(message: str) -> HTMLResponse:
        return _new_case_page(request, user, kind, form, 422, error=message)

    if not can(user.role, "case.create"):
        return again("Din roll kan inte skapa ärenden.")
    today = request.app.state.clock.today()
    try:
        case = case_from_form(form, today)
    except BadCase as exc:
        return again(str(exc))
    patient_id = None
    if form.get("patient_id", "").strip():
        try:
            patient_id = normalise_personnummer(form["patient_id"])
        except BadPersonnummer as exc:
            return again(f"patient_id: {exc}")
    name = form.get("patient_name", "").strip()
    record = repo.create_case(
        db,
        request.app.state.engine,
        repo.Actor.of(user),
        case,
        today=today,
        patient_id=patient_id,
        patient_initials=initials(name) if name else None,
        product_name=form.get("product_name", "").strip() or None,
        note=form.get("note", "").strip() or None,
    )
    return RedirectResponse(f"/cases/{record.id}", status_code=303)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_detail(
    request: Request,
    case_id: str,
    user: UserDep,
    db: DbDep,
    error: str | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    preview: tuple[str, str] | None = None,
    error_form: str = "",
) -> HTMLResponse:
    """The case with its plan: what is done, what comes next and why the rest waits. Only the
    steps this user may take now are offered, as the workflow says. ``preview``: a message that
    would have been e-mailed (recipient, text) had a mail server been configured."""
    actor = repo.Actor.of(user)
    record = repo.get_case(db, actor, case_id)
    decision = Decision.model_validate(record.decision_json)
    events = repo.list_events(db, actor, case_id) if can(user.role, "event.read") else []
    view = repo.case_view(db, record)
    offered = offers(view, organisation=user.organisation_id, role=user.role)
    return render(
        request,
        "case_detail.html",
        status_code,
        case=record,
        decision=decision,
        patient_id=patient_id_for(user.role, record.patient_id),
        plan=plan(view),
        offers=offered,
        unit_choices=_unit_choices(record) if "unit_named" in offered else [],
        can_correct=allowed(view, "event_corrected", organisation=user.organisation_id, role=user.role),
        line_step=line_step(record.kind),
        commitments=repo.list_commitments(db, actor, case_id),
        events=events,
        error=error,
        err=field_error(error) if error else None,
        error_form=error_form,
        values=values or {},
        new_key=str(uuid.uuid4()),
        today=request.app.state.clock.today().isoformat(),
        preview=preview,
        field_labels=FIELD_LABELS,
    )


def _shared_source(citations: list[str]) -> tuple[str, list[str]]:
    """Citations read "Dokument, avsnitt: «…»"; when they all come from one document, its name
    once and the sections after it (so that the printout fits one page)."""
    heads = {c.split(", ", 1)[0] for c in citations if ", " in c}
    if len(heads) != 1 or not all(", " in c for c in citations):
        return "", citations
    (head,) = heads
    return head, [c.split(", ", 1)[1] for c in citations]


@router.get("/cases/{case_id}/print", response_class=HTMLResponse)
def case_print(request: Request, case_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    """The decision for the patient's record: one A4 page, no menu, with the agreement's own
    sentences. Reading it is logged as reading the case."""
    record = repo.get_case(db, repo.Actor.of(user), case_id)
    decision = Decision.model_validate(record.decision_json)
    return render(
        request,
        "case_print.html",
        case=record,
        decision=decision,
        source=_shared_source(decision.citations),
        patient_id=patient_id_for(user.role, record.patient_id),
        printed_at=_local_time(dt.datetime.now(dt.UTC)),
    )


def _unit_choices(record: CaseRecord) -> list[tuple[str, str]]:
    """Organisations a self-care unit may belong to: the regions, then the municipalities of the
    patient's home region (the ones the agreement is between)."""
    home = str(((record.case_json or {}).get("patient") or {}).get("home_region") or "")
    regions = [(f"region:{code}", name) for code, name in codes.regions().items()]
    municipalities = [
        (f"kommun:{code}", f"{name} kommun")
        for code, name in sorted(codes.municipalities().items(), key=lambda item: item[1])
        if code.startswith(home) and home
    ]
    return regions + municipalities


def _refused(
    request: Request,
    case_id: str,
    user: Principal,
    db: Session,
    exc: Exception,
    form: dict[str, str],
    error_form: str = "",
) -> HTMLResponse:
    """The case page again with the reason beside the field it is about, in the form that was
    sent (``error_form``: ``step:<step>``, ``correction:<event id>`` or ``commitment``), which keeps
    what was typed."""
    status = 422 if isinstance(exc, BadLine) else 409
    return case_detail(
        request, case_id, user, db, error=str(exc), status_code=status, values=form, error_form=error_form
    )


@router.post("/cases/{case_id}/steps", response_class=HTMLResponse)
async def case_step(request: Request, case_id: str, user: UserDep, db: DbDep) -> Response:
    form = await _form(request)
    step = form.get("step", "")
    try:
        line = (
            line_of(form, "swedish")
            if step in ("dispensed", "delivered") and form.get("occurred_on")
            else None
        )
        repo.add_step(
            db,
            repo.Actor.of(user),
            case_id,
            step,
            form.get("note", "").strip()[:2000] or None,
            today=request.app.state.clock.today(),
            line=line,
            idempotency_key=form.get("idempotency_key", "")[:120] or None,
            unit=(
                SelfCareUnit(form.get("unit_organisation", ""), form.get("unit_name", "")[:300])
                if step == "unit_named"
                else None
            ),
        )
    except (StepRefused, BadLine) as exc:
        return _refused(request, case_id, user, db, exc, form, f"step:{step}")
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/events/{event_id}/corrections", response_class=HTMLResponse)
async def event_correction(
    request: Request, case_id: str, event_id: int, user: UserDep, db: DbDep
) -> Response:
    form = await _form(request)
    try:
        line = None if form.get("cancel") == "true" else line_of(form, "swedish")
        repo.correct_event(
            db,
            repo.Actor.of(user),
            case_id,
            event_id,
            line=line,
            reason=form.get("reason", "")[:2000],
            today=request.app.state.clock.today(),
        )
    except (StepRefused, BadLine) as exc:
        return _refused(request, case_id, user, db, exc, form, f"correction:{event_id}")
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/commitments", response_class=HTMLResponse)
async def case_commitment(request: Request, case_id: str, user: UserDep, db: DbDep) -> Response:
    """The commitment and its step in one transaction: a refusal stores nothing."""
    form = await _form(request)
    try:
        amount = decimal_field(form, "amount_ceiling_sek", SEK, "swedish")
        if amount is None:
            raise BadLine("amount_ceiling_sek: ange högsta belopp")
        try:
            valid_from = dt.date.fromisoformat(form.get("valid_from", ""))
            valid_to = dt.date.fromisoformat(form.get("valid_to", ""))
        except ValueError:
            raise BadLine("valid_from/valid_to: ange giltighetsdatum som ÅÅÅÅ-MM-DD") from None
        document = form.get("document_reference", "").strip()
        if not document or len(document) > 100:
            raise BadLine("document_reference: ange dokumentets diarienummer (högst 100 tecken)")
        repo.register_commitment(
            db,
            repo.Actor.of(user),
            case_id,
            issuer=None,
            amount_ceiling_sek=amount,
            valid_from=valid_from,
            valid_to=valid_to,
            document_reference=document,
        )
    except (StepRefused, BadLine) as exc:
        return _refused(request, case_id, user, db, exc, form, "commitment")
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _form_values(facts: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A stored Case as the new-case form's inputs (dotted names, text values)."""
    values: dict[str, str] = {}
    for key, value in facts.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            values.update(_form_values(value, f"{name}."))
        elif isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif value is not None:
            values[name] = str(value)
    return values


def _completion_page(
    request: Request,
    user: Principal,
    record: Any,
    values: dict[str, str],
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    known = _form_values(record.case_json)
    return _new_case_page(
        request,
        user,
        record.kind,
        values,
        status_code,
        completing=record,
        locked=sorted(k for k in known if k not in ("kind",)),
        **extra,
    )


@router.get("/cases/{case_id}/complete", response_class=HTMLResponse)
def complete_form(request: Request, case_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    """The case's facts in the new-case form: the known ones fixed, the missing ones to fill in."""
    record = repo.get_case(db, repo.Actor.of(user), case_id)
    return _completion_page(request, user, record, _form_values(record.case_json))


@router.post("/cases/{case_id}/complete", response_class=HTMLResponse)
async def complete(request: Request, case_id: str, user: UserDep, db: DbDep) -> Response:
    form = await _form(request)
    actor = repo.Actor.of(user)
    record = repo.get_case(db, actor, case_id, log=False)
    values = {**form, **_form_values(record.case_json)}  # known facts are not the form's to change
    try:
        case = case_from_form({**values, "kind": record.kind}, request.app.state.clock.today())
        repo.complete_case(
            db,
            request.app.state.engine,
            actor,
            case_id,
            case,
            reason=form.get("reason", "").strip()[:2000] or None,
        )
    except (BadCase, BadLine, StepRefused) as exc:
        return _completion_page(
            request, user, record, values, 422 if not isinstance(exc, StepRefused) else 409, error=str(exc)
        )
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.get("/agreements", response_class=HTMLResponse)
def agreements(request: Request, user: UserDep) -> HTMLResponse:
    return render(request, "agreements.html", packs=request.app.state.engine.packs)


def _pack(request: Request, pack_id: str) -> Pack:
    try:
        return request.app.state.engine.pack(pack_id)  # type: ignore[no-any-return]
    except KeyError:
        raise repo.NotFound("avtalet finns inte") from None


@router.get("/agreements/{pack_id}", response_class=HTMLResponse)
def agreement(request: Request, pack_id: str, user: UserDep) -> HTMLResponse:
    return render(request, "agreement.html", pack=_pack(request, pack_id))


@router.get("/agreements/{pack_id}/source", response_class=HTMLResponse)
def agreement_source(request: Request, pack_id: str, user: UserDep) -> HTMLResponse:
    """The agreement's own text, as the pack was read from, for checking a citation."""
    return render(request, "agreement_source.html", pack=_pack(request, pack_id))


#: Rows per page of the audit log.
AUDIT_PAGE = 100
_AUDIT_FIELDS = ("user", "case", "action", "from", "to")


def _may_search_patients(user: Principal) -> bool:
    """Searching the log by personnummer shows whose records were read: only for a role that
    may see personnummer at all."""
    return can(user.role, "audit.read") and can(user.role, "patient_id.read")


def _local_day(text: str, *, end: bool = False) -> dt.datetime | None:
    """A date typed as ÅÅÅÅ-MM-DD as the start (or the end) of that day in Swedish time."""
    day = dt.date.fromisoformat(text)
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), STOCKHOLM)


def _audit_filter(
    db: Session, user: Principal, form: dict[str, str]
) -> tuple[repo.AuditFilter, dict[str, str], str | None]:
    """The filter from the form's fields (GET, or POST with a personnummer), the values to show
    again, and a message when one of them cannot be used."""
    values = {name: form.get(name, "").strip()[:80] for name in _AUDIT_FIELDS}
    error = None
    case_ids: set[str] | None = None
    if values["case"]:
        reference = values["case"].upper()
        case_ids = set(db.scalars(select(CaseRecord.id).where(CaseRecord.reference == reference)))
    by_patient = False
    typed = form.get("personnummer", "").strip()
    if typed and _may_search_patients(user):
        try:
            number = normalise_personnummer(typed)
        except BadPersonnummer as exc:
            error = f"Personnummer: {exc}"
        else:
            patients = set(db.scalars(select(CaseRecord.id).where(CaseRecord.patient_id == number)))
            case_ids = patients if case_ids is None else case_ids & patients
            by_patient = True
    since = until = None
    try:
        since = _local_day(values["from"]) if values["from"] else None
        until = _local_day(values["to"], end=True) if values["to"] else None
    except ValueError:
        error = "Datum: skriv datum som ÅÅÅÅ-MM-DD"
    action = values["action"] if values["action"] in plain.ACTION_NAMES else None
    where = repo.AuditFilter(
        username=values["user"] or None,
        case_ids=tuple(sorted(case_ids)) if case_ids is not None else None,
        action=action,
        since=since,
        until=until,
        by_patient=by_patient,
    )
    return where, values, error


def _audit_detail(request: Request, action: str, detail: str | None) -> str:
    """What an entry's detail says, in Swedish: a step by its name, a decision by its agreement."""
    if not detail:
        return ""
    if action == "event.create":
        return ""  # the line's idempotency key: nothing for a person
    words = []
    for word in detail.split():
        if word in STATE_NAMES:
            words.append(STATE_NAMES[word])
        elif word in ("decided", "incomplete", "no_agreement"):
            words.append({"decided": "beslutat", "incomplete": "uppgifter saknas"}.get(word, "inget avtal"))
        elif "/" in word and not word.startswith("/"):
            pack_id = word.split("/", 1)[0]
            title = next((p.meta.title for p in _packs(request) if p.id == pack_id), None)
            words.append(f"enligt «{title}»" if title else word)
        elif re.fullmatch(r"[0-9a-f]{8}-[0-9a-f-]{27}", word):
            words.append("(ett ärende)")
        else:
            words.append(re.sub(r"\{[^}]*\}", "…", word))
    return plain.plain_text(" ".join(words), _packs(request))


def _audit_rows(request: Request, db: Session, rows: Any) -> list[dict[str, Any]]:
    ids = {r.case_id for r in rows if r.case_id}
    found = select(CaseRecord.id, CaseRecord.reference).where(CaseRecord.id.in_(ids))
    references = {row[0]: row[1] for row in db.execute(found)} if ids else {}
    return [
        {
            "at": _local_time(r.at),
            "username": r.username,
            "organisation": codes.party_name(r.organisation_id) if r.organisation_id else "–",
            "action": plain.action_name(r.action),
            "case_id": r.case_id,
            "reference": references.get(r.case_id, "") if r.case_id else "",
            "detail": _audit_detail(request, r.action, r.detail),
        }
        for r in rows
    ]


def _audit(request: Request, user: Principal, db: Session, form: dict[str, str]) -> HTMLResponse:
    where, values, error = _audit_filter(db, user, form)
    try:
        page = max(1, min(int(form.get("page", "1") or 1), 100_000))
    except ValueError:
        page = 1
    actor = repo.Actor.of(user)
    offset = (page - 1) * AUDIT_PAGE
    rows = list(repo.list_audit(db, actor, limit=AUDIT_PAGE + 1, where=where, offset=offset))
    return render(
        request,
        "audit.html",
        rows=_audit_rows(request, db, rows[:AUDIT_PAGE]),
        values=values,
        error=error,
        page=page,
        more=len(rows) > AUDIT_PAGE,
        by_patient=where.by_patient,
        personnummer=form.get("personnummer", "") if where.by_patient else "",
        may_search_patients=_may_search_patients(user),
        actions=sorted(plain.ACTION_NAMES.items(), key=lambda item: item[1]),
        query={k: v for k, v in values.items() if v},
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    """The log, filtered by the query (never a personnummer: that comes by POST)."""
    return _audit(request, user, db, dict(request.query_params))


@router.post("/audit", response_class=HTMLResponse)
async def audit_search(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    """The log filtered by personnummer (and the rest): by POST, so the number is in no URL."""
    form = await _form(request)
    if form.get("personnummer", "").strip() and not _may_search_patients(user):
        raise repo.Forbidden("din roll får inte söka på personnummer")
    return _audit(request, user, db, form)


def _audit_csv(request: Request, user: Principal, db: Session, form: dict[str, str]) -> Response:
    """The log as Swedish Excel opens it: semicolons, UTF-8 with a byte order mark, local time."""
    where, _, _ = _audit_filter(db, user, form)
    rows = _audit_rows(request, db, repo.list_audit(db, repo.Actor.of(user), limit=1_000_000, where=where))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Tid", "Användare", "Organisation", "Händelse", "Ärende", "Detalj"])
    for r in rows:
        writer.writerow(
            [text_cell(r[k]) for k in ("at", "username", "organisation", "action", "reference", "detail")]
        )
    return Response(
        "\ufeff" + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="granskningslogg.csv"'},
    )


@router.get("/audit/export.csv")
def audit_export(request: Request, user: UserDep, db: DbDep) -> Response:
    return _audit_csv(request, user, db, dict(request.query_params))


@router.post("/audit/export.csv")
async def audit_export_by_patient(request: Request, user: UserDep, db: DbDep) -> Response:
    form = await _form(request)
    if form.get("personnummer", "").strip() and not _may_search_patients(user):
        raise repo.Forbidden("din roll får inte söka på personnummer")
    return _audit_csv(request, user, db, form)
