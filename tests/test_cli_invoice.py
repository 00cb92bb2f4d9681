"""``vembetalar invoice …`` as the invoice clerk runs it: registry, run with files, credit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from peppol_check import fatal_findings
from sqlalchemy import select
from test_api import HALLAND_AT_VGR, create, take
from test_billing_run import DEMO_REGISTRY, line
from typer.testing import CliRunner, Result
from webapp import TODAY, build_app
from webapp import TestApp as Desk

from vembetalar.cli import app
from vembetalar.store.models import Invoice


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    built = build_app(f"sqlite:///{tmp_path / 'invoice.db'}", tmp_path / "var")
    yield built
    built.app.state.db_engine.dispose()


def cli(desk: Desk, *args: str) -> Result:
    env = {
        "VEMBETALAR_DATABASE_URL": desk.app.state.settings.database_url,
        "VEMBETALAR_TODAY": TODAY.isoformat(),
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, ["invoice", *args], env=env)


def test_run_writes_valid_xml_and_pdf_named_by_number_then_bills_nothing_twice(
    desk: Desk, tmp_path: Path
) -> None:
    vgr = desk.api("lakare.vgr")
    take(vgr, create(vgr, HALLAND_AT_VGR)["id"], "dispensed", line=line())
    period = TODAY.strftime("%Y-%m")
    refused = cli(desk, "run", "--issuer", "region:14", "--period", period)
    assert refused.exit_code == 2 and "organisationsregistret saknas" in refused.output

    loaded = cli(desk, "registry", str(DEMO_REGISTRY))
    assert loaded.exit_code == 0 and "Demodata" in loaded.output
    out = tmp_path / "ut"
    made = cli(desk, "run", "--issuer", "region:14", "--period", period, "--out", str(out))
    assert made.exit_code == 0, made.output
    assert sorted(p.name for p in out.iterdir()) == ["F14-000001.pdf", "F14-000001.xml"]
    assert fatal_findings((out / "F14-000001.xml").read_bytes()) == []
    assert (out / "F14-000001.pdf").read_bytes().startswith(b"%PDF")

    again = cli(desk, "run", "--all", "--period", period)
    assert again.exit_code == 0 and "F14-000002" not in again.output

    credited = cli(
        desk, "credit", "F14-000001", "--issuer", "region:14", "--reason", "fel belopp", "--out", str(out)
    )
    assert credited.exit_code == 0, credited.output
    assert fatal_findings((out / "K14-000001.xml").read_bytes()) == []


def test_an_out_folder_that_cannot_be_written_is_refused_before_anything_is_invoiced(
    desk: Desk, tmp_path: Path
) -> None:
    vgr = desk.api("lakare.vgr")
    take(vgr, create(vgr, HALLAND_AT_VGR)["id"], "dispensed", line=line())
    assert cli(desk, "registry", str(DEMO_REGISTRY)).exit_code == 0
    period = TODAY.strftime("%Y-%m")
    not_a_folder = tmp_path / "en-fil"
    not_a_folder.write_text("x")
    refused = cli(desk, "run", "--issuer", "region:14", "--period", period, "--out", str(not_a_folder / "ut"))
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert "kan inte skriva till" in refused.output and "inget har fakturerats" in refused.output
    made = cli(desk, "run", "--issuer", "region:14", "--period", period)  # the event is still there
    assert made.exit_code == 0 and "F14-000001" in made.output and "1 faktura, 1 rad" in made.output


def test_a_document_the_e_invoice_rules_refuse_is_one_sentence_and_the_invoice_stays(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that cannot be written is not a traceback: the clerk is told why and how to write
    it again; the invoice itself is made (its number is taken)."""
    from vembetalar.billing import files

    def refuse(document: object, folder: Path, pdf: bool = True) -> list[Path]:
        raise ValueError("VAT category E needs the seller's VAT id (BR-E-02)")

    monkeypatch.setattr(files, "write_one", refuse)
    vgr = desk.api("lakare.vgr")
    take(vgr, create(vgr, HALLAND_AT_VGR)["id"], "dispensed", line=line())
    assert cli(desk, "registry", str(DEMO_REGISTRY)).exit_code == 0
    out = tmp_path / "ut"
    failed = cli(desk, "run", "--issuer", "region:14", "--period", TODAY.strftime("%Y-%m"), "--out", str(out))
    assert failed.exit_code == 1 and "Traceback" not in failed.output, failed.output
    assert "BR-E-02" in failed.output and "vembetalar invoice write --out" in failed.output
    with desk.app.state.sessions() as db:
        assert db.scalars(select(Invoice.number_text)).all() == ["F14-000001"]


