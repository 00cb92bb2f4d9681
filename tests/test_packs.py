"""Rule packs as data: the bundled agreements pass their own tests and checks; broken packs are
refused with a message naming file, rule and field; the analysis finds gaps, overlaps and
unreachable rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import pack_header, write_pack
from vembetalar.rules.analysis import check_packs
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import PackError, load_pack, load_packs
from vembetalar.rules.packtest import run_pack_tests

BUNDLED = ["skane_hjalpmedel_utomlans", "varmland_kommun_medtech_2021", "vgr_halland_undantag_2023"]


def test_bundled_packs_load() -> None:
    assert sorted(p.id for p in load_packs()) == BUNDLED


@pytest.mark.parametrize("pack_id", BUNDLED)
def test_bundled_pack_own_tests_pass_and_cover_every_rule(engine: Engine, pack_id: str) -> None:
    report = run_pack_tests(engine, engine.pack(pack_id))
    assert [(r.name, r.failures) for r in report.failed] == []
    assert report.uncovered == []
    assert len(report.results) >= 15


def test_bundled_packs_have_no_findings(engine: Engine) -> None:
    assert [str(f) for f in check_packs(engine.packs)] == []


def test_every_rule_cites_a_sentence_of_its_source(engine: Engine) -> None:
    for pack in engine.packs:
        for rule in pack.rules():
            assert rule.cite, rule.full_id
            for cid in rule.cite:
                assert pack.citations[cid].quote.split()[0] in pack.source_text


RULES_OK = """\
tables:
  - id: vag
    title: Väg
    hit_policy: unique
    rules:
      - id: hemregion
        title: Hemregionen betalar
        when: {patient.home_region: {known: true}}
        then: {payer: "region:{patient.home_region}"}
        cite: [betalar]
"""


def test_new_agreement_needs_no_python(tmp_path: Path) -> None:
    write_pack(tmp_path, "riksavtal_test", pack_header("riksavtal_test"), RULES_OK)
    engine = Engine(load_packs([tmp_path]))
    assert "riksavtal_test" in [p.id for p in engine.packs]
    assert check_packs([engine.pack("riksavtal_test")]) == []


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            RULES_OK.replace('"region:{patient.home_region}"', '"region:ABC"'),
            "rules.yaml: tabell 'vag', regel 'hemregion', fält 'then.payer'",
        ),
        (
            RULES_OK.replace("patient.home_region: {known: true}", "patient.hem: 1"),
            "rules.yaml: tabell 'vag', regel 'hemregion', fält 'when.patient.hem': okänt ärendefält",
        ),
        (
            RULES_OK.replace("patient.home_region: {known: true}", 'care.region: "99"'),
            "regel 'hemregion', fält 'when.care.region': '99' är inte ett tillåtet värde",
        ),
        (
            RULES_OK.replace("patient.home_region: {known: true}", "product.area: {ge: 3}"),
            "kräver ett tal- eller datumfält",
        ),
        (
            RULES_OK.replace("cite: [betalar]", "cite: [finns-inte]"),
            "fält 'cite': okänd citering 'finns-inte'",
        ),
        (RULES_OK.replace("cite: [betalar]", "cite: []"), "regel 'hemregion', fält 'cite'"),
        (RULES_OK.replace("hit_policy: unique", "hit_policy: any"), "tabell 'vag', fält 'hit_policy'"),
        (
            RULES_OK.replace("        then:", "        thne:"),
            "regel 'hemregion', fält 'then': Field required",
        ),
        (RULES_OK.replace("{payer:", "{contact: nobody, payer:"), "okänd kontakt 'nobody'"),
        ("tables: [", "ogiltig YAML"),
    ],
)
def test_malformed_pack_names_file_rule_and_field(tmp_path: Path, rules: str, expected: str) -> None:
    folder = write_pack(tmp_path, "trasig", pack_header("trasig"), rules)
    with pytest.raises(PackError) as caught:
        load_pack(folder)
    assert expected in str(caught.value)
    assert str(folder) in str(caught.value)


def test_pack_id_must_match_folder_and_validity_must_be_ordered(tmp_path: Path) -> None:
    folder = write_pack(tmp_path, "fel_namn", pack_header("annat_namn"), RULES_OK)
    with pytest.raises(PackError, match="ska vara lika med mappnamnet"):
        load_pack(folder)
    header = pack_header("baklanges").replace(
        "valid_from: null\n    valid_to: null", "valid_from: 2024-01-01\n    valid_to: 2023-01-01"
    )
    with pytest.raises(PackError, match="slutar före valid_from"):
        load_pack(write_pack(tmp_path, "baklanges", header, RULES_OK))


def test_yaml_norway_problem_is_caught(tmp_path: Path) -> None:
    header = pack_header("norge", extra="sets: {nordic: [SE, NO]}")
    with pytest.raises(PackError, match=r"fält 'sets.nordic\[1\]'"):
        load_pack(write_pack(tmp_path, "norge", header, RULES_OK))


def test_a_rules_own_invoicing_names_a_rule_of_the_pack_and_comes_first(tmp_path: Path) -> None:
    """``invoicing.rules`` (Skåne: Sesam LMN is billed by VO Hjälpmedel, not webSesam) must name
    rules the pack has, and wins over the recipient's entry for decisions resting on that rule."""
    invoicing = (
        'invoicing: {{recipients: {{"*": {{billed_by: Visma webSesam, cite: [betalar]}}}}, '
        "rules: {{{rule}: {{billed_by: VO Hjälpmedel (Sesam LMN), cite: [betalar]}}}}}}"
    )
    bad = pack_header("fel_regel", extra=invoicing.format(rule="finns-inte"))
    with pytest.raises(PackError, match=r"invoicing\.rules: okänd regel 'finns-inte'"):
        load_pack(write_pack(tmp_path, "fel_regel", bad, RULES_OK))
    pack = load_pack(
        write_pack(tmp_path, "egen", pack_header("egen", extra=invoicing.format(rule="hemregion")), RULES_OK)
    )
    by_rule = pack.invoicing_for("region:13", ["egen/hemregion"])
    by_recipient = pack.invoicing_for("region:13", ["egen/annan"])
    assert by_rule is not None and by_rule.billed_by == "VO Hjälpmedel (Sesam LMN)"
    assert by_recipient is not None and by_recipient.billed_by == "Visma webSesam"


