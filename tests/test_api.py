"""The JSON API under /api/v1 as its users meet it, on SQLite and on a real PostgreSQL.

Every endpoint and permission: who may log in, who may see which case (and its personnummer), who
may take which step, what the steps demand first, what a step bills, and what the audit log records.
Tests of how bad requests are refused share one SQLite app per module (``shared_desk``); tests that
do not depend on the database run on a fresh SQLite app (``on_sqlite``); the rest run on both.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import logging
import re
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from webapp import PASSWORD, TODAY
from webapp import TestApp as Desk

from vembetalar.store.models import AuditEntry, CaseRecord, User

on_sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

API = "/api/v1"

# -- cases, as a prescriber would describe them ---------------------------------------------------

#: A Halland patient treated at VGR without referral: Region Halland pays, VGR invoices (ZZXXX098).
HALLAND_AT_VGR: dict[str, Any] = {
    "date": "2025-09-15",
    "kind": "drug_exception",
    "patient": {"home_region": "13", "home_municipality": "1380", "country": "SE", "age": 54},
    "care": {"region": "14", "referral": False},
    "product": {"area": "drug", "cost_sek": 18400, "nt_council": "none"},
}
#: The same, but NT-rådet advised against the drug: Halland must be contacted first.
NT_ADVISED_AGAINST: dict[str, Any] = {
    **HALLAND_AT_VGR,
    "product": {"area": "drug", "cost_sek": 18400, "nt_council": "do_not_use"},
}
#: A Värmland patient's hearing aid in Skåne: contact Värmland and get a payment commitment first.
HEARING_AID_IN_SKANE: dict[str, Any] = {
    "date": "2025-10-02",
    "kind": "assistive_device",
    "patient": {"home_region": "17", "home_municipality": "1780", "country": "SE", "age": 71},
    "care": {"region": "12"},
    "product": {"area": "hearing", "cost_sek": 7200, "advanced_adaptation": True},
}
#: Medtech for a resident of special housing in Karlstad: the municipality decides, Värmland pays.
KARLSTAD_SPECIAL_HOUSING: dict[str, Any] = {
    "date": "2023-11-20",
    "kind": "medtech_product",
    "patient": {
        "home_region": "17",
        "home_municipality": "1780",
        "country": "SE",
        "housing": "special_housing",
        "age": 88,
    },
    "care": {"self_care": False, "discharge": False},
    "product": {"area": "medtech", "annex": "not_listed", "replaces_listed": False},
}
#: Värmland nutrition after the agreement ended: no agreement.
NO_AGREEMENT: dict[str, Any] = {
    "date": "2024-03-01",
    "kind": "nutrition_product",
    "patient": {
        "home_region": "17",
        "home_municipality": "1780",
        "housing": "ordinary",
        "home_care_weeks": 4,
    },
    "care": {"self_care": False, "discharge": False},
    "product": {"area": "nutrition", "annex": "kommun"},
}
#: A device in Skåne for a patient whose home region and country are not known: who pays is open.
INCOMPLETE: dict[str, Any] = {
    "date": "2025-07-01",
    "kind": "assistive_device",
    "patient": {"age": 40},
    "care": {"region": "12"},
    "product": {"area": "mobility", "cost_sek": 3000, "advanced_adaptation": False},
}

PNR = "19811228-9874"  # a valid test personnummer
PNR_FORMS = ("19811228-9874", "198112289874", "811228-9874", "8112289874")
MASKED = "19811228-****"

SEES_PNR = ("lakare.vgr", "faktura.halland")  # prescriber, invoice clerk (the payer)
MASKED_FOR = ("lakemedel.vgr", "admin.vgr", "admin.halland")  # pharma unit, admins


# -- helpers --------------------------------------------------------------------------------------


def create(client: TestClient, case: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = client.post(f"{API}/cases", json={"case": case, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


#: One dispensing or delivery line, as the desk's forms send it.
LINE = {
    "occurred_on": TODAY.isoformat(),
    "quantity": "1",
    "unit_price_sek": "1840.50",
    "varunummer": "123456",
}


def step(client: TestClient, case_id: str, name: str, **body: Any) -> httpx.Response:
    """Take a step; a dispensing or delivery carries LINE unless the test gives its own."""
    if name in ("dispensed", "delivered"):
        body.setdefault("line", LINE)
    if name in ("closed", "withdrawn"):
        body.setdefault("note", "klart")
    return client.post(f"{API}/cases/{case_id}/steps", json={"step": name, **body})


def take(client: TestClient, case_id: str, name: str, **body: Any) -> dict[str, Any]:
    response = step(client, case_id, name, **body)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def events_of(client: TestClient, case_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{API}/events", params={"case_id": case_id})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def listed_ids(client: TestClient, **params: Any) -> list[str]:
    response = client.get(f"{API}/cases", params=params)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()]


def case_count(client: TestClient) -> int:
    return len(listed_ids(client, limit=500))


def assert_error(response: httpx.Response, status: int | tuple[int, ...], starts: str = "") -> str:
    """A 4xx answer in JSON with a single-line ``detail`` (naming the field when ``starts`` is given)."""
    expected = status if isinstance(status, tuple) else (status,)
    assert response.status_code in expected, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    assert "\n" not in detail
    assert detail.startswith(starts), detail
    return detail


def commitment(case_id: str, issuer: str, **overrides: Any) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "issuer": issuer,
        "amount_ceiling_sek": "8000",
        "valid_from": "2025-09-01",
        "valid_to": "2025-12-31",
        "document_reference": "RV-2025-1234",
        **overrides,
    }


def post_line(client: TestClient, case_id: str, key: str | None = None, **overrides: Any) -> httpx.Response:
    """A dispensing/delivery line through ``POST /cases/{id}/events`` (``key``: idempotency key)."""
    params = {"idempotency_key": key} if key is not None else {}
    return client.post(f"{API}/cases/{case_id}/events", params=params, json={**LINE, **overrides})


def login(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "the login page carries a CSRF token"
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": match.group(1)},
        follow_redirects=False,
    )


def page_csrf(client: TestClient) -> str:
    """The session's CSRF token as a logged-in page hands it to htmx."""
    page = client.get("/cases")
    assert page.status_code == 200
    match = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
    assert match
    return match.group(1)


