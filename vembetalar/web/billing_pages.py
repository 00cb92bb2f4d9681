"""The invoice clerk's pages (Swedish): outgoing and incoming invoices, the invoice run, one
invoice as its recipient sees it with the moves this side may make, downloads (UBL, PDF, CSV for
Swedish Excel) and the check of a received e-invoice against its agreement.

Everything is decided in ``store.invoices`` (who sees what, which move is allowed) and in
``billing`` (the documents); this module only translates HTTP to those calls.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from vembetalar.billing import inbound
from vembetalar.billing.document import InvoiceDocument, document_from_json
from vembetalar.billing.pdf import address_lines, money, org_number, render_pdf, swedish_number
from vembetalar.billing.requirements import requirements_for
from vembetalar.billing.run import RegistryIncomplete, RunReport
from vembetalar.billing.ubl import to_ubl
from vembetalar.model import codes
from vembetalar.security import can, patient_id_for
from vembetalar.spreadsheet import cell, number_cell
from vembetalar.store import invoices, repo
from vembetalar.web.auth import Principal, check_csrf
from vembetalar.web.pages import DbDep, UserDep, _form, render, templates

#: Received files larger than this are refused with a message (the app's body limit may be lower).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
DIRECTION_NAMES = {"out": "Utgående", "in": "Inkommande"}

templates.env.globals.update(
    can=can,
    invoice_status_names=invoices.STATUS_NAMES,
    invoice_step_names=invoices.STEP_NAMES,
    invoice_direction_names=DIRECTION_NAMES,
    invoice_address_lines=address_lines,
)
templates.env.filters["invoice_money"] = money
templates.env.filters["invoice_orgnr"] = org_number
templates.env.filters["invoice_number"] = swedish_number

router = APIRouter(include_in_schema=False)


def _actor(user: Principal) -> repo.Actor:
    return repo.Actor.of(user)


# ---------------------------------------------------------------- the plot
@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class Chart:
    """A grouped bar chart (outgoing and incoming per month) drawn as inline SVG on the server:
    no script, so the strict CSP holds; the totals table beside it carries the same numbers."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    months: tuple[tuple[float, str], ...]
    top: str
    baseline: float


CHART_COLOURS = {"out": "#00576b", "in": "#9a6200"}


def chart(rows: list[invoices.TotalRow], months: int = 12) -> Chart | None:
    """The last ``months`` months of ``rows`` as bars; None when there is nothing to draw."""
    sums: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        key = (row.period, row.direction)
        sums[key] = sums.get(key, Decimal(0)) + row.total
    periods = sorted({period for period, _ in sums})[-months:]
    if not periods:
        return None
    top = max((abs(sums.get((p, d), Decimal(0))) for p in periods for d in ("out", "in")), default=Decimal(0))
    top = top or Decimal(1)
    left, plot_height, group, bar = 10.0, 160.0, 64.0, 22.0
    bars: list[Bar] = []
    labels: list[tuple[float, str]] = []
    for i, period in enumerate(periods):
        x0 = left + i * group
        labels.append((x0 + bar, period))
        for j, direction in enumerate(("out", "in")):
            value = sums.get((period, direction), Decimal(0))
            height = float(abs(value) / top) * plot_height
            bars.append(
                Bar(
                    x=x0 + j * (bar + 2),
                    y=20 + plot_height - height,
                    width=bar,
                    height=max(height, 0.0),
                    fill=CHART_COLOURS[direction],
                    title=f"{DIRECTION_NAMES[direction]} {period}: {money(value)} kr",
                )
            )
    width = int(left * 2 + group * len(periods))
    return Chart(max(width, 200), 215, tuple(bars), tuple(labels), money(top), 20 + plot_height)


