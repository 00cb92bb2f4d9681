"""``vembetalar oversight import``: dispensing files (CSV or Parquet) into the Parquet store.

Files are read in chunks (Arrow record batches), so a file of any size streams through without
becoming Python objects; each chunk is checked in one DuckDB statement that gives every row all
its reasons for rejection at once. Good rows are written as Parquet partitioned by month; bad
rows go to ``rejects.csv`` with any personnummer-like value masked; nothing is dropped silently.
The new files are staged and moved into place only when the whole file has been read, and the
manifest (by content hash) is written last: importing the same file again adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from personnummer import personnummer as pnr_lib

from vembetalar.oversight.schema import COLUMNS, OPTIONAL, BadFile, Column, check_header
from vembetalar.oversight.store import REJECT_FIELDS, Store

#: Rows checked in one DuckDB statement: big enough to be fast, small enough for a laptop.
CHUNK_ROWS = 2_000_000
#: Shapes that may be a personnummer or samordningsnummer (then checked with the library).
PNR_SHAPE = r"^(\d{2})?\d{6}[-+]?\d{4}$"
#: Any personnummer-like digits inside a value, for masking in rejects.csv.
PNR_ANYWHERE = r"(\d{6,8})[-+]?\d{4}"
ATC_SHAPE = r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$"

Progress = Callable[[int], None]


@dataclass
class FileReport:
    file: str
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    already: bool = False
    reasons: Counter[str] = field(default_factory=Counter)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def is_personnummer(value: str) -> bool:
    """A valid personnummer or samordningsnummer (date and check digit), in any usual format."""
    try:
        pnr_lib.Personnummer(value.strip())
    except (pnr_lib.PersonnummerException, ValueError, TypeError):
        return False
    return True


# ---------------------------------------------------------------- reading
def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        raise BadFile(f"{path.name}: filen är inte UTF-8") from None
    if not header:
        raise BadFile(f"{path.name}: filen är tom (ingen rubrikrad)")
    return [name.strip().lstrip("\ufeff") for name in header]


@dataclass
class Malformed:
    """CSV lines with the wrong number of fields: skipped by the reader, reported as rejects."""

    lines: list[tuple[int | None, str]] = field(default_factory=list)

    def __call__(self, row: Any) -> str:
        self.lines.append((row.number, str(row.text)))
        return "skip"


def _batches(path: Path, malformed: Malformed) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    """The file's column names and its rows as record batches (CSV: every value as text)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise BadFile(f"{path.name}: kan inte läsas som Parquet ({type(exc).__name__})") from None
        names = list(parquet.schema_arrow.names)
        check_header(names, path.name)
        return names, parquet.iter_batches(batch_size=CHUNK_ROWS)
    if suffix == ".csv":
        names = _csv_header(path)
        check_header(names, path.name)
        try:
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=64 << 20, column_names=names, skip_rows=1),
                parse_options=pacsv.ParseOptions(delimiter=",", invalid_row_handler=malformed),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, strings_can_be_null=False
                ),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise BadFile(f"{path.name}: kan inte läsas som CSV: {_arrow_message(exc)}") from None
        return names, _csv_batches(reader, path)
    raise BadFile(f"{path.name}: okänd filtyp (ska vara .csv eller .parquet)")