def api_routes(desk: Desk) -> list[tuple[str, str]]:
    """Every (method, path) the API documents, with a made-up case id in the path."""
    schema = desk.client().get(f"{API}/openapi.json").json()
    routes = []
    for path, operations in schema["paths"].items():
        concrete = path.replace("{case_id}", str(uuid.uuid4()))
        routes += [(method.upper(), concrete) for method in operations]
    return routes


# -- authentication -------------------------------------------------------------------------------


def test_every_api_route_refuses_anonymous_and_bad_tokens(desk: Desk) -> None:
    """Every operation in the OpenAPI description (which, with its docs page, is public by design)."""
    routes = api_routes(desk)
    paths = {path for _, path in routes}
    for expected in ("/decisions", "/me", "/cases", "/payment-commitments", "/events", "/audit", "/packs"):
        assert f"{API}{expected}" in paths
    assert any(p.startswith(f"{API}/cases/") and p.endswith("/steps") for p in paths)
    assert f"{API}/audit/export.csv" in paths

    anonymous = desk.client()
    bad = {
        "unknown token": {"Authorization": "Bearer vbt_not-a-token"},
        "truncated token": {"Authorization": f"Bearer {desk.tokens['admin.vgr'][:-2]}"},
        "other scheme": {"Authorization": f"Token {desk.tokens['admin.vgr']}"},
    }
    for method, path in routes:
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = anonymous.request(method, path, json=body)
        assert_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer", (method, path)
        for label, headers in bad.items():
            response = anonymous.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (label, method, path, response.text)
            assert response.json()["detail"]


@on_sqlite
def test_token_of_a_deactivated_user_is_refused(desk: Desk) -> None:
    client = desk.api("lakare.vgr")
    assert client.get(f"{API}/me").status_code == 200
    with desk.app.state.sessions() as db:
        db.scalars(select(User).where(User.username == "lakare.vgr")).one().active = False
        db.commit()
    assert_error(client.get(f"{API}/me"), 401)


@on_sqlite
def test_me_and_packs(desk: Desk) -> None:
    me = desk.api("mas.karlstad").get(f"{API}/me")
    assert me.status_code == 200
    assert me.json() == {
        "username": "mas.karlstad",
        "full_name": "mas.karlstad",
        "role": "mas",
        "organisation_id": "kommun:1780",
        "organisation": "Karlstad (kommun 1780)",
    }
    assert me.headers["cache-control"] == "no-store"
    assert me.headers["x-content-type-options"] == "nosniff"

    packs = desk.api("lakemedel.vgr").get(f"{API}/packs")
    assert packs.status_code == 200
    by_id = {p["id"]: p for p in packs.json()}
    assert set(by_id) >= {
        "skane_hjalpmedel_utomlans",
        "varmland_kommun_medtech_2021",
        "vgr_halland_undantag_2023",
    }
    assert all(p["rules"] > 0 and p["title"] and p["source"] for p in by_id.values())


# -- decisions (stateless) ------------------------------------------------------------------------


def test_decision_for_halland_patient_at_vgr(shared_desk: Desk) -> None:
    client = shared_desk.api("lakare.vgr")
    stored_before = case_count(client)
    response = client.post(f"{API}/decisions", json=HALLAND_AT_VGR)
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["status"] == "decided"
    assert decision["payer"] == "region:13"
    assert decision["decider"] == "region:14"
    assert decision["invoicer"] == "region:14"
    assert decision["rule_id"].startswith("vgr_halland_undantag_2023/")
    assert decision["invoice"]["recipient"]["reference"] == "ZZXXX098"
    assert decision["citations"]
    assert case_count(client) == stored_before  # nothing is stored


def test_retired_listed_field_is_refused_naming_annex(shared_desk: Desk) -> None:
    case = {**KARLSTAD_SPECIAL_HOUSING, "product": {"area": "medtech", "listed": True}}
    response = shared_desk.api("mas.karlstad").post(f"{API}/decisions", json=case)
    assert_error(response, 422, "product.listed:")
    assert "product.annex" in response.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(lambda c: c["patient"].update(home_region="99"), "patient.home_region", id="region"),
        pytest.param(lambda c: c["patient"].update(shoe_size=42), "patient.shoe_size", id="unknown-field"),
        pytest.param(lambda c: c.update(urgency="high"), "urgency", id="unknown-top-field"),
        pytest.param(lambda c: c["product"].update(cost_sek=-1), "product.cost_sek", id="negative-cost"),
        pytest.param(lambda c: c["care"].update(referral="false"), "care.referral", id="bool-as-string"),
        pytest.param(lambda c: c["care"].update(referral=0), "care.referral", id="bool-as-number"),
        pytest.param(lambda c: c.update(date="2025-02-30"), "date", id="impossible-date"),
        pytest.param(lambda c: c.pop("kind"), "kind", id="missing-kind"),
        pytest.param(lambda c: c.update(kind="dental"), "kind", id="unknown-kind"),
        pytest.param(
            lambda c: c["patient"].update(home_municipality="1280"),
            "patient.home_municipality",
            id="municipality-outside-region",
        ),
        pytest.param(lambda c: c["product"].update(listed=True), "product.listed", id="retired-listed"),
    ],
)
def test_decision_refuses_bad_input_naming_the_field(shared_desk: Desk, change: Any, field: str) -> None:
    case = copy.deepcopy(HALLAND_AT_VGR)
    change(case)
    response = shared_desk.api("lakare.vgr").post(f"{API}/decisions", json=case)
    assert_error(response, 422, f"{field}:")


