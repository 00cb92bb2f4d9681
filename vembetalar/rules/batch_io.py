"""Reading case files for the batch path and checking them as strictly as single cases.

A batch is validated column by column with Polars (no Python per row). Any invalid row stops
the run with the row number and the field named — a silently skipped case would be a case
nobody billed.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from vembetalar.model.case import KIND_AREAS, RETIRED, FieldSpec, case_fields
from vembetalar.model.money import NEGATIVE, NOT_A_NUMBER, NOT_FINITE, round_to_places

PASSTHROUGH = ("id",)
MAX_REPORTED = 5


class BadBatch(ValueError):
    """The batch file cannot be decided; the message names the rows and fields."""


def read_cases(path: Path) -> pl.DataFrame:
    """CSV, JSON lines or Parquet by file suffix; nested JSON objects are flattened."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise BadBatch(f"{path}: filen finns inte")
    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
        elif suffix in (".jsonl", ".ndjson"):
            frame = pl.read_ndjson(path, infer_schema_length=None)
        elif suffix == ".parquet":
            frame = pl.read_parquet(path)
        else:
            raise BadBatch(f"{path}: okänt filformat {suffix!r} (använd .csv, .jsonl eller .parquet)")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise BadBatch(f"{path}: kunde inte läsas: {str(exc).splitlines()[0]}") from None
    return flatten(frame)


def flatten(frame: pl.DataFrame) -> pl.DataFrame:
    while any(isinstance(t, pl.Struct) for t in frame.dtypes):
        cols = []
        for name, dtype in frame.schema.items():
            if isinstance(dtype, pl.Struct):
                cols += [pl.col(name).struct.field(f.name).alias(f"{name}.{f.name}") for f in dtype.fields]
            else:
                cols.append(pl.col(name))
        frame = frame.select(cols)
    return frame


def _as_string(col: pl.Expr, dtype: pl.DataType, spec: FieldSpec) -> pl.Expr:
    if dtype.is_integer() and spec.values:
        width = len(spec.values[0])
        return col.cast(pl.String).str.zfill(width)
    return col.cast(pl.String)


def _typed_as(spec: FieldSpec, dtype: pl.DataType) -> bool:
    """In JSON and Parquet the value's own type must already be right, as for a single case."""
    if dtype == pl.Null:
        return True
    if spec.type == "category":
        return dtype == pl.String
    if spec.type == "bool":
        return dtype == pl.Boolean
    if spec.type == "number":
        return dtype.is_numeric()
    if spec.type == "integer":
        return dtype.is_integer()
    return dtype in (pl.String, pl.Date)


_TYPE_WORDS = {
    "category": "ska vara en textsträng",
    "bool": "ska vara true eller false",
    "number": "ska vara ett tal",
    "integer": "ska vara ett heltal",
    "date": "ska vara ett datum (ÅÅÅÅ-MM-DD)",
}


