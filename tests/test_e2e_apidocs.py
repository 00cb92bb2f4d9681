"""The API docs page in a real headless Chromium, under the app's strict CSP.

Swagger UI's script and style come from the installed package (fastapi-offline), its starter
from our /static; nothing from a CDN, no inline script. The page must render the operations
list — before, the CSP blocked the CDN and the page stayed blank. The docs are public (like the
OpenAPI description), so no login is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import served
from test_e2e_browser import CHROMIUM, CHROMIUM_ARGS
from webapp import build_app

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
from playwright.sync_api import expect, sync_playwright

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    """The real app under uvicorn in a background thread, on 127.0.0.1 and a free port."""
    test_app = build_app(f"sqlite:///{tmp_path / 'docs.db'}", tmp_path / "var")
    try:
        with served(test_app.app) as url:
            yield url
    finally:
        test_app.app.state.db_engine.dispose()


def test_swagger_ui_renders_the_operations_under_the_csp(base_url: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=base_url, locale="sv-SE")
            context.set_default_timeout(15_000)
            page = context.new_page()
            outside: list[str] = []
            violations: list[str] = []
            page.on(
                "request",
                lambda request: None if request.url.startswith(base_url) else outside.append(request.url),
            )
            page.on(
                "console",
                lambda message: (
                    violations.append(message.text) if "Content Security Policy" in message.text else None
                ),
            )
            response = page.goto("/api/v1/docs")
            assert response is not None and response.status == 200
            assert "default-src 'self'" in response.headers["content-security-policy"]

            expect(page.locator(".swagger-ui .info .title")).to_contain_text("vembetalar")
            operations = page.locator(".opblock")
            expect(operations.first).to_be_visible()
            assert operations.count() >= 10
            decide = page.locator(".opblock-post").filter(has_text="/api/v1/decisions")
            expect(decide).to_have_count(1)
            expect(decide).to_contain_text("Avgör ett ärende")
            paths = page.locator(".opblock-get .opblock-summary-path")
            expect(paths.filter(has_text=re.compile(r"^/api/v1/tokens$"))).to_have_count(1)

            # An operation opens and shows its parameters (the UI works, not just draws).
            decide.locator(".opblock-summary").click()
            expect(decide.locator(".opblock-body")).to_be_visible()
            assert outside == [], f"the docs page fetched from elsewhere: {outside}"
            assert violations == [], violations
        finally:
            browser.close()
