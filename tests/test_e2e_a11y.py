"""Every page of the desk in Chromium, as each kind of user reaches it (issue 11, items 4 and 8):
axe-core (vendored in tests/vendor/axe-core, never a CDN) finds no serious or critical WCAG 2.1 AA
violation, and at 390 px wide no page scrolls sideways. The pages are the ones the crawl of
test_desk_crawl follows, on the demo's data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from desk_crawl import Demo, crawl, demo_app
from live_server import served
from playwright.sync_api import Browser, Page, sync_playwright
from test_e2e_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
#: One user of each kind, in four organisations.
USERS = ["lakare.vgr", "hjalpmedel.skane", "faktura.halland", "mas.karlstad", "admin.vgr"]
RUN_AXE = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    resultTypes: ["violations"],
  });
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => `${v.impact} ${v.id}: ${v.help} — `
      + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
}"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Demo, str]]:
    app = demo_app(tmp_path_factory.mktemp("a11y"))
    try:
        with served(app.app) as base_url:
            yield app, base_url
    finally:
        app.app.state.db_engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _logged_in(browser: Browser, base_url: str, demo: Demo, username: str) -> Page:
    # The app's CSP allows no inline script; axe is injected by the test, not by the page.
    context = browser.new_context(base_url=base_url, locale="sv-SE", bypass_csp=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(demo.logins[username].password)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url("**/cases")
    return page


@pytest.mark.parametrize("username", USERS)
def test_every_page_passes_axe_and_fits_a_phone(
    demo: tuple[Demo, str], chromium: Browser, username: str
) -> None:
    app, base_url = demo
    paths = [path for path, _ in crawl(app.client(username))]
    assert len(paths) >= 5
    page = _logged_in(chromium, base_url, app, username)
    axe = AXE.read_text(encoding="utf-8")
    problems: list[str] = []
    try:
        for path in paths:
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(path)
            page.evaluate(axe)
            problems += [f"{path}: {v}" for v in page.evaluate(RUN_AXE)]
            page.set_viewport_size({"width": 390, "height": 844})
            wide = page.evaluate("document.documentElement.scrollWidth")
            if wide > 390:
                problems.append(f"{path}: {wide} px bred vid 390 px")
    finally:
        page.context.close()
    assert problems == [], "\n".join(problems)


def test_axe_is_vendored_and_finds_what_it_should(chromium: Browser) -> None:
    """The vendored axe runs offline and does fail a page without labels or contrast."""
    assert shutil.which("chromium") and AXE.read_bytes().startswith(b"/*! axe v4.14.1")
    context = chromium.new_context()
    page = context.new_page()
    page.set_content(
        '<html lang="sv"><title>t</title><main><input><p style="color:#ccc">grå</p></main></html>'
    )
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found = " ".join(page.evaluate(RUN_AXE))
    context.close()
    assert "label" in found and "color-contrast" in found


def _luminance(rgb: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(x) for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def test_inputs_have_borders_of_3_to_1_a_skip_link_and_the_current_page(
    demo: tuple[Demo, str], chromium: Browser
) -> None:
    app, base_url = demo
    page = _logged_in(chromium, base_url, app, "lakare.vgr")
    try:
        page.goto("/cases/new")
        for selector in ("#case-form input[type=date]", "#case-form select", "#case-form textarea"):
            border = page.locator(selector).first.evaluate("e => getComputedStyle(e).borderTopColor")
            background = page.locator(selector).first.evaluate("e => getComputedStyle(e).backgroundColor")
            light, dark = sorted((_luminance(border), _luminance(background)), reverse=True)
            assert (light + 0.05) / (dark + 0.05) >= 3, (selector, border, background)
        current = page.locator('header nav a[aria-current="page"]')
        assert current.count() == 1 and current.inner_text() == "Nytt ärende"
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Hoppa till innehållet")
        assert skip.evaluate("e => e === document.activeElement") and skip.is_visible()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        page.goto("/agreements")
        assert page.locator('header nav a[aria-current="page"]').inner_text() == "Avtal"
    finally:
        page.context.close()
