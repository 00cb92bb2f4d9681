"""Engine semantics a user relies on: never a guess, each output answered on its own, declared
precedence between agreements, no questions that cannot change the answer, first things first,
and the batch path answering exactly like the single-case path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import pack_header, write_pack
from vembetalar.model.case import Case
from vembetalar.model.errors import parse_case
from vembetalar.rules.batch import decide_frame
from vembetalar.rules.batch_io import prepare
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import PackError, load_packs
from vembetalar.synthetic import generate_cases, nest


def decide(engine: Engine, data: dict[str, object]) -> dict[str, object]:
    return engine.decide(Case.model_validate(data)).model_dump()


HALLAND_AT_VGR = {
    "date": "2024-05-01",
    "kind": "drug_exception",
    "patient": {"home_region": "13"},
    "care": {"region": "14", "referral": False},
    "product": {"nt_council": "none"},
}
ROLLATOR = {
    "date": "2025-01-01",
    "kind": "assistive_device",
    "care": {"region": "12"},
    "patient": {"country": "SE", "home_region": "13"},
    "product": {"area": "mobility"},
}


def test_prior_contact_comes_first_in_the_steps(engine: Engine) -> None:
    d = decide(engine, {**HALLAND_AT_VGR, "product": {"nt_council": "do_not_use"}})
    assert d["actions"][0].startswith("Kontakta den kostnadsansvariga regionen (Region Halland)")
    assert d["rule_id"] == "vgr_halland_undantag_2023/bilaga-2"


def test_an_unknown_fact_leaves_open_only_what_depends_on_it(engine: Engine) -> None:
    d = decide(engine, {**HALLAND_AT_VGR, "care": {"region": "14"}})
    assert (d["status"], d["payer"], d["decider"]) == ("decided", "region:13", "region:14")
    assert (d["invoicer"], d["invoice"]) == (None, None)
    assert d["missing"] == ["care.referral"]
    assert d["undetermined"] == ["invoicer", "invoice"]


def test_unknown_nt_council_is_not_read_as_no_statement(engine: Engine) -> None:
    d = decide(engine, {**HALLAND_AT_VGR, "product": {}})
    assert d["status"] == "decided"
    assert d["prior_contact_required"] is None
    assert d["missing"] == ["product.nt_council"]
    none = decide(engine, {**HALLAND_AT_VGR, "product": {"nt_council": "none"}})
    assert (none["prior_contact_required"], none["missing"]) == (False, [])


def test_an_output_every_branch_agrees_on_is_known(engine: Engine) -> None:
    """12 000 kr with advanced adaptation unknown: either rule demands contact with the home region."""
    d = decide(engine, {**ROLLATOR, "product": {"area": "mobility", "cost_sek": 12000}})
    assert (d["status"], d["prior_contact_required"], d["missing"]) == ("decided", True, [])
    assert d["contact"]["party"] == "region:13"
    alternatives = [m["rule_id"] for m in d["explanation"]["rules"] if m["alternative"]]
    assert alternatives == [
        "skane_hjalpmedel_utomlans/annat-lan-avancerad-anpassning",
        "skane_hjalpmedel_utomlans/annat-lan-over-grans",
    ]


def test_missing_names_only_the_facts_that_change_an_open_output(engine: Engine) -> None:
    d = decide(engine, ROLLATOR)
    assert (d["status"], d["payer"]) == ("decided", "region:13")
    assert d["missing"] == ["product.cost_sek", "product.advanced_adaptation"]
    assert "prior_contact_required" in d["undetermined"]


def test_status_is_incomplete_only_when_the_payer_is_open(engine: Engine) -> None:
    known = {"area": "mobility", "cost_sek": 500, "advanced_adaptation": False}
    d = decide(engine, {**ROLLATOR, "patient": {}, "product": known})
    assert d["status"] == "incomplete"
    assert d["missing"] == ["patient.home_region", "patient.country", "patient.swedish_citizen"]
    assert d["payer"] is None and "payer" in d["undetermined"]


def test_unknown_scope_field_gives_incomplete(engine: Engine) -> None:
    d = decide(engine, {"date": "2024-05-01", "kind": "drug_exception", "care": {"region": "14"}})
    assert (d["status"], d["missing"]) == ("incomplete", ["patient.home_region"])


def test_split_cost_shares_in_order_and_payer_is_the_first(engine: Engine) -> None:
    d = decide(
        engine,
        {
            "date": "2023-06-15",
            "kind": "medtech_product",
            "patient": {"home_region": "17", "home_municipality": "1780", "housing": "special_housing"},
            "care": {"self_care": False, "discharge": True, "municipality_has_product": False},
            "product": {"annex": "kommun"},
        },
    )
    assert [(s["payer"], s["max_days"]) for s in d["shares"]] == [("region:17", 7), ("kommun:1780", None)]
    assert d["payer"] == d["shares"][0]["payer"]


def test_expired_agreement_reason_names_the_validity(engine: Engine) -> None:
    data = {
        "date": "2024-02-02",
        "kind": "medtech_product",
        "patient": {"home_region": "17", "home_municipality": "1780", "housing": "special_housing"},
        "care": {"self_care": False, "discharge": False},
        "product": {"annex": "kommun"},
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
HOUSING_ONLY = """\
tables:
  - id: boende
    title: Särskilt boende
    hit_policy: unique
    rules:
      - id: sabo
        title: Kommunen betalar i särskilt boende
        when: {patient.home_municipality: {known: true}}
        then: {payer: "kommun:{patient.home_municipality}"}
        cite: [betalar]
