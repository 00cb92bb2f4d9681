"""Seed 001's hand-offs: the Sesam LMN registration request (exactly the listed fields, sent by
encrypted e-mail through a real SMTP server or printed for fax/post, never stored) and the gate
that refuses a hand-out before VO Hjälpmedel's go-ahead."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from smtp_server import smtp_server
from sqlalchemy import select
from test_api import API, create, events_of, logged_in, step, take
from test_billing_run import KARLSTAD_ANNEX_REGION
from webapp import TestApp as Desk

from vembetalar.handoffs.sesam import FIELD_LABELS, RegistrationForm, request_text, request_values
from vembetalar.model.case import Case
from vembetalar.store.models import AuditEntry, CaseStep

PNR = "19121212-1212"
INCONTINENCE = {
    "date": "2025-09-01",
    "kind": "assistive_device",
    "patient": {"home_region": "17", "country": "SE"},
    "care": {"region": "12"},
    "product": {"area": "incontinence", "cost_sek": 900, "advanced_adaptation": False},
}
REQUEST: dict[str, Any] = {
    "personnummer": PNR,
    "name": "Tolvan Tolvansson",
    "street_address": "Storgatan 7",
    "co_name": "Britt Berg",
    "postcode": "29133",
    "town": "Kristianstad",
    "phone": "070-123 45 67",
    "door_code": "1234",
    "prescriber_name": "Sara Sköterska",
    "prescriber_email": "sara.skoterska@skane.se",
}
DELIVERY_LINE = {
    "occurred_on": "2025-09-10",
    "quantity": "1",
    "unit_price_sek": "900",
    "product_name": "Inkontinensskydd",
}
REASON = "Du kan inte lämna ut något hjälpmedel till patienten förrän VO Hjälpmedel har gett klartecken"
#: What the request must never carry: the case's other facts.
NOT_IN_REQUEST = ("Inkontinensskydd", "VB-", "900", "Värmland", "inkontinens")


def new_case(desk: Desk, **extra: Any) -> dict[str, Any]:
    return create(desk.api("hjalpmedel.skane"), INCONTINENCE, patient_id=PNR, **extra)


def clearance(desk: Desk) -> Any:
    return desk.app.state.engine.decide(Case.model_validate(INCONTINENCE)).clearance


def test_the_request_carries_exactly_the_fields_the_agreement_lists(desk: Desk) -> None:
    text = request_text(clearance(desk), request_values(RegistrationForm(**REQUEST)))
    lines = text.strip().splitlines()
    assert lines[0] == "Registrering av patient i Sesam LMN" and lines[1] == ""
    assert [line.split(": ", 1)[0] for line in lines[2:]] == list(FIELD_LABELS.values())
    assert lines[2:] == [
        "Patientens personnummer: 19121212-1212",
        "Namn: Tolvan Tolvansson",
        "Gatuadress (inklusive eventuell c/o-namn): c/o Britt Berg, Storgatan 7",
        "Postnummer och postadress: 291 33 Kristianstad",
        "Telefonnummer: 070-123 45 67",
        "Portkod eller porttelefon: 1234",
        "Ansvarig förskrivare (namn och e-postadress) för återkoppling: "
        "Sara Sköterska, sara.skoterska@skane.se",
    ]
    assert not any(word in text for word in NOT_IN_REQUEST)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"personnummer": "19121212-1213"}, "personnummer"),
        ({"postcode": "2913"}, "postcode"),
        ({"phone": "ring mig"}, "phone"),
        ({"prescriber_email": "sara"}, "prescriber_email"),
        ({"name": "  "}, "name"),
    ],
)
def test_a_wrong_field_is_named(desk: Desk, change: dict[str, str], named: str) -> None:
    case = new_case(desk)
    response = desk.api("hjalpmedel.skane").post(
        f"{API}/cases/{case['id']}/sesam-request", json={**REQUEST, **change, "delivery": "pdf"}
    )
    assert response.status_code == 422 and f"{named}:" in response.json()["detail"], response.text


def test_hand_out_waits_for_the_go_ahead_and_the_request_goes_by_encrypted_mail(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = desk.api("hjalpmedel.skane")
    case = new_case(desk)
    plan = [(p["step"], p["mark"]) for p in case["plan"]]
    assert plan == [
        ("decided", "done"),
        ("registration_sent", "next"),
        ("activation_requested", "optional"),
        ("cleared", "next"),
        ("delivered", "waiting"),
    ]
    refused = step(client, case["id"], "delivered", line=DELIVERY_LINE)
    assert refused.status_code == 409 and REASON in refused.json()["detail"]

    # No mail server configured (the demo): the message is shown, nothing is sent or recorded.
    url = f"{API}/cases/{case['id']}/sesam-request"
    preview = client.post(url, json=REQUEST)
    assert preview.status_code == 200 and preview.json()["sent"] is False
    assert "Namn: Tolvan Tolvansson" in preview.json()["preview"]

    with smtp_server(tmp_path) as server:
        for key, value in server.env(encrypted_delivery=False).items():
            monkeypatch.setenv(key, value)
        plain = client.post(url, json=REQUEST)
        assert plain.status_code == 409 and "krypterad e-post" in plain.json()["detail"]
        assert server.inbox.messages == []
        monkeypatch.setenv("VEMBETALAR_SMTP_ENCRYPTED_DELIVERY", "1")
        sent = client.post(url, json=REQUEST)
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"sent": True, "to": "hjalpmedelkundtjanst@skane.se", "preview": None}
        (mail,) = server.inbox.messages
    assert mail["To"] == "hjalpmedelkundtjanst@skane.se"
    assert mail["Subject"] == "Registrering av patient i Sesam LMN"  # no personal data
    body = mail.get_payload(decode=True).decode()
    assert "Patientens personnummer: 19121212-1212" in body and "c/o Britt Berg" in body
    assert not any(word in body for word in NOT_IN_REQUEST)

    # Sent once is enough: the step is recorded and not offered again.
    again = client.post(url, json=REQUEST)
    assert again.status_code == 409
    cleared_without_name = step(client, case["id"], "cleared")
    assert cleared_without_name.status_code == 422
    take(client, case["id"], "cleared", note="Klartecken från Kim på Hjälpmedel Kundtjänst")
    take(client, case["id"], "delivered", line=DELIVERY_LINE)
    assert len(events_of(client, case["id"])) == 1

    # Nothing typed for the request stayed in the database (case, steps, audit).
    with desk.app.state.sessions() as db:
        notes = " ".join(s.note or "" for s in db.scalars(select(CaseStep)))
        audit = " ".join(a.detail or "" for a in db.scalars(select(AuditEntry)))
    for typed in ("Tolvan", "Storgatan", "Britt", "070-123", "1234"):
        assert typed not in notes and typed not in audit
    assert "e-post till hjalpmedelkundtjanst@skane.se" in notes


def test_a_server_without_starttls_is_never_used(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = new_case(desk)
    with smtp_server(tmp_path, tls=False) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        response = desk.api("hjalpmedel.skane").post(f"{API}/cases/{case['id']}/sesam-request", json=REQUEST)
        assert response.status_code == 502 and "STARTTLS" in response.json()["detail"]
        assert server.inbox.messages == []


def test_the_request_printed_for_fax_or_post_has_the_same_fields(desk: Desk) -> None:
    client = desk.api("hjalpmedel.skane")
    case = new_case(desk)
    response = client.post(f"{API}/cases/{case['id']}/sesam-request", json={**REQUEST, "delivery": "pdf"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    for expected in (
        "19121212-1212",
        "Tolvan Tolvansson",
        "291 33 Kristianstad",
        "044-19 46 55",
        "Axel Kleimers väg 2",
    ):
        assert expected in text
    assert not any(word in text for word in NOT_IN_REQUEST)
    steps = take(client, case["id"], "cleared", note="Klartecken per telefon")["steps"]
    assert [s["step"] for s in steps] == ["decided", "registration_sent", "cleared"]
    assert "fax" in steps[1]["note"]


def test_an_inactivated_patient_is_activated_instead_of_registered(desk: Desk) -> None:
    client = desk.api("hjalpmedel.skane")
    case = new_case(desk)
    body = take(client, case["id"], "activation_requested", note="Ringt Hjälpmedel Kundtjänst 9/9")
    assert "registration_sent" not in body["offers"]
    refused = client.post(f"{API}/cases/{case['id']}/sesam-request", json=REQUEST)
    assert refused.status_code == 409 and "aktivering är redan begärd" in refused.json()["detail"]
    take(client, case["id"], "cleared", note="Aktiverad av Kundtjänst")
    take(client, case["id"], "delivered", line=DELIVERY_LINE)


def test_a_returning_patient_has_the_payer_checked_again(desk: Desk) -> None:
    client = desk.api("hjalpmedel.skane")
    first = new_case(desk)
    take(client, first["id"], "activation_requested")
    take(client, first["id"], "cleared", note="Kim")
    second = new_case(desk)
    assert [p["step"] for p in second["plan"]][1] == "payer_rechecked"
    assert second["offers"] == ["payer_rechecked", "closed", "withdrawn"]
    refused = step(client, second["id"], "cleared", note="Kim")
    assert refused.status_code == 409 and "kontrollera på nytt vilken region som ska betala" in refused.text
    take(client, second["id"], "payer_rechecked", note="Fortfarande Region Värmland")
    take(client, second["id"], "activation_requested")
    # Another patient is not "returning".
    other = create(client, INCONTINENCE, patient_id="19811228-9874")
    assert "payer_rechecked" not in other["offers"]


def test_the_case_page_asks_for_the_request_and_shows_it_unsent_in_the_demo(desk: Desk) -> None:
    case = new_case(desk)
    client, token = logged_in(desk, "hjalpmedel.skane")
    page = client.get(f"/cases/{case['id']}")
    assert "Registreringsbegäran till Sesam LMN" in page.text and 'name="co_name"' in page.text
    shown = client.post(
        f"/cases/{case['id']}/sesam-request", data={**REQUEST, "csrf": token, "delivery": "email"}
    )
    assert shown.status_code == 200
    assert "meddelandet skickades inte" in shown.text and "Namn: Tolvan Tolvansson" in shown.text
    bad = client.post(
        f"/cases/{case['id']}/sesam-request",
        data={**REQUEST, "postcode": "1", "csrf": token, "delivery": "pdf"},
    )
    assert bad.status_code == 422 and "postcode:" in bad.text and 'value="Storgatan 7"' in bad.text


ORDER_LINE = {
    "occurred_on": "2023-10-05",
    "quantity": "2",
    "unit_price_sek": "225",
    "product_name": "Insulinpump, tillbehör",
    "prescriber_name": "Dr Erik Ek",
    "unit_name": "Avd 12, Centralsjukhuset Karlstad",
}


def test_varmland_order_copy_goes_to_the_invoice_handler_and_is_recorded(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 004: "skall mejla kopia på beställningen till sakattestant och fakturahandläggare
    Isabell Hassel, isabell.hassel@regionvarmland.se"."""
    mas = desk.api("mas.karlstad")
    case = create(mas, KARLSTAD_ANNEX_REGION, patient_name="Greta Gran")
    take(mas, case["id"], "delivered", line=ORDER_LINE)
    url = f"{API}/cases/{case['id']}/order-copy"
    shown = mas.post(url)  # no mail server: shown, not sent, not recorded
    assert shown.status_code == 200 and shown.json()["sent"] is False
    with smtp_server(tmp_path) as server:
        for key, value in server.env(encrypted_delivery=False).items():
            monkeypatch.setenv(key, value)
        sent = mas.post(url)
        assert sent.status_code == 200 and sent.json()["sent"] is True, sent.text
        (mail,) = server.inbox.messages
    assert mail["To"] == "isabell.hassel@regionvarmland.se"
    body = mail.get_payload(decode=True).decode()
    assert "Vårdtagarens initialer: GG" in body and "Greta" not in body
    assert "Insulinpump, tillbehör" in body and "antal 2" in body and "Dr Erik Ek" in body
    assert case["reference"] in body
    steps = mas.get(f"{API}/cases/{case['id']}").json()["steps"]
    assert steps[-1]["label"].startswith("Kopia på beställningen skickad till Isabell Hassel")
    assert "isabell.hassel@regionvarmland.se" in steps[-1]["note"]
    assert mas.post(url).status_code == 409  # sent once


def test_no_order_copy_where_the_agreement_asks_for_none(desk: Desk) -> None:
    client = desk.api("hjalpmedel.skane")
    case = new_case(desk)
    response = client.post(f"{API}/cases/{case['id']}/order-copy")
    assert response.status_code == 409


def test_only_the_prescribing_unit_sends_the_request_and_strangers_learn_nothing(desk: Desk) -> None:
    case = new_case(desk)
    for user, status in (("lakare.vgr", 404), ("faktura.varmland", 403)):
        response = desk.api(user).post(f"{API}/cases/{case['id']}/sesam-request", json=REQUEST)
        assert response.status_code == status, (user, response.text)
        assert "Tolvan" not in response.text
    assert desk.api("lakare.vgr").post(f"{API}/cases/{case['id']}/order-copy").status_code == 404
