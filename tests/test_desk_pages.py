"""The desk as its users meet it (issue 11), page by page without a browser: amounts read as Swedes
type them and said back, errors beside their fields in Swedish. The Chromium side is in
test_e2e_desk.py."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import _faster_apps
from sqlalchemy import select
from test_api import HALLAND_AT_VGR, PNR, create, logged_in
from webapp import TestApp as Desk
from webapp import build_app

from vembetalar.clock import Clock
from vembetalar.rules.engine import Engine
from vembetalar.security import PERMISSIONS
from vembetalar.store.models import AuditEntry
from vembetalar.web import pages
from vembetalar.web.plain import condition_text, plain_text

on_sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

#: A rollator in Skåne for a patient from Kronoberg: from 10 000 kr Region Kronoberg is contacted
#: first; below it Skåne prescribes directly.
KRONOBERG_ROLLATOR = {
    "kind": "assistive_device",
    "date": "2025-09-15",
    "patient.home_region": "07",
    "care.region": "12",
    "product.area": "mobility",
    "product.advanced_adaptation": "false",
}


def _preview(desk: Desk, cost: str) -> str:
    client, token = logged_in(desk, "hjalpmedel.skane")
    response = client.post(
        "/cases/preview", data={"csrf": token, **KRONOBERG_ROLLATOR, "product.cost_sek": cost}
    )
    assert response.status_code == 200, response.text
    return response.text


@on_sqlite
@pytest.mark.parametrize("typed", ["12000", "12 000", "12\u00a0000", "12.000", "12 000,50", "12000,5"])
def test_twelve_thousand_typed_any_swedish_way_means_contact_kronoberg(desk: Desk, typed: str) -> None:
    """ "12.000" was read as 12 kr and silently flipped the answer to "no contact needed"."""
    html = _preview(desk, typed)
    assert 'data-status="decided"' in html
    first = re.search(r'<p class="first">(.*?)</p>', html, re.DOTALL)
    assert first is not None, html
    assert "kontakta Region Kronoberg" in " ".join(first.group(1).split())


@on_sqlite
def test_below_the_limit_no_contact_is_asked(desk: Desk) -> None:
    html = _preview(desk, "9 999,99")
    assert 'data-status="decided"' in html and '<p class="first">' not in html


@on_sqlite
@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("12.5", "har punkt som decimaltecken: skriv 12,5 kr"),
        ("12,000", "är tvetydigt: skriv 12 000 kr för tusental eller 12,00 kr"),
        ("12,3456", "får ha högst två decimaler"),
    ],
)
def test_an_amount_that_is_not_swedish_is_refused_naming_the_field_in_swedish(
    desk: Desk, typed: str, says: str
) -> None:
    html = _preview(desk, typed)
    assert 'data-status="invalid"' in html and 'data-field="product.cost_sek"' in html
    (alert,) = re.findall(r'role="alert">(.*?)</p>', html, re.DOTALL)
    assert alert.startswith("Kostnad (kr): ") and says in alert.replace("&#34;", '"'), alert
    assert "product.cost_sek" not in alert


def _echo(desk: Desk, name: str, typed: str, target: str = "echo-x") -> tuple[int, str]:
    client, token = logged_in(desk, "lakare.vgr")
    response = client.post(
        "/amounts/echo",
        data={"csrf": token, name: typed},
        headers={"HX-Trigger-Name": name, "HX-Target": target, "HX-Request": "true"},
    )
    return response.status_code, response.text


@on_sqlite
@pytest.mark.parametrize(
    ("name", "typed", "echo"),
    [
        ("product.cost_sek", "12.000", "= 12\u00a0000\u00a0kr"),
        ("product.cost_sek", "12 000,50", "= 12\u00a0000,50\u00a0kr"),
        ("amount_sek", "1840,5", "= 1\u00a0840,50\u00a0kr"),
        ("unit_price_sek", "920,25", "= 920,25\u00a0kr"),
        ("amount_ceiling_sek", "8 000", "= 8\u00a0000\u00a0kr"),
    ],
)
def test_the_amount_understood_is_said_back(desk: Desk, name: str, typed: str, echo: str) -> None:
    status, html = _echo(desk, name, typed)
    assert status == 200
    assert re.fullmatch(
        rf'<output id="echo-x" class="echo ok" aria-live="polite">{echo}</output>\s*', html
    ), html


@on_sqlite
def test_a_wrong_amount_is_said_back_as_wrong(desk: Desk) -> None:
    status, html = _echo(desk, "amount_sek", "12.5")
    assert status == 200 and 'class="echo bad"' in html
    assert "Belopp (kr): </span>har punkt som decimaltecken: skriv 12,5 kr" in html


@on_sqlite
def test_the_echo_is_only_for_amount_fields(desk: Desk) -> None:
    assert _echo(desk, "patient_id", "19811228-9874")[0] == 422
    assert _echo(desk, "amount_sek", "12", target='echo-x" onload="x')[0] == 422


def test_stored_texts_are_read_in_swedish(engine: Engine) -> None:
    """An engine's reason or a pack's note, as stored: code words become Swedish."""
    packs = list(engine.packs)
    title = next(p.meta.title for p in packs if p.id == "vgr_halland_undantag_2023")
    said = plain_text(
        "«X» (vgr_halland_undantag_2023) gäller; hemregion (patient.home_region) okänd; "
        "ärendetyp medtech_product, no_agreement, region:13, vgr_halland_undantag_2023",
        packs,
    )
    assert said == (
        f"«X» gäller; hemregion okänd; ärendetyp medicintekniska produkter (kommun/region), "
        f"inget avtal gäller, Region Halland, «{title}»"
    )


def test_conditions_read_as_sentences(engine: Engine) -> None:
    rules = {r.full_id: r for p in engine.packs for r in p.rules()}
    texts = {c for r in rules.values() for c in map(condition_text, r.conditions)}
    assert "hemregion är Region Halland" in texts
    assert "remiss: nej" in texts
    assert "kostnad (kr) är minst 10\u00a0000,00\u00a0kr" in texts
    assert "bosättningsland är en av EU/EES-länderna och Schweiz" in texts
    assert "NT-rådets yttrande är en av Avråder från användning, Avvakta" in texts


# -- what to do next, with whom (item 5) ---------------------------------------------------------


@on_sqlite
def test_gor_forst_says_the_agreement_gives_no_contact_details(desk: Desk) -> None:
    html = _preview(desk, "12 000")
    first = re.search(r'<p class="first">(.*?)</p>', html, re.DOTALL)
    assert first is not None
    said = " ".join(re.sub(r"<[^>]+>", "", first.group(1)).split())
    assert said == "Gör först: kontakta Region Kronoberg · avtalet anger ingen kontaktuppgift"


@on_sqlite
def test_a_contact_with_details_is_a_link_to_call_or_write(desk: Desk) -> None:
    client, token = logged_in(desk, "hjalpmedel.skane")
    form = {
        "kind": "assistive_device",
        "date": "2025-09-15",
        "care.region": "12",
        "patient.country": "DE",
        "product.area": "mobility",
    }
    html = client.post("/cases/preview", data={"csrf": token, **form}).text
    assert '<a href="mailto:hjalpmedel.@skane.se" class="email">hjalpmedel.@skane.se</a>' in html
    assert "avtalet anger ingen kontaktuppgift" not in html


@pytest.fixture
def late_desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    """The desk on 2026-11-27: VGR–Halland ends in 34 days, Värmland's agreement ended 2024-02-01."""
    _faster_apps(monkeypatch)
    app = build_app(f"sqlite:///{tmp_path / 'late.db'}", tmp_path, clock=Clock(dt.date(2026, 11, 27)))
    try:
        yield app
    finally:
        app.app.state.db_engine.dispose()


