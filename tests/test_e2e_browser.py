"""End to end in a real headless Chromium (Debian's, driven by Playwright; no browser download).

The app runs in-process under uvicorn on loopback, on a SQLite file, with the test users of
``webapp.py``. The tests click through the pages as staff would: log in, decide a case, register
that the drug was dispensed, and see the billable event.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import served
from webapp import PASSWORD, TODAY, build_app

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PERSONNUMMER = "19811228-9874"
PRODUCT = "Testoprazol 20 mg"


@dataclass
class Live:
    base_url: str
    tokens: dict[str, str]

    def api(self, username: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.tokens[username]}"}, timeout=10
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The real app under uvicorn in a background thread, on 127.0.0.1 and a free port."""
    root = tmp_path_factory.mktemp("e2e")
    test_app = build_app(f"sqlite:///{root / 'e2e.db'}", root / "var")
    try:
        with served(test_app.app) as base_url:
            yield Live(base_url, test_app.tokens)
    finally:
        test_app.app.state.db_engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def swedish_page(browser: Browser, base_url: str, **options: Any) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies), Swedish like the users; ``options`` go to
    the context (a phone's viewport, downloads). Shared by every Chromium test module."""
    context = browser.new_context(base_url=base_url, locale="sv-SE", **options)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, live: Live) -> Iterator[Page]:
    with swedish_page(browser, live.base_url) as opened:
        yield opened


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(password)
    page.get_by_role("button", name="Logga in").click()


def field(page: Page, name: str) -> Locator:
    """A form control by its name (the Case's dotted field name)."""
    return page.locator(f'#case-form [name="{name}"]')


