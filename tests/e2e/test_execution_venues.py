"""The execution acceptance cases against both venues: the in-process simulated exchange and
``ordex venue`` reached over TCP with FIX 4.4, so that network failures are real socket ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordex.client import AsyncClient
from ordex.config import Settings
from ordex.domain.accounts import Role
from tests.support.control import AdminControl, InProcessControl, VenueControl
from tests.support.live import FINAL, Live, eventually, live_service, quiet_venue
from tests.support.venue_process import VenueProcess


@dataclass
class Desk:
    live: Live
    control: VenueControl

    async def trader(self, name: str, cash: str = "1000000") -> AsyncClient:
        issued = await self.live.services.accounts.create(name, Role.TRADER, Decimal(cash))
        return AsyncClient(self.live.url, issued.api_key)


@pytest.fixture(params=["inprocess", "fix"])
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    settings = Settings(data_dir=tmp_path / "ordex", seed_demo=False, execution_enabled=True)
    if request.param == "inprocess":
        venue = quiet_venue(11)
        async with live_service(settings, venue) as live:
            yield Desk(live, InProcessControl(venue))
        return
    process = VenueProcess(tmp_path / "venue", seed=11, tick_seconds=0)
    process.start()
    try:
        await process.admin("POST", "/faults", {})
        wired = settings.model_copy(update={"venue": f"127.0.0.1:{process.port}"})
        async with live_service(wired) as live:
            await wait_logged_on(live)
            yield Desk(live, AdminControl(process))
    finally:
        process.stop()


async def wait_logged_on(live: Live) -> None:
    engine = live.services.engine
    assert engine is not None
    for _ in range(200):
        if getattr(engine.venue, "logged_on", True):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the FIX session never logged on")


async def resting_at_venue(ordex: AsyncClient, order_id: str) -> dict[str, Any]:
    """The order once the venue has acknowledged it (a busy machine can take a while)."""

    async def acknowledged() -> dict[str, Any] | None:
        now = await ordex.get(order_id)
        return now if now["routing"] == "at_venue" else None

    now = await eventually(acknowledged)
    assert now is not None, f"order {order_id} never reached the venue"
    return now


def total(fills: list[dict[str, Any]], key: str) -> Decimal:
    return sum((Decimal(f[key]) for f in fills), Decimal(0))


async def test_market_order_fills_in_parts_and_moves_the_position(desk: Desk) -> None:
    await desk.control.set_liquidity("AAPL", 5, Decimal(30))
    ordex = await desk.trader("alice", cash="100000")
    seen: list[dict[str, Any]] = []

    async def follow() -> None:
        stream = ordex.stream(0)
        async for event in stream:
            seen.append(event)
            if event["status"] == "filled":
                break
        await stream.aclose()

    watcher = asyncio.create_task(follow())
    await asyncio.sleep(0.1)
    order = await ordex.submit("AAPL", "buy", "100")
    await asyncio.wait_for(watcher, 10)
    assert [e["type"] for e in seen].count("partially_filled") >= 3
    fills = await ordex.fills(order["id"])
    assert total(fills, "quantity") == 100 and len(fills) >= 4
    positions = {p["symbol"]: p["quantity"] for p in await ordex.positions()}
    assert positions["AAPL"] == "100"
    notional = sum((Decimal(f["quantity"]) * Decimal(f["price"]) for f in fills), Decimal(0))
    done = await ordex.get(order["id"])
    assert Decimal(done["average_price"]) == notional / 100
    assert all(f["venue"] == "SIM" and Decimal(f["commission"]) > 0 for f in fills)
    cash = Decimal((await ordex.account())["cash"])
    assert cash == 100000 - notional - total(fills, "commission")
    venue_view = await desk.control.order(order["id"])
    assert venue_view is not None and venue_view["filled_quantity"] == "100"
    await ordex.close()


async def test_resting_limit_fills_when_the_market_moves_through(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    order = await ordex.submit("KO", "buy", "10", type="limit", limit_price="62.00",
                               time_in_force="gtc")
    now = await resting_at_venue(ordex, order["id"])
    assert now["status"] == "accepted"
    await desk.control.move_market("KO", Decimal("61.50"))
    done = await ordex.wait_for(order["id"], FINAL)
    assert done["status"] == "filled" and done["average_price"] == "62"
    await ordex.close()


async def test_cancel_of_a_resting_order(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    order = await ordex.submit("KO", "buy", "10", type="limit", limit_price="60.00")
    await resting_at_venue(ordex, order["id"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    await ordex.cancel(order["id"])
    done = await ordex.wait_for(order["id"], FINAL, within=3)
    assert done["status"] == "cancelled"
    assert loop.time() - started < 0.5
    venue_view = await desk.control.order(order["id"])
    assert venue_view is not None and venue_view["status"] == "cancelled"
    await ordex.close()


async def test_ioc_remainder_cancelled(desk: Desk) -> None:
    await desk.control.set_liquidity("MSFT", 1, Decimal(40))
    ordex = await desk.trader("alice")
    quote = await ordex.quote("MSFT")
    for _ in range(50):
        if quote["ask"] is not None:
            break
        await asyncio.sleep(0.05)
        quote = await ordex.quote("MSFT")
    order = await ordex.submit("MSFT", "buy", "100", type="limit", limit_price=quote["ask"],
                               time_in_force="ioc")
    done = await ordex.wait_for(order["id"], FINAL)
    assert (done["status"], done["filled_quantity"]) == ("cancelled", "40")
    await ordex.close()


async def test_fok_all_or_nothing(desk: Desk) -> None:
    await desk.control.set_liquidity("MSFT", 2, Decimal(40))
    ordex = await desk.trader("alice")
    high = "440.00"
    refused = await ordex.submit("MSFT", "buy", "100", type="limit", limit_price=high,
                                 time_in_force="fok")
    assert (await ordex.wait_for(refused["id"], FINAL))["status"] == "rejected"
    assert await ordex.fills(refused["id"]) == []
    filled = await ordex.submit("MSFT", "buy", "80", type="limit", limit_price=high,
                                time_in_force="fok")
    assert (await ordex.wait_for(filled["id"], FINAL))["status"] == "filled"
    await ordex.close()


async def test_symbol_halted_after_acceptance_is_rejected_with_its_reason(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    await desk.control.set_down(True)
    order = await ordex.submit("NVDA", "buy", "5")
    assert order["status"] == "accepted"
    await desk.control.halt("NVDA", "news pending")
    await desk.control.set_down(False)
    done = await ordex.wait_for(order["id"], FINAL, within=15)
    assert done["status"] == "rejected"
    assert "halted" in done["reason"] and "news pending" in done["reason"]
    await ordex.close()
