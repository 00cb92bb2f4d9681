"""``vembetalar invoice …``: invoice runs and the organisation registry, for the invoice clerk."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import Text, cast, select

from vembetalar.billing.files import FileWriter, write_all
from vembetalar.billing.registry import BadRegistry, apply_registry, read_registry
from vembetalar.billing.run import (
    IssuedInvoice,
    Pending,
    RegistryIncomplete,
    RunReport,
    month_bounds,
    run_invoices,
)
from vembetalar.cli_common import err, failure, out
from vembetalar.clock import BadClock, Clock
from vembetalar.model.money import format_amount
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import PackError, load_packs
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.store.models import BillableEvent, Invoice, OrganisationDetails

if TYPE_CHECKING:
    from vembetalar.handoffs.websesam import Reconciliation

invoice_app = typer.Typer(
    help="Fakturering: fakturakörningar och organisationsregistret.", no_args_is_help=True
)
_fail = failure


def write_files(documents: list[dict[str, Any]], folder: Path) -> None:
    """Each invoice's XML and PDF into ``folder``, on every core, with a progress bar."""
    if not documents:
        return
    with Progress(
        TextColumn("Skriver XML och PDF"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("filer", total=len(documents))
        try:
            write_all(documents, folder, progress=lambda n: bar.advance(task, n))
        except (ValueError, OSError, BrokenProcessPool) as exc:
            raise _files_failed(exc, folder) from None


def _writable(folder: Path) -> None:
    """Refuse an ``--out`` folder that cannot be written before anything is invoiced."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".vembetalar-skrivtest"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _fail(f"kan inte skriva till {folder}: {exc.strerror or exc}; inget har fakturerats") from None


def _files_failed(exc: BaseException, folder: Path) -> typer.Exit:
    """A file that could not be written (a full disk, a folder without rights, a document the
    e-invoice rules refuse): one sentence, and how to write the files again once it is fixed."""
    why = str(exc).strip() or type(exc).__name__
    return _fail(
        f"filerna kunde inte skrivas till {folder}: {why}. Fakturorna finns kvar; skriv filerna igen "
        f"när felet är rättat: vembetalar invoice write --out {folder}",
        1,
    )


#: A run's table lists this many invoices; the rest are counted (a large month makes thousands).
SHOWN = 50


def _print(report: RunReport) -> None:
    if not (report.invoices or report.pending or report.billed_elsewhere or report.warnings):
        out.print(f"{report.issuer} {report.period}: inget nytt att fakturera", highlight=False)
        return
    table = Table("faktura", "mottagare", "rader", "belopp (kr)", title=f"{report.issuer} {report.period}")
    for inv in report.invoices[:SHOWN]:
        table.add_row(inv.number_text, inv.buyer_name, str(inv.line_count), format_amount(inv.total_sek))
    if len(report.invoices) > SHOWN:
        table.add_row(f"… och {len(report.invoices) - SHOWN} till", "", "", "")
    if report.invoices:
        out.print(table)
    else:
        out.print(f"{report.issuer} {report.period}: inga fakturor", highlight=False)
    if report.invoices:
        lines = sum(inv.line_count for inv in report.invoices)
        total = sum((inv.total_sek for inv in report.invoices), Decimal(0))
        made = len(report.invoices)
        out.print(
            f"{made} {'faktura' if made == 1 else 'fakturor'}, {lines} {'rad' if lines == 1 else 'rader'}, "
            f"{format_amount(total)} kr",
            highlight=False,
        )
    for reference, reason, count in _by_case(report.pending):
        out.print(f"[yellow]ej fakturerat[/] {reference}{count}: {reason}", highlight=False)
    for reference, reason, count in _by_case(report.billed_elsewhere):
        out.print(f"[cyan]faktureras på annat håll[/] {reference}{count}: {reason}", highlight=False)
    for warning in report.warnings:
        out.print(f"[yellow]varning[/] {warning}", highlight=False)
    if report.lost_races:
        out.print(f"{report.lost_races} grupp(er) fakturerades samtidigt av en annan körning")


def _by_case(found: list[Pending]) -> list[tuple[str, str, str]]:
    """One line per case and reason, with the number of events when more than one: a case can
    have hundreds of dispensings in a month."""
    counts = Counter((p.case_reference, p.reason) for p in found)
    return [(ref, why, f" ({n} underlag)" if n > 1 else "") for (ref, why), n in counts.items()]


@invoice_app.command("run")
def run_command(
    period: Annotated[str, typer.Option("--period", help="Månaden som faktureras, ÅÅÅÅ-MM.")],
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="Fakturerande part, t.ex. region:14.")
    ] = None,
    all_issuers: Annotated[bool, typer.Option("--all", help="Alla parter med underlag.")] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Skriv varje fakturas XML och PDF hit.")
    ] = None,
) -> None:
    """Skapa fakturor av periodens fakturaunderlag, som avtalen säger (idempotent: körs den igen
    faktureras inget två gånger)."""
    if (issuer is None) == (not all_issuers):
        raise _fail("ange antingen --issuer PART eller --all")
    try:
        month_bounds(period)
        today = Clock.from_env().today()
        rules = Engine(load_packs([]))
    except (ValueError, BadClock, PackError) as exc:
        raise _fail(str(exc)) from None
    if out_dir is not None:
        _writable(out_dir)
    db_engine = make_engine()
    migrate(db_engine)
    skipped = False
    with session_factory(db_engine)() as db, _writer(out_dir) as files:
        issuers = (
            [issuer]
            if issuer
            else sorted({i for i in db.scalars(select(BillableEvent.issuer).distinct()) if i})
        )
        for party in issuers:
            try:
                report = run_invoices(
                    db, rules, issuer=party, period=period, today=today, on_issued=files.add
                )
            except RegistryIncomplete as exc:
                if issuer:
                    raise _fail(str(exc)) from None
                err.print(f"[yellow]hoppar över[/] {exc}", highlight=False)
                skipped = True
                continue
            _print(report)
    db_engine.dispose()
    if skipped:
        out.print("Några parter hoppades över; fyll i organisationsregistret (vembetalar invoice registry).")


class _Files:
    """Where a run's invoices go as they are issued: counted on screen, and with ``--out`` their
    files written meanwhile on the other cores."""

    def __init__(self, writer: FileWriter | None, issued: Callable[[int], None]) -> None:
        self.writer = writer
        self.issued = issued

    def add(self, issued: list[IssuedInvoice]) -> None:
        self.issued(len(issued))
        if self.writer is not None:
            for invoice in issued:
                self.writer.add(invoice.document_bytes, invoice.line_count)


@contextmanager
def _writer(folder: Path | None) -> Iterator[_Files]:
    with Progress(
        TextColumn("{task.description}"), TextColumn("{task.completed}"), console=err, transient=True
    ) as bar:
        made = bar.add_task("Fakturor skapade", total=None)
        if folder is None:
            yield _Files(None, lambda n: bar.advance(made, n))
            return
        files = bar.add_task("Filer skrivna (XML och PDF)", total=None)
        ran = False
        try:
            with FileWriter(folder, progress=lambda n: bar.advance(files, n)) as writer:
                yield _Files(writer, lambda n: bar.advance(made, n))
                ran = True
        except (ValueError, OSError, BrokenProcessPool) as exc:
            if ran:  # the files' error, not the run's
                raise _files_failed(exc, folder) from None
            raise
    written = writer.written
    out.print(
        f"{written} {'faktura skriven' if written == 1 else 'fakturor skrivna'} till {folder}",
        highlight=False,
    )


@invoice_app.command("write")
def write_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Mapp för XML och PDF.")],
    period: Annotated[str | None, typer.Option("--period", help="Bara den här månaden.")] = None,
) -> None:
    """Skriv ut redan skapade fakturor (XML och PDF), t.ex. igen efter ett avbrott."""
    if period is not None:
        try:
            month_bounds(period)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    _writable(out_dir)
    db_engine = make_engine()
    migrate(db_engine)
    # The stored documents as their JSON text, a few hundred at a time: a month can be thousands
    # of invoices, and the writer's processes take the text as it is.
    query = select(cast(Invoice.document_json, Text)).order_by(Invoice.issuer, Invoice.series, Invoice.number)
    if period:
        query = query.where(Invoice.period == period)
    with (
        session_factory(db_engine)() as db,
        Progress(
            TextColumn("Skriver XML och PDF"), TextColumn("{task.completed}"), console=err, transient=True
        ) as bar,
    ):
        task = bar.add_task("filer", total=None)
        try:
            with FileWriter(out_dir, progress=lambda n: bar.advance(task, n)) as writer:
                for document in db.scalars(query.execution_options(yield_per=200)):
                    writer.add(document.encode(), max(1, len(document) // LINE_BYTES))
        except (ValueError, OSError, BrokenProcessPool) as exc:
            raise _files_failed(exc, out_dir) from None
    db_engine.dispose()
    written = writer.written
    out.print(f"{written} {'faktura skriven' if written == 1 else 'fakturor skrivna'} till {out_dir}")


#: About how many bytes a stored invoice line takes: only to size the writer's chunks.
LINE_BYTES = 600


@invoice_app.command("registry")
def registry_command(
    file: Annotated[Path, typer.Argument(metavar="REGISTER.yaml", help="organisations: {region:NN: {...}}")],
) -> None:
    """Läs in organisationsregistret: juridiskt namn, organisationsnummer, bankgiro, PEPPOL-id, adress."""
    try:
        entries = read_registry(file)
    except BadRegistry as exc:
        raise _fail(str(exc)) from None
    db_engine = make_engine()
    migrate(db_engine)
    with session_factory(db_engine)() as db:
        count = apply_registry(db, entries)
        demo = [p for p, e in entries.items() if e.demo]
        total = len(db.scalars(select(OrganisationDetails.organisation_id)).all())
    db_engine.dispose()
    out.print(f"{count} organisationer inlästa ({total} i registret).")
    if demo:
        out.print(f"[yellow]Demodata (påhittade nummer, inte för riktig fakturering):[/] {', '.join(demo)}")


@invoice_app.command("credit")
def credit_command(
    number: Annotated[str, typer.Argument(metavar="FAKTURANUMMER", help="T.ex. F000012.")],
    issuer: Annotated[str, typer.Option("--issuer", help="Fakturerande part, t.ex. region:14.")],
    reason: Annotated[str, typer.Option("--reason", help="Varför fakturan krediteras.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Skriv kreditnotans XML och PDF hit.")] = None,
) -> None:
    """Kreditera en faktura i sin helhet med en kreditnota som hänvisar till den (fakturan ändras aldrig)."""
    from vembetalar.billing.credit import CannotCredit, credit_invoice

    try:
        today = Clock.from_env().today()
    except BadClock as exc:
        raise _fail(str(exc)) from None
    db_engine = make_engine()
    migrate(db_engine)
    with session_factory(db_engine)() as db:
        try:
            credit = credit_invoice(db, issuer=issuer, number_text=number, reason=reason, today=today)
        except CannotCredit as exc:
            raise _fail(str(exc)) from None
        out.print(f"Kreditnota {credit.number_text} för {number}: {credit.total_sek:.2f} kr")
        if out_dir is not None:
            write_files([credit.document_json], out_dir)
    db_engine.dispose()


@invoice_app.command("check")
def check_command(
    file: Annotated[Path, typer.Argument(metavar="FAKTURA.xml", help="En mottagen faktura (UBL/PEPPOL).")],
) -> None:
    """Granska en mottagen faktura mot avtalet den faller under (valt efter parterna och fakturans
    egna datum) och lista varje brist på svenska. Slutkod 0 bara när den håller."""
    from vembetalar.billing.inbound import UnreadableInvoice, failures, read_invoice
    from vembetalar.billing.requirements import requirements_for

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail(f"{file}: kan inte läsas ({exc.strerror})") from None
    try:
        invoice = read_invoice(data)
    except UnreadableInvoice as exc:
        raise _fail(f"{file}: {exc}") from None
    try:
        rules = Engine(load_packs([]))
    except PackError as exc:
        raise _fail(str(exc)) from None
    agreement = requirements_for(rules, invoice)
    if agreement is None:
        raise _fail(
            f"{file}: ingen mottagare i avtalen känns igen (köparens referens eller id) för fakturans datum",
            1,
        )
    found = failures(invoice, agreement.requirements)
    out.print(f"Avtal: {agreement.name}", highlight=False)
    if not found:
        out.print("[green]Fakturan uppfyller avtalets krav.[/]")
        return
    for what in found:
        out.print(f"[red]✗[/] {what}", highlight=False)
    raise typer.Exit(1)


def _print_reconciliation(result: Reconciliation) -> None:
    from vembetalar.spreadsheet import number_cell

    table = Table(
        "resultat",
        "antal",
        "i vembetalar (kr)",
        "i webSesam (kr)",
        "skillnad (kr)",
        title=f"webSesam-avstämning {result.issuer} {result.period}",
    )
    for total in result.totals:
        table.add_row(
            total.kind,
            str(total.count),
            number_cell(total.expected),
            number_cell(total.billed),
            number_cell(total.difference),
        )
    out.print(table)
    for line in result.lines:
        if line.kind == "matchad":
            continue
        what = line.event.case_reference if line.event else f"rad {line.rows[0].line}"
        rows = f" (rad {', '.join(str(r.line) for r in line.rows)})" if line.event and line.rows else ""
        out.print(
            f"[yellow]{line.kind}[/] {what} {line.date} {line.article}{rows}: "
            f"vembetalar {number_cell(line.expected) or '–'} kr, "
            f"webSesam {number_cell(line.billed) or '–'} kr",
            highlight=False,
        )
    for warning in result.warnings:
        out.print(f"[yellow]varning[/] {warning}", highlight=False)


@invoice_app.command("reconcile-websesam")
def reconcile_websesam_command(
    file: Annotated[Path, typer.Argument(metavar="FIL.csv", help="webSesams fakturaexport (CSV).")],
    issuer: Annotated[
        str, typer.Option("--issuer", help="Regionen vars underlag webSesam fakturerar, t.ex. region:12.")
    ],
    period: Annotated[str, typer.Option("--period", help="Månaden som stäms av, ÅÅÅÅ-MM.")],
    mapping_file: Annotated[
        Path | None, typer.Option("--mapping", help="Egen kolumnmappning (YAML); annars standardmappningen.")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Skriv resultatet som CSV för svenska Excel hit.")
    ] = None,
) -> None:
    """Stäm av webSesams fakturaexport mot underlaget som fakturakörningen listar som fakturerat
    av webSesam: matchad, saknas i webSesam, fakturerad två gånger, belopp skiljer, finns bara i
    webSesam. Slutkod 0 när allt stämmer, 3 vid skillnader, 2 när filen inte går att använda."""
    from vembetalar.handoffs.websesam import (
        MAX_EXPORT_BYTES,
        BadExport,
        elsewhere_events,
        read_export,
        reconcile,
        result_csv,
    )
    from vembetalar.handoffs.websesam_mapping import BadMapping, load_mapping

    try:
        month_bounds(period)
        rules = Engine(load_packs([]))
    except (ValueError, PackError) as exc:
        raise _fail(str(exc)) from None
    try:
        mapping = load_mapping(mapping_file)
    except BadMapping as exc:
        raise _fail(f"kolumnmappningen {mapping_file or '(standard)'}: {exc}") from None
    try:
        if file.stat().st_size > MAX_EXPORT_BYTES:
            raise _fail(f"{file}: Filen är för stor (högst {MAX_EXPORT_BYTES // (1024 * 1024)} MB).")
        rows = read_export(file.read_bytes(), mapping)
    except OSError as exc:
        raise _fail(f"{file}: kan inte läsas ({exc.strerror})") from None
    except BadExport as exc:
        raise _fail(f"{file}: {exc}") from None
    db_engine = make_engine()
    migrate(db_engine)
    with session_factory(db_engine)() as db:
        events = elsewhere_events(db, rules, issuer=issuer, period=period)
    db_engine.dispose()
    result = reconcile(events, rows, issuer=issuer, period=period)
    _print_reconciliation(result)
    if out_file is not None:
        try:
            out_file.write_bytes(result_csv(result))
        except OSError as exc:
            raise _fail(f"{out_file}: kan inte skrivas ({exc.strerror})") from None
        out.print(f"Resultatet skrivet till {out_file}", highlight=False)
    if result.has_differences:
        raise typer.Exit(3)
    out.print("[green]Allt stämmer: varje underlag är fakturerat en gång, med samma belopp.[/]")
