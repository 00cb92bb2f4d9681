"""Engine semantics a user relies on: never a guess, the narrower agreement wins and says so,
first things first, and the batch path answers exactly like the single-case path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import pack_header, write_pack
from vembetalar.model.case import Case
from vembetalar.model.errors import parse_case
from vembetalar.rules.batch import decide_frame
from vembetalar.rules.batch_io import prepare
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import load_packs
from vembetalar.synthetic import generate_cases, nest


def decide(engine: Engine, data: dict[str, object]) -> dict[str, object]:
    return engine.decide(Case.model_validate(data)).model_dump()


HALLAND_AT_VGR = {
    "date": "2024-05-01",
    "kind": "drug_exception",
    "patient": {"home_region": "13"},
    "care": {"region": "14", "referral": False},
}


def test_prior_contact_comes_first_in_the_steps(engine: Engine) -> None:
    d = decide(engine, {**HALLAND_AT_VGR, "product": {"nt_council": "do_not_use"}})
    assert d["actions"][0].startswith("Kontakta den kostnadsansvariga regionen (Region Halland)")
    assert d["rule_id"] == "vgr_halland_undantag_2023/bilaga-2"


def test_unknown_fact_gives_incomplete_never_a_guess(engine: Engine) -> None:
    d = decide(engine, {**HALLAND_AT_VGR, "care": {"region": "14"}})
    assert d["status"] == "incomplete"
    assert d["missing"] == ["care.referral"]
    assert d["payer"] is None
    assert "care.referral" in d["reason"]


def test_unknown_scope_field_gives_incomplete(engine: Engine) -> None:
    d = decide(engine, {"date": "2024-05-01", "kind": "drug_exception", "care": {"region": "14"}})
    assert (d["status"], d["missing"]) == ("incomplete", ["patient.home_region"])


def test_first_hit_asks_for_everything_that_could_matter(engine: Engine) -> None:
    data = {
        "date": "2025-01-01",
        "kind": "assistive_device",
        "care": {"region": "12"},
        "patient": {"country": "SE", "home_region": "13"},
        "product": {"area": "mobility"},
    }
    d = decide(engine, data)
    assert d["status"] == "incomplete"
    assert d["missing"] == ["product.cost_sek", "product.advanced_adaptation"]


def test_expired_agreement_reason_names_the_validity(engine: Engine) -> None:
    data = {
        "date": "2024-02-02",
        "kind": "medtech_product",
        "patient": {"home_region": "17", "home_municipality": "1780", "housing": "special_housing"},
        "care": {"self_care": False, "discharge": False},
        "product": {"listed": True},
    }
    d = decide(engine, data)
    assert d["status"] == "no_agreement"
    assert "2021-01-01 – 2024-02-01" in d["reason"]
    data["date"] = "2024-02-01"
    assert decide(engine, data)["payer"] == "kommun:1780"


GENERIC = """\
tables:
  - id: vag
    title: Hemregionen betalar
    hit_policy: unique
    rules:
      - id: hemregion
        title: Hemregionen betalar hjälpmedlet
        when: {patient.home_region: {known: true}}
        then: {payer: "region:{patient.home_region}", decider: "region:{patient.home_region}"}
        cite: [betalar]
"""


@pytest.fixture
def with_generic(tmp_path: Path) -> Engine:
    write_pack(tmp_path, "generiskt_hjalpmedel", pack_header("generiskt_hjalpmedel"), GENERIC)
    return Engine(load_packs([tmp_path]))


def test_more_specific_agreement_wins_and_says_so(with_generic: Engine) -> None:
    skane = {
        "date": "2025-01-01",
        "kind": "assistive_device",
        "care": {"region": "12"},
        "patient": {"country": "SE", "home_region": "13"},
        "product": {"area": "mobility", "cost_sek": 500, "advanced_adaptation": False},
    }
    d = decide(with_generic, skane)
    assert d["explanation"]["pack"] == "skane_hjalpmedel_utomlans"
    assert "generiskt_hjalpmedel" in d["explanation"]["precedence"]
    assert "mer specifikt" in d["explanation"]["precedence"]
    elsewhere = {**skane, "care": {"region": "01"}}
    d = decide(with_generic, elsewhere)
    assert d["explanation"]["pack"] == "generiskt_hjalpmedel"
    assert (d["payer"], d["explanation"]["precedence"]) == ("region:13", None)


def test_equally_specific_agreements_are_not_guessed_between(tmp_path: Path) -> None:
    write_pack(tmp_path, "a_avtal", pack_header("a_avtal"), GENERIC)
    write_pack(tmp_path, "b_avtal", pack_header("b_avtal"), GENERIC)
    engine = Engine(load_packs([tmp_path]))
    d = decide(
        engine,
        {
            "date": "2025-01-01",
            "kind": "assistive_device",
            "patient": {"home_region": "13"},
            "care": {"region": "01"},
        },
    )
    assert d["status"] == "no_agreement"
    assert "a_avtal, b_avtal" in d["reason"]


def test_demo_cases_all_decide(engine: Engine) -> None:
    folder = Path(__file__).parent.parent / "vembetalar" / "demo"
    statuses = {
        p.name: engine.decide(parse_case(p.read_text())).status for p in sorted(folder.glob("*.json"))
    }
    assert statuses["01_hallandspatient_i_vgr.json"] == "decided"
    assert statuses["06_varmland_efter_avtalstiden.json"] == "no_agreement"
    assert statuses["07_utlandssvensk_okand_hemregion.json"] == "incomplete"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_equals_single_case_on_random_cases(engine: Engine, seed: int) -> None:
    cases = generate_cases(2500, seed=seed)
    batch = decide_frame(engine, prepare(cases), with_json=True)
    assert batch.height == cases.height
    statuses = set(batch.get_column("status"))
    assert statuses == {"decided", "no_agreement", "incomplete"}
    for row, from_batch in zip(cases.iter_rows(named=True), batch.get_column("decision"), strict=True):
        single = engine.decide(Case.model_validate(nest(row))).model_dump_json()
        assert from_batch == single, nest(row)


def test_batch_equals_single_with_competing_packs(with_generic: Engine) -> None:
    cases = generate_cases(1500, seed=11)
    batch = decide_frame(with_generic, prepare(cases), with_json=True)
    precedence = 0
    for row, from_batch in zip(cases.iter_rows(named=True), batch.get_column("decision"), strict=True):
        single = with_generic.decide(Case.model_validate(nest(row)))
        assert from_batch == single.model_dump_json(), nest(row)
        precedence += single.explanation.precedence is not None
    assert precedence > 50