def _arrow_message(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def _csv_batches(reader: pacsv.CSVStreamingReader, path: Path) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise BadFile(f"{path.name}: kan inte läsas som CSV: {_arrow_message(exc)}") from None
        yield batch


def _chunks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Record batches gathered into tables of about CHUNK_ROWS rows."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += batch.num_rows
        if size >= CHUNK_ROWS:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


# ---------------------------------------------------------------- checking (one SQL per chunk)
def native(column: Column, arrow_type: pa.DataType) -> bool:
    """Whether a (Parquet) column already has the contract's type, so it needs no parsing."""
    if column.kind == "date":
        return bool(pa.types.is_date(arrow_type))
    if column.kind in ("count", "int"):
        return bool(pa.types.is_integer(arrow_type))
    if column.kind == "float":
        return bool(pa.types.is_floating(arrow_type) or pa.types.is_integer(arrow_type))
    if column.kind == "bool":
        return bool(pa.types.is_boolean(arrow_type))
    return False


def _cleaned(column: Column, is_native: bool) -> str:
    """The inner query's column: typed values as they are, text trimmed and '' as NULL."""
    n = column.name
    return f'"{n}"' if is_native else f'NULLIF(trim(CAST("{n}" AS VARCHAR)), \'\') AS "{n}"'


def _reasons(column: Column, is_native: bool, any_personnummer: bool) -> list[str]:
    """SQL expressions, each a Swedish reason or NULL, for one column's (cleaned) value."""
    n = column.name
    v = f'"{n}"'
    out = []
    if column.required:
        out.append(f"CASE WHEN {v} IS NULL THEN '{n} saknas' END")
    if column.kind == "date" and not is_native:
        out.append(
            f"CASE WHEN {v} IS NOT NULL AND NOT (regexp_matches({v}, '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$') "
            f"AND TRY_CAST({v} AS DATE) IS NOT NULL) THEN '{n} är inte ett datum (ÅÅÅÅ-MM-DD)' END"
        )
    elif column.kind == "count":
        x = v if is_native else f"TRY_CAST({v} AS BIGINT)"
        shape = ""
        if not is_native:
            shape = f"WHEN {v} IS NOT NULL AND NOT regexp_matches({v}, '^-?[0-9]+$') "
            shape += f"THEN '{n} är inte ett heltal' "
        out.append(
            f"CASE {shape}WHEN {x} < 1 THEN '{n} måste vara minst 1' "
            f"WHEN {x} > 1000000 THEN '{n} är orimligt stort' END"
        )
    elif column.kind == "int":
        shape = "TRUE" if is_native else f"regexp_matches({v}, '^[0-9]{{4}}$')"
        x = v if is_native else f"TRY_CAST({v} AS INTEGER)"
        out.append(
            f"CASE WHEN {v} IS NOT NULL AND NOT ({shape} AND {x} BETWEEN 1880 AND 2100) "
            f"THEN '{n} är inte ett årtal' END"
        )
    elif column.kind == "float":
        x = f"CAST({v} AS DOUBLE)" if is_native else f"TRY_CAST({v} AS DOUBLE)"
        parse = (
            ""
            if is_native
            else f"WHEN {v} IS NOT NULL AND {x} IS NULL THEN '{n} är inte ett tal (punkt som decimaltecken)' "
        )
        out.append(
            f"CASE {parse}WHEN NOT isfinite({x}) THEN '{n} är NaN eller oändligt' "
            f"WHEN {x} < 0 THEN '{n} får inte vara negativt' END"
        )
    elif column.kind == "bool" and not is_native:
        out.append(
            f"CASE WHEN {v} IS NOT NULL AND lower({v}) NOT IN ('true', 'false', '1', '0') "
            f"THEN '{n} ska vara true eller false' END"
        )
    elif column.kind == "prescriber_code":
        out.append(
            f"CASE WHEN {v} IS NOT NULL AND NOT regexp_matches({v}, '^[0-9]{{7}}$') "
            f"THEN '{n} ska vara sju siffror' END"
        )
    elif column.kind == "atc":
        out.append(
            f"CASE WHEN {v} IS NOT NULL AND NOT regexp_matches(upper({v}), '{ATC_SHAPE}') "
            f"THEN '{n} är inte en ATC-kod' END"
        )
    elif column.kind == "pseudonym" and any_personnummer:
        out.append(
            f"CASE WHEN {v} IN (SELECT value FROM personnummer_values) "
            f"THEN '{n} är ett personnummer eller samordningsnummer' END"
        )
    return out


def _typed(column: Column, is_native: bool) -> str:
    v, n = f'"{column.name}"', column.name
    target = {"date": "DATE", "count": "INTEGER", "int": "INTEGER", "float": "DOUBLE", "bool": "BOOLEAN"}
    if is_native:
        return f'CAST({v} AS {target[column.kind]}) AS "{n}"'
    if column.kind == "date":
        return f'TRY_CAST({v} AS DATE) AS "{n}"'
    if column.kind in ("count", "int"):
        return f'TRY_CAST({v} AS INTEGER) AS "{n}"'
    if column.kind == "float":
        return f'TRY_CAST({v} AS DOUBLE) AS "{n}"'
    if column.kind == "bool":
        return f"(lower({v}) IN ('true', '1')) AS \"{n}\""
    if column.kind == "atc":
        return f'upper({v}) AS "{n}"'
    return f'{v} AS "{n}"'


def check_sql(schema: pa.Schema, any_personnummer: bool) -> str:
    """One statement giving every row of ``chunk`` its reasons ('' when good) and typed values."""
    kinds = {c.name: native(c, schema.field(c.name).type) for c in COLUMNS}
    reasons = [r for c in COLUMNS for r in _reasons(c, kinds[c.name], any_personnummer)]
    return (
        f"SELECT _row, concat_ws('; ', {', '.join(reasons)}) AS _reason, "
        + ", ".join(_typed(c, kinds[c.name]) for c in COLUMNS)
        + " FROM (SELECT _row, "
        + ", ".join(_cleaned(c, kinds[c.name]) for c in COLUMNS)
        + " FROM chunk) t"
    )


def _masked_row() -> str:
    """The raw row as ``name=value`` pairs, every personnummer-like run of digits masked."""
    parts = ", ".join(
        f"'{c.name}=' || coalesce(regexp_replace(CAST(c.\"{c.name}\" AS VARCHAR), '{PNR_ANYWHERE}', "
        f"'\\1-****', 'g'), '')"
        for c in COLUMNS
    )
    return f"concat_ws(' | ', {parts})"


# ---------------------------------------------------------------- the import
def _with_all_columns(table: pa.Table, first_row: int) -> pa.Table:
    for name in OPTIONAL:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    rows = pa.array(range(first_row, first_row + table.num_rows), pa.int64())
    return table.append_column("_row", rows)


def import_file(path: Path, store: Store, progress: Progress | None = None) -> FileReport:
    """Import one file; raises BadFile when it cannot be used at all (nothing is then written)."""
    report = FileReport(path.name)
    if not path.is_file():
        raise BadFile(f"{path}: filen finns inte")
    sha = file_sha256(path)
    store.create()
    if sha in store.imported():
        report.already = True
        return report
    malformed = Malformed()
    _, batches = _batches(path, malformed)
    staging = store.staging / sha[:16]
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    rejects_file = staging / "rejects.csv"
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    try:
        with rejects_file.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(REJECT_FIELDS)
            for number, chunk in enumerate(_chunks(batches)):
                # CSV row numbers count the header as row 1, as a spreadsheet shows the file;
                # Parquet rows count from 1.
                first = report.rows + len(malformed.lines) + 1 + (path.suffix.lower() == ".csv")
                table = _with_all_columns(chunk, first)
                _check_chunk(con, table, staging / "data", f"{sha[:16]}_{number:05d}", report, writer)
                if progress:
                    progress(chunk.num_rows)
            for line, text in malformed.lines:
                writer.writerow([report.file, line or "", "fel antal fält på raden", _mask_text(text)])
                report.rows += 1
                report.rejected += 1
                report.reasons["fel antal fält på raden"] += 1
    except (duckdb.Error, pa.ArrowException) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BadFile(f"{path.name}: kan inte läsas ({type(exc).__name__})") from None
    finally:
        con.close()
    _publish(store, staging, sha)
    if report.rejected:
        store.append_rejects(rejects_file)
    store.record_import(sha, path.name, report.rows, report.imported, report.rejected)
    shutil.rmtree(staging, ignore_errors=True)
    return report


def _check_chunk(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    out_dir: Path,
    prefix: str,
    report: FileReport,
    writer: Any,
) -> None:
    con.register("chunk", table)
    shapes = con.execute(
        f"SELECT DISTINCT trim(CAST(patient_pseudonym AS VARCHAR)) FROM chunk "
        f"WHERE regexp_matches(trim(CAST(patient_pseudonym AS VARCHAR)), '{PNR_SHAPE}')"
    ).fetchall()
    found = [value for (value,) in shapes if is_personnummer(value)]
    con.register("personnummer_values", pa.table({"value": pa.array(found, pa.string())}))
    con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS {check_sql(table.schema, bool(found))}")
    names = ", ".join(f'"{c.name}"' for c in COLUMNS)
    found_good = con.execute("SELECT count(*) FROM checked WHERE _reason = ''").fetchone()
    good = int(found_good[0]) if found_good else 0
    report.rows += table.num_rows
    report.imported += good
    if good:
        con.execute(
            f"COPY (SELECT {names}, strftime(dispensed_on, '%Y-%m') AS month FROM checked "
            f"WHERE _reason = '') TO '{out_dir}' (FORMAT parquet, PARTITION_BY (month), "
            f"FILENAME_PATTERN '{prefix}_{{i}}', OVERWRITE_OR_IGNORE true)"
        )
    bad = con.execute(
        f"SELECT k._row, k._reason, {_masked_row()} FROM checked k JOIN chunk c ON c._row = k._row "
        f"WHERE k._reason <> '' ORDER BY k._row"
    )
    while rows := bad.fetchmany(10_000):
        for row, reason, masked in rows:
            writer.writerow([report.file, row, reason, masked])
            report.rejected += 1
            for part in str(reason).split("; "):
                report.reasons[part] += 1
    con.unregister("chunk")
    con.execute("DROP TABLE checked")


def _publish(store: Store, staging: Path, sha: str) -> None:
    """Move the staged month files into the store; files of an earlier, interrupted import of the
    same file (same name prefix) are replaced, never doubled."""
    prefix = sha[:16]
    for old in store.dispensings.glob(f"month=*/{prefix}_*.parquet"):
        old.unlink()
    for part in sorted((staging / "data").glob("month=*/*.parquet")):
        target = store.dispensings / part.parent.name
        target.mkdir(exist_ok=True)
        part.replace(target / part.name)


def _mask_text(text: str) -> str:
    return re.sub(PNR_ANYWHERE, r"\1-****", text)[:2000]


def count_rows(path: Path) -> int | None:
    """Rows in a Parquet file (from its footer), for the progress bar; None for CSV."""
    if path.suffix.lower() == ".parquet" and path.is_file():
        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except (pa.ArrowInvalid, OSError):
            return None
    return None
