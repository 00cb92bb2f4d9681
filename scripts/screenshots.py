"""Screenshots of the desk's main pages at 1280 px and 390 px for the README's tour
(docs/screenshots/), on the demo's data in Debian's Chromium: `.venv/bin/python scripts/screenshots.py`."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from desk_crawl import demo_app  # noqa: E402
from live_server import served  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from test_e2e_browser import CHROMIUM_ARGS  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
WIDTHS = {"1280": (1280, 900), "390": (390, 844)}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    demo = demo_app(Path(tempfile.mkdtemp()))
    with served(demo.app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        for username, shots in {
            "lakare.vgr": ["cases", "case", "print", "agreements"],
            "hjalpmedel.skane": ["new"],
            "admin.vgr": ["audit"],
        }.items():
            for width, (w, h) in WIDTHS.items():
                page = browser.new_context(
                    base_url=base, locale="sv-SE", viewport={"width": w, "height": h}
                ).new_page()
                page.goto("/login")
                page.get_by_label("Användarnamn").fill(username)
                page.get_by_label("Lösenord").fill(demo.logins[username].password)
                page.get_by_role("button", name="Logga in").click()
                page.wait_for_url(re.compile(r"/cases$"))
                case = re.search(r'href="(/cases/[0-9a-f-]{36})"', page.content())
                for shot in shots:
                    if shot == "cases":
                        page.goto("/cases")
                    elif shot == "case" and case:
                        page.goto(case.group(1))
                    elif shot == "print" and case:
                        page.goto(case.group(1) + "/print")
                    elif shot == "agreements":
                        page.goto("/agreements")
                    elif shot == "audit":
                        page.goto("/audit")
                    elif shot == "new":
                        page.goto("/cases/new?kind=assistive_device")
                        page.locator('#case-form [name="care.region"]').select_option("12")
                        page.locator('#case-form [name="patient.home_region"]').select_option("07")
                        page.locator('#case-form [name="product.cost_sek"]').fill("12.000")
                        page.locator("#preview .first").wait_for()
                        page.locator("#echo-f-product-cost_sek").filter(has_text="12").wait_for()
                    page.screenshot(path=str(OUT / f"{shot}-{width}.png"), full_page=shot != "new")
                page.context.close()
        browser.close()


if __name__ == "__main__":
    main()
