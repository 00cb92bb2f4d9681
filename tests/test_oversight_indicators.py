"""Each indicator on hand-made data with a known answer, the ranking and the flag ids, and the
detector on synthetic data: planted anomalies found, legitimate heavy prescribers not flagged."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import duckdb
import pytest
from oversight_data import day, monthly, months_of, row, rows, store_with
from typer.testing import CliRunner

from vembetalar.cli import app
from vembetalar.oversight import synthetic
from vembetalar.oversight.importer import import_file
from vembetalar.oversight.run import Flag, Options, run
from vembetalar.oversight.store import Store

GPS = [f"100000{i}" for i in range(1, 7)]


def _flags(store: Store, indicator: str, **options: object) -> list[Flag]:
    return [f for f in run(store, Options(**options)).flags if f.indicator == indicator]  # type: ignore[arg-type]


def _peers_with(extra: list[dict[str, str]], opioids: int = 2) -> list[dict[str, str]]:
    """Six GPs at three vårdcentraler, each 10 ramipril and ``opioids`` morphine uttag."""
    data = []
    for i, code in enumerate(GPS):
        data += rows(10, prescriber_code=code, workplace_code=f"W{i % 3}")
        data += rows(
            opioids,
            prescriber_code=code,
            workplace_code=f"W{i % 3}",
            atc="N02AA01",
            patient_pseudonym=f"O{i}",
        )
    return data + extra


def test_watched_volume_scores_the_outlier_in_robust_spreads(tmp_path: Path) -> None:
    # GP 6 gets 38 more morphine uttag: 40 against the peers' median 2 (MAD 0); the spread is the
    # floor of 2 uttag, so the score is (40 - 2) / 2 = 19.
    extra = rows(38, prescriber_code=GPS[5], workplace_code="W2", atc="N02AA01", patient_pseudonym="O5")
    [flag] = [
        f
        for f in _flags(store_with(tmp_path, _peers_with(extra)), "watched_volume")
        if f.entity_kind == "prescriber"
    ]
    assert (flag.entity_code, flag.subject, flag.score) == (GPS[5], "opioids", 19.0)
    assert flag.explanation.startswith(
        "opioider: 40 uttag 2024-06-15–2024-06-15 (400 DDD, förmånskostnad 3 200 kr)"
    )
    assert "övriga kollegor inom LK allmänmedicin i region 13 (5 st): median 20" in flag.explanation


def test_a_busier_peer_at_twice_the_median_is_not_a_finding(tmp_path: Path) -> None:
    extra = rows(2, prescriber_code=GPS[5], workplace_code="W2", atc="N02AA01", patient_pseudonym="O5")
    assert _flags(store_with(tmp_path, _peers_with(extra, opioids=4)), "watched_volume") == []


def test_rare_for_peers_is_learned_from_the_data(tmp_path: Path) -> None:
    # Only GP 6 gives liraglutide (8 uttag): 0 of 5 peers prescribe it, score 8 / 2 = 4.
    extra = rows(8, prescriber_code=GPS[5], workplace_code="W2", atc="A10BJ02", patient_pseudonym="B")
    flags = _flags(store_with(tmp_path, _peers_with(extra)), "rare_for_peers")
    assert [(f.entity_kind, f.entity_code, f.subject, f.score) for f in flags] == [
        ("prescriber", GPS[5], "A10BJ02", 4.0)
    ]
    assert flags[0].explanation.endswith(
        "av 5 kollegor inom LK allmänmedicin i region 13 har 0 förskrivit den alls"
    )


def test_a_rare_watched_substance_is_one_finding_not_two(tmp_path: Path) -> None:
    # Botulinum toxin is rare among the peers and watched: watched_volume flags it (8 / 2 = 4),
    # rare_for_peers does not repeat it.
    extra = rows(8, prescriber_code=GPS[5], workplace_code="W2", atc="M03AX01", patient_pseudonym="B")
    flags = [
        f
        for f in run(store_with(tmp_path, _peers_with(extra)), Options()).flags
        if f.entity_kind == "prescriber"
    ]
    assert [(f.indicator, f.entity_code, f.subject, f.score) for f in flags] == [
        ("watched_volume", GPS[5], "botulinum_toxin", 4.0)
    ]


def test_a_substance_two_peers_share_is_not_rare(tmp_path: Path) -> None:
    extra = rows(8, prescriber_code=GPS[5], atc="M03AX01") + rows(8, prescriber_code=GPS[4], atc="M03AX01")
    assert _flags(store_with(tmp_path, _peers_with(extra)), "rare_for_peers") == []


def test_prescribers_without_personnummer_are_listed_with_their_volumes(tmp_path: Path) -> None:
    extra = rows(3, prescriber_code="1000007", prescriber_has_personnummer="false", atc="G03BA03")
    extra += rows(10, prescriber_code="1000008", prescriber_has_personnummer="false")  # no watched substance
    flags = _flags(store_with(tmp_path, _peers_with(extra)), "no_personnummer")
    assert [(f.entity_code, f.value) for f in flags] == [("1000007", 3.0)]
    assert flags[0].explanation.startswith(
        "förskrivare utan svenskt person- eller samordningsnummer: 3 uttag av bevakade substanser"
    )


def test_many_prescribers_and_pharmacies_within_90_days(tmp_path: Path) -> None:
    start = "2024-03-01"
    shopper = [
        row(
            patient_pseudonym="PX",
            prescriber_code=f"200000{i}",
            pharmacy_id=f"A{i}",
            atc="N05BA01",
            dispensed_on=day(start, 7 * i),
        )
        for i in range(5)
    ]
    # Five prescribers too, but 100 days apart: never more than one in a 90-day window.
    slow = [
        row(
            patient_pseudonym="PY",
            prescriber_code=f"200000{i}",
            pharmacy_id=f"A{i}",
            atc="N05BA01",
            dispensed_on=day("2023-01-01", 100 * i),
        )
        for i in range(5)
    ]
    ordinary = [row(patient_pseudonym=f"Q{i}", atc="N05BA01", dispensed_on=day(start, i)) for i in range(6)]
    flags = _flags(store_with(tmp_path, shopper + slow + ordinary), "many_prescribers")
    assert [(f.entity_kind, f.entity_code, f.subject, f.value, f.score) for f in flags] == [
        ("patient", "PX", "benzodiazepines", 5.0, 4.0)
    ]
    assert flags[0].explanation.startswith(
        "bensodiazepiner: 5 förskrivare och 5 apotek inom 90 dagar från 2024-03-01"
    )


def test_sudden_growth_against_own_history(tmp_path: Path) -> None:
    # Stimulants: 1 uttag a month for nine months, then 12 a month: (12 - 1) / 1 = 11.
    data = monthly(months_of(2024)[:9], 1, atc="N06BA04", prescriber_code="3000001", workplace_code="P1")
    data += monthly(months_of(2024)[9:], 12, atc="N06BA04", prescriber_code="3000001", workplace_code="P1")
    # A steady colleague, and a newcomer who starts in October (no history: not "growth").
    data += monthly(months_of(2024), 3, atc="N06BA04", prescriber_code="3000002", workplace_code="P2")
    data += monthly(months_of(2024)[9:], 12, atc="N06BA04", prescriber_code="3000003", workplace_code="P3")
    flags = _flags(store_with(tmp_path, data), "sudden_growth")
    assert sorted((f.entity_kind, f.entity_code, f.score) for f in flags) == [
        ("prescriber", "3000001", 11.0),
        ("workplace", "P1", 11.0),
    ]


def test_benefit_cost_trend_against_peer_workplaces(tmp_path: Path) -> None:
    data = []
    for w in range(6):
        cost = "10000"
        data += monthly(
            months_of(2024)[:9],
            1,
            workplace_code=f"V{w}",
            prescriber_code=f"400000{w}",
            benefit_cost_sek=cost,
        )
        late = "50000" if w == 0 else cost
        data += monthly(
            months_of(2024)[9:],
            1,
            workplace_code=f"V{w}",
            prescriber_code=f"400000{w}",
            benefit_cost_sek=late,
        )
    flags = _flags(store_with(tmp_path, data), "benefit_cost_trend")
    expected = math.log(51_000 / 11_000) / 0.25
    assert [(f.entity_code, round(f.score, 3)) for f in flags] == [("V0", round(expected, 3))]
    assert (
        "förmånskostnad 50 000 kr per månad de senaste 3 månaderna mot 10 000 kr innan (+364 %)"
        in flags[0].explanation
    )


def test_one_ranking_stable_ids_and_the_top_n(tmp_path: Path) -> None:
    extra = rows(38, prescriber_code=GPS[5], atc="N02AA01") + rows(8, prescriber_code=GPS[4], atc="M03AX01")
    store = store_with(tmp_path, _peers_with(extra))
    first = run(store, Options()).flags
    assert [f.rank for f in first] == list(range(1, len(first) + 1))
    assert [f.score for f in first] == sorted((f.score for f in first), reverse=True)
    again = run(store, Options()).flags
    assert [f.flag_id for f in again] == [f.flag_id for f in first]
    other_period = run(store, Options(date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 12, 31))).flags
    assert not {f.flag_id for f in other_period} & {f.flag_id for f in first}
    assert [f.flag_id for f in run(store, Options(top=2)).flags] == [f.flag_id for f in first[:2]]


def test_cli_run_writes_the_contract_columns(tmp_path: Path) -> None:
    extra = rows(38, prescriber_code=GPS[5], atc="N02AA01")
    store = store_with(tmp_path, _peers_with(extra))
    out = tmp_path / "flags.parquet"
    result = CliRunner().invoke(app, ["oversight", "run", "--db", str(store.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    columns = [c for c, *_ in duckdb.sql(f"DESCRIBE SELECT * FROM '{out}'").fetchall()]
    assert columns[:7] == [
        "flag_id",
        "rank",
        "entity_kind",
        "entity_code",
        "indicator",
        "score",
        "explanation",
    ]
    bad = CliRunner().invoke(
        app, ["oversight", "run", "--db", str(store.root), "--out", str(out), "--from", "2024-13-01"]
    )
    assert bad.exit_code == 2 and "är inte ett datum" in bad.output
    empty = CliRunner().invoke(app, ["oversight", "run", "--db", str(tmp_path / "tom"), "--out", str(out)])
    assert empty.exit_code == 2 and "inga importerade uttag" in empty.output


# ---------------------------------------------------------------- synthetic data
@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[synthetic.Planted], Path]:
    root = tmp_path_factory.mktemp("synthetic")
    source = root / "uttag.parquet"
    planted = synthetic.write(source, 40_000, seed=11)
    store = Store(root / "store")
    assert import_file(source, store).rejected == 0
    return store, planted, source


def test_the_planted_anomalies_are_at_the_top(
    synthetic_store: tuple[Store, list[synthetic.Planted], Path],
) -> None:
    store, planted, _ = synthetic_store
    flags = run(store, Options()).flags
    top = {(f.entity_kind, f.entity_code) for f in flags[:30]}
    found = [p for p in planted if (p.entity_kind, p.entity_code) in top]
    assert found == planted
    assert synthetic.read_planted(synthetic_store[2]) == planted


def test_legitimate_heavy_prescribers_are_not_flagged(
    synthetic_store: tuple[Store, list[synthetic.Planted], Path],
) -> None:
    """The busiest palliative-care opioid prescriber and the busiest endocrinologist for growth
    hormone prescribe the most of a watched substance, because it is their specialty."""
    store, _, source = synthetic_store
    busiest = dict(
        duckdb.sql(
            f"""SELECT prescriber_specialty, arg_max(prescriber_code, n) FROM (
                  SELECT prescriber_specialty, prescriber_code, count(*) AS n FROM '{source}'
                  WHERE (prescriber_specialty = 'palliativ medicin' AND atc LIKE 'N02A%')
                     OR (prescriber_specialty = 'endokrinologi' AND atc = 'H01AC01')
                  GROUP BY ALL) GROUP BY ALL"""
        ).fetchall()
    )
    assert set(busiest) == {"palliativ medicin", "endokrinologi"}
    # By absolute volume they are at the very top of all prescribers of these substances.
    for condition, who, places in (
        ("atc LIKE 'N02A%'", "palliativ medicin", 3),
        ("atc = 'H01AC01'", "endokrinologi", 1),
    ):
        top = duckdb.sql(
            f"SELECT prescriber_code FROM '{source}' WHERE {condition} "
            f"GROUP BY ALL ORDER BY count(*) DESC LIMIT {places}"
        ).fetchall()
        assert busiest[who] in [code for (code,) in top]
    flagged = {f.entity_code for f in run(store, Options()).flags}
    assert not set(busiest.values()) & flagged