# ---------------------------------------------------------------- the list and the run
def _list_page(
    request: Request,
    user: Principal,
    db: Any,
    *,
    direction: str = "out",
    status: str | None = None,
    period: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    actor = _actor(user)
    side: invoices.Direction = "in" if direction == "in" else "out"
    states = invoices.ISSUER_STATES if side == "out" else invoices.RECIPIENT_STATES
    status = status if status in states else None
    period = invoices.valid_period(period)
    rows = invoices.list_invoices(db, actor, direction=side, status=status, period=period)
    totals = invoices.totals(db, actor)
    return render(
        request,
        "invoices.html",
        status_code,
        direction=side,
        rows=rows,
        states=states,
        filters={"status": status, "period": period},
        totals=totals,
        chart=chart(totals),
        can_write=can(user.role, "invoice.write"),
        run_period=extra.pop("run_period", None) or request.app.state.clock.today().strftime("%Y-%m"),
        **extra,
    )


@router.get("/invoices", response_class=HTMLResponse)
def invoice_list(
    request: Request,
    user: UserDep,
    db: DbDep,
    direction: str = "out",
    status: str | None = None,
    period: str | None = None,
) -> HTMLResponse:
    return _list_page(request, user, db, direction=direction, status=status, period=period)


@router.post("/invoices/run", response_class=HTMLResponse)
async def invoice_run(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    """Invoice the user's own organisation's events of a month; the report is shown above the list."""
    form = await _form(request)
    period = form.get("period", "").strip()[:20]
    actor = _actor(user)
    report: RunReport | None = None
    try:
        report = await run_in_threadpool(
            invoices.run_for, db, request.app.state.engine, actor, period, request.app.state.clock.today()
        )
    except RegistryIncomplete as exc:
        return _list_page(request, user, db, status_code=409, run_error=str(exc), run_period=period)
    except ValueError as exc:
        return _list_page(request, user, db, status_code=422, run_error=str(exc), run_period=period)
    return _list_page(request, user, db, report=report, run_period=period)


# ---------------------------------------------------------------- downloads
@router.get("/invoices/export.csv")
def invoice_export(user: UserDep, db: DbDep, direction: str = "", period: str | None = None) -> Response:
    """The invoices as CSV for Swedish Excel: ``;``, UTF-8 with BOM, comma decimals, ISO dates,
    formula-like text neutralised. No personal data: one row per invoice, no lines."""
    actor = _actor(user)
    period = invoices.valid_period(period)
    sides: list[invoices.Direction] = ["out"] if direction == "out" else ["in"] if direction == "in" else []
    rows: list[invoices.InvoiceView] = []
    for side in sides or ["out", "in"]:
        rows += invoices.list_invoices(db, actor, direction=side, period=period, limit=1_000_000)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            "Fakturanummer",
            "Typ",
            "Riktning",
            "Avsändare",
            "Mottagare",
            "Period",
            "Fakturadatum",
            "Förfallodatum",
            "Belopp (kr)",
            "Status",
            "Avtal",
        ]
    )
    for view in rows:
        invoice = view.invoice
        writer.writerow(
            [
                cell(value)
                for value in (
                    invoice.number_text,
                    "Kreditnota" if invoice.kind == "credit_note" else "Faktura",
                    DIRECTION_NAMES[view.direction],
                    codes.party_name(invoice.issuer),
                    codes.party_name(invoice.recipient),
                    invoice.period,
                    invoice.issue_date.isoformat(),
                    invoice.due_date.isoformat(),
                    number_cell(Decimal(invoice.total_sek)),
                    invoices.STATUS_NAMES.get(view.status, view.status),
                    invoice.route,
                )
            ]
        )
    repo.audit(db, actor, "invoice.export", None, f"{len(rows)} fakturor, period {period or 'alla'}")
    db.commit()
    name = "fakturor" + (f"-{DIRECTION_NAMES[sides[0]].lower()}" if sides else "")
    name += f"-{period}" if period else ""
    return Response(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(name)}.csv"'},
    )


def _filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name.replace("å", "a").replace("ä", "a").replace("ö", "o"))[:80]


def _carries_personnummer(doc: InvoiceDocument) -> bool:
    return any(name == "Personnummer" for line in doc.lines for name, _ in line.properties)


def _document(db: Any, user: Principal, invoice_id: int, what: str) -> InvoiceDocument:
    """The stored document, for a download; a personnummer only to roles that may see one."""
    view = invoices.get_invoice(db, _actor(user), invoice_id, what=what)
    doc = document_from_json(view.invoice.document_json)
    if _carries_personnummer(doc) and not can(user.role, "patient_id.read"):
        raise repo.Forbidden("fakturan bär patientens personnummer; din roll får inte se det i sin helhet")
    return doc


@router.get("/invoices/{invoice_id:int}.xml")
def invoice_xml(invoice_id: int, user: UserDep, db: DbDep) -> Response:
    doc = _document(db, user, invoice_id, "xml")
    return Response(
        to_ubl(doc),
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{_filename(doc.number)}.xml"'},
    )


@router.get("/invoices/{invoice_id:int}.pdf")
def invoice_pdf(invoice_id: int, user: UserDep, db: DbDep) -> Response:
    doc = _document(db, user, invoice_id, "pdf")
    return Response(
        render_pdf(doc),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{_filename(doc.number)}.pdf"'},
    )