"""


@pytest.fixture
def with_generic(tmp_path: Path) -> Engine:
    header = pack_header("generiskt_hjalpmedel", extra="yields_to: [skane_hjalpmedel_utomlans]")
    write_pack(tmp_path, "generiskt_hjalpmedel", header, GENERIC)
    return Engine(load_packs([tmp_path]))


def test_declared_precedence_decides_and_says_so(with_generic: Engine) -> None:
    skane = {**ROLLATOR, "product": {"area": "mobility", "cost_sek": 500, "advanced_adaptation": False}}
    d = decide(with_generic, skane)
    assert d["explanation"]["pack"] == "skane_hjalpmedel_utomlans"
    assert "generiskt_hjalpmedel" in d["explanation"]["precedence"]
    assert "företräde" in d["explanation"]["precedence"]
    elsewhere = {**skane, "care": {"region": "01"}}
    d = decide(with_generic, elsewhere)
    assert d["explanation"]["pack"] == "generiskt_hjalpmedel"
    assert (d["payer"], d["explanation"]["precedence"]) == ("region:13", None)


def test_agreements_without_declared_precedence_are_not_guessed_between(tmp_path: Path) -> None:
    write_pack(tmp_path, "a_avtal", pack_header("a_avtal"), GENERIC)
    write_pack(
        tmp_path,
        "b_avtal",
        pack_header("b_avtal", scope="{kind: assistive_device, care.region: '01'}"),
        GENERIC,
    )
    engine = Engine(load_packs([tmp_path]))
    case = {
        "date": "2025-01-01",
        "kind": "assistive_device",
        "patient": {"home_region": "13"},
        "care": {"region": "01"},
    }
    d = decide(engine, case)
    assert d["status"] == "no_agreement"
    assert "a_avtal, b_avtal" in d["reason"]


def test_a_pack_that_cannot_win_does_not_ask_for_its_scope(tmp_path: Path) -> None:
    write_pack(
        tmp_path, "boende", pack_header("boende", scope="{patient.housing: special_housing}"), HOUSING_ONLY
    )
    engine = Engine(load_packs([tmp_path]))
    d = decide(engine, HALLAND_AT_VGR)
    assert (d["status"], d["payer"], d["missing"]) == ("decided", "region:13", [])


def test_a_pack_that_could_win_asks_for_its_scope(tmp_path: Path) -> None:
    header = pack_header(
        "boende", scope="{patient.housing: special_housing}", extra="overrides: [vgr_halland_undantag_2023]"
    )
    write_pack(tmp_path, "boende", header, HOUSING_ONLY)
    engine = Engine(load_packs([tmp_path]))
    d = decide(engine, HALLAND_AT_VGR)
    assert (d["status"], d["missing"]) == ("incomplete", ["patient.housing"])
    d = decide(engine, {**HALLAND_AT_VGR, "patient": {"home_region": "13", "housing": "ordinary"}})
    assert (d["status"], d["payer"]) == ("decided", "region:13")


def test_precedence_must_name_loaded_packs_and_not_go_round(tmp_path: Path) -> None:
    write_pack(tmp_path / "x", "a_avtal", pack_header("a_avtal", extra="overrides: [finns_inte]"), GENERIC)
    with pytest.raises(PackError, match="okänt paket 'finns_inte'"):
        load_packs([tmp_path / "x"])
    write_pack(tmp_path / "y", "a_avtal", pack_header("a_avtal", extra="overrides: [b_avtal]"), GENERIC)
    write_pack(tmp_path / "y", "b_avtal", pack_header("b_avtal", extra="overrides: [a_avtal]"), GENERIC)
    with pytest.raises(PackError, match="cirkulärt"):
        load_packs([tmp_path / "y"])


PARAMETERS = """\
parameters:
      grans: {value: 2500, unit: kr, description: Gränsen, cite: [betalar]}
