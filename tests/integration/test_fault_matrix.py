"""The fault matrix: ordex against ``ordex venue`` over TCP FIX, through a fault-injecting proxy.

Each case prints one line (submitted, acknowledged, lost, duplicated, ghosts, violations) and
asserts the last four are 0: every order the API accepted is in the store, no order reached the
venue twice, every venue order is known to ordex, and ordex and the venue agree on every order's
state and fills, as do each order's fills and its filled quantity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordex.client import AsyncClient, OrdexError
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.venues.fix.adapter import FixVenue
from tests.support.live import Live, live_service
from tests.support.proxy import TcpProxy
from tests.support.venue_process import VenueProcess

FINAL = {"filled", "cancelled", "rejected", "expired", "failed"}
FAST = {"execution_enabled": True, "retry_base_seconds": 0.2, "ack_timeout_seconds": 0.5,
        "stall_check_seconds": 0.5, "order_timeout_seconds": 3}
VENUE_STATUS = {"filled": "filled", "cancelled": "cancelled", "rejected": "rejected",
                "expired": "expired"}


@dataclass
class Rig:
    venue: VenueProcess
    proxy: TcpProxy
    live: Live
    ordex: AsyncClient
    submitted: list[dict[str, Any]] = field(default_factory=list)

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.venue.admin(method, path, body)

    attempted: int = 0

    async def submit(self, symbol: str, side: str, quantity: str, **terms: Any) -> dict[str, Any]:
        self.attempted += 1
        order = await self.ordex.submit(symbol, side, quantity, **terms)
        self.submitted.append(order)
        return order

    async def quote(self, symbol: str) -> dict[str, Decimal]:
        """The venue's bid and ask (market data arrives shortly after each logon)."""
        for _ in range(100):
            quote = await self.ordex.quote(symbol)
            if quote["bid"] and quote["ask"]:
                return {"bid": Decimal(quote["bid"]), "ask": Decimal(quote["ask"])}
            await asyncio.sleep(0.05)
        raise AssertionError(f"no quote for {symbol}")

    async def resting_limit(self, symbol: str) -> Decimal:
        return ((await self.quote(symbol))["bid"] * Decimal("0.98")).quantize(Decimal("0.01"))

    @property
    def fix(self) -> FixVenue:
        engine = self.live.services.engine
        assert engine is not None and isinstance(engine.venue, FixVenue)
        return engine.venue

    async def logged_on(self, within: float = 15.0) -> None:
        assert await self.fix.wait_logged_on(within), "the FIX session did not come back"

    async def settle(self, within: float = 20.0) -> list[dict[str, Any]]:
        """Wait until every submitted order is final in ordex and agrees with the venue."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            orders = [await self.ordex.get(o["id"]) for o in self.submitted]
            at_venue = {o["client_order_id"]: o for o in await self.venue_orders()}
            agreed = all(
                o["status"] in FINAL and (
                    o["id"] not in at_venue
                    or VENUE_STATUS.get(o["status"]) == at_venue[o["id"]]["status"])
                for o in orders)
            if agreed or asyncio.get_running_loop().time() > deadline:
                return orders
            await asyncio.sleep(0.1)

    async def venue_orders(self) -> list[dict[str, Any]]:
        return list((await self.admin("GET", "/orders"))["orders"])

    async def verdict(self, case: str) -> None:
        orders = await self.settle()
        venue = await self.venue_orders()
        by_id = {o["id"]: o for o in orders}
        ids = [v["client_order_id"] for v in venue]
        lost = sum(1 for o in self.submitted if o["id"] not in by_id)
        duplicated = len(ids) - len(set(ids))
        ghosts = [v for v in venue if v["client_order_id"] not in by_id
                  or (v["status"] == "open" and by_id[v["client_order_id"]]["status"] in FINAL)]
        violations: list[str] = []
        for v in venue:
            mine = by_id.get(v["client_order_id"])
            if mine is None:
                continue
            if Decimal(mine["filled_quantity"]) != Decimal(v["filled_quantity"]):
                violations.append(f"{mine['id']}: ordex filled {mine['filled_quantity']}, "
                                  f"venue {v['filled_quantity']}")
            if VENUE_STATUS.get(mine["status"], "open") != v["status"]:
                violations.append(f"{mine['id']}: ordex {mine['status']}, venue {v['status']}")
        for order in orders:
            fills = await self.ordex.fills(order["id"])
            if sum((Decimal(f["quantity"]) for f in fills), Decimal(0)) != Decimal(
                    order["filled_quantity"]):
                violations.append(f"{order['id']}: fills do not add up to its filled quantity")
            if order["status"] not in FINAL:
                violations.append(f"{order['id']}: still {order['status']}")
        print(f"\nfault {case}: submitted={self.attempted} acknowledged={len(self.submitted)} "
              f"lost={lost} duplicated={duplicated} ghosts={len(ghosts)} "
              f"violations={len(violations)}")
        assert (lost, duplicated, len(ghosts), violations) == (0, 0, 0, [])


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    venue = VenueProcess(tmp_path / "venue", seed=5, tick_seconds=0)
    venue.start()
    try:
        await venue.admin("POST", "/faults", {})
        async with TcpProxy("127.0.0.1", venue.port) as proxy:
            settings = Settings(data_dir=tmp_path / "ordex", seed_demo=False, **FAST)
            fix = FixVenue("127.0.0.1", proxy.port, name="SIM", data_dir=settings.data_dir,
                           heartbeat_seconds=1, request_timeout=1.0, logon_timeout=10)
            async with live_service(settings, fix) as live:
                issued = await live.services.accounts.create("alice", Role.TRADER,
                                                             Decimal("1000000"))
                async with AsyncClient(live.url, issued.api_key) as ordex:
                    rig = Rig(venue, proxy, live, ordex)
                    await rig.logged_on()
                    yield rig
    finally:
        venue.stop()


async def test_lost_ack(rig: Rig) -> None:
    await rig.admin("POST", "/faults", {"lose_acks": 1})
    order = await rig.submit("KO", "buy", "10", type="limit",
                             limit_price=await rig.resting_limit("KO"), time_in_force="gtc")
    for _ in range(100):
        if (await rig.ordex.get(order["id"]))["routing"] == "at_venue":
            break
        await asyncio.sleep(0.1)
    await rig.ordex.cancel(order["id"])
    await rig.verdict("lost ack")


async def test_connection_dropped_mid_execution(rig: Rig) -> None:
    await rig.admin("POST", "/liquidity/AAPL", {"depth_levels": 6, "level_size": "20"})
    await rig.admin("POST", "/faults", {"drop_connection_mid_execution": True})
    await rig.submit("AAPL", "buy", "100")
    await rig.logged_on()
    await rig.verdict("connection dropped mid-execution")


async def test_partial_fill_then_reject(rig: Rig) -> None:
    await rig.admin("POST", "/liquidity/MSFT", {"depth_levels": 1, "level_size": "15"})
    await rig.admin("POST", "/faults", {"reject_after_partial": True})
    ask = (await rig.quote("MSFT"))["ask"]
    order = await rig.submit("MSFT", "buy", "50", type="limit", limit_price=ask,
                             time_in_force="gtc")
    done = await rig.ordex.wait_for(order["id"], FINAL, within=10)
    assert done["status"] == "rejected" and done["filled_quantity"] == "15"
    await rig.verdict("partial fill then reject")


async def test_partial_fill_disconnect_and_more_fills_while_disconnected(rig: Rig) -> None:
    await rig.admin("POST", "/liquidity/KO", {"depth_levels": 1, "level_size": "10"})
    ask = (await rig.quote("KO"))["ask"]
    order = await rig.submit("KO", "buy", "40", type="limit", limit_price=ask,
                             time_in_force="gtc")
    await rig.ordex.wait_for(order["id"], {"partially_filled"}, within=10)
    await rig.proxy.cut()
    await rig.admin("POST", "/liquidity/KO", {"depth_levels": 5, "level_size": "20"})
    await rig.admin("POST", "/market/KO", {"price": str(ask - Decimal("0.50"))})
    await asyncio.sleep(1.0)
    await rig.proxy.restore()
    await rig.logged_on()
    done = await rig.ordex.wait_for(order["id"], FINAL, within=10)
    assert done["status"] == "filled"
    await rig.verdict("partial fill, disconnect, fills while disconnected")


async def test_venue_down_longer_than_every_retry(rig: Rig) -> None:
    await rig.proxy.cut()
    for _ in range(50):
        if not rig.fix.connected:
            break
        await asyncio.sleep(0.1)
    orders = [await rig.submit("KO", "buy", "5") for _ in range(3)]
    for order in orders:
        done = await rig.ordex.wait_for(order["id"], FINAL, within=10)
        assert done["status"] in {"expired", "failed"}
        assert "SIM" in done["reason"] and "not" in done["reason"]
    await rig.proxy.restore()
    await rig.logged_on()
    await asyncio.sleep(1.0)
    assert not {o["client_order_id"] for o in await rig.venue_orders()} & {
        o["id"] for o in orders}
    await rig.verdict("venue down longer than every retry")


FAULTS: dict[str, Callable[[TcpProxy], Awaitable[None]]] = {
    "reset": lambda p: p.reset(),
    "blackhole": lambda p: p.blackhole(),
    "half-open": lambda p: p.half_open(),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_orders_in_flight_through_a_network_fault(rig: Rig, fault: str) -> None:
    await rig.admin("POST", "/liquidity/INTC", {"depth_levels": 5, "level_size": "50"})
    limit = await rig.resting_limit("INTC")
    await FAULTS[fault](rig.proxy)
    for n in range(4):
        if n % 2:
            await rig.submit("INTC", "buy", "5")
        else:
            await rig.submit("INTC", "buy", "5", type="limit", limit_price=limit,
                             time_in_force="gtc")
    await asyncio.sleep(2.5)  # past the heartbeat and the ack timeout: the session notices
    await rig.proxy.restore()
    await rig.logged_on()
    for order in rig.submitted:
        if order["type"] == "limit":
            now = await rig.ordex.wait_for(order["id"], {"accepted", *FINAL}, within=10)
            if now["status"] not in FINAL:
                try:
                    await rig.ordex.cancel(order["id"])
                except OrdexError as refused:  # it ended (expired unsent) meanwhile
                    assert refused.codes == ["order_not_cancelable"]
    await rig.verdict(f"{fault} with orders in flight")


async def test_added_latency(rig: Rig) -> None:
    rig.proxy.set_latency(0.4)  # each way: slower than the ack timeout
    for _ in range(3):
        await rig.submit("BAC", "buy", "3")
    await rig.verdict("400 ms of latency each way")


async def test_venue_restart(rig: Rig) -> None:
    rig.venue.stop()
    order = await rig.submit("WMT", "buy", "4")
    rig.venue.start()
    await rig.logged_on()
    done = await rig.ordex.wait_for(order["id"], FINAL, within=15)
    assert done["status"] in {"filled", "expired"}
    await rig.verdict("venue restart")
