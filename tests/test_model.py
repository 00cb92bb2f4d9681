"""The Case contract: what is accepted, and the one-line message for what is not."""

from __future__ import annotations

import pytest

from vembetalar.model import codes
from vembetalar.model.case import Case, case_fields
from vembetalar.model.errors import BadCase, parse_case

BASE = '{"date": "2024-05-01", "kind": "drug_exception"'


def test_reference_codes_are_complete() -> None:
    assert len(codes.regions()) == 21
    assert len(codes.municipalities()) == 290
    assert all(code[:2] in codes.regions() for code in codes.municipalities())
    assert codes.party_name("region:13") == "Region Halland"
    assert codes.party_name("kommun:1780") == "Karlstad (kommun 1780)"
    assert "SE" in codes.countries() and "XX" not in codes.countries()


def test_minimal_case_leaves_everything_unknown() -> None:
    case = parse_case(BASE + "}")
    flat = case.flat()
    assert flat["patient.home_region"] is None
    assert flat["product.nt_council"] is None  # not known — "none" is the answer "no statement"
    assert parse_case(BASE + ', "product": {"nt_council": "none"}}').product.nt_council == "none"


def test_the_retired_listed_field_is_refused_naming_annex() -> None:
    with pytest.raises(BadCase) as caught:
        parse_case('{"date": "2023-05-01", "kind": "medtech_product", "product": {"listed": true}}')
    message = str(caught.value)
    assert message.startswith("product.listed: ") and "product.annex" in message


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        (', "patient": {"home_region": "99"}', "patient.home_region: '99' är inte en länskod"),
        (', "patient": {"home_region": 13}', "patient.home_region: 13 ska vara en textsträng"),
        (', "patient": {"home_municipality": "9999"}', "patient.home_municipality"),
        (', "patient": {"country": "XX"}', "patient.country"),
        (', "product": {"cost_sek": -1}', "product.cost_sek: -1 får inte vara mindre än 0"),
        (', "product": {"cost_sek": 1e999}', 'product.cost_sek: "inf" ska vara ett ändligt tal'),
        (', "product": {"cost_sek": NaN}', 'product.cost_sek: "nan" ska vara ett ändligt tal'),
        (', "care": {"referral": "false"}', 'care.referral: "false" ska vara true eller false'),
        (', "care": {"refferal": false}', "care.refferal: okänt fält"),
        (', "patient": {"age": 200}', "patient.age: 200 får inte vara större än 130"),
        (', "product": {"nt_council": "maybe"}', "product.nt_council"),
    ],
)
def test_bad_fields_are_named(fragment: str, message: str) -> None:
    with pytest.raises(BadCase) as caught:
        parse_case(BASE + fragment + "}")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_impossible_date() -> None:
    with pytest.raises(BadCase, match=r"^date: \"2024-02-30\" är inte ett giltigt datum"):
        parse_case('{"date": "2024-02-30", "kind": "drug_exception"}')


def test_municipality_must_lie_in_home_region() -> None:
    with pytest.raises(BadCase, match=r"^patient\.home_municipality: kommun 1380 ligger inte i län 14"):
        parse_case(BASE + ', "patient": {"home_region": "14", "home_municipality": "1380"}}')


def test_area_must_fit_kind() -> None:
    with pytest.raises(BadCase, match=r"product\.area: 'drug' passar inte ärendetypen 'assistive_device'"):
        parse_case('{"date": "2024-05-01", "kind": "assistive_device", "product": {"area": "drug"}}')


def test_malformed_json_and_non_object() -> None:
    with pytest.raises(BadCase, match="ogiltig JSON på rad 1"):
        parse_case("{not json")
    with pytest.raises(BadCase, match="ska vara ett JSON-objekt"):
        parse_case("[1, 2]")


def test_field_catalogue_follows_the_model() -> None:
    fields = case_fields()
    assert fields["kind"].type == "category" and fields["kind"].required
    assert fields["care.region"].values == tuple(codes.regions())
    assert fields["product.cost_sek"].type == "number"
    assert fields["patient.age"].type == "integer"
    nested = {k for k in Case.model_fields if k in ("patient", "care", "product")}
    assert {name.split(".")[0] for name in fields if "." in name} == nested


def test_a_home_region_without_a_country_means_living_in_sweden() -> None:
    case = parse_case(BASE + ', "patient": {"home_region": "13"}}')
    assert case.patient.country == "SE"
    abroad = parse_case(BASE + ', "patient": {"country": "DK"}}')
    assert (abroad.patient.country, abroad.patient.home_region) == ("DK", None)
    assert parse_case(BASE + "}").patient.country is None
