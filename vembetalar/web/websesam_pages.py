"""The invoice clerk's webSesam reconciliation page: upload webSesam's invoice export for a month,
see it beside the events the invoice run lists as billed by webSesam, download the result as CSV.

The clerk reconciles their own organisation's events only (the issuer is the user's
organisation, never a form field). Nothing from the file is stored: the page carries the read
rows (the mapped columns only, signed with the app's secret) so that the CSV download need not
send the file again, and the download refuses rows signed for another organisation. Both the
reconciliation and the download are audited, with counts only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from vembetalar.handoffs import websesam
from vembetalar.handoffs.websesam_mapping import BadMapping, ColumnMapping, load_mapping
from vembetalar.store import invoices, repo
from vembetalar.web.auth import Principal, check_csrf
from vembetalar.web.pages import DbDep, UserDep, render, templates

#: A deployment whose export has other headers points this at its own mapping file.
MAPPING_ENV = "VEMBETALAR_WEBSESAM_MAPPING"
#: How long the result on the page can be downloaded as CSV without reading the file again.
RESULT_MAX_AGE_S = 8 * 3600
SALT = "websesam-avstamning"

templates.env.globals.update(websesam_kinds=websesam.KINDS, websesam_kind_help=websesam.KIND_HELP)
router = APIRouter(include_in_schema=False)


def _actor(user: Principal) -> repo.Actor:
    """The clerk: reconciling is invoice work (``invoice.write``), on the user's own organisation."""
    actor = repo.Actor.of(user)
    repo.require(actor, "invoice.write")
    return actor


def _mapping() -> ColumnMapping:
    path = os.environ.get(MAPPING_ENV)
    return load_mapping(Path(path) if path else None)


def _signer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.secret_key, salt=SALT)


def _limit(request: Request) -> int:
    """The largest file the page takes: the export's own cap or the app's body limit, if lower."""
    return min(websesam.MAX_EXPORT_BYTES, int(request.app.state.settings.max_body_bytes))


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} kB"


def _page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    default = invoices.valid_period(context.pop("period", None)) or _last_month(request)
    return render(
        request,
        "invoices_websesam.html",
        status_code,
        period=default,
        max_size=_size(_limit(request)),
        **context,
    )


def _last_month(request: Request) -> str:
    """webSesam invoices a month after it ends, so the form offers the month before today's."""
    today = request.app.state.clock.today()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


@router.get("/invoices/websesam", response_class=HTMLResponse)
def websesam_page(request: Request, user: UserDep) -> HTMLResponse:
    _actor(user)
    return _page(request)


def _reconcile(
    db: Any, request: Request, actor: repo.Actor, period: str, data: bytes
) -> tuple[websesam.Reconciliation, str]:
    """Read, reconcile and sign the rows for the download (one call, in a worker thread)."""
    rows = websesam.read_export(data, _mapping())
    events = websesam.elsewhere_events(
        db, request.app.state.engine, issuer=actor.organisation_id, period=period
    )
    result = websesam.reconcile(events, rows, issuer=actor.organisation_id, period=period)
    token = _signer(request).dumps(
        {"org": actor.organisation_id, "period": period, "rows": websesam.rows_to_data(rows)}
    )
    return result, token


@router.post("/invoices/websesam", response_class=HTMLResponse)
async def websesam_upload(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    """Reconcile the uploaded export with the clerk's organisation's events of the month."""
    actor = _actor(user)
    limit = _limit(request)
    form = await request.form()
    supplied = form.get("csrf")
    check_csrf(request, supplied if isinstance(supplied, str) else None)
    raw_period = form.get("period")
    period = raw_period.strip()[:20] if isinstance(raw_period, str) else ""
    upload = form.get("file")
    if not invoices.valid_period(period):
        return _page(request, 422, error="Ange perioden som en månad, ÅÅÅÅ-MM.", period=period)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _page(request, 422, error="Välj webSesams fakturaexport (CSV).", period=period)
    data = await upload.read(limit + 1)
    await form.close()
    if len(data) > limit:
        return _page(request, 413, error=f"Filen är för stor (högst {_size(limit)}).", period=period)
    try:
        result, token = await run_in_threadpool(_reconcile, db, request, actor, period, data)
    except websesam.BadExport as exc:
        return _page(request, 422, error=str(exc), period=period)
    except BadMapping as exc:
        return _page(request, 500, error=f"Kolumnmappningen ({MAPPING_ENV}) går inte att använda: {exc}")
    repo.audit(db, actor, "websesam.reconcile", None, f"{period}: {result.summary()}")
    db.commit()
    return _page(
        request,
        result=result,
        token=token,
        period=period,
        filename=websesam.scrub(upload.filename, 80),
    )


@router.post("/invoices/websesam/resultat.csv")
async def websesam_result_csv(request: Request, user: UserDep, db: DbDep) -> Response:
    """The result as CSV for Swedish Excel, from the rows the result page carries, against the
    events as they stand now. Rows signed for another organisation are refused (403)."""
    actor = _actor(user)
    form = await request.form()
    supplied, carried = form.get("csrf"), form.get("result")
    check_csrf(request, supplied if isinstance(supplied, str) else None)
    try:
        payload = _signer(request).loads(
            carried if isinstance(carried, str) else "", max_age=RESULT_MAX_AGE_S
        )
    except BadSignature:
        return _page(request, 422, error="Resultatet har gått ut eller ändrats; läs in filen igen.")
    if payload.get("org") != actor.organisation_id:
        raise repo.Forbidden("avstämningen gäller en annan organisations underlag")
    period = str(payload["period"])
    rows = websesam.rows_from_data(payload["rows"])
    events = await run_in_threadpool(
        websesam.elsewhere_events, db, request.app.state.engine, issuer=actor.organisation_id, period=period
    )
    result = websesam.reconcile(events, rows, issuer=actor.organisation_id, period=period)
    repo.audit(db, actor, "websesam.export", None, f"{period}: {result.summary()}")
    db.commit()
    return Response(
        websesam.result_csv(result),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="webSesam-avstamning-{period}.csv"'},
    )
