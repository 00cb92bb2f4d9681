"""The desk as its users meet it (issue 11) in a real headless Chromium: amounts as Swedes type
them, said back while typing; no internal names on any page; the next step with whom.

Fixtures (the served app, the browser, a fresh page per test) come from test_e2e_browser.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

# The fixtures (browser, live, page) by their own names: pytest finds them in this module.
from test_e2e_browser import CHROMIUM, browser, field, live, log_in, page  # noqa: F401

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def test_twelve_thousand_with_a_dot_is_twelve_thousand_and_said_back(page: Page) -> None:  # noqa: F811
    log_in(page, "hjalpmedel.skane")
    page.goto("/cases/new?kind=assistive_device")
    field(page, "care.region").select_option("12")
    field(page, "patient.home_region").select_option("07")
    cost = field(page, "product.cost_sek")
    expect(cost).to_be_visible()
    cost.fill("12.000")
    echo = page.locator("#echo-f-product-cost_sek")
    expect(echo).to_have_text("= 12\u00a0000\u00a0kr")
    expect(cost).to_have_attribute("aria-describedby", re.compile(r"\becho-f-product-cost_sek\b"))
    expect(page.locator("#preview .first")).to_contain_text("kontakta Region Kronoberg")
    # Below the limit no contact is needed; the dot-decimal is refused beside the field.
    cost.fill("9 999,99")
    expect(echo).to_have_text("= 9\u00a0999,99\u00a0kr")
    expect(page.locator("#preview .first")).to_have_count(0)
    cost.fill("12.5")
    expect(echo).to_contain_text("har punkt som decimaltecken: skriv 12,5 kr")
    expect(page.locator('#preview [data-status="invalid"]')).to_contain_text("Kostnad (kr)")
