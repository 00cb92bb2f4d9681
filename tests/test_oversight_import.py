"""The import contract: each reject reason, unusable files, exit codes, idempotency, masking."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from oversight_data import HEADER, row, write_csv
from typer.testing import CliRunner

from vembetalar.cli import app
from vembetalar.oversight.importer import import_file
from vembetalar.oversight.schema import BadFile
from vembetalar.oversight.store import Store

runner = CliRunner()


def _rejects(store: Store) -> list[dict[str, str]]:
    with store.rejects.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("dispensed_on", "2024-13-01", "dispensed_on är inte ett datum (ÅÅÅÅ-MM-DD)"),
        ("dispensed_on", "15/6/2024", "dispensed_on är inte ett datum (ÅÅÅÅ-MM-DD)"),
        ("dispensed_on", "", "dispensed_on saknas"),
        (
            "patient_pseudonym",
            "19811228-9874",
            "patient_pseudonym är ett personnummer eller samordningsnummer",
        ),
        ("patient_pseudonym", "8112289874", "patient_pseudonym är ett personnummer eller samordningsnummer"),
        (
            "patient_pseudonym",
            "19811288-9871",
            "patient_pseudonym är ett personnummer eller samordningsnummer",
        ),
        ("prescriber_code", "123456", "prescriber_code ska vara sju siffror"),
        ("prescriber_has_personnummer", "kanske", "prescriber_has_personnummer ska vara true eller false"),
        ("atc", "X9", "atc är inte en ATC-kod"),
        ("packs", "0", "packs måste vara minst 1"),
        ("packs", "-2", "packs måste vara minst 1"),
        ("packs", "1.5", "packs är inte ett heltal"),
        ("ddd", "NaN", "ddd är NaN eller oändligt"),
        ("cost_sek", "inf", "cost_sek är NaN eller oändligt"),
        ("benefit_cost_sek", "-0.5", "benefit_cost_sek får inte vara negativt"),
        ("cost_sek", "12,50", "cost_sek är inte ett tal (punkt som decimaltecken)"),
        ("within_benefit", "", "within_benefit saknas"),
        ("patient_birth_year", "19x0", "patient_birth_year är inte ett årtal"),
    ],
)
def test_each_bad_value_is_rejected_with_its_reason(
    tmp_path: Path, field: str, value: str, reason: str
) -> None:
    store = Store(tmp_path / "store")
    source = write_csv(tmp_path / "in.csv", [row(), row(**{field: value}), row()])
    report = import_file(source, store)
    assert (report.rows, report.imported, report.rejected) == (3, 2, 1)
    [rejected] = _rejects(store)
    assert rejected["row"] == "3"  # the header is row 1
    assert rejected["reason"] == reason
    assert rejected["source_file"] == "in.csv"


def test_a_personnummer_never_reaches_the_store_nor_the_reject_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    pnr = "19811228-9874"
    source = write_csv(tmp_path / "in.csv", [row(patient_pseudonym=pnr, product_id=f"note {pnr}"), row()])
    import_file(source, store)
    text = store.rejects.read_text(encoding="utf-8")
    assert "9874" not in text and "19811228-****" in text
    for part in store.files():
        assert b"9874" not in part.read_bytes()
    # A samordningsnummer (day + 60) is one too; a pseudonym of digits that is no personnummer is not.
    source = write_csv(
        tmp_path / "two.csv", [row(patient_pseudonym="19811288-9871"), row(patient_pseudonym="1234567890")]
    )
    report = import_file(source, store)
    assert (report.imported, report.rejected) == (1, 1)


def test_several_reasons_in_one_row_are_all_named(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    import_file(write_csv(tmp_path / "in.csv", [row(packs="0", atc="??", ddd="-1")]), store)
    reason = _rejects(store)[0]["reason"]
    assert reason.split("; ") == [
        "atc är inte en ATC-kod",
        "packs måste vara minst 1",
        "ddd får inte vara negativt",
    ]


def test_a_row_with_the_wrong_number_of_fields_is_rejected_not_dropped(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    source = tmp_path / "in.csv"
    write_csv(source, [row()])
    with source.open("a", encoding="utf-8") as handle:
        handle.write("2024-06-15,811228-9874,1\n")
    report = import_file(source, store)
    assert (report.rows, report.imported, report.rejected) == (2, 1, 1)
    [rejected] = _rejects(store)
    assert rejected["reason"] == "fel antal fält på raden" and "9874" not in rejected["row_masked"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ([h for h in HEADER if h != "atc"], "saknade kolumner: atc"),
        ([*HEADER, "diagnos"], "okända kolumner: diagnos"),
    ],
)
def test_missing_or_extra_columns_make_the_file_unusable(
    tmp_path: Path, header: list[str], message: str
) -> None:
    source = tmp_path / "in.csv"
    data = [{**row(), "diagnos": "x"}]
    write_csv(source, data, header)
    with pytest.raises(BadFile, match=message):
        import_file(source, Store(tmp_path / "store"))
    assert not Store(tmp_path / "store").files()


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    required = [h for h in HEADER if h not in ("patient_sex", "prescriber_specialty", "product_id")]
    store = Store(tmp_path / "store")
    report = import_file(write_csv(tmp_path / "in.csv", [row()], required), store)
    assert report.imported == 1


def test_parquet_with_typed_columns_is_checked_the_same_way(tmp_path: Path) -> None:
    table = pa.table(
        {
            **{name: [value, value] for name, value in row().items() if name not in ("packs", "ddd")},
            "packs": pa.array([1, 0], pa.int32()),
            "ddd": pa.array([10.0, float("nan")], pa.float64()),
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    store = Store(tmp_path / "store")
    report = import_file(tmp_path / "in.parquet", store)
    assert (report.imported, report.rejected) == (1, 1)
    assert _rejects(store)[0]["reason"] == "packs måste vara minst 1; ddd är NaN eller oändligt"
    assert _rejects(store)[0]["row"] == "2"


def test_the_store_is_monthly_parquet_with_typed_columns(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    import_file(
        write_csv(tmp_path / "in.csv", [row(dispensed_on="2024-01-31"), row(dispensed_on="2024-02-01")]),
        store,
    )
    assert [p.parent.name for p in store.files()] == ["month=2024-01", "month=2024-02"]
    types = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{store.dispensings}/*/*.parquet')").fetchall()
    kinds = {name: kind for name, kind, *_ in types}
    assert (
        kinds["dispensed_on"] == "DATE"
        and kinds["packs"] == "INTEGER"
        and kinds["within_benefit"] == "BOOLEAN"
    )


def test_cli_exit_codes_and_importing_again_adds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "store"
    good = write_csv(tmp_path / "good.csv", [row(), row()])
    mixed = write_csv(tmp_path / "mixed.csv", [row(), row(packs="-1")])
    bad = write_csv(tmp_path / "bad.csv", [row()], [h for h in HEADER if h != "packs"])
    first = runner.invoke(app, ["oversight", "import", str(good), "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert "2 rader importerade" in first.output
    again = runner.invoke(app, ["oversight", "import", str(good), "--db", str(db)])
    assert again.exit_code == 0 and "redan importerad" in again.output
    assert len(Store(db).imported()) == 1
    some = runner.invoke(app, ["oversight", "import", str(mixed), "--db", str(db)])
    assert some.exit_code == 3 and "1 avvisade" in some.output and "packs måste vara minst 1" in some.output
    unusable = runner.invoke(app, ["oversight", "import", str(bad), "--db", str(db)])
    assert unusable.exit_code == 2 and "saknade kolumner: packs" in unusable.output
    assert "Traceback" not in unusable.output
    missing = runner.invoke(app, ["oversight", "import", str(tmp_path / "nej.csv"), "--db", str(db)])
    assert missing.exit_code == 2 and "filen finns inte" in missing.output
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{db}/dispensings/*/*.parquet')").fetchall()
    assert count == [(3,)]
