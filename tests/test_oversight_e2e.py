"""End to end in headless Chromium: Region Halland's pharmaceutical unit opens the demo flags,
looks at the top one's plots, takes it up, comments, dismisses it with a reason and exports the
report."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import served
from webapp import PASSWORD, build_app

from vembetalar.oversight import demo as oversight_demo
from vembetalar.security import hash_password
from vembetalar.store.models import User

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
from playwright.sync_api import Browser, Page, expect
from test_e2e_browser import CHROMIUM, log_in, swedish_page
from test_e2e_browser import browser as browser  # the module-wide Chromium fixture, shared

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)
UNIT = "lakemedel.halland"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under uvicorn with the demo's synthetic Halland flags (a smaller set)."""
    root = tmp_path_factory.mktemp("e2e-oversight")
    test_app = build_app(f"sqlite:///{root / 'e2e.db'}", root / "var")
    with test_app.app.state.sessions() as db:
        db.add(
            User(
                username=UNIT,
                full_name="Lotta Läkemedelsenhet",
                role="pharma_unit",
                organisation_id="region:13",
                password_hash=hash_password(PASSWORD),
            )
        )
        db.commit()
        assert oversight_demo.load(db, rows=20_000) > 5
        assert oversight_demo.load(db, rows=20_000) == 0  # idempotent
    try:
        with served(test_app.app) as url:
            yield url
    finally:
        test_app.app.state.db_engine.dispose()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    with swedish_page(browser, base_url, accept_downloads=True) as opened:
        yield opened


def test_the_unit_reviews_the_top_flag_and_exports_the_report(page: Page, tmp_path: Path) -> None:
    log_in(page, UNIT)
    expect(page).to_have_url(re.compile(r"/cases$"))

    page.locator("header nav").get_by_role("link", name="Uppföljning").click()
    expect(page.get_by_role("heading", name="Uppföljning av förskrivning")).to_be_visible()
    rows = page.locator("table.oversight-flags tbody tr")
    expect(rows.first).to_contain_text("ny")
    assert rows.count() > 5

    page.get_by_label("Indikator").select_option("many_prescribers")
    page.get_by_role("button", name="Filtrera").click()
    expect(rows.first).to_contain_text("patient")
    expect(rows.first).to_contain_text("förskrivare och")
    page.get_by_label("Indikator").select_option("")
    page.get_by_role("button", name="Filtrera").click()

    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/oversight/flags/\w+$"))
    expect(page.locator("#plot-series svg rect")).not_to_have_count(0)
    expect(page.locator("#plot-peers line.own")).to_have_count(1)
    expect(page.locator("#flag-status")).to_have_text("ny")

    page.get_by_role("button", name="Ändra status").click()  # ny → under granskning
    expect(page.locator("#flag-status")).to_have_text("under granskning")
    page.locator("form[action$='/comment'] textarea").fill("Begär underlag från vårdcentralen")
    page.get_by_role("button", name="Lägg till kommentar").click()
    expect(page.locator("#flag-history")).to_contain_text("Begär underlag från vårdcentralen")

    page.get_by_label("Ny status").select_option("dismissed")
    page.get_by_role("button", name="Ändra status").click()
    expect(page.locator("#review-error")).to_contain_text("skriv varför")
    page.get_by_label("Ny status").select_option("dismissed")
    page.get_by_label("Kommentar (krävs för att avskriva eller anmäla)").fill("Förklarat av journalen")
    page.get_by_role("button", name="Ändra status").click()
    expect(page.locator("#flag-status")).to_have_text("avskriven")
    expect(page.locator("#flag-history")).to_contain_text("under granskning → avskriven")

    page.get_by_role("link", name="← Alla flaggor").click()
    expect(rows.first.locator("td.status")).to_have_text("avskriven")
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Exportera rapport")).click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    html = saved.read_text(encoding="utf-8")
    assert "<svg" in html and "Förklarat av journalen" in html and "<script" not in html