def test_decide_dispense_and_bill_a_halland_patient_at_vgr(page: Page, live: Live, tmp_path: Path) -> None:
    log_in(page, "lakare.vgr")
    expect(page).to_have_url(re.compile(r"/cases$"))
    expect(page.get_by_role("heading", name="Ärenden")).to_be_visible()

    page.locator("header nav").get_by_role("link", name="Nytt ärende").click()
    page.get_by_role("link", name=re.compile("^Läkemedel")).click()
    expect(page).to_have_url(re.compile(r"/cases/new\?kind=drug_exception$"))
    expect(page.get_by_role("heading", name="Nytt ärende")).to_be_visible()

    field(page, "patient.home_region").select_option("13")
    field(page, "care.region").select_option("14")
    field(page, "care.referral").select_option(label="Nej")
    # The answer now waits only for NT-rådet's statement, so that question appears.
    expect(page.locator("#preview .missing")).to_have_text(["NT-rådets yttrande"])
    field(page, "product.nt_council").select_option(label="Inget yttrande från NT-rådet")
    field(page, "patient_id").fill(PERSONNUMMER)
    field(page, "product_name").fill(PRODUCT)

    # The live preview (htmx) decides as the form is filled in; nothing is stored yet.
    preview = page.locator("#preview")
    expect(preview.locator("[data-status]")).to_have_attribute("data-status", "decided")
    expect(preview.locator(".payer")).to_have_text("Region Halland")

    page.get_by_role("button", name="Spara ärendet").click()
    expect(page).to_have_url(re.compile(r"/cases/[0-9a-f-]{36}$"))
    case_id = page.url.rsplit("/", 1)[1]

    decision = page.locator(".decision")
    expect(decision).to_have_attribute("data-status", "decided")
    expect(decision.locator(".payer")).to_have_text("Region Halland")
    expect(decision.locator(".recipient .ref")).to_have_text("ZZXXX098")
    expect(
        decision.locator("blockquote.citation").filter(has_text="Region Halland har kostnadsansvar")
    ).to_have_count(1)
    expect(page.get_by_text(PERSONNUMMER)).to_be_visible()  # a prescriber sees the whole number
    expect(page.get_by_text(PRODUCT)).to_be_visible()

    shot = page.screenshot(path=str(tmp_path / "beslut.png"), full_page=True)
    png = (tmp_path / "beslut.png").read_bytes()
    assert png == shot and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000

    # The dispensing is one invoice line: what the agreement's invoice must show (bilaga 2).
    line = page.locator("form.line-form")
    expect(line.get_by_label("Benämning")).to_have_value(PRODUCT)
    line.get_by_label("Varunummer").fill("123456")
    line.get_by_label("Antal").fill("2")
    line.get_by_label("À-pris (kr)").fill("920,25")
    line.get_by_label("Arbetsplats/enhet").fill("Medicinmottagningen, Sahlgrenska")
    line.get_by_role("button", name="Registrera: Expedierat (läkemedel)").click()
    expect(page).to_have_url(re.compile(f"/cases/{case_id}$"))
    expect(page.locator('ol.steps li.done[data-step="dispensed"]')).to_contain_text("Expedierat")
    # A drug is dispensed many times: the form stays for the next dispensing.
    expect(page.get_by_role("button", name=re.compile("^Registrera: Expedierat"))).to_have_count(1)
    expect(page.get_by_role("heading", name="Fakturaunderlag")).to_be_visible()
    rows = page.locator("table.events tbody tr")
    expect(rows).to_have_count(1)
    cells = rows.first.locator("td")
    expect(cells.nth(0)).to_have_text("Expedierat (läkemedel)")
    expect(cells.nth(1)).to_have_text(TODAY.isoformat())
    expect(cells.nth(2)).to_have_text(f"{PRODUCT} (123456)")
    expect(cells.nth(3)).to_have_text("2 × 920,25\u00a0kr")
    expect(cells.nth(4)).to_have_text("1\u00a0840,50\u00a0kr")
    expect(cells.nth(5)).to_have_text("Region Halland")

    # The same through the JSON API, with the prescriber's token: exactly one billable event.
    with live.api("lakare.vgr") as api:
        response = api.get("/api/v1/events", params={"case_id": case_id})
        assert response.status_code == 200, response.text
        events = response.json()
        assert len(events) == 1
        assert events[0]["kind"] == "dispensed"
        assert events[0]["issuer"] == "region:14"
        assert events[0]["recipient"] == "region:13"
        assert events[0]["product_name"] == PRODUCT
        assert events[0]["amount_sek"] == "1840.50"
        assert events[0]["unit_name"] == "Medicinmottagningen, Sahlgrenska"
        case = api.get(f"/api/v1/cases/{case_id}").json()
        assert case["payer"] == "region:13" and case["state"] == "dispensed"


def test_a_case_missing_a_fact_is_completed_and_decided_again(page: Page, live: Live) -> None:
    """NT-rådet's statement was not known when the case was saved: the case is not "Beslut
    fattat" but waits for it; completing it re-decides, and the first decision stays in the history."""
    case = {
        "date": TODAY.isoformat(),
        "kind": "drug_exception",
        "patient": {"home_region": "13", "country": "SE"},
        "care": {"region": "14", "referral": False},
        "product": {"area": "drug", "cost_sek": 18400},
    }
    with live.api("lakare.vgr") as api:
        made = api.post("/api/v1/cases", json={"case": case})
        assert made.status_code == 201, made.text
        case_id = made.json()["id"]
        assert made.json()["state"] == "needs_facts"
    log_in(page, "lakare.vgr")
    page.goto(f"/cases/{case_id}")
    expect(page.locator('ol.plan li[data-plan="completed"]')).to_contain_text("NT-rådets yttrande")
    expect(page.locator('ol.plan li[data-plan="dispensed"]')).to_contain_text("väntar")
    expect(page.get_by_role("button", name=re.compile("^Registrera: Expedierat"))).to_have_count(0)

    page.get_by_role("link", name="Komplettera uppgifterna och pröva på nytt").click()
    expect(page).to_have_url(re.compile(f"/cases/{case_id}/complete$"))
    expect(page.locator("#f-care\\.region")).to_be_disabled()  # known facts stay as they were
    field(page, "product.nt_council").select_option(label="Avråder från användning")
    expect(page.locator("#preview .prior-contact, #preview").first).to_contain_text("Region Halland")
    page.get_by_label("Skäl/anteckning").fill("NT-rådet avråder enligt rekommendationslistan")
    page.get_by_role("button", name="Spara kompletteringen och pröva på nytt").click()

    expect(page).to_have_url(re.compile(f"/cases/{case_id}$"))
    expect(page.locator('ol.steps li.done[data-step="completed"]')).to_contain_text("Kompletterat")
    # Now the agreement says: contact the paying region first.
    expect(page.locator('ol.plan li[data-plan="contacted"]')).to_contain_text("nästa")
    expect(page.get_by_role("button", name="Registrera: Kontakt tagen med Region Halland")).to_be_visible()
    with live.api("lakare.vgr") as api:
        history = api.get(f"/api/v1/cases/{case_id}/decisions").json()
        assert [h["decision"]["prior_contact_required"] for h in history] == [None, True]
        assert history[1]["reason"] == "NT-rådet avråder enligt rekommendationslistan"
        assert api.get(f"/api/v1/cases/{case_id}").json()["state"] == "decided"