@pytest.mark.parametrize("path", ["/decisions", "/cases", "/payment-commitments"])
def test_malformed_json_is_400(shared_desk: Desk, path: str) -> None:
    response = shared_desk.api("lakare.vgr").post(
        f"{API}{path}", content=b'{"date": "2025-09-15", ', headers={"content-type": "application/json"}
    )
    assert_error(response, 400)


# -- cases ----------------------------------------------------------------------------------------


def test_create_and_get_case(desk: Desk) -> None:
    client = desk.api("lakare.vgr")
    created = create(
        client, HALLAND_AT_VGR, patient_id="198112289874", patient_name="Anna Berit Svensson", note="akut"
    )
    assert created["patient_id"] == PNR
    assert created["patient_initials"] == "ABS"
    assert created["organisation_id"] == "region:14"
    assert (created["status"], created["state"]) == ("decided", "decided")
    assert (created["decider"], created["payer"], created["invoicer"]) == (
        "region:14",
        "region:13",
        "region:14",
    )
    assert created["decision"]["invoice"]["recipient"]["reference"] == "ZZXXX098"
    assert created["case"]["patient"]["home_region"] == "13"
    assert [s["step"] for s in created["steps"]] == ["decided"]
    assert created["reference"].startswith("VB-")

    fetched = client.get(f"{API}/cases/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


@pytest.mark.parametrize(
    ("given", "stored"),
    [("701063-2391", "19701063-2391"), ("19701063-2391", "19701063-2391"), ("811228-9874", PNR)],
)
def test_personnummer_and_samordningsnummer_are_normalised(
    shared_desk: Desk, given: str, stored: str
) -> None:
    assert create(shared_desk.api("lakare.vgr"), HALLAND_AT_VGR, patient_id=given)["patient_id"] == stored


@pytest.mark.parametrize(
    "given", ["19811228-9875", "19811328-9874", "701063-2392", "hej", "12345", 198112289874]
)
def test_invalid_personnummer_is_422_naming_patient_id(shared_desk: Desk, given: object) -> None:
    client = shared_desk.api("lakare.vgr")
    stored_before = case_count(client)
    assert_error(
        client.post(f"{API}/cases", json={"case": HALLAND_AT_VGR, "patient_id": given}), 422, "patient_id:"
    )
    assert case_count(client) == stored_before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"case": {**HALLAND_AT_VGR, "care": {"region": "99"}}}, "case.care.region"),
        ({"case": HALLAND_AT_VGR, "patient": "x"}, "patient"),
        ({"case": HALLAND_AT_VGR, "note": "x" * 2001}, "note"),
        ({}, "case"),
    ],
)
def test_create_case_refuses_bad_input_naming_the_field(
    shared_desk: Desk, body: dict[str, Any], field: str
) -> None:
    assert_error(shared_desk.api("lakare.vgr").post(f"{API}/cases", json=body), 422, f"{field}:")