def test_write_gives_again_exactly_the_files_the_run_wrote(desk: Desk, tmp_path: Path) -> None:
    """``invoice write`` is the way back after a failed write: the same bytes, from the stored
    documents; a bad period is one line."""
    vgr = desk.api("lakare.vgr")
    for _ in range(2):
        take(vgr, create(vgr, HALLAND_AT_VGR)["id"], "dispensed", line=line())
    assert cli(desk, "registry", str(DEMO_REGISTRY)).exit_code == 0
    period = TODAY.strftime("%Y-%m")
    first, again = tmp_path / "forsta", tmp_path / "igen"
    assert cli(desk, "run", "--issuer", "region:14", "--period", period, "--out", str(first)).exit_code == 0
    written = cli(desk, "write", "--out", str(again), "--period", period)
    assert written.exit_code == 0 and "2 fakturor skrivna" in written.output, written.output
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in again.iterdir()) and len(names) == 4  # XML and PDF each
    for name in names:
        if name.endswith(".xml"):
            assert (first / name).read_bytes() == (again / name).read_bytes()
    refused = cli(desk, "write", "--out", str(again), "--period", "maj")
    assert refused.exit_code == 2 and "ÅÅÅÅ-MM" in refused.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--period", "2024-05"], "--issuer"),
        (["run", "--issuer", "region:14", "--all", "--period", "2024-05"], "--issuer"),
        (["run", "--issuer", "region:14", "--period", "maj"], "--period"),
        (["credit", "F999999", "--issuer", "region:14", "--reason", "x"], "ingen faktura"),
    ],
)
def test_bad_input_is_one_line_naming_what_is_wrong(desk: Desk, args: list[str], message: str) -> None:
    result = cli(desk, *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_registry_with_a_bad_number_is_refused_naming_the_party(desk: Desk, tmp_path: Path) -> None:
    bad = tmp_path / "reg.yaml"
    bad.write_text('organisations:\n  "region:14":\n    legal_name: X\n    org_number: "232100-0132"\n')
    result = cli(desk, "registry", str(bad))
    assert result.exit_code == 2 and "region:14: org_number" in result.output


def test_the_registry_can_be_a_csv_from_a_spreadsheet(desk: Desk, tmp_path: Path) -> None:
    sheet = tmp_path / "register.csv"
    sheet.write_text(
        "\ufeffparty;legal_name;org_number;vat_id;bankgiro;address;demo\n"
        "region:14;Västra Götalandsregionen;999000000-3;SE999000000301;5050-1055;"
        "Regionens hus | 462 80 Vänersborg;ja\n",
        encoding="utf-8",
    )
    result = cli(desk, "registry", str(sheet))
    assert result.exit_code == 0 and "1 organisationer" in result.output, result.output
    wrong = tmp_path / "fel.csv"
    wrong.write_text("party;legal_name;personnummer\nregion:14;X;19121212-1212\n", encoding="utf-8")
    refused = cli(desk, "registry", str(wrong))
    assert refused.exit_code == 2 and "personnummer" in refused.output


def test_check_reads_a_received_invoice_against_its_agreement(desk: Desk, tmp_path: Path) -> None:
    from test_billing_run import KARLSTAD_ANNEX_REGION

    assert cli(desk, "registry", str(DEMO_REGISTRY)).exit_code == 0
    mas = desk.api("mas.karlstad")
    case_id = create(mas, KARLSTAD_ANNEX_REGION, patient_name="Anna Berg")["id"]
    take(mas, case_id, "delivered", line=line(occurred_on="2023-10-05", varunummer=None))
    out = tmp_path / "ut"
    assert (
        cli(desk, "run", "--issuer", "kommun:1780", "--period", "2023-10", "--out", str(out)).exit_code == 0
    )
    good = out / "F1780-000001.xml"
    passed = cli(desk, "check", str(good))
    assert passed.exit_code == 0, passed.output
    assert "Region Värmland" in passed.output and "uppfyller avtalets krav" in passed.output

    text = good.read_text(encoding="utf-8")
    broken = tmp_path / "utan-bestallar-id.xml"
    broken.write_text(re.sub(r"<cbc:BuyerReference>[^<]*</cbc:BuyerReference>", "", text), encoding="utf-8")
    failed = cli(desk, "check", str(broken))
    assert failed.exit_code == 1 and "9640028" in failed.output, failed.output

    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><x>&b;</x>')
    refused = cli(desk, "check", str(bomb))
    assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) <= 3
    assert "Traceback" not in refused.output
