"""The case page's workflow forms as a browser sends them: one transaction per action, a double
submit stores once, wrong input is named and keeps what was typed, and only the treating party
is offered (and allowed) the steps."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from test_api import (
    API,
    HALLAND_AT_VGR,
    HEARING_AID_IN_SKANE,
    LINE,
    create,
    events_of,
    logged_in,
    take,
)
from webapp import TestApp as Desk

from vembetalar.web.messages import error_id, label

HEARING_AID = {**HEARING_AID_IN_SKANE, "date": "2025-09-01"}


def assert_error_beside(html: str, named: str) -> None:
    """The reason sits beside its field (the field points at it), and the message at the top names
    the field by its Swedish label, never by its internal name."""
    beside = error_id(named)
    assert f'id="{beside}"' in html
    assert re.search(rf'aria-describedby="[^"]*\b{beside}\b[^"]*" aria-invalid="true"', html), html
    (alert,) = re.findall(r'<p class="error" role="alert">(.*?)</p>', html, re.DOTALL)
    assert alert.startswith(f"{label(named)}: ") and f"{named}:" not in alert, alert


def line_form(token: str, **overrides: str) -> dict[str, str]:
    return {
        "csrf": token,
        "step": "dispensed",
        "occurred_on": LINE["occurred_on"],
        "quantity": "2",
        "unit_price_sek": "920,25",
        "varunummer": "123456",
        **overrides,
    }


def test_sending_the_same_dispensing_form_twice_stores_one_line(desk: Desk) -> None:
    case_id = create(desk.api("lakare.vgr"), HALLAND_AT_VGR)["id"]
    client, token = logged_in(desk, "lakare.vgr")
    page = client.get(f"/cases/{case_id}")
    assert 'name="idempotency_key" value="form:' in page.text
    form = line_form(token, idempotency_key="form:0b7d")
    for _ in range(2):  # a double click, or a reload that re-posts
        response = client.post(f"/cases/{case_id}/steps", data=form, follow_redirects=False)
        assert response.status_code == 303, response.text
    (stored,) = events_of(desk.api("lakare.vgr"), case_id)
    assert Decimal(stored["amount_sek"]) == Decimal("1840.50")
    # A new form is a new line.
    response = client.post(f"/cases/{case_id}/steps", data=line_form(token, idempotency_key="form:1c8e"))
    assert response.status_code == 200
    assert len(events_of(desk.api("lakare.vgr"), case_id)) == 2


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"unit_price_sek": "Infinity"}, "unit_price_sek"),
        ({"unit_price_sek": "1e30"}, "unit_price_sek"),
        ({"quantity": "-2"}, "quantity"),
        ({"amount_sek": "99999999999"}, "amount_sek"),
        ({"amount_sek": "1000"}, "amount_sek"),  # not 2 × 920,25
        ({"occurred_on": "2999-01-01"}, "occurred_on"),
        ({"occurred_on": "1900-01-01"}, "occurred_on"),
        ({"varunummer": "12"}, "varunummer"),
    ],
)
def test_a_wrong_line_is_named_and_keeps_what_was_typed(
    shared_desk: Desk, change: dict[str, str], named: str
) -> None:
    case_id = create(shared_desk.api("lakare.vgr"), HALLAND_AT_VGR)["id"]
    client, token = logged_in(shared_desk, "lakare.vgr")
    response = client.post(f"/cases/{case_id}/steps", data=line_form(token, **change))
    assert response.status_code == 422
    assert_error_beside(response.text, named)
    for value in change.values():
        assert f'value="{value}"' in response.text
    assert events_of(shared_desk.api("lakare.vgr"), case_id) == []


def _commitment_form(token: str, **overrides: str) -> dict[str, str]:
    return {
        "csrf": token,
        "amount_ceiling_sek": "8 000",
        "valid_from": "2025-09-01",
        "valid_to": "2025-12-31",
        "document_reference": "RV-2025-1234",
        **overrides,
    }


def _commitments(desk: Desk, case_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        desk.api("hjalpmedel.skane").get(f"{API}/payment-commitments", params={"case_id": case_id}).json()
    )
    return rows


@pytest.mark.parametrize("amount", ["Infinity", "NaN", "-5", "1e30", "99999999999", "12,345", "12.5"])
def test_the_commitment_form_refuses_absurd_amounts_and_stores_nothing(desk: Desk, amount: str) -> None:
    skane = desk.api("hjalpmedel.skane")
    case_id = create(skane, HEARING_AID)["id"]
    take(skane, case_id, "contacted")
    client, token = logged_in(desk, "hjalpmedel.skane")
    response = client.post(
        f"/cases/{case_id}/commitments", data=_commitment_form(token, amount_ceiling_sek=amount)
    )
    assert response.status_code == 422, response.text
    assert_error_beside(response.text, "amount_ceiling_sek")
    assert f'value="{amount}"' in response.text
    assert _commitments(desk, case_id) == []


def test_six_submits_of_the_commitment_form_store_one_commitment(desk: Desk) -> None:
    skane = desk.api("hjalpmedel.skane")
    case_id = create(skane, HEARING_AID)["id"]
    client, token = logged_in(desk, "hjalpmedel.skane")
    # Before the contact the step is refused, and so nothing is stored.
    response = client.post(f"/cases/{case_id}/commitments", data=_commitment_form(token))
    assert response.status_code == 409
    assert _commitments(desk, case_id) == []
    take(skane, case_id, "contacted")
    statuses = [
        client.post(
            f"/cases/{case_id}/commitments", data=_commitment_form(token), follow_redirects=False
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [303, 409, 409, 409, 409, 409]
    assert [Decimal(c["amount_ceiling_sek"]) for c in _commitments(desk, case_id)] == [Decimal("8000")]


def test_the_payer_is_offered_no_steps_and_cannot_post_them(desk: Desk) -> None:
    case_id = create(desk.api("lakare.vgr"), HALLAND_AT_VGR)["id"]
    client, token = logged_in(desk, "faktura.halland")
    page = client.get(f"/cases/{case_id}")
    assert page.status_code == 200
    assert "Registrera:" not in page.text and "Avsluta" not in page.text
    response = client.post(f"/cases/{case_id}/steps", data=line_form(token))
    assert response.status_code == 403
    assert events_of(desk.api("lakare.vgr"), case_id) == []


def test_closing_needs_a_reason_and_ends_the_case(desk: Desk) -> None:
    case_id = create(desk.api("lakare.vgr"), HALLAND_AT_VGR)["id"]
    client, token = logged_in(desk, "lakare.vgr")
    refused = client.post(f"/cases/{case_id}/steps", data={"csrf": token, "step": "closed", "note": " "})
    assert refused.status_code == 422 and "Anteckning: ange skälet" in refused.text
    done = client.post(
        f"/cases/{case_id}/steps",
        data={"csrf": token, "step": "closed", "note": "behandlingen avslutad"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    stored = desk.api("lakare.vgr").get(f"{API}/cases/{case_id}").json()
    assert stored["state"] == "closed" and stored["offers"] == []
    page = client.get(f"/cases/{case_id}")
    assert "Registrera:" not in page.text
    again = client.post(f"/cases/{case_id}/steps", data=line_form(token))
    assert again.status_code == 409


def test_a_completion_cannot_change_a_known_fact(desk: Desk) -> None:
    """Known facts are fixed in the form and the store refuses a changed one through the API."""
    vgr = desk.api("lakare.vgr")
    unknown_nt = {**HALLAND_AT_VGR, "product": {"area": "drug", "cost_sek": 18400}}
    case_id = create(vgr, unknown_nt)["id"]
    changed = {
        **unknown_nt,
        "care": {"region": "14", "referral": True},
        "product": {**unknown_nt["product"], "nt_council": "use"},
    }
    response = vgr.post(f"{API}/cases/{case_id}/completion", json={"case": changed})
    assert response.status_code == 422 and response.json()["detail"].startswith("care.referral:")
    fine = {**unknown_nt, "product": {**unknown_nt["product"], "nt_council": "use"}}
    done = vgr.post(f"{API}/cases/{case_id}/completion", json={"case": fine, "reason": "svar från NT"})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "decided"
    # Nothing left to complete.
    again = vgr.post(f"{API}/cases/{case_id}/completion", json={"case": fine})
    assert again.status_code == 409
    # The payer may read the history but not complete the invoicer's case.
    assert (
        desk.api("faktura.halland").post(f"{API}/cases/{case_id}/completion", json={"case": fine}).status_code
        == 403
    )
    history = desk.api("faktura.halland").get(f"{API}/cases/{case_id}/decisions").json()
    assert [h["decision"]["missing"] for h in history] == [["product.nt_council"], []]


def test_a_case_with_events_is_closed_not_withdrawn(desk: Desk) -> None:
    vgr = desk.api("lakare.vgr")
    case_id = create(vgr, HALLAND_AT_VGR)["id"]
    assert "withdrawn" in vgr.get(f"{API}/cases/{case_id}").json()["offers"]
    take(vgr, case_id, "dispensed")
    offered = vgr.get(f"{API}/cases/{case_id}").json()["offers"]
    assert "withdrawn" not in offered and "closed" in offered
    refused = vgr.post(f"{API}/cases/{case_id}/steps", json={"step": "withdrawn", "note": "fel"})
    assert refused.status_code == 409 and "makulera" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("product", "state", "first"),
    [
        ({"area": "drug", "cost_sek": 18400, "nt_council": "none"}, "decided", "Beslut fattat"),
        ({"area": "drug", "cost_sek": 18400}, "needs_facts", "Prövat – uppgifter saknas"),
    ],
)
def test_the_history_says_beslut_fattat_only_for_a_decision(
    shared_desk: Desk, product: dict[str, Any], state: str, first: str
) -> None:
    case = create(shared_desk.api("lakare.vgr"), {**HALLAND_AT_VGR, "product": product})
    assert case["state"] == state
    assert case["steps"][0]["label"] == first
    client, _ = logged_in(shared_desk, "lakare.vgr")
    assert first in client.get(f"/cases/{case['id']}").text