@on_sqlite
def test_a_case_stored_before_annex_keeps_its_decision_and_a_redecision_asks_for_annex(desk: Desk) -> None:
    client = desk.api("mas.karlstad")
    case_id = create(client, KARLSTAD_SPECIAL_HOUSING)["id"]
    old_case = {
        **KARLSTAD_SPECIAL_HOUSING,
        "product": {"area": "medtech", "listed": False, "replaces_listed": False},
    }
    with desk.app.state.sessions() as db:
        record = db.get(CaseRecord, case_id)
        assert record is not None
        old_decision = copy.deepcopy(record.decision_json)
        recipient = old_decision["invoice"]["recipient"]
        recipient["email"] = recipient.pop("enquiries_email")  # as stored before 2026-11
        record.case_json, record.decision_json = old_case, old_decision
        db.commit()
    shown = client.get(f"{API}/cases/{case_id}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["case"]["product"]["listed"] is False
    assert shown.json()["decision"]["payer"] == "region:17"
    assert (
        shown.json()["decision"]["invoice"]["recipient"]["enquiries_email"]
        == "ekonomiservice@regionvarmland.se"
    )
    again = client.post(f"{API}/decisions", json=old_case)
    assert_error(again, 422, "product.listed:")
    assert "product.annex" in again.text


def test_case_list_filters(desk: Desk) -> None:
    client = desk.api("lakare.vgr")
    decided = create(client, HALLAND_AT_VGR)["id"]
    none = create(client, NO_AGREEMENT)["id"]
    incomplete = create(client, INCOMPLETE)["id"]
    take(client, decided, "dispensed")

    assert set(listed_ids(client)) == {decided, none, incomplete}
    assert listed_ids(client, status="decided") == [decided]
    assert listed_ids(client, status="no_agreement") == [none]
    assert listed_ids(client, status="incomplete") == [incomplete]
    assert listed_ids(client, kind="nutrition_product") == [none]
    assert set(listed_ids(client, kind="assistive_device")) == {incomplete}
    assert listed_ids(client, payer="region:13") == [decided]
    assert listed_ids(client, state="dispensed") == [decided]
    assert listed_ids(client, state="no_agreement") == [none]
    assert listed_ids(client, state="needs_facts") == [incomplete]
    assert listed_ids(client, state="decided") == []
    assert listed_ids(client, status="decided", kind="medtech_product") == []
    first, second = listed_ids(client, limit=1), listed_ids(client, limit=1, offset=1)
    assert len(first) == len(second) == 1 and first != second
    assert listed_ids(client, offset=3) == []

    summary = client.get(f"{API}/cases", params={"status": "decided"}).json()[0]
    assert summary["payer"] == "region:13" and summary["state"] == "dispensed"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "paid"}, "status"),
        ({"kind": "x"}, "kind"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_case_list_refuses_bad_filters(shared_desk: Desk, params: dict[str, Any], field: str) -> None:
    assert_error(shared_desk.api("lakare.vgr").get(f"{API}/cases", params=params), 422, f"{field}:")


def test_unknown_case_is_404(shared_desk: Desk) -> None:
    client = shared_desk.api("lakare.vgr")
    assert_error(client.get(f"{API}/cases/{uuid.uuid4()}"), 404)
    assert_error(step(client, str(uuid.uuid4()), "contacted"), 404)


# -- organisation scoping -------------------------------------------------------------------------


def test_other_organisations_cannot_see_a_vgr_halland_case(desk: Desk) -> None:
    vgr = desk.api("lakare.vgr")
    case_id = create(vgr, HALLAND_AT_VGR, patient_id=PNR)["id"]
    take(vgr, case_id, "dispensed")

    for outsider in ("mas.karlstad", "hjalpmedel.skane"):
        client = desk.api(outsider)
        assert_error(client.get(f"{API}/cases/{case_id}"), 404)
        assert case_id not in listed_ids(client)
        assert_error(step(client, case_id, "contacted"), 404)
        assert_error(post_line(client, case_id, f"{outsider}-1"), 404)
        assert client.get(f"{API}/events").json() == []
        assert client.get(f"{API}/events", params={"case_id": case_id}).json() == []
        assert client.get(f"{API}/payment-commitments", params={"case_id": case_id}).json() == []
    skane = desk.api("hjalpmedel.skane")
    assert_error(skane.post(f"{API}/payment-commitments", json=commitment(case_id, "region:13")), 404)

    # The paying region is a party to the case.
    halland = desk.api("faktura.halland")
    assert halland.get(f"{API}/cases/{case_id}").status_code == 200
    assert listed_ids(halland) == [case_id]
    assert len(events_of(halland, case_id)) == 1


@on_sqlite
def test_municipalities_do_not_see_each_others_cases(desk: Desk) -> None:
    karlstad = desk.api("mas.karlstad")
    case = create(karlstad, KARLSTAD_SPECIAL_HOUSING, patient_id=PNR)
    assert (case["decider"], case["payer"], case["invoicer"]) == ("kommun:1780", "region:17", "kommun:1780")
    for outsider in ("mas.arvika", "lakare.vgr", "faktura.halland"):
        client = desk.api(outsider)
        assert_error(client.get(f"{API}/cases/{case['id']}"), 404)
        assert listed_ids(client) == []
    assert listed_ids(karlstad) == [case["id"]]


# -- personnummer: shown in full only to roles that need it, never logged ---------------------------


def assert_no_full_pnr(text: str, where: str) -> None:
    for form in PNR_FORMS:
        assert form not in text, f"full personnummer ({form}) in {where}"


def test_personnummer_is_masked_except_for_roles_that_need_it(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vgr = desk.api("lakare.vgr")
    case_id = create(vgr, HALLAND_AT_VGR, patient_id="198112289874", patient_name="Anna Svensson")["id"]
    take(vgr, case_id, "dispensed")
    karlstad = desk.api("mas.karlstad")
    karlstad_id = create(karlstad, KARLSTAD_SPECIAL_HOUSING, patient_id=PNR)["id"]

    for username in SEES_PNR:
        client = desk.api(username)
        assert client.get(f"{API}/cases/{case_id}").json()["patient_id"] == PNR, username
        assert [c["patient_id"] for c in client.get(f"{API}/cases").json()] == [PNR], username
    assert karlstad.get(f"{API}/cases/{karlstad_id}").json()["patient_id"] == PNR
    assert [c["patient_id"] for c in karlstad.get(f"{API}/cases").json()] == [PNR]

    for username in MASKED_FOR:
        client = desk.api(username)
        responses = {
            "case": client.get(f"{API}/cases/{case_id}"),
            "list": client.get(f"{API}/cases"),
            "events": client.get(f"{API}/events"),
            "commitments": client.get(f"{API}/payment-commitments"),
        }
        assert responses["case"].status_code == 200
        assert responses["case"].json()["patient_id"] == MASKED
        assert responses["case"].json()["patient_initials"] == "AS"
        assert [c["patient_id"] for c in responses["list"].json()] == [MASKED]
        if username.startswith("admin."):
            responses["audit"] = client.get(f"{API}/audit")
            responses["export"] = client.get(f"{API}/audit/export.csv")
            assert responses["audit"].json() and responses["export"].status_code == 200
        for what, response in responses.items():
            assert_no_full_pnr(response.text, f"{what} for {username}")

    # Not in the app's log output (nor in any URL the test client logged), not in the audit log.
    assert_no_full_pnr(caplog.text, "log output")
    with desk.app.state.sessions() as db:
        rows = db.scalars(select(AuditEntry)).all()
        assert rows
        assert_no_full_pnr(repr([(r.action, r.case_id, r.detail) for r in rows]), "audit_log")


@on_sqlite
def test_pages_mask_personnummer_too(desk: Desk) -> None:
    case_id = create(desk.api("lakare.vgr"), HALLAND_AT_VGR, patient_id=PNR)["id"]
    for username, shown in (("lakemedel.vgr", MASKED), ("admin.halland", MASKED), ("lakare.vgr", PNR)):
        client = desk.client()
        assert login(client, username).status_code == 303
        for path in ("/cases", f"/cases/{case_id}"):
            page = client.get(path)
            assert page.status_code == 200
            assert shown in page.text, (username, path)
            if shown == MASKED:
                assert_no_full_pnr(page.text, f"{path} for {username}")


# -- roles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["lakemedel.vgr", "admin.vgr", "faktura.halland"])
def test_roles_that_cannot_create_cases(shared_desk: Desk, username: str) -> None:
    client = shared_desk.api(username)
    stored_before = case_count(client)
    assert_error(client.post(f"{API}/cases", json={"case": HALLAND_AT_VGR, "patient_id": PNR}), 403)
    assert case_count(client) == stored_before
    # The decision itself is open to every role.
    assert client.post(f"{API}/decisions", json=HALLAND_AT_VGR).status_code == 200


@pytest.mark.parametrize("username", ["lakare.vgr", "lakemedel.vgr", "faktura.halland", "mas.karlstad"])
def test_only_admins_read_or_export_the_audit_log(shared_desk: Desk, username: str) -> None:
    create(shared_desk.api("lakare.vgr"), HALLAND_AT_VGR)
    client = shared_desk.api(username)
    assert_error(client.get(f"{API}/audit"), 403)
    assert_error(client.get(f"{API}/audit/export.csv"), 403)


@on_sqlite
def test_roles_that_cannot_take_steps_register_commitments_or_bill(desk: Desk) -> None:
    vgr = desk.api("lakare.vgr")
    case_id = create(vgr, HALLAND_AT_VGR)["id"]
    for username in ("lakemedel.vgr", "admin.vgr"):
        client = desk.api(username)
        assert_error(step(client, case_id, "dispensed"), 403)
        assert_error(post_line(client, case_id, username), 403)
        assert_error(client.post(f"{API}/payment-commitments", json=commitment(case_id, "region:13")), 403)
    mas = desk.api("mas.karlstad")
    karlstad_id = create(mas, KARLSTAD_SPECIAL_HOUSING)["id"]
    assert_error(mas.post(f"{API}/payment-commitments", json=commitment(karlstad_id, "region:17")), 403)
    assert events_of(vgr, case_id) == []
    assert vgr.get(f"{API}/payment-commitments").json() == []
    # The paying region's invoice clerk sees the case but does not drive the invoicer's work.
    halland = desk.api("faktura.halland")
    for name in ("dispensed", "contacted"):
        assert_error(step(halland, case_id, name), 403, "steget")
    assert_error(step(halland, case_id, "closed"), 403)
    assert_error(post_line(halland, case_id), 403)
    assert events_of(vgr, case_id) == []
    assert take(vgr, case_id, "dispensed")["state"] == "dispensed"


# -- steps ----------------------------------------------------------------------------------------


def test_home_region_must_be_contacted_when_nt_council_advised_against(desk: Desk) -> None:
    client = desk.api("lakare.vgr")
    case = create(client, NT_ADVISED_AGAINST)
    assert case["decision"]["prior_contact_required"] is True
    assert case["decision"]["contact"]["party"] == "region:13"

    assert_error(step(client, case["id"], "dispensed"), 409)
    assert events_of(client, case["id"]) == []
    assert take(client, case["id"], "contacted")["state"] == "contacted"
    assert_error(step(client, case["id"], "contacted"), 409)  # not twice
    done = take(client, case["id"], "dispensed")
    assert done["state"] == "dispensed"
    assert [s["step"] for s in done["steps"]] == ["decided", "contacted", "dispensed"]
    assert done["steps"][1]["label"] == "Kontakt tagen med Region Halland"
    assert all(s["by"] == "lakare.vgr" for s in done["steps"])


def test_hearing_aid_in_skane_needs_a_payment_commitment_before_delivery(desk: Desk) -> None:
    client = desk.api("hjalpmedel.skane")
    case = create(client, {**HEARING_AID_IN_SKANE, "date": "2025-09-01"}, product_name="Hörapparat X")
    case_id = case["id"]
    assert case["decision"]["payment_commitment_required"] is True
    assert (case["payer"], case["invoicer"]) == ("region:17", "region:12")
    assert [(p["step"], p["mark"]) for p in case["plan"]] == [
        ("decided", "done"),
        ("contacted", "next"),
        ("commitment_registered", "waiting"),
        ("delivered", "waiting"),
    ]

    assert_error(client.post(f"{API}/payment-commitments", json=commitment(case_id, "region:17")), 409)
    take(client, case_id, "contacted")
    assert_error(step(client, case_id, "delivered"), 409)  # no commitment yet
    # The step comes with the commitment itself, never on its own.
    assert_error(step(client, case_id, "commitment_registered"), 422, "step:")

    # Only the payer issues the commitment, and a refused one stores nothing.
    for issuer in ("region:12", "region:13"):
        wrong = client.post(f"{API}/payment-commitments", json=commitment(case_id, issuer))
        assert_error(wrong, 422, "issuer:")
    assert_error(
        client.post(
            f"{API}/payment-commitments", json=commitment(case_id, "region:17", valid_to="2025-08-01")
        ),
        422,
        "valid_to:",
    )
    assert_error(client.post(f"{API}/payment-commitments", json=commitment(case_id, "17")), 422, "issuer:")
    assert_error(
        client.post(
            f"{API}/payment-commitments", json=commitment(case_id, "region:17", amount_ceiling_sek=-1)
        ),
        422,
        "amount_ceiling_sek:",
    )
    assert client.get(f"{API}/payment-commitments").json() == []

    made = client.post(f"{API}/payment-commitments", json=commitment(case_id, "region:17"))
    assert made.status_code == 201, made.text
    listed = client.get(f"{API}/payment-commitments", params={"case_id": case_id}).json()
    assert [(c["id"], c["issuer"], Decimal(c["amount_ceiling_sek"])) for c in listed] == [
        (made.json()["id"], "region:17", Decimal("8000"))
    ]
    # One commitment, one step: a second submit is refused and stores nothing.
    assert_error(client.post(f"{API}/payment-commitments", json=commitment(case_id, "region:17")), 409)
    assert len(client.get(f"{API}/payment-commitments", params={"case_id": case_id}).json()) == 1

    assert_error(step(client, case_id, "dispensed"), 409)  # a hearing aid is delivered, not dispensed
    line = {**LINE, "quantity": "2", "unit_price_sek": "3600", "product_name": "Hörapparat X"}
    done = take(client, case_id, "delivered", line=line)
    assert done["state"] == "delivered"
    assert [s["step"] for s in done["steps"]] == [
        "decided",
        "contacted",
        "commitment_registered",
        "delivered",
    ]
    # The ceiling holds: 7 200 kr delivered, 8 000 kr promised, so 1 000 kr more is too much.
    over = step(client, case_id, "delivered", line={**LINE, "quantity": "1", "unit_price_sek": "1000"})
    assert_error(over, 409, "beloppet")
    take(client, case_id, "delivered", line={**LINE, "quantity": "1", "unit_price_sek": "800"})

    first, second = events_of(client, case_id)
    assert (first["kind"], first["issuer"], first["recipient"]) == ("delivered", "region:12", "region:17")
    assert Decimal(first["amount_sek"]) == Decimal("7200")
    assert (Decimal(first["quantity"]), Decimal(first["unit_price_sek"])) == (2, 3600)
    assert first["product_name"] == "Hörapparat X" and first["varunummer"] == "123456"
    assert Decimal(second["amount_sek"]) == Decimal("800")
    # VGR is no party to it and sees no event.
    assert desk.api("lakare.vgr").get(f"{API}/events").json() == []


def test_each_dispensing_is_one_event_billed_to_the_payer(desk: Desk) -> None:
    client = desk.api("lakare.vgr")
    case_id = create(client, HALLAND_AT_VGR, product_name="Läkemedel Y")["id"]
    assert_error(step(client, case_id, "delivered"), 409)  # a drug is dispensed, not delivered
    assert events_of(client, case_id) == []

    take(client, case_id, "dispensed")
    take(client, case_id, "dispensed", line={**LINE, "quantity": "3", "unit_price_sek": "100.25"})
    first, second = events_of(client, case_id)
    assert first["kind"] == "dispensed"
    assert first["issuer"] == "region:14"  # the invoicer
    assert first["recipient"] == "region:13"  # the payer
    assert Decimal(first["amount_sek"]) == Decimal("1840.50")
    assert Decimal(second["amount_sek"]) == Decimal("300.75")
    assert first["product_name"] == "Läkemedel Y"  # the case's product where the line names none
    assert dt.date.fromisoformat(first["occurred_on"]) == TODAY
    assert [e["id"] for e in events_of(desk.api("faktura.halland"), case_id)] == [first["id"], second["id"]]


@on_sqlite
@pytest.mark.parametrize("case", [NO_AGREEMENT, INCOMPLETE], ids=["no_agreement", "incomplete"])
def test_no_steps_or_events_without_a_decision(desk: Desk, case: dict[str, Any]) -> None:
    client = desk.api("hjalpmedel.skane")
    case_id = create(client, case)["id"]
    for name in ("contacted", "delivered", "dispensed"):
        assert_error(step(client, case_id, name), 409)
    assert_error(post_line(client, case_id, "k"), 409)
    stored = client.get(f"{API}/cases/{case_id}").json()
    assert stored["state"] == ("no_agreement" if case is NO_AGREEMENT else "needs_facts")
    assert "completed" in stored["offers"] and "delivered" not in stored["offers"]
    assert events_of(client, case_id) == []


@pytest.mark.parametrize(
    "body", [{"step": "billable"}, {"step": "decided"}, {"step": "contacted", "x": 1}, {}]
)
def test_unknown_steps_are_422(shared_desk: Desk, body: dict[str, Any]) -> None:
    client = shared_desk.api("lakare.vgr")
    case_id = create(client, HALLAND_AT_VGR)["id"]
    field = "x" if "x" in body else "step"
    assert_error(client.post(f"{API}/cases/{case_id}/steps", json=body), 422, f"{field}:")


# -- billable events ------------------------------------------------------------------------------


def test_a_line_is_stored_once_per_idempotency_key_within_its_case(desk: Desk) -> None:
    client = desk.api("lakare.vgr")
    case_id = create(client, HALLAND_AT_VGR)["id"]
    other_id = create(client, HALLAND_AT_VGR)["id"]

    first = post_line(client, case_id, "apotek-4711")
    assert first.status_code == 201, first.text
    stored = first.json()
    assert (stored["issuer"], stored["recipient"]) == ("region:14", "region:13")
    assert Decimal(stored["amount_sek"]) == Decimal("1840.50")

    again = post_line(client, case_id, "apotek-4711")
    assert (again.status_code, again.json()["id"]) == (200, stored["id"])
    # The payer cannot replay (or probe) the invoicer's keys.
    assert_error(post_line(desk.api("faktura.halland"), case_id, "apotek-4711"), 403)
    assert [e["id"] for e in events_of(client, case_id)] == [stored["id"]]
    # The same key in another case is that case's own.
    elsewhere = post_line(client, other_id, "apotek-4711")
    assert elsewhere.status_code == 201 and elsewhere.json()["case_id"] == other_id
    assert len(client.get(f"{API}/events").json()) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_sek": -5}, "amount_sek"),
        ({"occurred_on": "2025-13-01"}, "occurred_on"),
        ({"amount_sek": "12,50"}, "amount_sek"),
        ({"occurred_on": "2025-09-16T10:00"}, "occurred_on"),
        ({"varunummer": "12345"}, "varunummer"),
        ({"product_name": "x" * 201}, "product_name"),
        ({"extra": True}, "extra"),
        ({"amount_sek": "100", "quantity": "2", "unit_price_sek": "40"}, "amount_sek"),
        ({"quantity": None, "unit_price_sek": None}, "amount_sek"),
        ({"occurred_on": "2025-09-16"}, "occurred_on"),  # tomorrow
        ({"occurred_on": "2024-12-31"}, "occurred_on"),  # before the case
    ],
)
def test_a_line_refuses_bad_input_naming_the_field(
    shared_desk: Desk, change: dict[str, Any], field: str
) -> None:
    client = shared_desk.api("lakare.vgr")
    case_id = create(client, HALLAND_AT_VGR)["id"]
    assert_error(post_line(client, case_id, **change), 422, f"{field}:")
    assert_error(post_line(client, case_id, ""), 422, "idempotency_key:")
    assert events_of(client, case_id) == []


