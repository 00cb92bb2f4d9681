"""``vembetalar supply …`` on a hand-made Halland: the shortage impact's JSON contract exactly,
imports that refuse bad rows (and store nothing), and a crash mid-import that leaves nothing."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from vembetalar.cli import app
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.store.repo import Actor
from vembetalar.store.supply_models import SupplyProduct
from vembetalar.supply import catalogue, ledger

TODAY = dt.date(2025, 3, 10)
HEADER = ",".join(catalogue.COLUMNS)
CATALOGUE = f"""\
{HEADER}
19990000100001,100001,Morfin T 10 mg/ml 10 x 1 ml,morfin,N02AA01,10 mg/ml,injektionsvätska,10,100.00,4,II,
19990000100002,100002,Morfin T 10 mg/ml 5 x 1 ml,morfin,N02AA01,10 mg/ml,injektionsvätska,5,60.00,2,II,
19990000100006,100006,Oxikodon T 10 mg/ml 5 x 1 ml,oxikodon,N02AA05,10 mg/ml,injektionsvätska,5,90.00,,II,
19990000100010,100010,Morfin T 10 mg/ml 50 x 1 ml,morfin,N02AA01,10 mg/ml,injektionsvätska,50,400.00,20,II,
19990000100011,100011,Paracetamol T 500 mg 20 st,paracetamol,N02BE01,500 mg,tablett,20,20.00,6.6667,,
"""
STOCKS = """\
source: {document: "Testkälla", quote: "Hylte 2"}
region: "13"
municipalities:
  - {code: "1315", name: Hylte, stocks: 2, sabo: 1, short_term: 1, home_care: 1, total: 3, quote: "Hylte 2"}
stocks:
  hylte-1: {operator: "Hylte kommun", payer: "Region Halland"}
"""
ASSORTMENT = """\
source: {document: "Testkälla", quote: "x"}
lists:
  palliativ:
    title: Palliativ
    items:
      - {varunummer: "100001", kommunalt: [5, 20], boende: [1, 2]}
