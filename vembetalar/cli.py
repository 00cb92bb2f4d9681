"""The command line: ``vembetalar decide``, ``vembetalar packs …`` and ``vembetalar demo …``.

Bad input ends with exit code 2 and one line naming the field, never a stack trace.
"""

from __future__ import annotations

import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, NoReturn

import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vembetalar.cli_events import events_app
from vembetalar.cli_invoice import invoice_app
from vembetalar.cli_oversight import oversight_app
from vembetalar.cli_supply import supply_app
from vembetalar.cli_users import users_app
from vembetalar.clock import BadClock
from vembetalar.explain import render
from vembetalar.model.errors import BadCase, parse_case
from vembetalar.rules.analysis import check_packs
from vembetalar.rules.batch import decide_frame
from vembetalar.rules.batch_io import BadBatch, load_batch, write_decisions
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import Pack, PackError, load_packs
from vembetalar.rules.packtest import run_pack_tests

app = typer.Typer(
    help="Vem betalar? Kostnadsansvar enligt avtalen, med källan citerad.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
packs_app = typer.Typer(
    help="Regelpaket (avtal som data): lista, visa, testa, analysera.", no_args_is_help=True
)
app.add_typer(packs_app, name="packs")
app.add_typer(events_app, name="events")
app.add_typer(invoice_app, name="invoice")
app.add_typer(users_app, name="users")
app.add_typer(oversight_app, name="oversight")
app.add_typer(supply_app, name="supply")

out = Console()
err = Console(stderr=True)

PacksOption = Annotated[
    list[Path] | None,
    typer.Option("--packs", help="Extra mapp med regelpaket (kan anges flera gånger)."),
]
BATCH_CHUNK = 250_000


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]fel:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def engine_from(extra: list[Path] | None) -> Engine:
    try:
        return Engine(load_packs(extra or []))
    except PackError as exc:
        fail(str(exc))


@app.command()
def decide(
    case_file: Annotated[
        str | None,
        typer.Argument(metavar="CASE.json|-", help="Ärendet som JSON, eller - för stdin."),
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Förklara beslutet på svenska.")] = False,
    batch: Annotated[
        Path | None, typer.Option("--batch", help="Många ärenden: .csv, .jsonl eller .parquet.")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Utfil för --batch.")] = None,
    packs: PacksOption = None,
) -> None:
    """Avgör vem som beslutar, betalar och fakturerar för ett ärende (eller en fil med ärenden)."""
    if batch is not None:
        if out_file is None:
            fail("--batch kräver --out UTFIL (.csv, .jsonl eller .parquet)")
        if case_file is not None:
            fail("ange antingen CASE.json eller --batch, inte båda")
        decide_batch(engine_from(packs), batch, out_file)
        return
    if case_file is None:
        fail("ange en ärendefil (CASE.json) eller - för stdin")
    try:
        raw = sys.stdin.read() if case_file == "-" else Path(case_file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{case_file}: kunde inte läsas ({exc.strerror})")
    try:
        case = parse_case(raw)
    except BadCase as exc:
        fail(str(exc))
    decision = engine_from(packs).decide(case)
    if explain:
        out.print(render(decision))
    else:
        sys.stdout.write(decision.model_dump_json(indent=2) + "\n")


def decide_batch(engine: Engine, source: Path, target: Path) -> None:
    started = time.perf_counter()
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    try:
        with Progress(*columns, console=err, transient=False) as progress:
            reading = progress.add_task("Läser och kontrollerar", total=1)
            frame = load_batch(source)
            progress.advance(reading)
            task = progress.add_task("Avgör ärenden", total=frame.height)
            with_json = target.suffix.lower() in (".jsonl", ".ndjson")
            chunks = []
            for offset in range(0, max(frame.height, 1), BATCH_CHUNK):
                chunk = frame.slice(offset, BATCH_CHUNK)
                decided = decide_frame(engine, chunk, with_json=with_json)
                if "id" in chunk.columns:
                    decided = decided.with_columns(chunk.get_column("id")).select(["id", *decided.columns])
                chunks.append(decided)
                progress.advance(task, chunk.height)
            result = pl.concat(chunks)
            writing = progress.add_task(f"Skriver {target.name}", total=1)
            write_decisions(result, target)
            progress.advance(writing)
    except BadBatch as exc:
        fail(str(exc))
    elapsed = time.perf_counter() - started
    counts = result.get_column("status").value_counts() if result.height else pl.DataFrame()
    summary = (
        ", ".join(f"{s}: {n}" for s, n in counts.sort("status").iter_rows()) if counts.height else "inga"
    )
    err.print(f"{result.height} ärenden på {elapsed:.1f} s ({summary}) → {target}")


demo_app = typer.Typer(
    help="Demodata: de medföljande ärendena förklarade, eller inlästa i databasen.", no_args_is_help=True
)
app.add_typer(demo_app, name="demo")


@demo_app.command("explain")
def demo_explain(packs: PacksOption = None) -> None:
    """Avgör de medföljande demoärendena och förklarar besluten."""
    engine = engine_from(packs)
    folder = resources.files("vembetalar.demo")
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".json")), key=lambda p: p.name)
    out.rule("[bold]vembetalar — vem betalar?[/]")
    out.print(f"{len(engine.packs)} avtal inlästa: " + ", ".join(p.id for p in engine.packs))
    for item in files:
        case = parse_case(item.read_text(encoding="utf-8"))
        out.print(render(engine.decide(case), title=item.name.removesuffix(".json").replace("_", " ")))
    out.print(
        "Prova själv: [bold]echo '<ärende-JSON>' | .venv/bin/vembetalar decide - --explain[/]  "
        "· [bold].venv/bin/vembetalar packs list[/]"
    )