def test_free_form_events_are_gone(shared_desk: Desk) -> None:
    """Billable events come from the workflow; there is no way to post one beside it."""
    client = shared_desk.api("lakare.vgr")
    case_id = create(client, HALLAND_AT_VGR)["id"]
    response = client.post(f"{API}/events", json={"case_id": case_id, "kind": "dispensed"})
    assert response.status_code == 405


def test_an_event_is_corrected_or_cancelled_never_edited(desk: Desk) -> None:
    client = desk.api("lakare.vgr")
    case_id = create(client, HALLAND_AT_VGR)["id"]
    original = post_line(client, case_id, varunummer=None).json()
    url = f"{API}/cases/{case_id}/events/{original['id']}/corrections"
    # The payer cannot correct the invoicer's line.
    assert_error(desk.api("faktura.halland").post(url, json={"reason": "x", "cancel": True}), 403)
    assert_error(client.post(url, json={"reason": "x"}), 422)
    fixed = client.post(url, json={"reason": "varunummer saknades", "line": {**LINE, "varunummer": "654321"}})
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["supersedes_id"] == original["id"]
    assert_error(client.post(url, json={"reason": "igen", "cancel": True}), 409)  # only the newest
    rows = {e["id"]: e for e in events_of(client, case_id)}
    assert rows[original["id"]]["superseded_by"] == fixed.json()["id"]
    assert rows[original["id"]]["varunummer"] is None  # kept as it was
    cancel = client.post(
        f"{API}/cases/{case_id}/events/{fixed.json()['id']}/corrections",
        json={"reason": "fel patient", "cancel": True},
    )
    assert cancel.status_code == 201 and cancel.json()["cancelled"] is True
    assert [e["superseded_by"] is None for e in events_of(client, case_id)] == [False, False, True]
    steps = client.get(f"{API}/cases/{case_id}").json()["steps"]
    assert [s["step"] for s in steps].count("event_corrected") == 2


