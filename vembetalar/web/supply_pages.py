"""The supply pages (Swedish), for the MAS and the pharmaceutical unit: the stocks with alert
badges and a schematic map of the municipalities, a stock card (lots, levels, movements, reorder
proposal), the withdrawal form a nurse uses on a tablet or phone, and the shortage dashboard.

Everything is decided in ``vembetalar.supply``; this module translates HTTP to those calls. Which
stocks a user sees is ``supply.access``: a municipality its own, a region all of its municipalities'.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from vembetalar.model import codes
from vembetalar.security import can
from vembetalar.store import repo
from vembetalar.store.supply_models import SupplyStock
from vembetalar.supply import access, ledger
from vembetalar.supply.alerts import ALERT_NAMES
from vembetalar.supply.catalogue import units
from vembetalar.supply.errors import BadSupplyInput, MovementRefused
from vembetalar.supply.impact import impact
from vembetalar.supply.imports import import_notices, parse_notices, stored_notices
from vembetalar.supply.registry import KIND_NAMES
from vembetalar.supply.state import ItemState, states
from vembetalar.supply.substitutes import KIND_NAMES as SUBSTITUTE_KINDS
from vembetalar.web.auth import Principal, check_csrf
from vembetalar.web.pages import DbDep, UserDep, _form, render, templates


def swedish_decimal(value: Decimal | float, places: int | None = None, sign: bool = False) -> str:
    """``-23.5`` → ``−23,50``: decimals as Swedish staff read them."""
    text = f"{value:{'+' if sign else ''}.{places}f}" if places is not None else str(value)
    return text.replace(".", ",").replace("-", "\u2212")


templates.env.filters["sv_decimal"] = swedish_decimal
templates.env.globals.update(
    supply_alert_names=ALERT_NAMES,
    supply_kind_names=KIND_NAMES,
    supply_movement_names=ledger.KIND_NAMES,
    supply_discard_reasons=ledger.DISCARD_REASONS,
    supply_substitute_kinds=SUBSTITUTE_KINDS,
    municipality_name=lambda code: codes.municipalities().get(code, code),
)

router = APIRouter(include_in_schema=False)


def _actor(user: Principal) -> repo.Actor:
    return repo.Actor.of(user)


def _visible(db: Session, user: Principal) -> list[SupplyStock]:
    repo.require(_actor(user), "supply.read")
    stocks = db.scalars(
        select(SupplyStock).order_by(SupplyStock.municipality, SupplyStock.kind, SupplyStock.id)
    )
    return [s for s in stocks if access.sees(user.organisation_id, s.municipality)]


def _today(request: Request) -> dt.date:
    today: dt.date = request.app.state.clock.today()
    return today


# ---------------------------------------------------------------- the map
@dataclass(frozen=True)
class Place:
    code: str
    name: str
    x: float
    y: float
    r: float
    stocks: int
    alerts: int


@cache
def _positions() -> dict[str, tuple[str, float, float]]:
    text = resources.files("vembetalar.supply.data").joinpath("halland_map.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)["municipalities"]
    return {str(code): (str(m["name"]), float(m["lat"]), float(m["lon"])) for code, m in data.items()}


MAP_W, MAP_H = 320, 380


def _map(counts: dict[str, tuple[int, int]]) -> list[Place]:
    """Each municipality with stocks as a circle at its seat's position (schematic: an
    equirectangular projection of the bundled coordinates, scaled to the box)."""
    known = {code: pos for code, pos in _positions().items() if code in counts}
    if not known:
        return []
    lats = [lat for _, lat, _ in known.values()]
    lons = [lon for _, _, lon in known.values()]
    lat_lo, lat_hi = min(lats) - 0.12, max(lats) + 0.12
    lon_lo, lon_hi = min(lons) - 0.25, max(lons) + 0.25
    places = []
    for code, (name, lat, lon) in known.items():
        stocks, alerts = counts[code]
        places.append(
            Place(
                code,
                name,
                round(30 + (lon - lon_lo) / (lon_hi - lon_lo) * (MAP_W - 60), 1),
                round(20 + (lat_hi - lat) / (lat_hi - lat_lo) * (MAP_H - 40), 1),
                round(12 + 3 * min(stocks, 16) ** 0.5 * 2, 1),
                stocks,
                alerts,
            )
        )
    return places


# ---------------------------------------------------------------- the stocks
def _alert_counts(items: list[ItemState]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        for alert in item.alerts:
            counts[alert.kind] = counts.get(alert.kind, 0) + 1
    return counts


@router.get("/supply", response_class=HTMLResponse)
def stocks_page(request: Request, user: UserDep, db: DbDep, municipality: str | None = None) -> HTMLResponse:
    today = _today(request)
    stocks = _visible(db, user)
    by_stock = states(db, stocks, today)
    rows = [(s, _alert_counts(by_stock.get(s.id, []))) for s in stocks]
    per_municipality: dict[str, tuple[int, int]] = {}
    for stock, counts in rows:
        n, a = per_municipality.get(stock.municipality, (0, 0))
        per_municipality[stock.municipality] = (n + 1, a + sum(counts.values()))
    chosen = municipality if municipality in per_municipality else None
    shown = [(s, c) for s, c in rows if chosen is None or s.municipality == chosen]
    active = [n for n in stored_notices(db) if n.active_on(today)]
    return render(
        request,
        "supply_stocks.html",
        rows=shown,
        municipalities=sorted(per_municipality),
        chosen=chosen,
        places=_map(per_municipality),
        map_size=(MAP_W, MAP_H),
        active_shortages=len(active),
        today=today,
    )


def _card(
    request: Request,
    user: Principal,
    db: Session,
    stock_id: str,
    *,
    error: str | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    actor = _actor(user)
    stock = ledger.stock_for(db, actor, stock_id)
    today = _today(request)
    items = states(db, [stock], today)[stock.id]
    return render(
        request,
        "supply_stock.html",
        status_code,
        stock=stock,
        items=items,
        history=ledger.history(db, stock.id),
        corrected=ledger.corrected(db, stock.id),
        can_withdraw=can(user.role, "supply.withdraw"),
        can_manage=can(user.role, "supply.manage"),
        error=error,
        message=message,
        today=today,
    )


@router.get("/supply/stocks/{stock_id}", response_class=HTMLResponse)
def stock_card(request: Request, stock_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    return _card(request, user, db, stock_id)


def _int(form: dict[str, str], name: str, label: str) -> int:
    text = form.get(name, "")
    if not text.strip():
        raise BadSupplyInput(f"{label}: saknas men är obligatoriskt")
    return units(text, label, positive=False)


def _date(form: dict[str, str], name: str, label: str) -> dt.date:
    try:
        return dt.date.fromisoformat(form.get(name, "").strip())
    except ValueError:
        raise BadSupplyInput(f"{label}: ska vara ett datum ÅÅÅÅ-MM-DD") from None


async def _movement(request: Request, user: Principal, db: Session, stock_id: str, what: str) -> HTMLResponse:
    """One manage form of the stock card (receipt, discard, count, correction)."""
    form = await _form(request)
    try:
        message = await run_in_threadpool(_apply, db, user, request, stock_id, what, form)
    except BadSupplyInput as exc:
        db.rollback()
        return _card(request, user, db, stock_id, error=str(exc), status_code=422)
    except MovementRefused as exc:
        db.rollback()
        return _card(request, user, db, stock_id, error=str(exc), status_code=409)
    return _card(request, user, db, stock_id, message=message)


def _apply(
    db: Session, user: Principal, request: Request, stock_id: str, what: str, form: dict[str, str]
) -> str:
    """The movement itself, in a worker thread: it may wait for another movement's lock."""
    actor, today = _actor(user), _today(request)
    if what == "receive":
        ledger.receive(
            db,
            actor,
            stock_id,
            form.get("varunummer", "")[:6],
            form.get("lot", "")[:60],
            _date(form, "expiry", "utgångsdatum"),
            _int(form, "quantity", "antal"),
            today,
            form.get("note", ""),
        )
        message = "Inleveransen är registrerad."
    elif what == "discard":
        ledger.discard(
            db,
            actor,
            stock_id,
            _int(form, "lot_id", "batch"),
            _int(form, "quantity", "antal"),
            form.get("reason_code", "")[:30],
            form.get("note", ""),
            today,
        )
        message = "Kassationen är registrerad."
    elif what == "count":
        entry = ledger.count(
            db,
            actor,
            stock_id,
            _int(form, "lot_id", "batch"),
            _int(form, "counted", "räknat antal"),
            form.get("note", ""),
            today,
        )
        message = (
            "Inventeringen stämmer."
            if entry.quantity == 0
            else (f"Inventeringen är registrerad med avvikelsen {entry.quantity:+d} st.")
        )
    else:
        ledger.correct(db, actor, stock_id, _int(form, "entry_id", "rörelse"), form.get("reason", ""), today)
        message = "Rättelsen är registrerad (den rättade rörelsen står kvar)."
    return message