def test_agreements_ending_or_ended_are_flagged_on_avtal(late_desk: Desk) -> None:
    client, _ = logged_in(late_desk, "lakare.vgr")
    text = " ".join(re.sub(r"<[^>]+>", " ", client.get("/agreements").text).split())
    assert "2023-01-01 – 2026-12-31 upphör 2026-12-31 (om 34 dagar)" in text
    assert "2021-01-01 – 2024-02-01 upphört 2024-02-01" in text
    assert text.count("upphör") == 2  # Skåne's has no end


def test_a_decision_resting_on_an_ending_agreement_says_so(late_desk: Desk) -> None:
    case = {**HALLAND_AT_VGR, "date": "2026-11-20"}
    case_id = create(late_desk.api("lakare.vgr"), case)["id"]
    client, _ = logged_in(late_desk, "lakare.vgr")
    html = client.get(f"/cases/{case_id}").text
    assert re.search(r'<p class="warn ending" role="note"><strong>Avtalet upphör snart:</strong>', html)
    assert "upphör 2026-12-31 (om 34 dagar)" in html


@on_sqlite
def test_no_agreement_says_which_agreement_ended_when_and_whom_to_ask(desk: Desk) -> None:
    client, token = logged_in(desk, "mas.karlstad")
    form = {
        "kind": "nutrition_product",
        "date": "2025-09-15",
        "patient.home_region": "17",
        "care.region": "17",
    }
    html = client.post("/cases/preview", data={"csrf": token, **form}).text
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Inget avtal gäller." in text and "Vad du kan göra" in text
    assert "upphört 2024-02-01. Fråga Region Värmland om det finns ett nytt avtal" in text


# -- the audit log: who read this patient? (item 7) ---------------------------------------------