# -- audit log ------------------------------------------------------------------------------------


def audit_rows(desk: Desk, admin: str, **params: Any) -> list[dict[str, Any]]:
    response = desk.api(admin).get(f"{API}/audit", params=params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_audit_log_records_who_did_what_to_which_case(desk: Desk) -> None:
    vgr = desk.api("lakare.vgr")
    case_id = create(vgr, HALLAND_AT_VGR, patient_id=PNR)["id"]
    vgr.get(f"{API}/cases/{case_id}")
    vgr.get(f"{API}/cases")
    take(vgr, case_id, "dispensed")
    desk.api("faktura.halland").get(f"{API}/cases/{case_id}")
    desk.api("mas.karlstad").get(f"{API}/cases/{case_id}")  # 404: not theirs, nothing read
    skane = desk.api("hjalpmedel.skane")
    skane_id = create(skane, HEARING_AID_IN_SKANE, patient_id="701063-2391")["id"]
    skane.get(f"{API}/cases/{skane_id}")

    rows = audit_rows(desk, "admin.vgr")
    seen = {(r["username"], r["action"], r["case_id"]) for r in rows}
    assert {
        ("lakare.vgr", "case.create", case_id),
        ("lakare.vgr", "case.read", case_id),
        ("lakare.vgr", "case.step", case_id),
        ("lakare.vgr", "event.create", case_id),
        ("faktura.halland", "case.read", case_id),
    } <= seen
    assert ("lakare.vgr", "case.list", None) in seen
    steps = [r for r in rows if r["action"] == "case.step"]
    assert [r["detail"] for r in steps] == ["dispensed"]
    assert all(r["at"] for r in rows)
    assert {r["organisation_id"] for r in rows if r["username"] == "lakare.vgr"} == {"region:14"}
    assert not any(r["username"] in ("mas.karlstad", "hjalpmedel.skane") for r in rows)
    assert skane_id not in {r["case_id"] for r in rows}

    only = audit_rows(desk, "admin.vgr", case_id=case_id)
    assert only and {r["case_id"] for r in only} == {case_id}

    # Halland's admin sees what was done to the case Halland pays for, not Skåne's unrelated case.
    halland = audit_rows(desk, "admin.halland")
    halland_seen = {(r["username"], r["action"], r["case_id"]) for r in halland}
    assert ("lakare.vgr", "case.create", case_id) in halland_seen
    assert ("faktura.halland", "case.read", case_id) in halland_seen
    assert skane_id not in {r["case_id"] for r in halland}
    assert not any(r["username"] == "hjalpmedel.skane" for r in halland)
    assert ("lakare.vgr", "case.list", None) not in halland_seen  # VGR's own activity
    assert audit_rows(desk, "admin.halland", case_id=skane_id) == []

    # Reading the audit log is itself audited.
    assert any(
        r["action"] == "audit.read" and r["username"] == "admin.vgr" for r in audit_rows(desk, "admin.vgr")
    )


def test_audit_export_is_csv_with_a_header(desk: Desk) -> None:
    vgr = desk.api("lakare.vgr")
    case_id = create(vgr, HALLAND_AT_VGR, patient_id=PNR)["id"]
    take(vgr, case_id, "dispensed")

    response = desk.api("admin.vgr").get(f"{API}/audit/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["id", "tid", "användare", "organisation", "händelse", "ärende", "detalj"]
    body = rows[1:]
    assert {(r[2], r[4], r[5]) for r in body} >= {
        ("lakare.vgr", "case.create", case_id),
        ("lakare.vgr", "case.step", case_id),
        ("lakare.vgr", "event.create", case_id),
    }
    assert all(len(r) == 7 and r[0].isdigit() and r[1] for r in body)
    assert_no_full_pnr(response.text, "audit export")


@on_sqlite
def test_audit_export_does_not_carry_spreadsheet_formulas(desk: Desk) -> None:
    vgr = desk.api("lakare.vgr")
    case_id = create(vgr, HALLAND_AT_VGR)["id"]
    posted = post_line(vgr, case_id, '=HYPERLINK("http://example.invalid","x")')
    assert posted.status_code == 201
    rows = list(csv.reader(io.StringIO(desk.api("admin.vgr").get(f"{API}/audit/export.csv").text)))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not c[1:2].isdigit())]


