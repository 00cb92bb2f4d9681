"""The webSesam reconciliation page in a real headless Chromium, on a phone: the clerk uploads
the export and the result (every kind, wide amounts) stays within 390 px."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import served
from test_invoice_pages import add_user
from test_websesam import DESK_EXPORT, PERIOD, skane_events
from webapp import build_app

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
from playwright.sync_api import expect, sync_playwright
from test_e2e_browser import CHROMIUM_ARGS, log_in

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    desk = build_app(f"sqlite:///{tmp_path / 'e2e.db'}", tmp_path / "var")
    skane_events(desk)
    add_user(desk, "faktura.skane", "invoice_clerk", "region:12")
    try:
        with served(desk.app) as url:
            yield url
    finally:
        desk.app.state.db_engine.dispose()


def test_the_clerk_reconciles_on_a_phone_without_sideways_scrolling(base_url: str, tmp_path: Path) -> None:
    export = tmp_path / "webSesam.csv"
    export.write_bytes(DESK_EXPORT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=base_url, locale="sv-SE")
            context.set_default_timeout(10_000)
            page = context.new_page()
            page.set_viewport_size({"width": 390, "height": 844})
            log_in(page, "faktura.skane")
            page.goto("/invoices")
            page.get_by_role("link", name="Stäm av det som webSesam fakturerar").click()
            expect(page).to_have_url(re.compile(r"/invoices/websesam$"))
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.get_by_label("Period (ÅÅÅÅ-MM)").fill(PERIOD)
            page.get_by_label("Fakturaexport (CSV)").set_input_files(str(export))
            page.get_by_role("button", name="Stäm av").click()
            expect(page.locator("#websesam-outcome")).to_have_text(re.compile("Det finns skillnader"))
            expect(page.get_by_role("heading", name="Belopp skiljer (1)")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            with page.expect_download() as download:
                page.get_by_role("button", name="Ladda ner resultatet (CSV för Excel)").click()
            assert download.value.suggested_filename == f"webSesam-avstamning-{PERIOD}.csv"
        finally:
            browser.close()
