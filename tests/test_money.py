"""Money everywhere it comes in: ``parse_sek`` itself, the case form, the API, and the rule that a
cost of exactly 10 000 kr and one of 10 000,01 kr still get the answers they always got.

The batch's bad rows are in test_cli.py (they exit 2); its rounding is held to ``parse_sek`` here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from webapp import TestApp as Desk

from vembetalar.model.errors import BadCase, parse_case
from vembetalar.model.money import (
    MAX_QUANTITY,
    MAX_SEK,
    QUANTITY,
    SEK,
    BadAmount,
    parse_sek,
    round_to_places,
    to_decimal,
)
from vembetalar.rules.batch import decide_frame
from vembetalar.rules.batch_io import prepare
from vembetalar.rules.engine import Engine
from vembetalar.web.forms import amount_from_form, case_from_form

API = "/api/v1"

# -- parse_sek --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "amount"),
    [
        # As the issue lists them (issue 11, item 1): how Swedes type amounts.
        ("12000", "12000.00"),
        ("12 000", "12000.00"),
        ("12\u00a0000", "12000.00"),  # no-break space, as a spreadsheet copies it
        ("12.000", "12000.00"),  # a dot between groups of exactly three digits: thousands
        ("12 000,50", "12000.50"),
        ("12000,5", "12000.50"),
        ("12000,50", "12000.50"),
        ("12\u00a0000,50", "12000.50"),
        ("1.234.567,50", "1234567.50"),
        ("1 234 567", "1234567.00"),
        ("1\u202f234\u202f567,5", "1234567.50"),  # narrow no-break space
        ("  12,5 ", "12.50"),
        ("0", "0.00"),
        ("9 999 999 999,99", "9999999999.99"),
        (12000, "12000.00"),
        (12000.5, "12000.50"),
        (Decimal("12.3"), "12.30"),
        (0.5700000000000001, "0.57"),  # binary noise from a client that computed it
        (12.345, "12.35"),  # a float with more decimals is rounded, half up as it reads
        (1.005, "1.01"),  # …although in binary it is 1.00499999…
    ],
)
def test_parse_sek_accepts(given: Any, amount: str) -> None:
    parsed = parse_sek(given)
    assert type(parsed) is Decimal
    assert parsed == Decimal(amount) and parsed.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        # As the issue lists them: refused, with the Swedish form shown.
        ("12.5", "har punkt som decimaltecken: skriv 12,5 kr"),
        ("12000.50", "har punkt som decimaltecken: skriv 12 000,50 kr"),
        ("12 000.50", "har punkt som decimaltecken: skriv 12 000,50 kr"),
        ("12,000", "är tvetydigt: skriv 12 000 kr för tusental eller 12,00 kr"),  # never guessed at
        ("12,345", "är tvetydigt: skriv 12 345 kr för tusental (högst två decimaler efter kommat)"),
        ("12,3456", "får ha högst två decimaler (skriv t.ex. 12 000,50 kr)"),
        ("12.34567", "har punkt som decimaltecken: skriv decimaler efter komma, högst två decimaler"),
        ("12.00.000", "är inte ett tal"),
        ("1 234.567", "har punkt som decimaltecken"),  # spaces and dots mixed: never guessed at
        ("12 000,", "är inte ett tal"),
        ("-5", "får inte vara negativt"),
        ("\u22125", "får inte vara negativt"),
        (-0.01, "får inte vara negativt"),
        (-5, "får inte vara negativt"),
        ("Infinity", "är inte ett tal (skriv t.ex. 12 000,50 kr)"),
        ("NaN", "är inte ett tal"),
        ("1e30", "är inte ett tal"),
        ("12 00", "är inte ett tal"),
        ("12 000 kr", "är inte ett tal"),
        ("", "är inte ett tal"),
        ("١٢", "är inte ett tal"),  # digits of another script
        (float("inf"), "ska vara ett ändligt tal"),
        (float("nan"), "ska vara ett ändligt tal"),
        (Decimal("NaN"), "ska vara ett ändligt tal"),
        (1e999, "ska vara ett ändligt tal"),
        (1e30, "är för stort (högst 9 999 999 999,99 kr)"),
        pytest.param(10**400, "är för stort (högst 9 999 999 999,99 kr)", id="10**400"),
        pytest.param(10**5000, "är för stort", id="10**5000"),  # beyond int→str's 4 300-digit limit
        pytest.param("1" + "0" * 5000, "är för stort", id="text-10**5000"),
        (10_000_000_000, "är för stort"),
        (9999999999.991, "är för stort"),  # checked before rounding, as the schema's maximum
        (True, "ska vara ett tal"),
        (None, "ska vara ett tal"),
        ([12], "ska vara ett tal"),
    ],
)
def test_parse_sek_refuses(given: Any, reason: str) -> None:
    with pytest.raises(BadAmount) as caught:
        parse_sek(given)
    assert str(caught.value).startswith(reason)
    assert not isinstance(caught.value, OverflowError)


def test_quantities_have_their_own_bound() -> None:
    assert to_decimal(MAX_QUANTITY, QUANTITY, text=None) == MAX_QUANTITY
    assert to_decimal("2.125", QUANTITY, text="plain") == Decimal("2.125")
    with pytest.raises(BadAmount, match="högst 999 999 999,999"):
        to_decimal(10**9, QUANTITY, text=None)
    with pytest.raises(BadAmount, match="får ha högst tre decimaler"):
        to_decimal("2.1255", QUANTITY, text="plain")


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=float(MAX_SEK)) | st.decimals(0, 10**10, places=3).map(float))
@example(9999.995)
@example(9999.994999999999)
@example(0.125)
@example(9999999999.985)
def test_the_batch_rounds_floats_as_parse_sek_does(value: float) -> None:
    """The batch rounds whole columns with NumPy; it must land on the very same öre."""
    for bounds in (SEK, QUANTITY):
        if value <= bounds.maximum:
            batch = round_to_places(np.array([value, math.nextafter(value, 0)]), bounds.places)
            single = [float(to_decimal(v, bounds, text=None)) for v in (value, math.nextafter(value, 0))]
            assert batch.tolist() == single


# -- the limit at 10 000 kr (Region Skåne) -----------------------------------------------------------

SKANE = "skane_hjalpmedel_utomlans"
SKANE_ROLLATOR = {
    "date": "2025-09-15",
    "kind": "assistive_device",
    "patient": {"home_region": "13"},
    "care": {"region": "12"},
    "product": {"area": "mobility", "advanced_adaptation": False},
}


def _with_cost(cost: Any) -> dict[str, Any]:
    return {**SKANE_ROLLATOR, "product": {**SKANE_ROLLATOR["product"], "cost_sek": cost}}


def test_the_10000_kr_limit_is_where_it_was(engine: Engine) -> None:
    at = engine.decide(parse_case(_with_cost(10000)))
    over = engine.decide(parse_case(_with_cost(10000.01)))
    under = engine.decide(parse_case(_with_cost(9999.99)))
    # From 10 000 kr (the agreement's cautious reading): contact the home region first, and the
    # decider is left to the agreement between the regions; below it, Skåne prescribes directly.
    assert (at.rule_id, at.prior_contact_required, at.decider) == (
        f"{SKANE}/annat-lan-over-grans",
        True,
        None,
    )
    assert (under.rule_id, under.prior_contact_required, under.decider) == (
        f"{SKANE}/annat-lan-under-grans",
        False,
        "region:12",
    )
    assert over.model_dump() == at.model_dump()
    # Half an öre from the limit: as the amount is rounded, so is the answer.
    assert engine.decide(parse_case(_with_cost(9999.995))).rule_id == at.rule_id
    assert engine.decide(parse_case(_with_cost(9999.994999999999))).rule_id == under.rule_id
    # The same from the form, and from a batch.
    form = {"kind": "assistive_device", **{k: str(v) for k, v in _flat(SKANE_ROLLATOR).items()}}
    form["product.advanced_adaptation"] = "false"
    for typed, expected in [("10 000", at), ("10 000,01", over), ("9 999,99", under)]:
        case = case_from_form({**form, "product.cost_sek": typed}, dt.date(2025, 9, 15))
        assert engine.decide(case).rule_id == expected.rule_id, typed
    costs = [10000.0, 10000.01, 9999.99, 9999.995, 9999.994999999999]
    frame = pl.DataFrame([{**_flat(SKANE_ROLLATOR), "product.cost_sek": c} for c in costs])
    batch = decide_frame(engine, prepare(frame))
    assert batch.get_column("rule_id").to_list() == [
        at.rule_id,
        over.rule_id,
        under.rule_id,
        at.rule_id,
        under.rule_id,
    ]


def _flat(case: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in case.items():
        if isinstance(value, dict):
            out |= {f"{key}.{sub}": v for sub, v in value.items()}
        else:
            out[key] = value
    return out


def test_a_pack_threshold_on_an_amount_is_exact(engine: Engine) -> None:
    """Thresholds on amounts are Decimals: 0.10 kr is not below a limit of 0.1 written in YAML
    (as a float 0.1 is 0.1000000000000000055…), and a limit in fractions of öre is refused."""
    from vembetalar.model.case import case_fields
    from vembetalar.rules.conditions import ConditionError, normalise_value

    spec = case_fields()["product.cost_sek"]
    assert normalise_value(spec, 0.1) == Decimal("0.1")
    assert normalise_value(spec, 10000) == Decimal("10000")
    with pytest.raises(ConditionError, match="högst två decimaler"):
        normalise_value(spec, 10000.005)
    with pytest.raises(ConditionError, match="ändligt"):
        normalise_value(spec, math.inf)


# -- the case form ----------------------------------------------------------------------------------


def _form(cost: str) -> dict[str, str]:
    return {"kind": "assistive_device", "date": "2025-09-15", "product.cost_sek": cost}


@pytest.mark.parametrize(
    ("typed", "amount"),
    [("12 000,50", "12000.50"), ("12,5", "12.50"), ("12000", "12000.00"), ("12\u00a0000", "12000.00")],
)
def test_form_reads_swedish_amounts(typed: str, amount: str) -> None:
    cost = case_from_form(_form(typed), dt.date(2025, 9, 15)).product.cost_sek
    assert isinstance(cost, Decimal) and cost == Decimal(amount)


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("Infinity", "är inte ett tal"),
        ("1e30", "är inte ett tal"),
        ("nan", "är inte ett tal"),
        ("-5", "får inte vara negativt"),
        ("12,345", "är tvetydigt"),
        ("12.5", "har punkt som decimaltecken: skriv 12,5 kr"),
        ("10 000 000 000", "är för stort (högst 9 999 999 999,99 kr)"),
    ],
)
def test_form_refuses_what_is_not_an_amount(typed: str, reason: str) -> None:
    with pytest.raises(BadCase) as caught:
        case_from_form(_form(typed), dt.date(2025, 9, 15))
    assert str(caught.value).startswith(f"product.cost_sek: {json.dumps(typed)} {reason}")


def test_a_commitment_ceiling_reads_the_same_way() -> None:
    """For the commitment form on the case page (web/pages.py), which still reads Decimal(text)."""
    assert amount_from_form("amount_ceiling_sek", "8 000") == Decimal("8000.00")
    for typed in ("Infinity", "NaN", "-5", "1e30"):
        with pytest.raises(BadCase, match=f'^amount_ceiling_sek: "{typed}" '):
            amount_from_form("amount_ceiling_sek", typed)


# -- the API ------------------------------------------------------------------------------------------


def _post_raw(desk: Desk, path: str, body: str, user: str = "lakare.vgr") -> Any:
    """Raw JSON text, so that 1e999, NaN and 400-digit integers reach the server as written."""
    return desk.api(user).post(f"{API}{path}", content=body, headers={"content-type": "application/json"})


def _detail(response: Any) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    return detail


HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("cost", "reason"),
    [
        (HUGE, "1e+400 är för stort"),
        ("1e999", '"inf" ska vara ett ändligt tal'),
        ("NaN", '"nan" ska vara ett ändligt tal'),
        ("-Infinity", '"-inf" ska vara ett ändligt tal'),
        ("1e30", "1e+30 är för stort"),
        ("10000000000", "10000000000 är för stort"),
        ("-0.01", "-0.01 får inte vara negativt"),
        ('"12000"', '"12000" ska vara ett tal'),
    ],
)
def test_decision_refuses_bad_costs_naming_the_field(shared_desk: Desk, cost: str, reason: str) -> None:
    body = json.dumps(_with_cost("COST")).replace('"COST"', cost)
    response = _post_raw(shared_desk, "/decisions", body, "hjalpmedel.skane")
    assert response.status_code == 422, response.text
    assert _detail(response).startswith(f"product.cost_sek: {reason}")


def test_decision_at_the_limit_is_answered(shared_desk: Desk) -> None:
    client = shared_desk.api("hjalpmedel.skane")
    for cost in (9999999999.99, 10000, 0):
        response = client.post(f"{API}/decisions", json=_with_cost(cost))
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def case_id(shared_desk: Desk) -> str:
    case = {
        "date": "2025-09-15",
        "kind": "drug_exception",
        "patient": {"home_region": "13"},
        "care": {"region": "14", "referral": False},
        "product": {"nt_council": "none"},
    }
    response = shared_desk.api("lakare.vgr").post(f"{API}/cases", json={"case": case})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _commitment(case_id: str, amount: str) -> str:
    return (
        '{"case_id": '
        + json.dumps(case_id)
        + ', "issuer": "region:13", "amount_ceiling_sek": '
        + amount
        + ","
        ' "valid_from": "2025-10-01", "valid_to": "2025-12-31", "document_reference": "RV-1"}'
    )


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (HUGE, "är för stort"),
        ('"Infinity"', "ska vara ett tal eller en text som 1234.5"),
        ("1e999", "ska vara ett ändligt tal"),
        ("NaN", "ska vara ett ändligt tal"),
        ("-5", "får inte vara negativt"),
        ('"-5"', "får inte vara negativt"),
        ("1e30", "är för stort"),
        ('"12.345"', "får ha högst två decimaler"),
        ('"12,50"', "ska vara ett tal eller en text som 1234.5"),
        ("true", "ska vara ett tal"),
    ],
)
def test_commitment_refuses_bad_amounts(shared_desk: Desk, case_id: str, amount: str, reason: str) -> None:
    response = _post_raw(shared_desk, "/payment-commitments", _commitment(case_id, amount))
    assert response.status_code == 422, response.text
    detail = _detail(response)
    assert detail.startswith("amount_ceiling_sek: ") and reason in detail, detail


@pytest.mark.parametrize(
    ("field", "value"), [("amount_sek", HUGE), ("quantity", HUGE), ("quantity", "1e999")]
)
def test_event_refuses_huge_amounts_and_quantities(
    shared_desk: Desk, case_id: str, field: str, value: str
) -> None:
    body = '{"occurred_on": "2025-09-15", "' + field + '": ' + value + "}"
    response = _post_raw(shared_desk, f"/cases/{case_id}/events", body)
    assert response.status_code == 422, response.text
    assert _detail(response).startswith(f"{field}: ")
