"""Chromium: a Skåne prescriber takes an incontinence case through the Sesam LMN registration to
the hand-out, and the desk refuses the hand-out before VO Hjälpmedel's go-ahead."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from live_server import served
from test_api import create
from test_handoffs import INCONTINENCE, PNR, REQUEST
from webapp import build_app

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
from playwright.sync_api import Browser, Page, expect
from test_e2e_browser import CHROMIUM, log_in, swedish_page
from test_e2e_browser import browser as browser  # the module-wide Chromium fixture, shared

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)


@pytest.fixture(scope="module")
def served_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The real app under uvicorn and one Skåne incontinence case of a Värmland patient."""
    root = tmp_path_factory.mktemp("e2e-handoffs")
    test_app = build_app(f"sqlite:///{root / 'e2e.db'}", root / "var")
    try:
        with served(test_app.app) as url:
            token = test_app.tokens["hjalpmedel.skane"]
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10
            ) as skane:
                case = create(skane, INCONTINENCE, patient_id=PNR, product_name="Inkontinensskydd")
            yield url, case["id"]
    finally:
        test_app.app.state.db_engine.dispose()


@pytest.fixture
def page(browser: Browser, served_case: tuple[str, str]) -> Iterator[Page]:
    with swedish_page(browser, served_case[0], accept_downloads=True) as opened:
        yield opened


def test_incontinence_case_goes_through_registration_to_hand_out(
    page: Page, served_case: tuple[str, str]
) -> None:
    case_id = served_case[1]
    log_in(page, "hjalpmedel.skane")
    expect(page).to_have_url(re.compile(r"/cases$"))

    page.goto(f"/cases/{case_id}")

    # The hand-out waits, quoting the agreement; no delivery form is offered yet.
    delivered = page.locator('[data-plan="delivered"]')
    expect(delivered).to_contain_text("förrän VO Hjälpmedel har gett klartecken")
    expect(page.get_by_role("button", name=re.compile("Registrera: Levererat"))).to_have_count(0)

    # The registration request, printed for fax (no mail server in the test).
    for name, value in REQUEST.items():
        page.locator(f'input[name="{name}"]').fill(value)
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Skriv ut för fax")).click()
    assert download.value.suggested_filename == "registrering-sesam.pdf"

    page.goto(f"/cases/{case_id}")
    expect(page.locator('[data-plan="registration_sent"]')).to_contain_text("klart", ignore_case=True)
    page.get_by_label(re.compile("Klartecken från")).fill("Kim, Hjälpmedel Kundtjänst")
    page.get_by_role("button", name="Registrera klartecken").click()
    expect(page.locator("ol.steps")).to_contain_text(
        "Registrerad i Sesam LMN – klartecken från VO Hjälpmedel"
    )

    form = page.locator("form.line-form")
    form.get_by_label(re.compile("Datum")).fill("2025-09-10")
    form.get_by_label(re.compile("Antal")).fill("1")
    form.get_by_label(re.compile("À-pris")).fill("900")
    form.get_by_role("button", name=re.compile("Registrera: Levererat")).click()
    expect(page.locator("ol.steps")).to_contain_text("Levererat/utlämnat")
