"""``vembetalar oversight …``: import dispensings, run the indicators, make synthetic data.

Exit codes: 0 done, 3 import done but some rows rejected (see rejects.csv), 2 bad input — always
with one Swedish line, never a traceback.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from vembetalar.cli_common import err, failure, out
from vembetalar.oversight.engines import EngineError
from vembetalar.oversight.importer import count_rows, import_file
from vembetalar.oversight.run import INDICATOR_NAMES, BadRun, Flag, Options, run, write_flags
from vembetalar.oversight.schema import BadFile, BadWatchlist
from vembetalar.oversight.store import DEFAULT_ROOT, Store

oversight_app = typer.Typer(
    help="Uppföljning av förskrivning: importera uttag, kör indikatorerna, granska flaggor.",
    no_args_is_help=True,
)
DbOption = Annotated[
    Path | None, typer.Option("--db", help=f"Uttagslagret (Parquet), standard {DEFAULT_ROOT}.")
]


def _advance(progress: Progress, task: TaskID, count: int) -> None:
    progress.advance(task, count)


def _columns() -> list[object]:
    return [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]


@oversight_app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(metavar="FIL...", help="CSV (UTF-8, komma) eller Parquet.")],
    db: DbOption = None,
) -> None:
    """Importera uttag till lagret. Varje felaktig rad hamnar i rejects.csv med skälet.

    Slutkod 0 när alla rader importerades, 3 när några avvisades, 2 när en fil inte kan användas
    (t.ex. saknade eller okända kolumner). Samma fil en gång till lägger inte till något.
    """
    store = Store.at(db)
    worst = 0
    for path in files:
        try:
            with Progress(*_columns(), console=err, transient=True) as progress:  # type: ignore[arg-type]
                task = progress.add_task(f"Importerar {path.name}", total=count_rows(path))
                report = import_file(path, store, partial(_advance, progress, task))
        except BadFile as exc:
            err.print(f"[bold red]fel:[/] {exc}", highlight=False, soft_wrap=True)
            worst = 2
            continue
        if report.already:
            out.print(f"{path.name}: redan importerad, inget lades till", highlight=False)
            continue
        line = f"{path.name}: {report.imported} rader importerade"
        if report.rejected:
            line += f", {report.rejected} avvisade (se {store.rejects})"
            worst = max(worst, 3) if worst != 2 else 2
        out.print(line, highlight=False)
        for reason, count in report.reasons.most_common():
            out.print(f"  {count} × {reason}", highlight=False)
    raise typer.Exit(worst)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise failure(f"{option} {value!r} är inte ett datum (ÅÅÅÅ-MM-DD)") from None


@oversight_app.command("run")
def run_command(
    out_file: Annotated[Path, typer.Option("--out", help="Flaggorna: FIL.csv eller FIL.parquet.")],
    db: DbOption = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="Periodens första dag (standard: första uttaget).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Periodens sista dag (standard: sista uttaget).")
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="duckdb (inbäddad) eller spark.")] = "duckdb",
    top: Annotated[int, typer.Option("--top", help="Så många flaggor, de mest avvikande först.")] = 500,
    watchlist: Annotated[
        Path | None, typer.Option("--watchlist", help="Egen lista över bevakade substanser (YAML).")
    ] = None,
    publish: Annotated[
        str | None,
        typer.Option(
            "--publish", help="Lägg flaggorna för granskning i webben hos organisationen, t.ex. region:13."
        ),
    ] = None,
) -> None:
    """Kör indikatorerna över perioden och skriv de mest avvikande flaggorna, rangordnade och förklarade."""
    if engine not in ("duckdb", "spark"):
        raise failure(f"--engine {engine!r}: ska vara duckdb eller spark")
    if out_file.suffix.lower() not in (".csv", ".parquet"):
        raise failure(f"{out_file.name}: --out ska sluta på .csv eller .parquet")
    options = Options(
        date_from=_date(date_from, "--from"), date_to=_date(date_to, "--to"), top=top, watchlist=watchlist
    )
    store = Store.at(db)
    try:
        with Progress(*_columns(), console=err, transient=True) as progress:  # type: ignore[arg-type]
            task = progress.add_task(f"Indikatorer ({engine})", total=None)

            def step(name: str, done: int, total: int) -> None:
                progress.update(
                    task, completed=done, total=total, description=f"Indikatorer ({engine}): {name}"
                )

            result = run(store, options, engine, step)
        write_flags(result.flags, out_file)
    except (BadRun, BadWatchlist, EngineError) as exc:
        raise failure(str(exc)) from None
    table = Table(
        "rang", "indikator", "vem", "poäng", "förklaring", title=f"De 10 första av {len(result.flags)}"
    )
    for flag in result.flags[:10]:
        table.add_row(
            str(flag.rank),
            INDICATOR_NAMES[flag.indicator],
            f"{flag.entity_kind} {flag.entity_code}",
            f"{flag.score:.1f}",
            flag.explanation,
        )
    out.print(table)
    out.print(
        f"{len(result.flags)} flaggor för {result.period_from}–{result.period_to} ({result.engine}) "
        f"→ {out_file}",
        highlight=False,
    )
    if publish:
        _publish(store, options, result.flags, publish)


def _publish(store: Store, options: Options, flags: list[Flag], organisation: str) -> None:
    from vembetalar.oversight import details, review
    from vembetalar.store.db import make_engine, migrate, session_factory
    from vembetalar.store.models import Organisation

    db_engine = make_engine()
    migrate(db_engine)
    try:
        with session_factory(db_engine)() as session:
            if session.get(Organisation, organisation) is None:
                raise failure(f"--publish {organisation}: organisationen finns inte i databasen")
            report = review.publish(session, organisation, flags, details.compute(store, options, flags))
    finally:
        db_engine.dispose()
    out.print(f"Publicerat för {organisation}: {report.added} nya, {report.updated} uppdaterade flaggor")


@oversight_app.command("demo-data")
def demo_data_command(
    rows: Annotated[int, typer.Option("--rows", help="Ungefär så många uttag.")],
    out_file: Annotated[Path, typer.Option("--out", help="FIL.parquet (eller .csv).")],
    seed: Annotated[int, typer.Option("--seed", help="Samma frö ger samma data.")] = 7,
) -> None:
    """Syntetiska uttag med realistisk struktur och några planterade avvikelser (listade i
    FIL.planted.csv bredvid; detektorn läser den aldrig)."""
    from vembetalar.oversight import synthetic

    if rows < 1000:
        raise failure("--rows ska vara minst 1000")
    if out_file.suffix.lower() not in (".csv", ".parquet"):
        raise failure(f"{out_file.name}: --out ska sluta på .parquet eller .csv")
    with Progress(*_columns(), console=err, transient=True) as progress:  # type: ignore[arg-type]
        task = progress.add_task("Skapar uttag", total=rows)
        planted = synthetic.write(out_file, rows, seed=seed, progress=lambda n: progress.advance(task, n))
    where = synthetic.planted_path(out_file)
    out.print(f"{rows} uttag → {out_file}; {len(planted)} planterade avvikelser → {where}", soft_wrap=True)
