"""The pharmaceutical unit's oversight pages (Swedish): the ranked flag list with filters, one
flag with its plots and review, and the self-contained HTML report.

Who sees what and which review step is allowed is ``oversight.review``'s to say; this module only
translates HTTP to those calls.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from vembetalar.oversight import plots, review
from vembetalar.oversight.run import ENTITY_NAMES, INDICATOR_NAMES
from vembetalar.security import can
from vembetalar.store import repo
from vembetalar.store.oversight_models import OversightFlag
from vembetalar.web.auth import Principal
from vembetalar.web.pages import DbDep, UserDep, _form, render, templates

templates.env.globals.update(
    oversight_status_names=review.STATUS_NAMES,
    oversight_indicator_names=INDICATOR_NAMES,
    oversight_entity_names=ENTITY_NAMES,
    oversight_transitions=review.TRANSITIONS,
)
router = APIRouter(include_in_schema=False)
#: Flags with plots in the report (the rest are listed with their explanation).
REPORT_PLOTS = 25


def _actor(user: Principal) -> repo.Actor:
    return repo.Actor.of(user)


def _filters(
    period: str | None, indicator: str | None, entity_kind: str | None, status: str | None, code: str | None
) -> review.Filters:
    """Only known values pass; anything else is no filter (never an error page for a bad link)."""
    return review.Filters(
        period=period[:40] if period else None,
        indicator=indicator if indicator in INDICATOR_NAMES else None,
        entity_kind=entity_kind if entity_kind in ENTITY_NAMES else None,
        status=status if status in review.STATUS_NAMES else None,
        code=code.strip()[:80] if code and code.strip() else None,
    )


def _chosen(
    db: Session, actor: repo.Actor, filters: review.Filters
) -> tuple[list[str], review.Filters, list[OversightFlag]]:
    """The periods the user's organisation has, the filters with a period it has (the newest
    when none or an unknown one was asked for), and the flags they select."""
    known = review.periods(db, actor)
    if filters.period not in known:
        filters = replace(filters, period=known[0] if known else None)
    return known, filters, review.list_flags(db, actor, filters)


@router.get("/oversight", response_class=HTMLResponse)
def flag_list(
    request: Request,
    user: UserDep,
    db: DbDep,
    period: str | None = None,
    indicator: str | None = None,
    entity_kind: str | None = None,
    status: str | None = None,
    code: str | None = None,
) -> HTMLResponse:
    actor = _actor(user)
    known, filters, flags = _chosen(db, actor, _filters(period, indicator, entity_kind, status, code))
    return render(
        request,
        "oversight_list.html",
        flags=flags,
        periods=known,
        filters=filters,
        counts=review.status_counts(db, actor, filters.period),
    )


def _detail(
    request: Request,
    user: Principal,
    db: Any,
    flag_id: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    actor = _actor(user)
    flag = review.get_flag(db, actor, flag_id)
    return render(
        request,
        "oversight_flag.html",
        status_code,
        flag=flag,
        svg=plots.for_flag(flag.detail or {}),
        history=review.history(db, flag),
        can_review=can(user.role, "oversight.review"),
        error=error,
    )


@router.get("/oversight/flags/{flag_id}", response_class=HTMLResponse)
def flag_detail(request: Request, flag_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    return _detail(request, user, db, flag_id)


@router.post("/oversight/flags/{flag_id}/status", response_class=HTMLResponse)
async def flag_status(request: Request, flag_id: str, user: UserDep, db: DbDep) -> Response:
    form = await _form(request)
    try:
        review.set_status(db, _actor(user), flag_id, form.get("status", "")[:20], form.get("comment"))
    except repo.StepRefused as exc:
        db.rollback()
        return _detail(request, user, db, flag_id, error=str(exc), status_code=409)
    return RedirectResponse(f"/oversight/flags/{flag_id}", status_code=303)


@router.post("/oversight/flags/{flag_id}/comment", response_class=HTMLResponse)
async def flag_comment(request: Request, flag_id: str, user: UserDep, db: DbDep) -> Response:
    form = await _form(request)
    try:
        review.add_comment(db, _actor(user), flag_id, form.get("comment", ""))
    except repo.StepRefused as exc:
        db.rollback()
        return _detail(request, user, db, flag_id, error=str(exc), status_code=409)
    return RedirectResponse(f"/oversight/flags/{flag_id}", status_code=303)


@router.get("/oversight/report.html")
def report(
    request: Request,
    user: UserDep,
    db: DbDep,
    period: str | None = None,
    indicator: str | None = None,
    entity_kind: str | None = None,
    status: str | None = None,
) -> Response:
    """The filtered flags as one self-contained HTML file (inline CSS and SVG), to keep or send."""
    actor = _actor(user)
    _, filters, flags = _chosen(db, actor, _filters(period, indicator, entity_kind, status, None))
    repo.audit(db, actor, "oversight.report", None, f"{len(flags)} flaggor, period {filters.period or '-'}")
    db.commit()
    html = templates.get_template("oversight_report.html").render(
        flags=flags,
        svgs={f.flag_id: plots.for_flag(f.detail or {}) for f in flags[:REPORT_PLOTS]},
        histories={f.flag_id: review.history(db, f) for f in flags},
        filters=filters,
        organisation=user.organisation_name,
        made_by=user.full_name,
        made_on=request.app.state.clock.today().isoformat(),
        made_at=dt.datetime.now(dt.UTC),
    )
    name = re.sub(r"[^0-9A-Za-z_-]", "_", f"uppfoljning-{filters.period or 'alla'}")
    return Response(
        html.encode("utf-8"),
        media_type="text/html; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.html"'},
    )