# ---------------------------------------------------------------- checking a received invoice
@router.get("/invoices/check", response_class=HTMLResponse)
def check_page(request: Request, user: UserDep) -> HTMLResponse:
    repo.require(_actor(user), "invoice.read")
    return render(request, "invoices_check.html", max_mb=MAX_UPLOAD_BYTES // (1024 * 1024))


@router.post("/invoices/check", response_class=HTMLResponse)
async def check_upload(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    """Read the uploaded UBL file, find its agreement and list what it lacks, in Swedish.
    Nothing is stored; the check itself is audited (number and outcome, no content)."""
    actor = _actor(user)
    repo.require(actor, "invoice.read")
    form = await request.form()
    supplied = form.get("csrf")
    check_csrf(request, supplied if isinstance(supplied, str) else None)
    upload = form.get("file")

    def again(message: str, status_code: int = 422) -> HTMLResponse:
        return render(
            request,
            "invoices_check.html",
            status_code,
            error=message,
            max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
        )

    if not isinstance(upload, UploadFile) or not upload.filename:
        return again("Välj en fil att granska.")
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    await form.close()
    if len(data) > MAX_UPLOAD_BYTES:
        return again(f"Filen är för stor (högst {MAX_UPLOAD_BYTES // (1024 * 1024)} MB).", 413)
    try:
        received = await run_in_threadpool(inbound.read_invoice, data)
    except inbound.UnreadableInvoice as exc:
        return again(str(exc))
    agreement = requirements_for(request.app.state.engine, received)
    report = (
        await run_in_threadpool(inbound.check_invoice, data, agreement.requirements)
        if agreement is not None
        else None
    )
    outcome = (
        "inget avtal"
        if report is None
        else ("uppfyller avtalets krav" if report.ok else f"{len(report.failures)} brister")
    )
    repo.audit(db, actor, "invoice.check", None, f"{(received.number or '?')[:40]}: {outcome}")
    db.commit()
    return render(
        request,
        "invoices_check.html",
        received=received,
        agreement=agreement,
        report=report,
        filename=upload.filename[:120],
        max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
    )


# ---------------------------------------------------------------- one invoice
def _detail(
    request: Request,
    user: Principal,
    db: Any,
    invoice_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    actor = _actor(user)
    view = invoices.get_invoice(db, actor, invoice_id)
    doc = document_from_json(view.invoice.document_json)

    def shown(name: str, value: str) -> str:
        return (patient_id_for(user.role, value) or "") if name == "Personnummer" else value

    return render(
        request,
        "invoice_detail.html",
        status_code,
        view=view,
        invoice=view.invoice,
        doc=doc,
        shown=shown,
        history=[(entry, invoices.status_change(entry)) for entry in invoices.history(db, actor, invoice_id)],
        can_write=can(user.role, "invoice.write"),
        downloads=not _carries_personnummer(doc) or can(user.role, "patient_id.read"),
        error=error,
    )


@router.get("/invoices/{invoice_id:int}", response_class=HTMLResponse)
def invoice_detail(request: Request, invoice_id: int, user: UserDep, db: DbDep) -> HTMLResponse:
    return _detail(request, user, db, invoice_id)


@router.post("/invoices/{invoice_id:int}/status", response_class=HTMLResponse)
async def invoice_status(request: Request, invoice_id: int, user: UserDep, db: DbDep) -> Response:
    form = await _form(request)
    try:
        invoices.set_status(db, _actor(user), invoice_id, form.get("status", "")[:20])
    except repo.StepRefused as exc:
        return _detail(request, user, db, invoice_id, error=str(exc), status_code=409)
    return RedirectResponse(f"/invoices/{invoice_id}", status_code=303)


@router.post("/invoices/{invoice_id:int}/credit", response_class=HTMLResponse)
async def invoice_credit(request: Request, invoice_id: int, user: UserDep, db: DbDep) -> Response:
    """Credit an invoice in full with a credit note that refers to it; the reason is required."""
    form = await _form(request)
    try:
        note = invoices.credit(
            db, _actor(user), invoice_id, form.get("reason", "")[:500], request.app.state.clock.today()
        )
    except repo.StepRefused as exc:
        return _detail(request, user, db, invoice_id, error=str(exc), status_code=409)
    return RedirectResponse(f"/invoices/{note.id}", status_code=303)
