"""``vembetalar events import``: dispensings and deliveries from another system, as steps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from vembetalar.cli_common import err, failure, out
from vembetalar.clock import BadClock, Clock
from vembetalar.store import repo
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.store.event_import import COLUMNS, BadFile, import_events_bulk, read_rows, write_rejects
from vembetalar.store.models import User

events_app = typer.Typer(
    help="Fakturaunderlag: importera expedieringar och leveranser.", no_args_is_help=True
)
_fail = failure


@events_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(metavar="FIL.csv", help="UTF-8, komma, punkt som decimaltecken.")],
    user: Annotated[str, typer.Option("--user", help="Användaren som registrerar (behandlande enhet).")],
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Skriv avvisade rader med skäl till denna CSV.")
    ] = None,
) -> None:
    """Registrera en expediering/leverans per rad, med samma kontroller som i desken.

    Kolumner: case_reference (VB-…), occurred_on (ÅÅÅÅ-MM-DD) och valfritt quantity, unit_price_sek,
    amount_sek, product_name, varunummer, prescriber_name, unit_name, diarienummer, idempotency_key.
    Slutkod 0 när alla rader togs emot, 3 när några avvisades, 2 när filen inte kan användas.
    """
    try:
        today = Clock.from_env().today()
    except BadClock as exc:
        raise _fail(str(exc)) from None
    try:
        _, rows = read_rows(file)
        lines = list(rows)
    except BadFile as exc:
        raise _fail(str(exc)) from None
    engine = make_engine()
    migrate(engine)
    with session_factory(engine)() as db:
        who = db.scalars(select(User).where(User.username == user, User.active)).first()
        if who is None:
            raise _fail(f"--user: ingen aktiv användare {user!r}")
        actor = repo.Actor.of(who)
        with Progress(
            TextColumn("importerar"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        ) as bar:
            task = bar.add_task("rader", total=len(lines))
            report = import_events_bulk(
                db, actor, iter(lines), today=today, progress=lambda n: bar.advance(task, n)
            )
    engine.dispose()
    out.print(
        f"{report.rows} rader: {report.created} nya underlag, {report.already} fanns redan, "
        f"{len(report.rejects)} avvisade"
    )
    if report.rejects:
        table = Table("rad", "ärende", "skäl", title="Avvisade rader")
        for r in report.rejects[:50]:
            table.add_row(str(r.row), r.case_reference, r.reason)
        out.print(table)
        if len(report.rejects) > 50:
            out.print(f"… och {len(report.rejects) - 50} till")
        if rejects is not None:
            write_rejects(rejects, report.rejects)
            out.print(f"Avvisade rader skrivna till {rejects}")
        raise typer.Exit(3)


__all__ = ["COLUMNS", "events_app"]
