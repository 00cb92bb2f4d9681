"""End to end in headless Chromium on a phone-sized screen (390 px): Halmstad's MAS opens the
stocks, picks a stock, takes out an ampoule for a patient and is told which batch to take; the
pharmaceutical unit sees the shortage dashboard. No page scrolls sideways."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from live_server import served
from webapp import PASSWORD, TODAY, build_app

from vembetalar.security import hash_password
from vembetalar.store.models import Organisation, User
from vembetalar.supply import demo as supply_demo

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
from playwright.sync_api import Browser, Page, expect
from test_e2e_browser import CHROMIUM, log_in, swedish_page
from test_e2e_browser import browser as browser  # the module-wide Chromium fixture, shared

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app with the supply demo (Halland's stocks, levels, an active shortage) and its users."""
    root = tmp_path_factory.mktemp("e2e-supply")
    test_app = build_app(f"sqlite:///{root / 'e2e.db'}", root / "var")
    with test_app.app.state.sessions() as db:
        db.add(Organisation(id="kommun:1380", name="Halmstad (kommun 1380)", kind="kommun"))
        db.flush()
        for username, full_name, role, org in supply_demo.USERS:
            db.add(User(username=username, full_name=full_name, role=role, organisation_id=org,
                        password_hash=hash_password(PASSWORD)))  # fmt: skip
        db.commit()
        supply_demo.load(db, TODAY)
    try:
        with served(test_app.app) as url:
            yield url
    finally:
        test_app.app.state.db_engine.dispose()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    with swedish_page(browser, base_url, viewport=PHONE) as opened:
        yield opened


def no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


def test_a_nurse_withdraws_on_a_phone_and_is_told_which_batch(page: Page) -> None:
    log_in(page, "mas.halmstad")
    page.goto("/supply")
    expect(page.get_by_role("heading", name="Läkemedelsförråd")).to_be_visible()
    no_sideways_scroll(page)
    expect(page.get_by_role("link", name="Hylte 1")).to_have_count(0)  # not Halmstad's
    page.get_by_role("link", name="Dalsbo", exact=True).click()
    expect(page).to_have_url(re.compile(r"/supply/stocks/halmstad-boende-dalsbo$"))
    no_sideways_scroll(page)
    page.get_by_role("link", name="Ta ut läkemedel").click()
    no_sideways_scroll(page)
    product = page.get_by_label("Läkemedel")
    option = product.locator("option").first
    name, before = re.fullmatch(r"(.*) – (\d+) st", option.inner_text().strip()).groups()  # type: ignore[union-attr]
    product.select_option(index=0)
    page.get_by_label("Antal (st)").fill("1")
    page.get_by_label("Patient (pseudonym)").fill("19811228-9874")  # a personnummer: refused
    page.get_by_label("Orsak").fill("Akut insättning")
    page.get_by_role("button", name="Registrera uttag").click()
    expect(page.locator("#withdraw-error")).to_contain_text("personnummer")
    no_sideways_scroll(page)
    page.get_by_label("Patient (pseudonym)").fill("PAT-0042")
    page.get_by_role("button", name="Registrera uttag").click()
    expect(page.locator("#withdraw-done")).to_contain_text("1 st ur batch")
    no_sideways_scroll(page)
    after = page.get_by_label("Läkemedel").locator("option", has_text=name).inner_text()
    assert after.strip().endswith(f"– {int(before) - 1} st")


def test_the_pharmaceutical_unit_sees_the_shortage_on_a_phone(page: Page) -> None:
    log_in(page, "lakemedel.halland")
    page.goto("/supply/shortages")
    shortage = page.locator("section.shortage").first
    expect(shortage.get_by_role("heading", level=2)).to_contain_text("Morfin Demo 10 mg/ml 10 x 1 ml")
    expect(shortage.locator("table.affected tbody tr")).to_have_count(35)  # every Halland stock keeps it
    expect(shortage.locator("p.dose-patients")).to_contain_text("dospatienter")
    expect(shortage.locator("ol.substitutes li").first).to_contain_text("Morfin Demo 10 mg/ml 5 x 1 ml")
    expect(shortage.locator("ol.substitutes")).not_to_contain_text(
        "Oxikodon Demo 10 mg/ml 5 x 1 ml"
    )  # in shortage
    no_sideways_scroll(page)
    page.goto("/supply")
    no_sideways_scroll(page)
