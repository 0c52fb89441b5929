"""The trader's web page in real headless Chromium, against the whole service on a loopback port.

Each test keeps screenshots of its key moments in test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from ordex.client import AsyncClient
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.venues.simulated.inprocess import InProcessVenue
from tests.support.browser import chromium_browser, screenshot_path
from tests.support.live import Live, live_service, quiet_venue
from tests.support.proxy import TcpProxy

WAIT_MS = 10_000


@dataclass
class Desk:
    live: Live
    venue: InProcessVenue
    browser: Browser

    async def trader(self, name: str, role: Role = Role.TRADER,
                     cash: str = "1000000") -> tuple[str, AsyncClient]:
        issued = await self.live.services.accounts.create(name, role, Decimal(cash))
        return issued.api_key, AsyncClient(self.live.url, issued.api_key)

    async def page(self, key: str, url: str | None = None) -> Page:
        page = await self.browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors  # type: ignore[attr-defined]
        await page.goto((url or self.live.url) + "/")
        await page.get_by_label("API key").fill(key)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live",
                                                              timeout=WAIT_MS)
        return page


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    settings = Settings(data_dir=tmp_path / "data", seed_demo=False, execution_enabled=True,
                        retry_base_seconds=0.05)
    venue = quiet_venue(5)
    async with live_service(settings, venue) as live, chromium_browser() as browser:
        venue.step()
        yield Desk(live, venue, browser)


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=screenshot_path(name), full_page=True)


def row(page: Page, order_id: str) -> Any:
    return page.locator(f'#blotter tr.order[data-order-id="{order_id}"]')


async def place_limit(page: Page, symbol: str, quantity: str, price: Decimal) -> None:
    """A GTC limit order through the ticket, up to its acceptance."""
    await page.get_by_label("Symbol", exact=True).fill(symbol)
    await page.get_by_label("Quantity (shares)").fill(quantity)
    await page.get_by_label("Order type").select_option("limit")
    await page.get_by_label("Limit price ($)").fill(str(price))
    await page.get_by_label("Time in force").select_option("gtc")
    await page.get_by_role("button", name="Place order").click()
    await expect(page.locator("#t-result")).to_contain_text("Order accepted")


async def order_ids_on_page(page: Page) -> list[str]:
    return await page.locator("#blotter tr.order").evaluate_all(
        "rows => rows.map(r => r.dataset.orderId)")


async def test_sign_in_refuses_a_wrong_key_and_opens_the_screen_with_the_right_one(
        desk: Desk) -> None:
    key, client = await desk.trader("alice")
    page = await desk.browser.new_page()
    await page.goto(desk.live.url + "/")
    await page.get_by_label("API key").fill("ordex_not-a-key")
    await page.get_by_label("API key").press("Enter")
    await expect(page.locator("#signin-error")).to_contain_text("API key")
    await expect(page.locator("#app")).to_be_hidden()
    await page.get_by_label("API key").fill(key)
    await page.get_by_label("API key").press("Enter")
    await expect(page.locator("#who")).to_have_text("alice · trader")
    await expect(page.locator("#conn-text")).to_have_text("Live", timeout=WAIT_MS)
    await expect(page.locator("#account-figures .cash")).to_have_text("$1,000,000.00")
    await shot(page, "signed-in")
    await page.reload()
    await expect(page.locator("#who")).to_have_text("alice · trader")  # kept for the tab
    await client.close()


async def test_a_market_order_from_the_keyboard_reaches_filled_without_reload(
        desk: Desk) -> None:
    desk.venue.set_liquidity("AAPL", depth_levels=5, level_size=Decimal(40))
    key, client = await desk.trader("alice")
    page = await desk.page(key)
    await expect(page.locator("#t-symbol")).to_be_focused()
    await page.keyboard.type("AAPL")
    await expect(page.locator("#t-quote")).to_contain_text("bid $")
    await page.get_by_label("Quantity (shares)").fill("100")
    await page.get_by_label("Max slippage (%, optional)").fill("2")
    await expect(page.locator("#t-estimate")).to_contain_text("Estimated value $")
    await expect(page.locator("#t-estimate")).to_contain_text("buying power left")
    await page.get_by_label("Quantity (shares)").press("Enter")
    await expect(page.locator("#t-result")).to_contain_text("Order accepted")

    [order] = await client.list()
    line = row(page, order["id"])
    await expect(line.locator(".status")).to_have_text("● Filled", timeout=WAIT_MS)
    await expect(line.locator(".col-filled")).to_have_text("100")
    await expect(line.locator(".col-remaining")).to_have_text("0")
    done = await client.get(order["id"])
    await expect(line.locator(".col-avg")).to_contain_text(done["average_price"][:5])

    await line.get_by_role("button", name="Details of buy 100 AAPL").press("Enter")
    await expect(page.locator("tr.detail .limits")).to_contain_text(
        f"max slippage 2% (worst price ${done['slippage_price']})")
    fills = await client.fills(order["id"])
    assert len(fills) >= 3  # 40 a level: the order walked the book
    await expect(page.locator("tr.detail tr.fill")).to_have_count(len(fills))
    await expect(page.locator("tr.detail li.event").last).to_contain_text("Filled")
    await expect(page.locator('#positions tr[data-symbol="AAPL"] .qty')).to_have_text("100")
    await expect(page.locator("#chart .fill-mark.buy")).to_have_count(len(fills),
                                                                      timeout=WAIT_MS)
    await shot(page, "market-order-filled")
    assert page.errors == []  # type: ignore[attr-defined]
    await client.close()


async def test_an_invalid_order_shows_the_message_beside_its_field_and_is_not_sent(
        desk: Desk) -> None:
    key, client = await desk.trader("alice")
    page = await desk.page(key)
    await page.get_by_label("Symbol", exact=True).fill("AAPL")
    await page.get_by_label("Quantity (shares)").fill("-5")
    await page.get_by_role("button", name="Place order").click()
    message = page.locator("#e-quantity")
    await expect(message).to_contain_text("Quantity must be greater than zero")
    await expect(message.locator(".hint")).not_to_be_empty()
    await expect(page.get_by_label("Quantity (shares)")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Quantity (shares)")).to_be_focused()

    await page.get_by_label("Quantity (shares)").fill("10")
    await page.get_by_label("Order type").select_option("limit")
    await page.get_by_label("Limit price ($)").fill("1.00")
    await page.get_by_role("button", name="Place order").click()
    await expect(page.locator("#e-limit_price")).to_contain_text("away from AAPL")
    await expect(page.locator("#e-quantity")).to_be_empty()

    await page.get_by_label("Symbol", exact=True).fill("NOPE")
    await page.get_by_label("Limit price ($)").fill("10")
    await page.get_by_role("button", name="Place order").click()
    await expect(page.locator("#e-symbol")).to_contain_text("NOPE")
    await shot(page, "invalid-order")
    assert await client.list() == []
    await expect(page.locator("#blotter tr.order")).to_have_count(0)
    await client.close()


async def test_a_working_limit_order_is_cancelled_from_its_row(desk: Desk) -> None:
    key, client = await desk.trader("alice")
    page = await desk.page(key)
    quote = await client.quote("MSFT")
    await place_limit(page, "MSFT", "10",
                      (Decimal(quote["bid"]) * Decimal("0.97")).quantize(Decimal("0.01")))
    [order] = await client.list()
    line = row(page, order["id"])
    await expect(line.locator(".status")).to_have_text("○ Accepted")
    await client.wait_for(order["id"], {"accepted"}, within=5)
    await line.get_by_role("button", name="Cancel buy 10 MSFT").click()
    await expect(line.locator(".status")).to_have_text("✕ Cancelled", timeout=WAIT_MS)
    await expect(line.get_by_role("button", name="Cancel buy 10 MSFT")).to_have_count(0)
    assert (await client.get(order["id"]))["status"] == "cancelled"
    await shot(page, "cancelled")
    await client.close()


async def test_a_partial_fill_updates_the_row_live(desk: Desk) -> None:
    desk.venue.set_liquidity("NVDA", depth_levels=1, level_size=Decimal(30))
    key, client = await desk.trader("alice")
    page = await desk.page(key)
    ask = Decimal((await client.quote("NVDA"))["ask"])
    await place_limit(page, "NVDA", "100", ask)
    [order] = await client.list()
    line = row(page, order["id"])
    await expect(line.locator(".status")).to_have_text("◐ Partially filled", timeout=WAIT_MS)
    await expect(line.locator(".col-filled")).to_have_text("30")
    await expect(line.locator(".col-remaining")).to_have_text("70")
    await shot(page, "partially-filled")

    desk.venue.set_liquidity("NVDA", depth_levels=5, level_size=Decimal(40))
    desk.venue.move_market("NVDA", ask - Decimal("1.00"))
    await expect(line.locator(".status")).to_have_text("● Filled", timeout=WAIT_MS)
    await expect(line.locator(".col-remaining")).to_have_text("0")
    await shot(page, "partial-then-filled")
    await client.close()


async def test_the_page_reconnects_after_a_cut_and_catches_up_with_nothing_lost_or_doubled(
        desk: Desk) -> None:
    desk.venue.set_liquidity("AAPL", depth_levels=4, level_size=Decimal(25))
    key, client = await desk.trader("alice")
    port = int(desk.live.url.rsplit(":", 1)[1])
    async with TcpProxy("127.0.0.1", port) as proxy:
        page = await desk.page(key, f"http://127.0.0.1:{proxy.port}")
        first = await client.submit("AAPL", "buy", "60")
        await expect(row(page, first["id"]).locator(".status")).to_have_text(
            "● Filled", timeout=WAIT_MS)

        await proxy.cut()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
        await expect(page.locator("#conn-text")).to_contain_text("Connection lost")
        await shot(page, "connection-lost")
        quote = await client.quote("AAPL")
        resting = await client.submit(
            "AAPL", "buy", "10", type="limit", time_in_force="gtc",
            limit_price=(Decimal(quote["bid"]) * Decimal("0.98")).quantize(Decimal("0.01")))
        while_cut = [await client.submit("AAPL", "sell", "20") for _ in range(2)]
        await client.cancel(resting["id"])
        for order in while_cut:
            await client.wait_for(order["id"], {"filled"}, within=5)
        await client.wait_for(resting["id"], {"cancelled"}, within=5)
        await proxy.restore()

        await expect(page.locator("#conn-text")).to_have_text("Live", timeout=WAIT_MS)
        orders = await client.list()
        for order in orders:
            await expect(row(page, order["id"]).locator(".status")).to_have_attribute(
                "data-status", order["status"], timeout=WAIT_MS)
        assert sorted(await order_ids_on_page(page)) == sorted(o["id"] for o in orders)

        events = [e for o in orders for e in (await client.events(o["id"]))["events"]]
        seqs = sorted(e["seq"] for e in events)
        state = await page.evaluate("({applied: ordex.applied, last: ordex.lastSeq})")
        assert state == {"applied": len(seqs), "last": seqs[-1]}  # each event once, none lost

        line = row(page, while_cut[0]["id"])
        await line.get_by_role("button", name="Details of sell 20 AAPL").click()
        history = page.locator(f'#detail-{while_cut[0]["id"]} li.event')
        wanted = [str(e["seq"]) for e in (await client.events(while_cut[0]["id"]))["events"]]
        await expect(history).to_have_count(len(wanted))
        assert await history.evaluate_all("items => items.map(i => i.dataset.seq)") == wanted
        assert proxy.accepted > 1  # the page really came back through a new connection
        await shot(page, "reconnected")
    await client.close()


async def test_compliance_sees_every_traders_orders_live(desk: Desk) -> None:
    _, alice = await desk.trader("alice")
    _, bob = await desk.trader("bob")
    key, _ = await desk.trader("carol", role=Role.COMPLIANCE)
    page = await desk.page(key)
    await expect(page.locator("#blotter-title")).to_have_text("All traders' orders")
    await expect(page.locator("#ticket")).to_be_hidden()
    a = await alice.submit("AAPL", "buy", "5")
    b = await bob.submit("MSFT", "buy", "5")
    for order, name in ((a, "alice"), (b, "bob")):
        await expect(row(page, order["id"]).locator(".trader-col")).to_have_text(
            name, timeout=WAIT_MS)
    await expect(page.locator("#blotter button.cancel")).to_have_count(0)
    await shot(page, "compliance")
    await alice.close()
    await bob.close()


async def test_every_ticket_field_has_a_label_and_status_is_spelled_out(desk: Desk) -> None:
    key, client = await desk.trader("alice")
    page = await desk.page(key)
    unlabelled = await page.locator("#ticket-form input:not([type=radio]), #ticket-form select"
                                    ).evaluate_all(
        "els => els.filter(e => !e.labels || e.labels.length === 0).map(e => e.id)")
    assert unlabelled == []
    order = await client.submit("AAPL", "buy", "1")
    status = row(page, order["id"]).locator(".status")
    await expect(status).to_have_attribute("data-status", "filled", timeout=WAIT_MS)
    assert (await status.inner_text()).strip().endswith("Filled")  # words, not only a colour
    await client.close()


async def test_a_failed_order_can_be_retried_or_acknowledged_from_its_row(desk: Desk) -> None:
    key, client = await desk.trader("alice")
    page = await desk.page(key)
    desk.venue.faults.update(refuse_sends=8)  # two orders, every attempt refused
    first = await client.submit("AAPL", "buy", "3")
    second = await client.submit("MSFT", "buy", "2")
    for order in (first, second):
        await expect(row(page, order["id"]).locator(".status")).to_have_text(
            "! Failed", timeout=WAIT_MS)
    await expect(row(page, first["id"])).to_contain_text("Could not reach venue SIM")
    await shot(page, "failed-orders")

    await row(page, first["id"]).get_by_role("button", name="Retry buy 3 AAPL").click()
    await expect(page.locator("#notice")).to_contain_text("Sent again as a new order")
    [again] = [o for o in await client.list() if o.get("retry_of") == first["id"]]
    await expect(row(page, again["id"]).locator(".status")).to_have_text(
        "● Filled", timeout=WAIT_MS)
    await expect(row(page, first["id"]).get_by_role("button")).to_have_count(1)  # details only

    await row(page, second["id"]).get_by_role("button", name="Acknowledge buy 2 MSFT").click()
    await expect(row(page, second["id"]).get_by_role("button")).to_have_count(1)
    assert (await client.get(second["id"]))["acknowledged_at"] is not None
    await shot(page, "failed-retried-acknowledged")
    await client.close()


# --- layout: sizes people really use -----------------------------------------------------------

async def sized_page(desk: Desk, key: str, width: int, height: int) -> Page:
    page = await desk.browser.new_page(viewport={"width": width, "height": height})
    await page.goto(desk.live.url + "/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    return page


async def box(page: Page, selector: str) -> dict[str, float]:
    found = await page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return found


BIG_BOOK = {"AAPL": ("125000", "187.1234567891"), "MSFT": ("-48000", "412.9876543219"),
            "NVDA": ("33000", "874.55"), "KO": ("250000", "61.1"), "INTC": ("-90000", "43.21")}


async def test_the_positions_table_fits_the_account_panel_at_1400_px(desk: Desk) -> None:
    issued = await desk.live.services.accounts.create(
        "alice", Role.TRADER, Decimal("98765432.10"), allow_short=True,
        positions={s: (Decimal(q), Decimal(c)) for s, (q, c) in BIG_BOOK.items()})
    page = await sized_page(desk, issued.api_key, 1400, 900)
    await expect(page.locator("#positions tbody tr")).to_have_count(len(BIG_BOOK),
                                                                     timeout=WAIT_MS)
    await shot(page, "positions-1400")
    panel, table = await box(page, "#account-panel"), await box(page, "#positions")
    assert table["x"] >= panel["x"]
    assert table["x"] + table["width"] <= panel["x"] + panel["width"] + 0.5, (table, panel)
    overflow = await page.locator("#account-panel").evaluate(
        "el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0
    page_overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert page_overflow <= 0


async def test_the_blotter_is_in_view_without_scrolling_at_1920_by_1080(desk: Desk) -> None:
    issued = await desk.live.services.accounts.create(
        "alice", Role.TRADER, Decimal("98765432.10"), allow_short=True,
        positions={s: (Decimal(q), Decimal(c)) for s, (q, c) in BIG_BOOK.items()})
    client = AsyncClient(desk.live.url, issued.api_key)
    orders = [await client.submit(s, "buy", "1", type="limit", limit_price=price,
                                  time_in_force="gtc")
              for s, price in (("JPM", "190.00"), ("V", "270.00"), ("WMT", "66.00"))]
    page = await sized_page(desk, issued.api_key, 1920, 1080)
    await expect(page.locator("#blotter tr.order")).to_have_count(len(orders), timeout=WAIT_MS)
    await page.screenshot(path=screenshot_path("blotter-1920x1080"))  # the viewport only
    assert await page.evaluate("window.scrollY") == 0
    for order in orders:
        line = await box(page, f'#blotter tr.order[data-order-id="{order["id"]}"]')
        assert line["y"] >= 0 and line["y"] + line["height"] <= 1080, line
    for panel in ("#ticket", "#chart-panel", "#account-panel"):
        assert (await box(page, panel))["y"] < 1080
    await client.close()


async def test_a_row_opens_on_a_click_anywhere_and_on_its_button(desk: Desk) -> None:
    key, client = await desk.trader("alice")
    page = await desk.page(key)
    order = await client.submit("AAPL", "buy", "2", type="limit", limit_price="180.00",
                                time_in_force="gtc")
    line = row(page, order["id"])
    await expect(line).to_have_count(1, timeout=WAIT_MS)
    detail = page.locator(f'#detail-{order["id"]}')
    await line.locator("td.symbol").click()
    await expect(detail).to_be_visible()
    toggle = line.get_by_role("button", name="Details of buy 2 AAPL")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await line.locator("td.symbol").click()
    await expect(detail).to_have_count(0)
    await toggle.click()
    await expect(detail).to_be_visible()
    await toggle.press("Enter")
    await expect(detail).to_have_count(0)
    await line.get_by_role("button", name="Cancel buy 2 AAPL").click()  # not a toggle
    await expect(line.locator(".status")).to_have_attribute("data-status", "cancelled",
                                                            timeout=WAIT_MS)
    await expect(detail).to_have_count(0)
    await client.close()


async def test_a_fill_in_the_first_price_points_second_is_marked(desk: Desk) -> None:
    """A price point stands for its second (the latest quote in it): a fill earlier in that
    second, as when the quote after a trade replaced the second's first one, is still shown."""
    key, client = await desk.trader("alice")
    page = await desk.page(key)
    marks = await page.evaluate("""() => {
        const box = document.createElement("div");
        chart.draw(box, "MSFT", [{t: 1_000_000_700, price: "420.00"}],
                   [{t: 1_000_000_400, price: "419.90", side: "buy", quantity: "3", venue: "SIM"},
                    {t: 999_999_900, price: "419.00", side: "buy", quantity: "1", venue: "SIM"}]);
        return box.querySelectorAll(".fill-mark.buy").length;
    }""")
    assert marks == 1  # the fill of the point's second; the one a second before is off the chart
    await client.close()