"""
WITH_PARAMETER = """\
tables:
  - id: vag
    title: Över eller under gränsen
    hit_policy: unique
    rules:
      - id: over
        title: Över gränsen
        when: {product.cost_sek: {ge: {param: grans}}}
        then: {payer: "region:01", actions: ["Kontakta regionen: {param.grans} kr eller mer."]}
        cite: [betalar]
      - id: under
        title: Under gränsen
        when: {product.cost_sek: {lt: {param: grans}}}
        then: {payer: "region:02"}
        cite: [betalar]
"""


def test_named_parameters_are_used_by_name(tmp_path: Path) -> None:
    write_pack(tmp_path, "param", pack_header("param", extra=PARAMETERS), WITH_PARAMETER)
    engine = Engine(load_packs([tmp_path]))
    case = {"date": "2025-01-01", "kind": "assistive_device", "product": {"cost_sek": 2500}}
    d = decide(engine, case)
    assert (d["payer"], d["actions"]) == ("region:01", ["Kontakta regionen: 2 500 kr eller mer."])
    assert "≥ 2500 (grans)" in d["explanation"]["rules"][0]["matched"][0]
    assert decide(engine, {**case, "product": {"cost_sek": 2499}})["payer"] == "region:02"


def test_an_unknown_parameter_is_a_load_error_naming_the_rule(tmp_path: Path) -> None:
    write_pack(tmp_path, "param", pack_header("param"), WITH_PARAMETER)
    with pytest.raises(PackError, match=r"rules.yaml: tabell 'vag', regel 'over'.*grans"):
        load_packs([tmp_path])


def test_demo_cases_all_decide(engine: Engine) -> None:
    folder = Path(__file__).parent.parent / "vembetalar" / "demo"
    decisions = {p.name: engine.decide(parse_case(p.read_text())) for p in sorted(folder.glob("*.json"))}
    assert decisions["01_hallandspatient_i_vgr.json"].status == "decided"
    assert decisions["06_varmland_efter_avtalstiden.json"].status == "no_agreement"
    assert any(len(d.shares) == 2 for d in decisions.values())
    assert any(
        d.invoice and d.invoice.recipient and d.invoice.recipient.orderer_id == "9640028" and d.contact
        for d in decisions.values()
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_equals_single_case_on_random_cases(engine: Engine, seed: int) -> None:
    cases = generate_cases(2500, seed=seed)
    batch = decide_frame(engine, prepare(cases), with_json=True)
    assert batch.height == cases.height
    statuses = set(batch.get_column("status"))
    assert statuses == {"decided", "no_agreement", "incomplete"}
    split = 0
    for row, from_batch in zip(cases.iter_rows(named=True), batch.get_column("decision"), strict=True):
        single = engine.decide(Case.model_validate(nest(row)))
        assert from_batch == single.model_dump_json(), nest(row)
        split += bool(single.shares)
    assert split > 10


def test_batch_equals_single_with_competing_packs(with_generic: Engine, tmp_path: Path) -> None:
    header = pack_header(
        "boende", scope="{patient.housing: special_housing}", extra="overrides: [vgr_halland_undantag_2023]"
    )
    write_pack(tmp_path / "more", "boende", header, HOUSING_ONLY)
    engine = Engine([*with_generic.packs, *load_packs([tmp_path / "more"])[-1:]])
    cases = generate_cases(1500, seed=11)
    batch = decide_frame(engine, prepare(cases), with_json=True)
    precedence = 0
    for row, from_batch in zip(cases.iter_rows(named=True), batch.get_column("decision"), strict=True):
        single = engine.decide(Case.model_validate(nest(row)))
        assert from_batch == single.model_dump_json(), nest(row)
        precedence += single.explanation.precedence is not None
    assert precedence > 50