@router.post("/supply/stocks/{stock_id}/receive", response_class=HTMLResponse)
async def receive(request: Request, stock_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    return await _movement(request, user, db, stock_id, "receive")


@router.post("/supply/stocks/{stock_id}/discard", response_class=HTMLResponse)
async def discard(request: Request, stock_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    return await _movement(request, user, db, stock_id, "discard")


@router.post("/supply/stocks/{stock_id}/count", response_class=HTMLResponse)
async def count(request: Request, stock_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    return await _movement(request, user, db, stock_id, "count")


@router.post("/supply/stocks/{stock_id}/correct", response_class=HTMLResponse)
async def correct(request: Request, stock_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    return await _movement(request, user, db, stock_id, "correct")


# ---------------------------------------------------------------- the withdrawal form
def _withdraw_page(
    request: Request,
    user: Principal,
    db: Session,
    stock_id: str,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    stock = ledger.stock_for(db, _actor(user), stock_id, "supply.withdraw")
    items = [i for i in states(db, [stock], _today(request))[stock.id] if i.balance > 0]
    return render(request, "supply_withdraw.html", status_code, stock=stock, items=items, **extra)


@router.get("/supply/stocks/{stock_id}/withdraw", response_class=HTMLResponse)
def withdraw_form(request: Request, stock_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    return _withdraw_page(request, user, db, stock_id)


@router.post("/supply/stocks/{stock_id}/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, stock_id: str, user: UserDep, db: DbDep) -> HTMLResponse:
    """Take units for a patient; the answer names the batches to take (first expiry first)."""
    form = await _form(request)
    values = {k: form.get(k, "")[:300] for k in ("varunummer", "quantity", "patient", "reason")}
    try:
        taken = await run_in_threadpool(  # in a worker thread: it may wait for another withdrawal's lock
            ledger.withdraw,
            db,
            _actor(user),
            stock_id,
            values["varunummer"][:6],
            _int(form, "quantity", "antal"),
            values["patient"],
            values["reason"],
            _today(request),
        )
    except BadSupplyInput as exc:
        db.rollback()
        return _withdraw_page(request, user, db, stock_id, 422, error=str(exc), values=values)
    except MovementRefused as exc:
        db.rollback()
        return _withdraw_page(request, user, db, stock_id, 409, error=str(exc), values=values)
    return _withdraw_page(request, user, db, stock_id, taken=taken, values={})


# ---------------------------------------------------------------- shortages
#: A notice file larger than this is refused (a notice list is a few kB).
MAX_NOTICE_BYTES = 1024 * 1024


def _shortages(
    request: Request, user: Principal, db: Session, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    today = _today(request)
    stocks = _visible(db, user)
    notices = stored_notices(db)
    active = [impact(db, n, today, stocks) for n in notices if n.active_on(today)]
    others = [n for n in notices if not n.active_on(today)]
    return render(
        request,
        "supply_shortages.html",
        status_code,
        active=active,
        others=others,
        today=today,
        can_manage=can(user.role, "supply.manage"),
        **extra,
    )


@router.get("/supply/shortages", response_class=HTMLResponse)
def shortages_page(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    """Every active notice's impact on the user's stocks and dose patients, and the others listed."""
    return _shortages(request, user, db)


@router.post("/supply/shortages", response_class=HTMLResponse)
async def shortages_upload(request: Request, user: UserDep, db: DbDep) -> HTMLResponse:
    """Import notices from an uploaded file (JSON or CSV, as ``supply import-shortages``): all or none."""
    actor = _actor(user)
    repo.require(actor, "supply.manage")
    form = await request.form()
    supplied = form.get("csrf")
    check_csrf(request, supplied if isinstance(supplied, str) else None)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _shortages(request, user, db, 422, error="Välj en fil med restnoteringar (JSON eller CSV).")
    data = await upload.read(MAX_NOTICE_BYTES + 1)
    name = upload.filename[:120]
    await form.close()
    if len(data) > MAX_NOTICE_BYTES:
        return _shortages(request, user, db, 413, error="Filen är för stor (högst 1 MB).")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _shortages(request, user, db, 422, error=f"{name}: är inte UTF-8")
    try:
        notices = parse_notices(text, name)
        added, updated = await run_in_threadpool(import_notices, db, notices)
    except BadSupplyInput as exc:
        db.rollback()
        return _shortages(request, user, db, 422, error=f"{name}: {exc}")
    repo.audit(db, actor, "supply.shortages", None, f"{name}: {added} nya, {updated} uppdaterade")
    db.commit()
    return _shortages(request, user, db, message=f"{added} nya och {updated} uppdaterade restnoteringar.")
