"""The API docs in real headless Chromium with no internet: every request that leaves the
service's own origin is refused, as it would be on an offline machine."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Request, Route, expect

from ordex.config import Settings
from tests.support.browser import chromium_browser, screenshot_path
from tests.support.live import live_service

WAIT_MS = 15_000


async def test_the_api_docs_render_offline_under_their_policy(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", seed_demo=False, execution_enabled=False)
    async with live_service(settings) as live, chromium_browser() as browser:
        left: list[str] = []
        problems: list[str] = []

        async def offline(route: Route, request: Request) -> None:
            if request.url.startswith(live.url) or request.url.startswith(("data:", "blob:")):
                await route.continue_()
            else:
                left.append(request.url)
                await route.abort("internetdisconnected")

        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        await page.route("**/*", offline)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        await page.goto(live.url + "/docs")
        await expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible(
            timeout=WAIT_MS)
        await expect(page.get_by_text("/v1/orders/{order_id}/retry").first).to_be_attached()
        await page.screenshot(path=screenshot_path("api-docs"))
        assert left == [] and problems == []
