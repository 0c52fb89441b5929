"""ordex against a FIX 4.4 venue that is neither QuickFIX nor ordex's own: ``CoreVenue``
(tests/support/core_venue.py, on the fixcore engine) supports only the core order flow and
answers mass status, trade capture and market data requests with BusinessMessageReject (35=j).

ordex trades with it (fills, rests, cancels), learns what it lacks without ever waiting on it,
says so in ``/readyz``, ``GET /v1/venues`` and the order preview, and recovers fills it missed
(link cut, ordex restarted) from the order status answers' CumQty and AvgPx: booked once, never
doubled, not even when the venue sends the original reports late."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import quickfix as fix

from ordex.client import AsyncClient
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.services.demo import demo_instruments
from ordex.venues.base import Capability
from ordex.venues.fix.adapter import FixVenue
from tests.support.core_venue import CoreVenue
from tests.support.live import Live, live_service
from tests.support.postgres import free_port
from tests.support.proxy import TcpProxy

FINAL = {"filled", "cancelled", "rejected", "expired", "failed"}
FAST = {"execution_enabled": True, "retry_base_seconds": 0.2, "ack_timeout_seconds": 0.5,
        "stall_check_seconds": 0.5, "order_timeout_seconds": 10}
SYMBOLS = ("AAPL", "MSFT", "KO", "INTC")
PRICES = {i.symbol: i.reference_price for i in demo_instruments() if i.symbol in SYMBOLS}
CENT = Decimal("0.01")


@dataclass
class Desk:
    venue: CoreVenue
    proxy: TcpProxy
    settings: Settings
    live: Live
    ordex: AsyncClient
    key: str

    @property
    def fix(self) -> FixVenue:
        engine = self.live.services.engine
        assert engine is not None and isinstance(engine.venue, FixVenue)
        return engine.venue

    async def logged_on(self, within: float = 30.0) -> None:
        # A reconnect that lands as the link comes back may wait out QuickFIX's 10 s logon
        # timeout before the next attempt.
        assert await self.fix.wait_logged_on(within), "the FIX session did not come back"
        await self.venue.wait_logged_on(within)

    async def resting(self, symbol: str, quantity: str, below: str = "0.95") -> dict[str, Any]:
        limit = (PRICES[symbol] * Decimal(below)).quantize(CENT)
        order = await self.ordex.submit(symbol, "buy", quantity, type="limit",
                                        limit_price=str(limit), time_in_force="gtc")
        await self.at_venue(order["id"])
        return order

    async def at_venue(self, order_id: str, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while (await self.ordex.get(order_id))["routing"] != "at_venue":  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    async def filled(self, order_id: str, quantity: str, within: float = 15.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                order = await self.ordex.get(order_id)
                if Decimal(order["filled_quantity"]) == Decimal(quantity):
                    return order
                await asyncio.sleep(0.05)


def settings_for(data_dir: Path, port: int) -> Settings:
    return Settings(data_dir=data_dir, seed_demo=False, venue=f"127.0.0.1:{port}",
                    venue_name="CORE", venue_sender_comp_id="ORDEXCORE", venue_heartbeat=1,
                    venue_request_timeout=1.0, venue_logon_timeout=10, **FAST)


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    venue = CoreVenue(tmp_path / "core", port=free_port(), client_comp_id="ORDEXCORE",
                      prices=dict(PRICES))
    await venue.start()
    try:
        async with TcpProxy("127.0.0.1", venue.port) as proxy:
            settings = settings_for(tmp_path / "ordex", proxy.port)
            async with live_service(settings) as live:
                issued = await live.services.accounts.create("alice", Role.TRADER,
                                                             Decimal("1000000"))
                async with AsyncClient(live.url, issued.api_key) as ordex:
                    desk = Desk(venue, proxy, settings, live, ordex, issued.api_key)
                    await desk.logged_on()
                    yield desk
            await gone(settings)
    finally:
        await venue.stop()


async def gone(settings: Settings) -> None:
    """QuickFIX keeps one session per id in a process: wait until the stopped one is gone."""
    sid = fix.SessionID("FIX.4.4", settings.venue_sender_comp_id, "CORE")
    for _ in range(100):
        if fix.Session.lookupSession(sid) is None:
            return
        await asyncio.sleep(0.05)


async def fills_of(desk: Desk, order_id: str) -> list[dict[str, Any]]:
    return await desk.ordex.fills(order_id)


def assert_agrees(order: dict[str, Any], venue: CoreVenue, fills: list[dict[str, Any]]) -> None:
    """ordex's filled quantity, average price and fills are the venue's."""
    at_venue = venue.orders[order["id"]]
    assert Decimal(order["filled_quantity"]) == at_venue.cum
    assert Decimal(order["average_price"]).quantize(Decimal("0.0001")) == \
        at_venue.avg.quantize(Decimal("0.0001"))
    assert sum(Decimal(f["quantity"]) for f in fills) == at_venue.cum
    assert sum(Decimal(f["quantity"]) * Decimal(f["price"]) for f in fills).quantize(CENT) == \
        at_venue.notional.quantize(CENT)


async def test_orders_fill_rest_and_cancel_and_trading_never_waits_for_mass_status(
        desk: Desk) -> None:
    started = asyncio.get_running_loop().time()
    market = await desk.ordex.submit("AAPL", "buy", "10")
    done = await desk.ordex.wait_for(market["id"], FINAL, within=5)
    assert done["status"] == "filled" and Decimal(done["average_price"]) == PRICES["AAPL"]
    assert asyncio.get_running_loop().time() - started < 3.0

    rest = await desk.resting("MSFT", "20")
    assert (await desk.ordex.get(rest["id"]))["status"] == "accepted"
    await desk.ordex.cancel(rest["id"])
    cancelled = await desk.ordex.wait_for(rest["id"], FINAL, within=5)
    assert cancelled["status"] == "cancelled" and cancelled["filled_quantity"] == "0"
    assert not desk.venue.orders[rest["id"]].open

    through = await desk.resting("KO", "30")
    desk.venue.set_price("KO", PRICES["KO"] * Decimal("0.90"))
    filled = await desk.ordex.wait_for(through["id"], FINAL, within=5)
    assert filled["status"] == "filled"
    assert_agrees(filled, desk.venue, await fills_of(desk, through["id"]))

    # Only the core messages reached the venue's order flow; the rest was refused with 35=j.
    assert set(desk.venue.received) - {"D", "F", "G", "H"} <= {"AF", "AD", "x", "V"}
    assert {"AF", "AD", "x"} <= set(desk.venue.rejected)
    assert desk.venue.received.count("AF") == 1  # asked once, then never again


async def test_missing_capabilities_are_shown_and_never_stop_trading(desk: Desk) -> None:
    caps = desk.fix.capabilities
    for capability in Capability:
        assert caps.state(capability).supported is False
        assert "35=j BusinessMessageReject" in caps.state(capability).how
    headers = {"Authorization": f"Bearer {desk.key}"}
    async with httpx.AsyncClient(base_url=desk.live.url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        details = ready.json()["venue_details"]["CORE"]
        assert details["session"] == {"state": "connected", "problem": None, "hint": None}
        assert any("order mass status (35=AF)" in n and "35=H" in n for n in details["notices"])
        assert any("CumQty" in n for n in details["notices"])

        venues = (await http.get("/v1/venues", headers=headers)).json()["venues"]
        assert [v["name"] for v in venues] == ["CORE"]
        assert venues[0]["session"]["state"] == "connected"
        mass = venues[0]["capabilities"]["mass_status"]
        assert mass["supported"] is False and "unsupported message type AF" in mass["how"]
        assert mass["learnt_at"] is not None
        assert (await http.get("/v1/venues")).status_code == 401

        preview = (await http.post("/v1/orders/preview", headers=headers, json={
            "symbol": "AAPL", "side": "buy", "quantity": "5", "type": "market"})).json()
        assert preview["accepted"] is True
        assert [n["code"] for n in preview["notices"]] == ["no_market_data"]
        assert "reference price" in preview["notices"][0]["message"]
        assert Decimal(preview["estimate"]["unit_price"]) >= PRICES["AAPL"]


async def test_fills_missed_while_the_link_is_down_come_from_the_status_answers(
        desk: Desk) -> None:
    whole = await desk.resting("AAPL", "10")
    part = await desk.resting("MSFT", "20")
    idle = await desk.resting("KO", "15")
    await desk.proxy.cut()
    await desk.venue.wait_logged_out()
    desk.venue.fill(whole["id"], Decimal(4), Decimal("180.10"))
    desk.venue.fill(whole["id"], Decimal(6), Decimal("180.37"))
    desk.venue.fill(part["id"], Decimal(5), Decimal("401.13"))
    await desk.proxy.restore()
    await desk.logged_on()

    recovered = await desk.filled(whole["id"], "10")
    assert recovered["status"] == "filled"
    assert_agrees(recovered, desk.venue, await fills_of(desk, whole["id"]))
    partial = await desk.filled(part["id"], "5")
    assert partial["status"] == "partially_filled"
    assert_agrees(partial, desk.venue, await fills_of(desk, part["id"]))
    assert (await desk.ordex.get(idle["id"]))["filled_quantity"] == "0"
    before = await desk.ordex.account()

    # Reconciling again, and the venue sending the original reports late, book nothing more.
    engine = desk.live.services.engine
    assert engine is not None
    await engine.recovery.reconcile(desk.live.services.clock.now())
    assert len(desk.venue.late) == 3
    await desk.venue.deliver_late()
    await asyncio.sleep(1.0)
    for order_id in (whole["id"], part["id"]):
        fills = await fills_of(desk, order_id)
        assert len(fills) == 1  # one fill made of CumQty/AvgPx; the late reports added none
        assert_agrees(await desk.ordex.get(order_id), desk.venue, fills)
    assert (await desk.ordex.account())["cash"] == before["cash"]

    # The rest of the partly filled order fills as usual, live.
    desk.venue.set_price("MSFT", PRICES["MSFT"] * Decimal("0.90"))
    done = await desk.filled(part["id"], "20")
    assert done["status"] == "filled"
    assert_agrees(done, desk.venue, await fills_of(desk, part["id"]))
    positions = {p["symbol"]: Decimal(p["quantity"]) for p in await desk.ordex.positions()}
    assert positions == {"AAPL": Decimal(10), "MSFT": Decimal(20)}


async def test_fills_made_while_ordex_is_down_are_recovered_on_restart(tmp_path: Path) -> None:
    venue = CoreVenue(tmp_path / "core", port=free_port(), name="CORE",
                      client_comp_id="ORDEXCORE", prices=dict(PRICES))
    await venue.start()
    settings = settings_for(tmp_path / "ordex", venue.port)
    try:
        async with live_service(settings) as first:
            issued = await first.services.accounts.create("bob", Role.TRADER, Decimal("500000"))
            async with AsyncClient(first.url, issued.api_key) as ordex:
                engine = first.services.engine
                assert engine is not None and isinstance(engine.venue, FixVenue)
                assert await engine.venue.wait_logged_on(15)
                limit = str((PRICES["INTC"] * Decimal("0.95")).quantize(CENT))
                order = await ordex.submit("INTC", "buy", "50", type="limit", limit_price=limit,
                                           time_in_force="gtc")
                async with asyncio.timeout(10):
                    while (await ordex.get(order["id"]))["routing"] != "at_venue":  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
        await gone(settings)
        await venue.wait_logged_out()
        venue.fill(order["id"], Decimal(30), Decimal(limit))
        venue.fill(order["id"], Decimal(20), Decimal(limit) - Decimal("0.07"))

        async with live_service(settings) as second:
            async with AsyncClient(second.url, issued.api_key) as ordex:
                async with asyncio.timeout(15):
                    while (now := await ordex.get(order["id"]))["status"] != "filled":  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                assert_agrees(now, venue, await ordex.fills(order["id"]))
                assert (await ordex.positions())[0]["quantity"] == "50"
        await gone(settings)
    finally:
        await venue.stop()