@demo_app.command("load")
def demo_load() -> None:
    """Läs in demoorganisationer, -användare, organisationsregistret och ärenden med
    fakturaunderlag för varje fakturaväg (2024-05 och 2023-10), i databasen i
    $VEMBETALAR_DATABASE_URL eller ./var. Idempotent: körs den igen läggs inget till."""
    from vembetalar.clock import Clock
    from vembetalar.store.db import make_engine, migrate, session_factory
    from vembetalar.web.demo import load

    try:
        today = Clock.from_env().today()
    except BadClock as exc:
        fail(str(exc))
    rules = engine_from(None)
    db_engine = make_engine()
    migrate(db_engine)
    with session_factory(db_engine)() as db:
        report = load(db, rules, today)
    db_engine.dispose()
    if not report.added:
        out.print("Demodata fanns redan; inget lades till.")
    else:
        out.print(
            f"Inläst: {report.organisations} organisationer, {report.users} användare, "
            f"{report.registry} registerposter, {report.cases} ärenden, {report.commitments} "
            f"betalningsförbindelser, {report.events} fakturaunderlag."
        )
    out.print(
        "Fakturera: [bold].venv/bin/vembetalar invoice run --all --period 2024-05 --out fakturor[/] "
        "(och --period 2023-10). Logga in: [bold].venv/bin/vembetalar serve --demo[/] skriver ut lösenorden."
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Adress att lyssna på.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    demo: Annotated[
        bool,
        typer.Option("--demo/--no-demo", help="Läs in demodata (som demo load) och skriv ut demoanvändarna."),
    ] = False,
    packs: PacksOption = None,
) -> None:
    """Starta ärendedesken (webb + JSON-API) på databasen i $VEMBETALAR_DATABASE_URL eller ./var."""
    from vembetalar.web.app import create_app
    from vembetalar.web.demo import run_demo_invoices, seed
    from vembetalar.web.server import run as run_server
    from vembetalar.web.settings import Settings

    try:
        application = create_app(Settings(pack_dirs=list(packs or [])))
    except (PackError, BadClock) as exc:
        fail(str(exc))
    url = f"http://{host}:{port}"
    if demo:
        with application.state.sessions() as db:
            logins, token = seed(db, application.state.engine, application.state.clock.today())
            invoiced = run_demo_invoices(db, application.state.engine, application.state.clock.today())
        table = Table(
            "användarnamn",
            "lösenord",
            "roll",
            "organisation",
            title="Demoanvändare (nya lösenord vid varje start)",
        )
        for login in logins:
            table.add_row(login.username, login.password, login.role, login.organisation)
        out.print(table)
        out.print(
            f"API-token för lakare.vgr: [bold]{token}[/]  "
            f"(curl -H 'Authorization: Bearer …' {url}/api/v1/cases)"
        )
        if invoiced:
            out.print(
                f"{invoiced} demofakturor skapade: logga in som faktura.vgr eller faktura.karlstad, Fakturor."
            )
    out.print(f"Öppna [bold]{url}[/] och logga in. API-dokumentation: {url}/api/v1/docs. Avsluta med Ctrl+C.")
    run_server(application, host, port)  # uvicorn with safe logging and trusted proxies only