ANALYSIS_RULES = """\
tables:
  - id: vag
    title: Väg
    hit_policy: {policy}
    rules:
      - id: billig
        title: Billig
        when: {{product.cost_sek: {{lt: 1000}}}}
        then: {{payer: "region:01"}}
        cite: [betalar]
      - id: dyr
        title: Dyr
        when: {{product.cost_sek: {{gt: 1000}}}}
        then: {{payer: "region:03"}}
        cite: [betalar]
      - id: alla-dyra
        title: Alla över 500
        when: {{product.cost_sek: {{ge: 500}}}}
        then: {{payer: "region:03"}}
        cite: [betalar]
"""


def test_analysis_finds_gap_and_overlap(tmp_path: Path) -> None:
    folder = write_pack(tmp_path, "analys", pack_header("analys"), ANALYSIS_RULES.format(policy="unique"))
    findings = [str(f) for f in check_packs([load_pack(folder)])]
    assert any("överlapp" in f and "billig, alla-dyra" in f for f in findings), findings
    assert not any("lucka" in f for f in findings), findings  # 1000 is covered by alla-dyra
    rules = ANALYSIS_RULES.format(policy="unique").replace("{ge: 500}", "{ge: 5000}")
    folder = write_pack(tmp_path / "b", "analys", pack_header("analys"), rules)
    findings = [str(f) for f in check_packs([load_pack(folder)])]
    assert any("lucka" in f and "product.cost_sek=1000" in f for f in findings), findings


def test_analysis_finds_unreachable_rule_under_first_hit(tmp_path: Path) -> None:
    rules = ANALYSIS_RULES.format(policy="first").replace("{ge: 500}", "{ge: 1001}")
    folder = write_pack(tmp_path, "analys", pack_header("analys"), rules)
    findings = [str(f) for f in check_packs([load_pack(folder)])]
    assert any("onåbar regel" in f and "alla-dyra" in f for f in findings), findings


def test_analysis_checks_quotes_against_source(tmp_path: Path) -> None:
    header = pack_header("citat").replace("betalar alltid.", "betalar aldrig.")
    findings = [str(f) for f in check_packs([load_pack(write_pack(tmp_path, "citat", header, RULES_OK))])]
    assert findings == ["error: citat: citering: 'betalar': citatet finns inte ordagrant i källan"]


def test_equally_specific_overlapping_packs_conflict(tmp_path: Path) -> None:
    write_pack(tmp_path, "ett", pack_header("ett"), RULES_OK)
    write_pack(tmp_path, "tva", pack_header("tva"), RULES_OK)
    packs = load_packs([tmp_path])
    findings = [str(f) for f in check_packs([p for p in packs if p.id in ("ett", "tva")])]
    assert any("konkurrerande avtal" in f for f in findings), findings


def test_pack_tests_report_failures_and_uncovered_rules(tmp_path: Path) -> None:
    tests = """\
    defaults: {date: 2024-05-01, kind: assistive_device}
    cases:
      - name: fel förväntan
        case: {patient: {home_region: "13"}}
        expect: {payer: "region:14"}
    """
    write_pack(
        tmp_path,
        "testad",
        pack_header("testad", scope="{kind: assistive_device, care.region: '01'}"),
        RULES_OK,
        tests,
    )
    engine = Engine(load_packs([tmp_path]))
    report = run_pack_tests(engine, engine.pack("testad"))
    assert not report.ok
    assert report.failed[0].failures[0].startswith("payer: väntade 'region:14'")