def test_wrong_password_is_refused_in_swedish(page: Page) -> None:
    log_in(page, "lakare.vgr", "inte-rätt-lösenord")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("alert")).to_have_text("Fel användarnamn eller lösenord.")
    expect(page.get_by_label("Användarnamn")).to_have_value("lakare.vgr")
    page.goto("/cases")  # still not logged in
    expect(page).to_have_url(re.compile(r"/login$"))


def test_a_wrong_value_is_named_in_the_preview(page: Page) -> None:
    log_in(page, "lakare.vgr")
    page.goto("/cases/new?kind=assistive_device")
    expect(field(page, "product.cost_sek")).to_be_hidden()  # not asked until it can matter
    field(page, "care.region").select_option("12")
    field(page, "product.cost_sek").fill("abc")
    error = page.locator('#preview [data-status="invalid"]')
    expect(error).to_have_attribute("data-field", "product.cost_sek")
    expect(error.get_by_role("alert")).to_contain_text("Kostnad (kr)")
    expect(error.get_by_role("alert")).to_contain_text("är inte ett tal")
    # Corrected, the preview decides again.
    field(page, "product.cost_sek").fill("1 250,50")
    expect(page.locator("#preview [data-status]")).not_to_have_attribute("data-status", "invalid")


def test_a_municipality_user_gets_404_for_a_region_case(page: Page, live: Live) -> None:
    with live.api("lakare.vgr") as api:
        created = api.post(
            "/api/v1/cases",
            json={
                "case": {
                    "date": TODAY.isoformat(),
                    "kind": "drug_exception",
                    "patient": {"home_region": "13"},
                    "care": {"region": "14", "referral": False},
                },
                "patient_id": PERSONNUMMER,
            },
        )
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]

    log_in(page, "mas.karlstad")
    expect(page).to_have_url(re.compile(r"/cases$"))
    response = page.goto(f"/cases/{case_id}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Finns inte")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("ärendet finns inte")
    expect(page.get_by_text(PERSONNUMMER)).to_have_count(0)
    # Nor is it in the municipality's case list.
    page.goto("/cases")
    expect(page.locator(f'a[href="/cases/{case_id}"]')).to_have_count(0)


def test_log_out(page: Page) -> None:
    log_in(page, "lakare.vgr")
    expect(page).to_have_url(re.compile(r"/cases$"))
    page.get_by_role("button", name="Logga ut").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="Logga in")).to_be_visible()
    page.goto("/cases/new")
    expect(page).to_have_url(re.compile(r"/login$"))


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("lakare.vgr", "/cases"),
        ("lakare.vgr", "/cases/new?kind=medtech_product"),
        ("admin.vgr", "/admin/registry"),
        ("admin.vgr", "/audit"),
    ],
)
def test_no_page_scrolls_sideways_on_a_phone(page: Page, live: Live, username: str, path: str) -> None:
    """At 390 px wide, long select options, tables and headings stay inside the screen."""
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, username)
    page.goto(path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