def _convert(spec: FieldSpec, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(spec.name)
    if spec.type == "category":
        return _as_string(col, dtype, spec)
    if spec.type == "bool":
        if dtype == pl.Boolean:
            return col
        text = col.cast(pl.String).str.to_lowercase().str.strip_chars()
        return pl.when(text.is_in(["true", "1"])).then(True).when(text.is_in(["false", "0"])).then(False)
    if spec.type == "number":
        return col.cast(pl.Float64, strict=False)
    if spec.type == "integer":
        if dtype.is_float():
            return pl.when(col == col.floor()).then(col.cast(pl.Int64, strict=False))
        return col.cast(pl.Int64, strict=False)
    if dtype == pl.Date:
        return col
    return col.cast(pl.String).str.strip_chars().str.to_date("%Y-%m-%d", strict=False)


def _problem(spec: FieldSpec, raw_dtype: pl.DataType, wrong_type: bool) -> tuple[pl.Expr, pl.Expr]:
    """Per row: is the raw value given but invalid, and the message saying so.

    The flag is cheap and computed for every row; messages are only built for flagged rows.
    """
    raw, value = pl.col(f"_raw_{spec.name}"), pl.col(spec.name)
    given = raw.is_not_null()
    if wrong_type:
        message = pl.format("{}: '{}' " + _TYPE_WORDS[spec.type], pl.lit(spec.name), raw.cast(pl.String))
        return given, message
    if raw_dtype == pl.String:
        given = given & (raw != "")
    bad = given & value.is_null()
    if spec.money is not None:
        return _money_problem(spec, bad, value, raw)
    kind = {
        "category": "är inte ett tillåtet värde",
        "bool": "ska vara true eller false",
        "number": "ska vara ett tal",
        "integer": "ska vara ett heltal",
        "date": "är inte ett giltigt datum (ÅÅÅÅ-MM-DD)",
    }[spec.type]
    if spec.type == "category":
        bad = given & ~value.is_in(list(spec.values)).fill_null(False)
    elif spec.type in ("number", "integer"):
        bad = bad | (value < 0).fill_null(False)
        if spec.type == "number":
            bad = bad | (value.is_infinite() | value.is_nan()).fill_null(False)
        kind += " (ändligt, inte negativt)"
        if spec.name == "patient.age":
            bad = bad | (value > 130).fill_null(False)
    return bad, pl.format("{}: '{}' " + kind, pl.lit(spec.name), raw.cast(pl.String))


def _money_problem(
    spec: FieldSpec, unparsed: pl.Expr, value: pl.Expr, raw: pl.Expr
) -> tuple[pl.Expr, pl.Expr]:
    """An amount as ``money.to_decimal`` takes a number: finite, not negative, within the bound
    (checked before rounding, as there), with the same reasons."""
    assert spec.money is not None
    not_finite = (value.is_infinite() | value.is_nan()).fill_null(False)
    negative = (value < 0).fill_null(False)
    too_large = (value > float(spec.money.maximum)).fill_null(False)
    reason = (
        pl.when(unparsed)
        .then(pl.lit(NOT_A_NUMBER))
        .when(not_finite)
        .then(pl.lit(NOT_FINITE))
        .when(negative)
        .then(pl.lit(NEGATIVE))
        .otherwise(pl.lit(spec.money.too_large))
    )
    bad = unparsed | not_finite | negative | too_large
    return bad, pl.format("{}: '{}' {}", pl.lit(spec.name), raw.cast(pl.String), reason)


def _round_money(frame: pl.DataFrame) -> pl.DataFrame:
    """Amounts to whole öre, half up as the number reads — what a JSON number gets in a single
    case — so that batch and single-case decisions agree at a limit such as 10 000 kr. CSV text
    is rounded too: a batch is a machine's export, and 0.57 often arrives as 0.5700000000000001.
    The column stays Float64 (the nearest float to the amount), which keeps the hot path fast."""
    rounded = []
    for name, spec in case_fields().items():
        if spec.money is None or frame.get_column(name).null_count() == frame.height:
            continue
        values = frame.get_column(name).to_numpy()
        rounded.append(pl.Series(name, round_to_places(values, spec.money.places), nan_to_null=True))
    return frame.with_columns(rounded) if rounded else frame


def load_batch(path: Path) -> pl.DataFrame:
    """Read and check a batch file. CSV carries only text, so its values are parsed; JSON lines
    and Parquet carry types, which must be right as in a single case."""
    return prepare(read_cases(path), strict=path.suffix.lower() != ".csv")


def _reject_nested(frame: pl.DataFrame) -> None:
    for name, dtype in frame.schema.items():
        if dtype.is_nested() or dtype == pl.Object:
            first = frame.with_row_index("_line", offset=1).filter(pl.col(name).is_not_null())
            line = first.get_column("_line")[0] if first.height else 1
            raise BadBatch(f"rad {line}: {name}: ska vara ett enkelt värde, inte en lista eller ett objekt")


def prepare(frame: pl.DataFrame, *, strict: bool = False) -> pl.DataFrame:
    """Typed columns for every case field (a missing column = not known), or BadBatch.

    ``strict``: values must already have the field's type (JSON lines, Parquet); otherwise text
    is parsed (CSV: "true", "13", "2024-05-01").
    """
    _reject_nested(frame)
    fields = case_fields()
    retired = [c for c in frame.columns if c in RETIRED]
    if retired:
        raise BadBatch(f"kolumnen {retired[0]}: {RETIRED[retired[0]]}")
    unknown = [c for c in frame.columns if c not in fields and c not in PASSTHROUGH]
    if unknown:
        raise BadBatch(f"okända kolumner: {', '.join(unknown)} (använd t.ex. patient.home_region)")
    for name, spec in fields.items():
        if spec.required and name not in frame.columns:
            raise BadBatch(f"kolumnen {name!r} saknas men är obligatorisk")
    present = {n: frame.schema[n] for n in fields if n in frame.columns}
    wrong = {n for n, d in present.items() if strict and not _typed_as(fields[n], d)}
    dtypes = {"bool": pl.Boolean, "number": pl.Float64, "integer": pl.Int64, "date": pl.Date}
    converted = frame.select(
        *[pl.col(p) for p in PASSTHROUGH if p in frame.columns],
        *[
            _convert(spec, present[n]).alias(n)
            if n in present and n not in wrong
            else pl.lit(None, dtype=dtypes.get(spec.type, pl.String)).alias(n)
            for n, spec in fields.items()
        ],
    )
    checks = [_problem(fields[n], dtype, n in wrong) for n, dtype in present.items()]
    checks += [
        (pl.col(n).is_null(), pl.lit(f"{n}: saknas men är obligatoriskt"))
        for n, s in fields.items()
        if s.required
    ]
    pairs = [f"{k}/{a}" for k, areas in KIND_AREAS.items() for a in areas]
    area = pl.col("product.area")
    checks.append(
        (
            area.is_not_null() & ~pl.concat_str([pl.col("kind"), area], separator="/").is_in(pairs),
            pl.format("product.area: '{}' passar inte ärendetypen '{}'", area, pl.col("kind")),
        )
    )
    muni, region = pl.col("patient.home_municipality"), pl.col("patient.home_region")
    checks.append(
        (
            (muni.str.slice(0, 2) != region).fill_null(False),
            pl.format("patient.home_municipality: kommun {} ligger inte i län {}", muni, region),
        )
    )
    with_raw = converted.with_columns([frame.get_column(n).alias(f"_raw_{n}") for n in present])
    flagged = with_raw.with_row_index("_line", offset=1).filter(pl.any_horizontal([f for f, _ in checks]))
    if flagged.height:
        messages = flagged.select(
            "_line", pl.coalesce([pl.when(flag).then(msg) for flag, msg in checks]).alias("_error")
        )
        shown = [f"rad {line}: {msg}" for line, msg in messages.head(MAX_REPORTED).iter_rows()]
        more = f" (och {flagged.height - MAX_REPORTED} rader till)" if flagged.height > MAX_REPORTED else ""
        raise BadBatch("; ".join(shown) + more)
    # As for a single case: folkbokförd in a Swedish region means living in Sweden.
    country, home = pl.col("patient.country"), pl.col("patient.home_region")
    return _round_money(converted).with_columns(
        pl.when(country.is_null() & home.is_not_null())
        .then(pl.lit("SE"))
        .otherwise(country)
        .alias(country.meta.output_name())
    )


def write_decisions(decisions: pl.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        decisions.drop("decision", strict=False).write_csv(path)
    elif suffix == ".parquet":
        decisions.write_parquet(path)
    elif suffix in (".jsonl", ".ndjson"):
        with path.open("w", encoding="utf-8") as fh:
            ids = decisions.get_column("id") if "id" in decisions.columns else None
            for i, text in enumerate(decisions.get_column("decision")):
                if ids is not None:
                    fh.write('{"id":' + _json_str(ids[i]) + "," + text[1:] + "\n")
                else:
                    fh.write(text + "\n")
    else:
        raise BadBatch(f"{path}: okänt filformat {suffix!r} (använd .csv, .jsonl eller .parquet)")


def _json_str(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