async def test_the_chart_shows_the_last_symbol_traded_while_the_ticket_is_empty(
        desk: Desk) -> None:
    key, client = await desk.trader("alice")
    done = await client.submit("MSFT", "buy", "3")
    await client.wait_for(done["id"], {"filled"})
    page = await desk.page(key)
    await expect(page.locator("#chart-title")).to_have_text("Price — MSFT", timeout=WAIT_MS)
    await expect(page.locator("#chart .fill-mark.buy")).not_to_have_count(0, timeout=WAIT_MS)

    ko = await client.submit("KO", "buy", "4")
    await client.wait_for(ko["id"], {"filled"})
    await expect(page.locator("#chart-title")).to_have_text("Price — KO", timeout=WAIT_MS)
    await shot(page, "chart-last-traded")

    await page.get_by_label("Symbol", exact=True).fill("AAPL")
    await expect(page.locator("#chart-title")).to_have_text("Price — AAPL")
    again = await client.submit("MSFT", "buy", "1")
    await client.wait_for(again["id"], {"filled"})
    await expect(row(page, again["id"]).locator(".status")).to_have_attribute(
        "data-status", "filled", timeout=WAIT_MS)
    await expect(page.locator("#chart-title")).to_have_text("Price — AAPL")  # the ticket's
    await page.get_by_label("Symbol", exact=True).fill("")
    await expect(page.locator("#chart-title")).to_have_text("Price — MSFT")
    await client.close()
