"""The Sesam LMN registration request from the case page and the API (seed 001).

Personal data typed here travel in the POST body only, go into the request and are dropped:
they are never stored, logged or put in a URL. Without a configured mail server (the demo) the
message is shown instead of sent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from sqlalchemy.orm import Session

from vembetalar.handoffs.order_copy import send_copy
from vembetalar.handoffs.registration import Delivery, Outcome, make_request
from vembetalar.handoffs.sesam import BadRequest, RegistrationForm
from vembetalar.mail import MailError, MailSettings
from vembetalar.store import repo
from vembetalar.web import pages
from vembetalar.web.api import ERRORS
from vembetalar.web.auth import Principal, api_user, get_db, page_user
from vembetalar.workflow import StepRefused

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["ärenden"])
DbDep = Annotated[Session, Depends(get_db)]
PageUser = Annotated[Principal, Depends(page_user)]
ApiUser = Annotated[Principal, Depends(api_user)]
FIELDS = (
    "personnummer",
    "name",
    "street_address",
    "co_name",
    "postcode",
    "town",
    "phone",
    "door_code",
    "prescriber_name",
    "prescriber_email",
)
_NO_STORE = {"Cache-Control": "no-store"}


def _pdf(outcome: Outcome) -> Response:
    return Response(
        outcome.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="registrering-sesam.pdf"', **_NO_STORE},
    )


@router.post("/cases/{case_id}/sesam-request", response_class=HTMLResponse)
async def sesam_request_page(request: Request, case_id: str, user: PageUser, db: DbDep) -> Response:
    form = await pages.form_data(request)
    delivery: Delivery = "pdf" if form.get("delivery") == "pdf" else "email"
    try:
        outcome = make_request(
            db,
            repo.Actor.of(user),
            case_id,
            RegistrationForm(**{f: form.get(f, "")[:300] for f in FIELDS}),
            delivery,
            today=request.app.state.clock.today(),
            settings=MailSettings.from_env(),
        )
    except (StepRefused, BadRequest, MailError) as exc:
        status = 422 if isinstance(exc, BadRequest) else 502 if isinstance(exc, MailError) else 409
        return pages.case_detail(request, case_id, user, db, error=str(exc), status_code=status, values=form)
    if outcome.kind == "pdf":
        return _pdf(outcome)
    if outcome.kind == "preview":
        return pages.case_detail(request, case_id, user, db, values=form, preview=(outcome.to, outcome.text))
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


class SesamRequestIn(BaseModel):
    """The registration request's fields (seed 001), and how it goes: ``email`` to the address
    in the agreement (only through a server that guarantees encrypted e-mail) or ``pdf``."""

    model_config = ConfigDict(extra="forbid")
    personnummer: StrictStr = Field(max_length=20)
    name: StrictStr = Field(min_length=1, max_length=120)
    street_address: StrictStr = Field(min_length=1, max_length=120)
    co_name: StrictStr = Field(default="", max_length=120)
    postcode: StrictStr = Field(max_length=6)
    town: StrictStr = Field(min_length=1, max_length=60)
    phone: StrictStr = Field(max_length=20)
    door_code: StrictStr = Field(default="", max_length=60)
    prescriber_name: StrictStr = Field(min_length=1, max_length=120)
    prescriber_email: StrictStr = Field(max_length=120)
    delivery: Literal["email", "pdf"] = "email"


class SesamRequestOut(BaseModel):
    sent: bool
    to: str
    preview: str | None = Field(
        default=None, description="Ingen e-postserver är konfigurerad: meddelandet, oskickat"
    )


@api_router.post(
    "/cases/{case_id}/sesam-request",
    response_model=SesamRequestOut,
    summary="Registreringsbegäran till Sesam LMN (e-post eller PDF)",
    responses={200: {"content": {"application/pdf": {}}}, 502: {"description": "E-postservern svarade inte"}},
)
def sesam_request_api(
    case_id: str, body: SesamRequestIn, request: Request, user: ApiUser, db: DbDep
) -> Response | SesamRequestOut:
    outcome = make_request(
        db,
        repo.Actor.of(user),
        case_id,
        RegistrationForm(**body.model_dump(include=set(FIELDS))),
        body.delivery,
        today=request.app.state.clock.today(),
        settings=MailSettings.from_env(),
    )
    if outcome.kind == "pdf":
        return _pdf(outcome)
    return SesamRequestOut(
        sent=outcome.kind == "sent",
        to=outcome.to,
        preview=outcome.text if outcome.kind == "preview" else None,
    )


@router.post("/cases/{case_id}/order-copy", response_class=HTMLResponse)
async def order_copy_page(request: Request, case_id: str, user: PageUser, db: DbDep) -> Response:
    """Värmland: the copy of the order to the region's invoice handler (seed 004)."""
    form = await pages.form_data(request)
    try:
        outcome = send_copy(
            db,
            repo.Actor.of(user),
            case_id,
            today=request.app.state.clock.today(),
            settings=MailSettings.from_env(),
        )
    except (StepRefused, MailError) as exc:
        status = 502 if isinstance(exc, MailError) else 409
        return pages.case_detail(request, case_id, user, db, error=str(exc), status_code=status, values=form)
    if outcome.kind == "preview":
        return pages.case_detail(request, case_id, user, db, preview=(outcome.to, outcome.text))
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


class OrderCopyOut(BaseModel):
    sent: bool
    to: str
    subject: str
    text: str


@api_router.post(
    "/cases/{case_id}/order-copy",
    response_model=OrderCopyOut,
    summary="Kopia på beställningen till regionens fakturahandläggare (Värmland)",
    responses={502: {"description": "E-postservern svarade inte"}},
)
def order_copy_api(case_id: str, request: Request, user: ApiUser, db: DbDep) -> OrderCopyOut:
    outcome = send_copy(
        db,
        repo.Actor.of(user),
        case_id,
        today=request.app.state.clock.today(),
        settings=MailSettings.from_env(),
    )
    return OrderCopyOut(
        sent=outcome.kind == "sent", to=outcome.to, subject=outcome.subject, text=outcome.text
    )
