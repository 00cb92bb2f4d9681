"""The Case contract: what is accepted, and the one-line message for what is not."""

from __future__ import annotations

import json
from decimal import Decimal

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
        (', "product": {"cost_sek": -1}', "product.cost_sek: -1 får inte vara negativt"),
        (', "product": {"cost_sek": -0.01}', "product.cost_sek: -0.01 får inte vara negativt"),
        (', "product": {"cost_sek": 1e999}', 'product.cost_sek: "inf" ska vara ett ändligt tal'),
        (', "product": {"cost_sek": -1e999}', 'product.cost_sek: "-inf" ska vara ett ändligt tal'),
        (', "product": {"cost_sek": NaN}', 'product.cost_sek: "nan" ska vara ett ändligt tal'),
        (
            ', "product": {"cost_sek": 1e30}',
            "product.cost_sek: 1e+30 är för stort (högst 9 999 999 999,99 kr)",
        ),
        (
            ', "product": {"cost_sek": 10000000000}',
            "product.cost_sek: 10000000000 är för stort (högst 9 999 999 999,99 kr)",
        ),
        (
            ', "product": {"cost_sek": 1' + "0" * 400 + "}",
            "product.cost_sek: 1e+400 är för stort (högst 9 999 999 999,99 kr)",
        ),
        (', "product": {"cost_sek": "12000"}', 'product.cost_sek: "12000" ska vara ett tal'),
        (', "product": {"cost_sek": true}', "product.cost_sek: true ska vara ett tal"),
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


def test_cost_is_a_decimal_in_ore() -> None:
    def cost(text: str) -> object:
        return parse_case(BASE + ', "product": {"cost_sek": ' + text + "}}").product.cost_sek

    assert cost("9999999999.99") == Decimal("9999999999.99")
    assert cost("12000") == Decimal("12000.00") and isinstance(cost("12000"), Decimal)
    # A JSON number is a float: binary noise and extra decimals are rounded to öre, half up as
    # the number reads (only text — forms, the API's string form — is held to two decimals).
    assert cost("0.5700000000000001") == Decimal("0.57")
    assert cost("12.345") == Decimal("12.35")
    assert cost("9999.995") == Decimal("10000.00")
    assert cost("9999999999.985") == Decimal("9999999999.99")
    assert cost("-0.0") == Decimal("0.00") and not cost("-0.0").is_signed()  # type: ignore[attr-defined]


def test_cost_refusals_from_python_never_overflow() -> None:
    """Callers in Python can pass what JSON cannot: ints beyond the 4 300-digit str() limit."""
    for value, reason in [
        (10**5000, "är för stort"),
        (-(10**5000), "får inte vara negativt"),
        (Decimal("Infinity"), "ska vara ett ändligt tal"),
        (Decimal("sNaN"), "ska vara ett ändligt tal"),
        (Decimal("12.345"), "får ha högst två decimaler"),  # a Decimal is exact, as text is
        (Decimal("1E+400"), "är för stort"),
    ]:
        with pytest.raises(BadCase, match=f"^product.cost_sek: .* {reason}"):
            parse_case({"date": "2024-05-01", "kind": "drug_exception", "product": {"cost_sek": value}})


def test_cost_is_a_json_number_in_the_output() -> None:
    """Stored cases (case_json) and API answers keep numbers: whole kronor as integers."""
    whole = parse_case(BASE + ', "product": {"cost_sek": 12000}}').model_dump(mode="json")
    assert whole["product"]["cost_sek"] == 12000 and isinstance(whole["product"]["cost_sek"], int)
    ore = parse_case(BASE + ', "product": {"cost_sek": 12000.5}}')
    assert json.loads(ore.model_dump_json())["product"]["cost_sek"] == 12000.5
    schema = Case.model_json_schema()["$defs"]["Product"]["properties"]["cost_sek"]["anyOf"][0]
    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("number", 0, 9999999999.99)


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
