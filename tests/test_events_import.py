"""``vembetalar events import``: rows from another system go through the desk's own checks."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_api import HALLAND_AT_VGR, NT_ADVISED_AGAINST, create, events_of
from test_store import ROLLATOR_IN_SKANE
from typer.testing import CliRunner, Result
from webapp import TODAY, build_app
from webapp import TestApp as Desk

from vembetalar.cli import app

HEADER = [
    "case_reference",
    "occurred_on",
    "quantity",
    "unit_price_sek",
    "amount_sek",
    "varunummer",
    "unit_name",
]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    built = build_app(f"sqlite:///{tmp_path / 'import.db'}", tmp_path / "var")
    yield built
    built.app.state.db_engine.dispose()


def run(desk: Desk, *args: str) -> Result:
    url = desk.app.state.settings.database_url
    env = {"VEMBETALAR_DATABASE_URL": url, "VEMBETALAR_TODAY": TODAY.isoformat(), "COLUMNS": "200"}
    return CliRunner().invoke(app, ["events", "import", *args], env=env)


def write(path: Path, rows: list[list[Any]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_clean_file_is_imported_once(desk: Desk, tmp_path: Path) -> None:
    vgr = desk.api("lakare.vgr")
    case = create(vgr, HALLAND_AT_VGR)
    rows = [
        [case["reference"], TODAY.isoformat(), "2", "920.25", "", "123456", "Apoteket Sahlgrenska"],
        [case["reference"], TODAY.isoformat(), "", "", "99.50", "", ""],
    ]
    path = write(tmp_path / "apotek.csv", rows)
    first = run(desk, str(path), "--user", "lakare.vgr")
    assert first.exit_code == 0, first.output
    assert "2 nya underlag" in first.output
    stored = events_of(vgr, case["id"])
    assert [Decimal(e["amount_sek"]) for e in stored] == [Decimal("1840.50"), Decimal("99.50")]
    assert stored[0]["unit_name"] == "Apoteket Sahlgrenska"

    again = run(desk, str(path), "--user", "lakare.vgr")
    assert again.exit_code == 0, again.output
    assert "0 nya underlag, 2 fanns redan" in again.output
    assert len(events_of(vgr, case["id"])) == 2


def test_bad_rows_are_rejected_with_their_reason_and_the_rest_imported(desk: Desk, tmp_path: Path) -> None:
    vgr = desk.api("lakare.vgr")
    case = create(vgr, HALLAND_AT_VGR)
    contact_first = create(vgr, NT_ADVISED_AGAINST)
    skane_case = create(desk.api("hjalpmedel.skane"), {**ROLLATOR_IN_SKANE, "date": "2025-09-01"})
    ref = case["reference"]
    rows = [
        [ref, TODAY.isoformat(), "1", "100", "", "", ""],  # fine
        ["VB-2025-NOSUCH", TODAY.isoformat(), "1", "100", "", "", ""],
        [skane_case["reference"], TODAY.isoformat(), "1", "100", "", "", ""],  # another party's case
        [ref, "2999-01-01", "1", "100", "", "", ""],
        [ref, TODAY.isoformat(), "2", "100", "150", "", ""],  # does not add up
        [ref, TODAY.isoformat(), "1", "1e999", "", "", ""],
        [ref, TODAY.isoformat(), "1", "-5", "", "", ""],
        [contact_first["reference"], TODAY.isoformat(), "1", "100", "", "", ""],  # contact first
        [ref, TODAY.isoformat(), "1", "100", "", "12", ""],
    ]
    path = write(tmp_path / "apotek.csv", rows)
    report = tmp_path / "avvisade.csv"
    result = run(desk, str(path), "--user", "lakare.vgr", "--rejects", str(report))
    assert result.exit_code == 3, result.output
    assert "1 nya underlag, 0 fanns redan, 8 avvisade" in result.output
    with report.open(encoding="utf-8") as handle:
        rejected = {int(r["rad"]): r["skäl"] for r in csv.DictReader(handle)}
    assert sorted(rejected) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert rejected[3].startswith("case_reference:") and rejected[4].startswith("case_reference:")
    assert rejected[5].startswith("occurred_on:")
    assert rejected[6].startswith("amount_sek:")
    assert rejected[7].startswith("unit_price_sek:") and rejected[8].startswith("unit_price_sek:")
    assert "Kontakt tagen med Region Halland" in rejected[9]
    assert rejected[10].startswith("varunummer:")
    assert len(events_of(vgr, case["id"])) == 1
    assert events_of(vgr, contact_first["id"]) == []


def test_the_payer_cannot_import_the_invoicers_lines(desk: Desk, tmp_path: Path) -> None:
    case = create(desk.api("lakare.vgr"), HALLAND_AT_VGR)
    path = write(tmp_path / "a.csv", [[case["reference"], TODAY.isoformat(), "1", "100", "", "", ""]])
    result = run(desk, str(path), "--user", "faktura.halland")
    assert result.exit_code == 3, result.output
    assert "behandlande/förskrivande enheten" in result.output
    assert events_of(desk.api("lakare.vgr"), case["id"]) == []


@pytest.mark.parametrize(
    ("header", "named"),
    [
        (["case_reference", "occurred_on", "amount_sek", "personnummer"], "personnummer"),
        (["case_reference", "amount_sek"], "occurred_on"),
    ],
)
def test_a_file_with_wrong_columns_is_refused_whole(
    desk: Desk, tmp_path: Path, header: list[str], named: str
) -> None:
    case = create(desk.api("lakare.vgr"), HALLAND_AT_VGR)
    path = write(
        tmp_path / "a.csv", [[case["reference"], TODAY.isoformat(), "1", "x"][: len(header)]], header
    )
    result = run(desk, str(path), "--user", "lakare.vgr")
    assert result.exit_code == 2, result.output
    assert named in result.output and "Traceback" not in result.output
    assert events_of(desk.api("lakare.vgr"), case["id"]) == []


def test_unreadable_input_and_unknown_users_are_one_line_errors(desk: Desk, tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("case_reference,occurred_on\nVB-Å,2025-09-15\n".encode("latin-1"))
    for args in (
        [str(latin1), "--user", "lakare.vgr"],
        [str(tmp_path / "missing.csv"), "--user", "lakare.vgr"],
        [str(write(tmp_path / "ok.csv", [])), "--user", "nobody"],
    ):
        result = run(desk, *args)
        assert result.exit_code == 2, result.output
        assert "fel:" in result.output and "Traceback" not in result.output


def test_the_bulk_path_stores_whole_events_on_sqlite_and_postgresql(db_url: str, tmp_path: Path) -> None:
    """The decision goes in as JSON text encoded once per case; it must come back as the decision,
    with every column the ORM would have filled (created_at), on both databases."""
    from sqlalchemy import select

    from vembetalar.store import repo
    from vembetalar.store.event_import import import_events_bulk
    from vembetalar.store.models import BillableEvent, User

    built = build_app(db_url, tmp_path / "var")
    try:
        case = create(built.api("lakare.vgr"), HALLAND_AT_VGR)
        rows = [
            {"case_reference": case["reference"], "occurred_on": TODAY.isoformat(), "amount_sek": "10.50"},
            {"case_reference": case["reference"], "occurred_on": TODAY.isoformat(), "amount_sek": "2.00"},
        ]
        with built.app.state.sessions() as db:
            user = db.scalars(select(User).where(User.username == "lakare.vgr")).one()
            report = import_events_bulk(db, repo.Actor.of(user), iter(rows), today=TODAY)
            assert (report.created, report.rejects) == (2, [])
            events = db.scalars(select(BillableEvent).order_by(BillableEvent.id)).all()
            rules = [e.decision_data["rule_id"] for e in events]
        assert [e.amount_sek for e in events] == [Decimal("10.50"), Decimal("2.00")]
        assert rules == [case["decision"]["rule_id"]] * 2
        assert all(e.created_at is not None and e.cancelled is False for e in events)
    finally:
        built.app.state.db_engine.dispose()