def _select(engine: Engine, pack_id: str | None) -> list[Pack]:
    if pack_id is None:
        return engine.packs
    try:
        return [engine.pack(pack_id)]
    except KeyError:
        fail(f"okänt regelpaket {pack_id!r} (se 'vembetalar packs list')")


@packs_app.command("list")
def packs_list(packs: PacksOption = None) -> None:
    """Lista inlästa avtal med giltighetstid."""
    engine = engine_from(packs)
    table = Table("id", "avtal", "giltigt", "regler", "källa")
    for p in engine.packs:
        table.add_row(
            p.id,
            p.meta.title,
            p.validity_text(),
            str(sum(1 for _ in p.rules())),
            p.meta.source.document,
        )
    out.print(table)


@packs_app.command("show")
def packs_show(pack_id: str, packs: PacksOption = None) -> None:
    """Visa ett avtals regler med de meningar de vilar på."""
    pack = _select(engine_from(packs), pack_id)[0]
    out.rule(f"[bold]{pack.meta.title}[/]")
    out.print(f"id {pack.id} · gäller {pack.validity_text()} · källa {pack.meta.source.document}")
    if pack.meta.validity_note:
        out.print(f"[italic]{pack.meta.validity_note}[/]")
    out.print("Omfattar: " + " och ".join(c.describe() for c in pack.scope))
    for table in pack.tables:
        out.print(f"\n[bold underline]{table.title}[/] (träffpolicy {table.hit_policy})")
        for rule in table.rules:
            out.print(f"[bold]{rule.id}[/]: {rule.title}")
            out.print(
                "  om " + (" och ".join(c.describe() for c in rule.conditions) or "alltid"),
                style="dim",
            )
            for cid in rule.cite:
                out.print(f"  • {pack.cite_text(cid)}", highlight=False)
            if rule.interpretation:
                out.print(f"  Tolkning: {rule.interpretation}", style="italic")


@packs_app.command("test")
def packs_test(pack_id: Annotated[str | None, typer.Argument()] = None, packs: PacksOption = None) -> None:
    """Kör paketens egna testfall och kontrollera att varje regel täcks."""
    engine = engine_from(packs)
    failed = False
    for pack in _select(engine, pack_id):
        report = run_pack_tests(engine, pack)
        passed = len(report.results) - len(report.failed)
        mark = "[green]ok[/]" if report.ok else "[red]FEL[/]"
        out.print(f"{mark} {pack.id}: {passed}/{len(report.results)} testfall")
        for result in report.failed:
            out.print(f"  [red]✗[/] {result.name}")
            for failure in result.failures:
                out.print(f"      {failure}", highlight=False)
        if report.uncovered:
            out.print(f"  [red]regler utan testfall:[/] {', '.join(report.uncovered)}")
        failed |= not report.ok
    if failed:
        raise typer.Exit(1)


@packs_app.command("check")
def packs_check(pack_id: Annotated[str | None, typer.Argument()] = None, packs: PacksOption = None) -> None:
    """Statisk analys: överlapp, luckor, onåbara regler, citat som inte finns i källan."""
    engine = engine_from(packs)
    selected = _select(engine, pack_id)
    findings = check_packs(selected if pack_id else engine.packs)
    errors = [f for f in findings if f.severity == "error"]
    for f in findings:
        colour = "red" if f.severity == "error" else "yellow"
        out.print(f"[{colour}]{f.severity}[/] {f.pack}: {f.kind}: {f.message}", highlight=False)
    rules = sum(1 for p in selected for _ in p.rules())
    _ending_notes(selected)
    out.print(
        f"{len(selected)} paket, {rules} regler: {len(errors)} fel, {len(findings) - len(errors)} varningar"
    )
    if errors:
        raise typer.Exit(1)


#: An agreement that ends within this many days is told to the pack's maintainers (and flagged on
#: the desk's Avtal page and on decisions resting on it).
ENDING_DAYS = 90


def _ending_notes(packs: list[Pack]) -> None:
    """Agreements that end within ENDING_DAYS of today ($VEMBETALAR_TODAY pins it): time to read
    in the next version. A note, not a finding: the pack itself is right."""
    from vembetalar.clock import Clock

    try:
        today = Clock.from_env().today()
    except BadClock:
        return
    for pack in packs:
        end = pack.meta.valid_to
        if end is not None and 0 <= (end - today).days <= ENDING_DAYS:
            out.print(
                f"[yellow]obs[/] {pack.id}: avtalet upphör {end.isoformat()} (om {(end - today).days} dagar)"
                " – läs in nästa version i tid",
                highlight=False,
            )


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
