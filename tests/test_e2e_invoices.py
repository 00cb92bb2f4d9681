"""End to end in headless Chromium: VGR's invoice clerk runs the month, opens the invoice,
downloads the e-invoice (which passes the official PEPPOL rules) and marks it sent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import served
from peppol_check import fatal_findings
from test_api import HALLAND_AT_VGR, create, take
from test_billing_run import DEMO_REGISTRY, line
from webapp import PASSWORD, build_app

from vembetalar.billing.registry import apply_registry, read_registry
from vembetalar.security import hash_password
from vembetalar.store.models import User

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
from playwright.sync_api import Browser, Page, expect
from test_e2e_browser import CHROMIUM, log_in, swedish_page
from test_e2e_browser import browser as browser  # the module-wide Chromium fixture, shared

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)
CLERK = "faktura.vgr"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under uvicorn with the demo registry, a VGR invoice clerk and one dispensing
    of a Halland patient at VGR waiting to be invoiced (bilaga 2)."""
    root = tmp_path_factory.mktemp("e2e-invoices")
    test_app = build_app(f"sqlite:///{root / 'e2e.db'}", root / "var")
    with test_app.app.state.sessions() as db:
        apply_registry(db, read_registry(DEMO_REGISTRY))
        db.add(
            User(
                username=CLERK,
                full_name="Frida Faktura",
                role="invoice_clerk",
                organisation_id="region:14",
                password_hash=hash_password(PASSWORD),
            )
        )
        db.commit()
    try:
        with served(test_app.app) as url:
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {test_app.tokens['lakare.vgr']}"}, timeout=10
            ) as vgr:
                case_id = create(vgr, HALLAND_AT_VGR, patient_id="19811228-9874")["id"]
                take(vgr, case_id, "dispensed", line=line())
            yield url
    finally:
        test_app.app.state.db_engine.dispose()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    with swedish_page(browser, base_url, accept_downloads=True) as opened:
        yield opened


def test_the_clerk_runs_the_month_downloads_the_e_invoice_and_marks_it_sent(
    page: Page, tmp_path: Path
) -> None:
    log_in(page, CLERK)
    expect(page).to_have_url(re.compile(r"/cases$"))

    page.locator("header nav").get_by_role("link", name="Fakturor").click()
    expect(page.get_by_role("heading", name="Fakturor", exact=True)).to_be_visible()
    expect(page.get_by_text("Inga utgående fakturor")).to_be_visible()

    page.get_by_label("Period (ÅÅÅÅ-MM)").first.fill("2025-09")
    # A run over a large month takes a while: the button is disabled (no second run) and the
    # status line says it is working. Held back here by a listener that stops the submission.
    page.evaluate("document.addEventListener('submit', (e) => e.preventDefault(), {once: true})")
    run_button = page.get_by_role("button", name="Skapa fakturor")
    run_button.click()
    expect(run_button).to_be_disabled()
    expect(page.get_by_role("status").filter(has_text="Fakturakörningen pågår")).to_be_visible()
    page.reload()
    page.get_by_label("Period (ÅÅÅÅ-MM)").first.fill("2025-09")
    page.get_by_role("button", name="Skapa fakturor").click()
    report = page.locator("section.run-report")
    expect(report).to_contain_text("1 faktura skapad")
    # The list below shows the new draft; the totals table counts it.
    expect(page.locator("table.invoices")).to_contain_text("Utkast")
    expect(page.locator("table.totals")).to_contain_text("Region Halland")
    expect(page.locator("svg.chart rect")).to_have_count(2)

    report.get_by_role("link", name="F14-000001").click()
    expect(page).to_have_url(re.compile(r"/invoices/\d+$"))
    expect(page.get_by_role("heading", name=re.compile("Faktura F14-000001"))).to_be_visible()
    expect(page.locator(".buyer-reference")).to_have_text("ZZXXX098")
    expect(page.locator(".invoice-status")).to_have_text("Utkast")

    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("E-faktura")).click()
    download = download_info.value
    assert download.suggested_filename == "F14-000001.xml"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert fatal_findings(saved.read_bytes()) == []

    page.get_by_role("button", name="Markera som skickad").click()
    expect(page.locator(".invoice-status")).to_have_text("Skickad")
    expect(page.locator("ol.invoice-history")).to_contain_text("Utkast → Skickad")
    expect(page.get_by_role("button", name="Markera som betald")).to_be_visible()
