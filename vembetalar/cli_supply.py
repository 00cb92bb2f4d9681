"""``vembetalar supply …``: the drug catalogue, dose-patient list and shortage notices in; shortage
impact, alerts and reorder proposals out — for the pharmaceutical unit and the MAS.

Bad input ends with exit code 2 and a Swedish line (or one per bad row), never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from vembetalar.cli_common import failure, out
from vembetalar.clock import BadClock, Clock
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.store.supply_models import SupplyStock
from vembetalar.supply import catalogue, imports, registry
from vembetalar.supply.alerts import ALERT_NAMES, EXPIRY_HORIZON_DAYS
from vembetalar.supply.errors import BadSupplyInput
from vembetalar.supply.impact import impact
from vembetalar.supply.reorder import LEAD_DAYS
from vembetalar.supply.state import states

supply_app = typer.Typer(
    help="Läkemedelsförråd och restsituationer: katalog, dospatienter, restnoteringar, larm, beställning.",
    no_args_is_help=True,
)


class Format(StrEnum):
    text = "text"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", help="text (tabeller) eller json.")]


@contextmanager
def _db() -> Iterator[Session]:
    engine = make_engine()
    migrate(engine)
    try:
        with session_factory(engine)() as db:
            yield db
    finally:
        engine.dispose()


def _today() -> Any:
    try:
        return Clock.from_env().today()
    except BadClock as exc:
        raise failure(str(exc)) from None


def _text(path: Path) -> str:
    try:
        return catalogue.read_text(path)
    except BadSupplyInput as exc:
        raise failure(str(exc)) from None


def _json(data: Any) -> None:
    # Plain print: rich would wrap long lines and colour the JSON.
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@supply_app.command("import-catalogue")
def import_catalogue(file: Annotated[Path, typer.Argument(metavar="FILE.csv")]) -> None:
    """Läs in läkemedelskatalogen (CSV, kolumner i docs/supply.md). En fil med fel läses inte in alls."""
    text = _text(file)
    try:
        products = catalogue.parse_catalogue(text)
    except BadSupplyInput as exc:
        raise failure(f"{file}: {exc}") from None
    with _db() as db:
        report = catalogue.import_catalogue(db, products)
    out.print(f"{report.added} nya och {report.updated} uppdaterade förpackningar i katalogen.")


@supply_app.command("load-stocks")
def load_stocks(
    stocks: Annotated[Path | None, typer.Option("--stocks", help="Förrådsregister (YAML).")] = None,
    assortment: Annotated[Path | None, typer.Option("--assortment", help="Sortiment (YAML).")] = None,
) -> None:
    """Läs in förrådsregistret (som standard Hallands förråd ur källan) med sortiment och nivåer."""
    try:
        reg = registry.read_registry(stocks, assortment)
    except BadSupplyInput as exc:
        raise failure(str(exc)) from None
    with _db() as db:
        report = registry.apply_registry(db, reg)
    out.print(
        f"{report.stocks} nya förråd, {report.items} nya sortimentsrader "
        f"({len(reg.stocks)} förråd i registret)."
    )
    if report.missing_products:
        out.print(
            "[yellow]Saknas i katalogen (hoppades över):[/] " + ", ".join(sorted(report.missing_products)),
            highlight=False,
        )


@supply_app.command("import-dose-patients")
def import_dose_patients(file: Annotated[Path, typer.Argument(metavar="FILE.csv")]) -> None:
    """Läs in dospatientlistan (patient_pseudonym, municipality, varunummer); ersätter den lagrade listan."""
    text = _text(file)
    try:
        rows = imports.parse_dose_patients(text)
    except BadSupplyInput as exc:
        raise failure(f"{file}: {exc}") from None
    with _db() as db:
        count = imports.import_dose_patients(db, rows)
    out.print(f"{count} rader i dospatientlistan ({len({r[0] for r in rows})} patienter).")


@supply_app.command("import-shortages")
def import_shortages(file: Annotated[Path, typer.Argument(metavar="FILE.json|FILE.csv")]) -> None:
    """Läs in restnoteringar (en JSON-lista, ett JSON-objekt eller CSV med samma fält)."""
    text = _text(file)
    try:
        notices = imports.parse_notices(text, file.name)
        with _db() as db:
            added, updated = imports.import_notices(db, notices)
    except BadSupplyInput as exc:
        raise failure(f"{file}: {exc}") from None
    out.print(f"{added} nya och {updated} uppdaterade restnoteringar.")


@supply_app.command("shortage")
def shortage(
    file: Annotated[Path, typer.Argument(metavar="NOTICE.json", help="En restnotering (eller en lista).")],
    fmt: FormatOption = Format.text,
) -> None:
    """Vad en restnotering drabbar: förråd och täckning, dospatienter, rangordnade alternativ, åtgärder."""
    text = _text(file)
    today = _today()
    try:
        notices = imports.parse_notices(text, file.name)
        with _db() as db:
            results = [impact(db, notice, today) for notice in notices]
    except BadSupplyInput as exc:
        raise failure(f"{file}: {exc}") from None
    if fmt is Format.json:
        payload = [r.as_json() for r in results]
        _json(payload[0] if len(payload) == 1 and not text.lstrip().startswith("[") else payload)
        return
    for result in results:
        p = result.product
        out.rule(f"[bold]{p.name}[/] ({p.varunummer})")
        table = Table("förråd", "kommun", "saldo (st)", "täckning (dagar)", title="Drabbade förråd")
        for a in result.affected:
            cover = a.item.days_of_cover
            table.add_row(
                a.stock.name,
                a.stock.municipality,
                str(a.item.balance),
                "–" if cover is None else str(cover).replace(".", ","),
            )
        out.print(table)
        out.print(f"Dospatienter på produkten: {result.dose_patients}")
        subs = Table("rang", "varunummer", "namn", "slag", "merkostnad/DDD (kr)", title="Alternativ")
        for s in result.substitutes:
            extra = (
                "okänd"
                if s.extra_cost_per_ddd_sek is None
                else f"{s.extra_cost_per_ddd_sek:+.2f}".replace(".", ",")
            )
            subs.add_row(str(s.rank), s.product.varunummer, s.product.name, s.kind, extra)
        out.print(subs)
        for n, action in enumerate(result.actions, start=1):
            out.print(f"{n}. {action}", highlight=False)


def _stocks(db: Session, municipality: str | None, stock_id: str | None) -> list[SupplyStock]:
    query = select(SupplyStock).order_by(SupplyStock.municipality, SupplyStock.id)
    if municipality:
        query = query.where(SupplyStock.municipality == municipality)
    if stock_id:
        query = query.where(SupplyStock.id == stock_id)
    found = list(db.scalars(query))
    if not found:
        raise failure("inga förråd matchar (läs in registret med 'vembetalar supply load-stocks')")
    return found


MunicipalityOption = Annotated[
    str | None, typer.Option("--municipality", help="Kommunkod (SCB), t.ex. 1380.")
]
StockOption = Annotated[str | None, typer.Option("--stock", help="Ett förråds id, t.ex. halmstad-1.")]


@supply_app.command("alerts")
def alerts(
    municipality: MunicipalityOption = None,
    stock: StockOption = None,
    horizon: Annotated[
        int, typer.Option("--horizon", min=0, max=3650, help="Dagar framåt för utgångsdatum.")
    ] = (EXPIRY_HORIZON_DAYS),
    fmt: FormatOption = Format.text,
) -> None:
    """Larm: slut, under miniminivå, går snart ut, utgånget."""
    today = _today()
    with _db() as db:
        chosen = _stocks(db, municipality, stock)
        found = [
            alert
            for items in states(db, chosen, today, horizon_days=horizon).values()
            for item in items
            for alert in item.alerts
        ]
    if fmt is Format.json:
        _json(
            [
                {
                    "stock_id": a.stock_id,
                    "varunummer": a.varunummer,
                    "kind": a.kind,
                    "lot": a.lot_number,
                    "message": a.message,
                }
                for a in found
            ]
        )
        return
    table = Table("förråd", "larm", "", title=f"Larm {today.isoformat()} ({len(found)})")
    for a in found:
        table.add_row(a.stock_id, ALERT_NAMES[a.kind], a.message)
    out.print(table)


@supply_app.command("reorder")
def reorder_command(
    municipality: MunicipalityOption = None,
    stock: StockOption = None,
    lead_days: Annotated[
        int, typer.Option("--lead-days", min=0, max=365, help="Leveranstid i dagar.")
    ] = LEAD_DAYS,
    fmt: FormatOption = Format.text,
) -> None:
    """Beställningsförslag ur min/max-nivåer och förbrukning (senaste 90 dagarna)."""
    today = _today()
    rows: list[dict[str, Any]] = []
    with _db() as db:
        chosen = _stocks(db, municipality, stock)
        for stock_id, items in states(db, chosen, today, lead_days=lead_days).items():
            for item in items:
                if item.proposal is None:
                    continue
                p = item.proposal
                rows.append(
                    {
                        "stock_id": stock_id,
                        "varunummer": p.varunummer,
                        "name": item.product.name,
                        "balance": p.balance,
                        "min": p.min_units,
                        "max": p.max_units,
                        "daily_use": float(round(p.daily_use, 2)),
                        "packs": p.packs,
                        "units": p.units,
                    }
                )
    if fmt is Format.json:
        _json(rows)
        return
    table = Table("förråd", "produkt", "saldo", "min–max", "per dag", "beställ", title="Beställningsförslag")
    for r in rows:
        table.add_row(
            r["stock_id"],
            r["name"],
            str(r["balance"]),
            f"{r['min']}–{r['max']}",
            f"{r['daily_use']:.2f}".replace(".", ","),
            f"{r['packs']} fp ({r['units']} st)",
        )
    out.print(table)
