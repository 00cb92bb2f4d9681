"""The organisation registry page: an admin fills in what their own organisation's invoices need
(legal name, numbers, address, payment details). Checked as the import checks them; audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vembetalar.billing.registry import RegistryEntry, apply_registry
from vembetalar.billing.run import registry_gaps
from vembetalar.model.errors import describe
from vembetalar.store import repo
from vembetalar.store.models import OrganisationDetails
from vembetalar.web.auth import Principal, get_db, page_user
from vembetalar.web.pages import _form, render

router = APIRouter(include_in_schema=False)
UserDep = Annotated[Principal, Depends(page_user)]
DbDep = Annotated[Session, Depends(get_db)]

FIELDS = ("legal_name", "org_number", "vat_id", "bankgiro", "plusgiro", "peppol_id", "gln", "email")


def _values(details: OrganisationDetails | None) -> dict[str, Any]:
    if details is None:
        return {"payment_days": "30"}
    lines = list((details.address_lines or {}).get("lines", []))
    last = " ".join(p for p in (details.postcode, details.city) if p)
    return {
        **{f: getattr(details, f) or "" for f in FIELDS},
        "address": "\n".join([*lines, last] if last else lines),
        "f_skatt": details.f_skatt,
        "payment_days": str(details.payment_days),
        "demo": details.demo,
    }


def _admin(user: Principal) -> None:
    if user.role != "admin":
        raise repo.Forbidden("bara administratörer ändrar organisationsregistret")


@router.get("/admin/registry", response_class=HTMLResponse)
def registry_page(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    _admin(user)
    details = db.get(OrganisationDetails, user.organisation_id)
    return render(request, "registry.html", values=_values(details), gaps=registry_gaps(details), saved=False)


@router.post("/admin/registry", response_class=HTMLResponse)
async def registry_save(request: Request, user: UserDep, db: DbDep) -> Response:
    form = await _form(request)
    _admin(user)
    data: dict[str, Any] = {f: (form.get(f, "").strip() or None) for f in FIELDS}
    data["legal_name"] = data["legal_name"] or ""
    data["address"] = [line.strip() for line in form.get("address", "").splitlines() if line.strip()]
    data["f_skatt"] = form.get("f_skatt") == "true"
    data["payment_days"] = form.get("payment_days", "30").strip() or "30"
    try:
        entry = RegistryEntry.model_validate(data)
    except ValidationError as exc:
        values = {**data, "address": form.get("address", ""), "payment_days": data["payment_days"]}
        return render(
            request,
            "registry.html",
            422,
            values=values,
            gaps=[],
            saved=False,
            error=describe(dict(exc.errors()[0])),
        )
    apply_registry(db, {user.organisation_id: entry})
    repo.audit(db, repo.Actor.of(user), "registry.update", None, user.organisation_id)
    db.commit()
    return RedirectResponse("/admin/registry?sparat=1", status_code=303)