def _rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [
            " ".join(re.sub(r"<[^>]+>", " ", cell).split())
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


@pytest.fixture
def audited(desk: Desk) -> tuple[Desk, str, str]:
    """Two VGR cases, one of them the patient PNR's; lakare.vgr reads both on the desk."""
    api = desk.api("lakare.vgr")
    mine = create(api, HALLAND_AT_VGR, patient_id=PNR)
    other = create(api, HALLAND_AT_VGR)
    client, _ = logged_in(desk, "lakare.vgr")
    for case in (mine, other):
        assert client.get(f"/cases/{case['id']}").status_code == 200
    return desk, mine["reference"], other["reference"]


@on_sqlite
def test_the_audit_log_is_filtered_by_user_action_case_and_date(audited: tuple[Desk, str, str]) -> None:
    desk, mine, other = audited
    client, _ = logged_in(desk, "admin.vgr")
    rows = _rows(client.get("/audit", params={"user": "lakare.vgr", "action": "case.read"}).text)
    assert {r[3] for r in rows} == {"Läste ärende"} and {r[1] for r in rows} == {"lakare.vgr"}
    assert {r[4] for r in rows} == {mine, other}
    assert {r[2] for r in rows} == {"Västra Götalandsregionen"}
    now = dt.datetime.now(ZoneInfo("Europe/Stockholm"))
    assert all(
        abs(dt.datetime.fromisoformat(r[0]) - now.replace(tzinfo=None)).total_seconds() < 180 for r in rows
    )
    one = _rows(client.get("/audit", params={"case": mine.lower(), "action": "case.read"}).text)
    assert [r[4] for r in one] == [mine]
    yesterday = (now.date() - dt.timedelta(days=1)).isoformat()
    assert _rows(client.get("/audit", params={"to": yesterday, "user": "lakare.vgr"}).text) == [
        ["Inga händelser med de här villkoren."]
    ]
    bad = client.get("/audit", params={"from": "igår"})
    assert bad.status_code == 200 and "Datum: skriv datum som ÅÅÅÅ-MM-DD" in bad.text


@on_sqlite
def test_the_audit_log_pages(audited: tuple[Desk, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    desk, _, _ = audited
    monkeypatch.setattr(pages, "AUDIT_PAGE", 2)
    client, _ = logged_in(desk, "admin.vgr")
    first = client.get("/audit", params={"user": "lakare.vgr"}).text
    assert len(_rows(first)) == 2 and 'href="/audit?user=lakare.vgr&amp;page=2">Nästa sida</a>' in first
    second = client.get("/audit", params={"user": "lakare.vgr", "page": "2"}).text
    assert len(_rows(second)) == 2 and "Föregående sida" in second
    assert _rows(first) != _rows(second)


@on_sqlite
def test_searching_the_log_by_personnummer_is_only_for_roles_that_see_it(
    audited: tuple[Desk, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    desk, mine, _ = audited
    client, token = logged_in(desk, "admin.vgr")
    assert 'name="personnummer"' not in client.get("/audit").text  # admins see personnummer masked
    refused = client.post("/audit", data={"csrf": token, "personnummer": PNR})
    assert refused.status_code == 403
    monkeypatch.setitem(PERMISSIONS, "patient_id.read", PERMISSIONS["patient_id.read"] | {"admin"})
    page = client.get("/audit").text
    assert re.search(r'<form method="post" action="/audit"[^>]*>', page) and 'name="personnummer"' in page
    found = client.post("/audit", data={"csrf": token, "personnummer": "811228-9874", "action": "case.read"})
    assert found.status_code == 200
    assert {r[4] for r in _rows(found.text)} == {mine}
    # Never in a URL, never in the log.
    assert not re.search(r'href="[^"]*(?:19811228|9874)', found.text)
    with desk.app.state.sessions() as db:
        details = " ".join(d or "" for d in db.scalars(select(AuditEntry.detail)))
    assert "9874" not in details and "filter: personnummer, händelse case.read" in details
    csv_text = client.post("/audit/export.csv", data={"csrf": token, "personnummer": PNR}).text
    assert mine in csv_text


@on_sqlite
def test_the_audit_csv_opens_in_swedish_excel(audited: tuple[Desk, str, str]) -> None:
    desk, mine, _ = audited
    client, _ = logged_in(desk, "admin.vgr")
    response = client.get("/audit/export.csv", params={"action": "case.read"})
    assert response.status_code == 200 and response.headers["content-type"] == "text/csv; charset=utf-8"
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Tid", "Användare", "Organisation", "Händelse", "Ärende", "Detalj"]
    assert {r[3] for r in rows[1:]} == {"Läste ärende"} and mine in {r[4] for r in rows[1:]}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", r[0]) for r in rows[1:])


# -- find and print (item 6) --------------------------------------------------------------------


@pytest.fixture
def found(desk: Desk) -> tuple[Desk, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Three VGR cases: the patient PNR's Halland case, another Halland case in October, and a
    case for a Kronoberg patient."""
    api = desk.api("lakare.vgr")
    mine = create(api, HALLAND_AT_VGR, patient_id=PNR)
    october = create(api, {**HALLAND_AT_VGR, "date": "2025-10-01"})
    patient = {**HALLAND_AT_VGR["patient"], "home_region": "07", "home_municipality": "0780"}
    kronoberg = create(api, {**HALLAND_AT_VGR, "patient": patient})
    return desk, mine, october, kronoberg


def _listed(html: str) -> set[str]:
    return set(re.findall(r'<a href="/cases/[0-9a-f-]{36}">(VB-[^<]+)</a>', html))


@on_sqlite
def test_cases_are_found_by_number_date_and_party(found: tuple[Desk, Any, Any, Any]) -> None:
    desk, mine, october, kronoberg = found
    client, _ = logged_in(desk, "lakare.vgr")
    everyone = {mine["reference"], october["reference"], kronoberg["reference"]}
    assert _listed(client.get("/cases").text) == everyone
    part = mine["reference"][-5:].lower()  # a piece of the number, in any case
    assert _listed(client.get("/cases", params={"q": part}).text) == {mine["reference"]}
    assert _listed(client.get("/cases", params={"from": "2025-09-20"}).text) == {october["reference"]}
    assert _listed(client.get("/cases", params={"to": "2025-09-15"}).text) == {
        mine["reference"],
        kronoberg["reference"],
    }
    assert _listed(client.get("/cases", params={"party": "region:13"}).text) == {
        mine["reference"],
        october["reference"],
    }
    # Kronoberg is no party to its patient's case at VGR: no agreement binds it.
    page = client.get("/cases", params={"party": "region:07"}).text
    assert _listed(page) == set()
    assert '<option value="region:07" selected>Region Kronoberg</option>' in page


@on_sqlite
def test_cases_are_found_by_personnummer_by_post_only_for_roles_that_see_it(
    found: tuple[Desk, Any, Any, Any],
) -> None:
    desk, mine, _, _ = found
    client, token = logged_in(desk, "lakare.vgr")
    page = client.get("/cases").text
    assert '<form method="post" action="/cases/search"' in page
    hit = client.post("/cases/search", data={"csrf": token, "personnummer": "811228-9874"})
    assert hit.status_code == 200 and _listed(hit.text) == {mine["reference"]}
    assert not re.search(r'href="[^"]*9874', hit.text)
    wrong = client.post("/cases/search", data={"csrf": token, "personnummer": "19811228-9875"})
    assert wrong.status_code == 422 and _listed(wrong.text) == set()
    assert 'value="19811228-9875"' in wrong.text and "Personnummer: " in wrong.text
    admin, admin_token = logged_in(desk, "admin.vgr")
    assert 'action="/cases/search"' not in admin.get("/cases").text
    assert admin.post("/cases/search", data={"csrf": admin_token, "personnummer": PNR}).status_code == 403


@on_sqlite
def test_the_print_view_is_the_decision_with_its_sources_and_no_menu(
    found: tuple[Desk, Any, Any, Any],
) -> None:
    desk, mine, _, _ = found
    client, _ = logged_in(desk, "lakare.vgr")
    assert f'href="/cases/{mine["id"]}/print"' in client.get(f"/cases/{mine['id']}").text
    html = client.get(f"/cases/{mine['id']}/print").text
    assert "<nav" not in html and 'href="/static/print.css"' in html
    assert f"Beslut om kostnadsansvar · {mine['reference']}" in html
    assert '<dd class="payer">Region Halland</dd>' in html
    assert "<blockquote>" in html and "Region Halland har kostnadsansvar" in html
    assert PNR in html  # the prescriber's own record of the patient


@on_sqlite
def test_a_new_form_asks_the_facts_that_pick_an_agreement(desk: Desk) -> None:
    """A medtech case names no agreement until the home region is known: that is asked first."""
    client, _ = logged_in(desk, "mas.karlstad")
    html = client.get("/cases/new?kind=medtech_product").text
    shown = re.findall(r'<div class="field" data-field="([^"]+)" >', html)
    assert "patient.home_region" in shown
    assert "patient.housing" not in shown  # cannot change the answer yet


@on_sqlite
def test_municipalities_and_countries_are_listed_by_name(desk: Desk) -> None:
    client, _ = logged_in(desk, "hjalpmedel.skane")
    html = client.get("/cases/new?kind=assistive_device").text
    assert '<option value="NO" >Norge (NO)</option>' in html
    assert re.search(r'<select id="f-patient\.country" name="patient\.country"[^>]* data-combobox="Sök', html)