"""
NURSE = Actor(0, "ssk.hylte", "mas", "kommun:1315")
PHARMACY = Actor(0, "lakemedel.halland", "pharma_unit", "region:13")


def cli(url: str, *args: str) -> Result:
    env = {"VEMBETALAR_DATABASE_URL": url, "VEMBETALAR_TODAY": TODAY.isoformat()}
    return CliRunner().invoke(app, ["supply", *args], env=env)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'supply.db'}"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def session(url: str) -> Session:
    engine = make_engine(url)
    migrate(engine)
    return session_factory(engine)()


def test_shortage_json_is_the_contract(url: str, tmp_path: Path) -> None:
    assert cli(url, "import-catalogue", str(write(tmp_path, "c.csv", CATALOGUE))).exit_code == 0
    loaded = cli(
        url, "load-stocks", "--stocks", str(write(tmp_path, "s.yaml", STOCKS)),
        "--assortment", str(write(tmp_path, "a.yaml", ASSORTMENT)),
    )  # fmt: skip
    assert loaded.exit_code == 0, loaded.output
    with session(url) as db:
        ledger.receive(
            db, PHARMACY, "hylte-1", "100001", "A1", dt.date(2026, 1, 1), 20, TODAY - dt.timedelta(days=80)
        )
        for days_ago in (70, 40, 10):  # 9 units used in the last 90 days: 0.1 a day
            ledger.withdraw(
                db, NURSE, "hylte-1", "100001", 3, "PAT-0001", "Smärta", TODAY - dt.timedelta(days=days_ago)
            )
    dose = write(tmp_path, "d.csv", "patient_pseudonym,municipality,varunummer\nP-0001,1315,100001\n"
                 "P-0002,1380,100001\nP-0002,1380,100006\nP-0003,1315,100011\n")  # fmt: skip
    assert cli(url, "import-dose-patients", str(dose)).exit_code == 0
    other = [
        {
            "varunummer": "100010",
            "from": "2025-04-01",
            "expected_to": None,
            "advice": "",
        },  # overlaps: excluded
        {"varunummer": "100002", "from": "2024-01-01", "expected_to": "2024-12-31", "advice": ""},  # over
    ]
    assert cli(url, "import-shortages", str(write(tmp_path, "o.json", json.dumps(other)))).exit_code == 0
    notice = {
        "varunummer": "100001",
        "from": "2025-03-01",
        "expected_to": "2025-05-01",
        "advice": "Byt förpackning.",
    }
    result = cli(url, "shortage", str(write(tmp_path, "n.json", json.dumps(notice))), "--format", "json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    assert list(data) == ["product", "affected_stocks", "dose_patients", "substitutes", "actions"]
    assert data["product"] == {
        "varunummer": "100001", "npl_pack_id": "19990000100001", "name": "Morfin T 10 mg/ml 10 x 1 ml",
        "substance": "morfin", "atc": "N02AA01", "strength": "10 mg/ml", "form": "injektionsvätska",
        "pack_size": 10, "price_sek": 100.0, "ddd_per_pack": 4.0, "narcotic_class": "II",
        "substitution_group": None,
    }  # fmt: skip
    assert data["affected_stocks"] == [
        {"stock_id": "hylte-1", "municipality": "1315", "balance": 11, "days_of_cover": 110.0},
        {"stock_id": "hylte-2", "municipality": "1315", "balance": 0, "days_of_cover": None},
    ]
    assert data["dose_patients"] == 2
    subs = data["substitutes"]
    assert [{k: v for k, v in s.items() if k != "note"} for s in subs] == [
        {"varunummer": "100002", "rank": 1, "kind": "same_product_other_pack", "extra_cost_per_ddd_sek": 5.0},
        {"varunummer": "100006", "rank": 2, "kind": "same_atc", "extra_cost_per_ddd_sek": None},
    ]
    assert all(set(s) == {"varunummer", "rank", "kind", "extra_cost_per_ddd_sek", "note"} for s in subs)
    assert "Narkotikaklassat (förteckning II)" in subs[1]["note"] and "DDD saknas" in subs[1]["note"]
    actions = "\n".join(data["actions"])
    assert "2025-03-01 till 2025-05-01" in actions and "Byt förpackning." in actions
    assert "2 dospatienter" in actions and "Slut redan i 1 förråd: Hylte 2" in actions
    # The stock's configuration came from the file, the rest is "okänt".
    with session(url) as db:
        assert ledger.stock_for(db, PHARMACY, "hylte-1").payer == "Region Halland"
        assert ledger.stock_for(db, PHARMACY, "hylte-2").payer == "okänt"


def test_a_catalogue_with_bad_rows_is_refused_row_by_row_and_nothing_is_stored(
    url: str, tmp_path: Path
) -> None:
    good = CATALOGUE.splitlines()[1]
    bad = "\n".join(
        [
            HEADER,
            good,
            good.replace("100.00", "NaN").replace("100001", "100003"),
            good.replace("100.00", "1e999").replace("100001", "100004"),
            good.replace("100.00", "-5").replace("100001", "100005"),
            good.replace(",10,100.00", ",2.5,100.00").replace("100001", "100007"),
            good.replace("N02AA01", "N02").replace("100001", "100008"),
            good.replace(",4,II,", ",inf,II,").replace("100001", "100009"),
            good,  # duplicate
        ]
    )
    result = cli(url, "import-catalogue", str(write(tmp_path, "bad.csv", bad)))
    assert result.exit_code == 2
    err = result.stderr
    assert "Traceback" not in result.output + err
    for line, what in [(3, "price_sek"), (4, "price_sek"), (5, "får inte vara negativt"), (6, "pack_size"),
                       (7, "atc"), (8, "ddd_per_pack"), (9, "finns redan på rad 2")]:  # fmt: skip
        assert f"rad {line}: " in err and what in err, (line, err)
    assert "inget lästes in" in err
    with session(url) as db:
        assert db.scalar(select(func.count()).select_from(SupplyProduct)) == 0
    unknown = cli(url, "import-catalogue", str(write(tmp_path, "u.csv", HEADER + ",extra\n")))
    assert unknown.exit_code == 2 and "okänd kolumn: extra" in unknown.stderr


def test_a_crash_mid_import_leaves_nothing_half_imported(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    products = catalogue.parse_catalogue(CATALOGUE)
    with session(url) as db:
        real_flush = db.flush
        calls = {"n": 0}

        def crashing_flush(*args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("disk full")
            real_flush(*args, **kwargs)

        monkeypatch.setattr(db, "flush", crashing_flush)
        with pytest.raises(RuntimeError):
            catalogue.import_catalogue(db, products)
    with session(url) as db:
        assert db.scalar(select(func.count()).select_from(SupplyProduct)) == 0


def test_bad_notices_and_dose_rows_are_named(url: str, tmp_path: Path) -> None:
    cli(url, "import-catalogue", str(write(tmp_path, "c.csv", CATALOGUE)))
    cases = [
        ('{"varunummer": "100001", "from": "2025-13-01"}', "from"),
        ('{"varunummer": 100001, "from": "2025-03-01"}', "varunummer"),
        ('{"varunummer": "100001", "from": "2025-03-01", "expected_to": "2025-01-01"}', "före from"),
        ('{"varunummer": "999999", "from": "2025-03-01"}', "finns inte i katalogen"),
        ('{"varunummer": "100001", "from": "2025-03-01", "oops": 1}', "okänt fält"),
        ("[1, 2", "ogiltig JSON"),
    ]
    for text, what in cases:
        result = cli(url, "shortage", str(write(tmp_path, "n.json", text)), "--format", "json")
        assert result.exit_code == 2 and what in result.stderr, (text, result.stderr)
    dose = write(tmp_path, "d.csv", "patient_pseudonym,municipality,varunummer\n19811228-9874,1315,100001\n"
                 "P-0002,9999,100001\n")  # fmt: skip
    result = cli(url, "import-dose-patients", str(dose))
    assert result.exit_code == 2
    assert (
        "rad 2: patient: ser ut som ett personnummer" in result.stderr
        and "rad 3: municipality" in result.stderr
    )
    csv_notice = write(tmp_path, "n.csv", "varunummer,from,expected_to,advice\n100001,2025-03-01,,Råd\n")
    imported = cli(url, "import-shortages", str(csv_notice))
    assert imported.exit_code == 0 and "1 nya" in imported.stdout