# -- timestamps -----------------------------------------------------------------------------------


def test_timestamps_carry_their_time_zone(desk: Desk) -> None:
    client = desk.api("lakare.vgr")
    case = create(client, HALLAND_AT_VGR)
    stamps = [case["created_at"], *(s["at"] for s in case["steps"])]
    stamps += [client.get(f"{API}/cases/{case['id']}").json()["created_at"]]
    stamps += [r["at"] for r in audit_rows(desk, "admin.vgr")]
    for stamp in stamps:
        parsed = dt.datetime.fromisoformat(stamp)
        assert parsed.utcoffset() is not None, stamp


# -- sessions from the pages ----------------------------------------------------------------------


@on_sqlite
def test_login_session_works_for_the_api_with_csrf_on_unsafe_calls(desk: Desk) -> None:
    client = desk.client()
    assert client.get(f"{API}/me").status_code == 401
    response = login(client, "lakare.vgr")
    assert response.status_code == 303 and response.headers["location"] == "/cases"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert ("secure" in cookie) == desk.app.state.settings.cookie_secure

    me = client.get(f"{API}/me")
    assert me.status_code == 200 and me.json()["username"] == "lakare.vgr"
    assert client.get(f"{API}/cases").status_code == 200

    without = client.post(f"{API}/cases", json={"case": HALLAND_AT_VGR})
    assert_error(without, 403)
    wrong = client.post(f"{API}/cases", json={"case": HALLAND_AT_VGR}, headers={"X-CSRF-Token": "nope"})
    assert_error(wrong, 403)
    assert client.get(f"{API}/cases").json() == []
    token = page_csrf(client)
    made = client.post(f"{API}/cases", json={"case": HALLAND_AT_VGR}, headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text
    case_id = made.json()["id"]
    assert_error(step(client, case_id, "dispensed"), 403)
    ok = client.post(
        f"{API}/cases/{case_id}/steps",
        json={"step": "dispensed", "line": LINE},
        headers={"X-CSRF-Token": token},
    )
    assert ok.status_code == 200

    # A bearer token wins over the cookie and needs no CSRF token.
    client.headers["Authorization"] = f"Bearer {desk.tokens['lakare.vgr']}"
    assert client.post(f"{API}/decisions", json=HALLAND_AT_VGR).status_code == 200


@on_sqlite
def test_login_needs_the_csrf_token_and_the_right_password(desk: Desk) -> None:
    client = desk.client()
    client.get("/login")
    no_csrf = client.post(
        "/login", data={"username": "lakare.vgr", "password": PASSWORD}, follow_redirects=False
    )
    assert no_csrf.status_code == 403
    assert client.get(f"{API}/me").status_code == 401
    assert login(client, "lakare.vgr", "fel").status_code == 401
    assert login(client, "ingen.alls", "fel").status_code == 401
    assert client.get(f"{API}/me").status_code == 401


@on_sqlite
def test_login_is_rate_limited(desk: Desk) -> None:
    client = desk.client()
    for attempt in range(5):
        assert login(client, "faktura.halland", f"fel-{attempt}").status_code == 401, attempt
    blocked = login(client, "faktura.halland")  # the right password, too late
    assert blocked.status_code == 429
    assert client.get(f"{API}/me").status_code == 401
    # Another browser for the same user is blocked as well.
    assert login(desk.client(), "faktura.halland").status_code == 429
    # The API token is not affected.
    assert desk.api("faktura.halland").get(f"{API}/me").status_code == 200


def logged_in(desk: Desk, username: str) -> tuple[TestClient, str]:
    """A browser-like client logged in as ``username``, and its CSRF token."""
    client = desk.client()
    login(client, username)
    return client, page_csrf(client)


def _asked(client: TestClient, token: str, form: dict[str, str]) -> list[str]:
    """The fields the live preview asks the form to show (``data-ask``)."""
    response = client.post("/cases/preview", data={"csrf": token, **form})
    assert response.status_code == 200, response.text
    match = re.search(r'data-ask="([^"]*)"', response.text)
    assert match, response.text
    return match.group(1).split()


@on_sqlite
def test_the_form_asks_only_for_facts_that_can_change_the_answer(desk: Desk) -> None:
    client, token = logged_in(desk, "mas.karlstad")
    base = {
        "kind": "medtech_product",
        "date": "2023-06-15",
        "patient.home_region": "17",
        "patient.home_municipality": "1780",
        "patient.housing": "special_housing",
        "care.self_care": "false",
        "product.annex": "kommun",
    }
    asked = _asked(client, token, {**base, "care.discharge": "false"})
    assert "care.municipality_has_product" not in asked
    assert "patient.home_care_weeks" not in asked  # special housing always counts as home care
    assert "product.replaces_listed" not in asked  # only matters outside the lists
    asked = _asked(client, token, {**base, "care.discharge": "true"})
    assert "care.municipality_has_product" in asked
    # The form page itself shows the same: the VGR drug form opens with the two regions only.
    page = client.get("/cases/new?kind=drug_exception").text
    shown = re.findall(r'<div class="field" data-field="([^"]+)" >', page)
    assert shown == ["patient.home_region", "care.region"]
    assert 'data-field="product.nt_council" hidden' in page


@on_sqlite
def test_the_case_page_shows_both_parts_of_a_split_cost(desk: Desk) -> None:
    client, token = logged_in(desk, "mas.karlstad")
    case = {
        "date": "2023-09-04",
        "kind": "medtech_product",
        "patient": {"home_region": "17", "home_municipality": "1780", "housing": "special_housing"},
        "care": {"self_care": False, "discharge": True, "municipality_has_product": False},
        "product": {"area": "medtech", "annex": "kommun"},
    }
    made = client.post(f"{API}/cases", json={"case": case}, headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text
    page = client.get(f"/cases/{made.json()['id']}").text
    parts = re.findall(r'<li data-payer="([^"]+)">', page)
    assert parts == ["region:17", "kommun:1780"]
    assert "högst 7 dagar" in page
    assert "/agreements/varmland_kommun_medtech_2021/source" in page
    source = client.get("/agreements/varmland_kommun_medtech_2021/source")
    assert source.status_code == 200 and "dock högst för en vecka" in source.text
