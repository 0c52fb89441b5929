"""Restarting ``ordex serve`` on the same data dir with the embedded default venue (issue 9,
part 1): fills after a restart are booked, and what a trader left working is still working."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from ordex.client import AsyncClient
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.venues.simulated.exchange import SimulatedExchange
from ordex.venues.simulated.inprocess import InProcessVenue
from tests.support.live import FINAL, Live, live_service
from tests.support.postgres import free_port
from tests.support.serve import ordex_serve


def serve(data: Path, port: int) -> AbstractContextManager[tuple[subprocess.Popen[str],
                                                                  dict[str, str]]]:
    """``ordex serve`` on ``data``; yields the process and the demo keys it printed."""
    return ordex_serve(data, port)


def wait_final(client: httpx.Client, headers: dict[str, str], order_id: str,
               within: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        order = client.get(f"/v1/orders/{order_id}", headers=headers).json()
        if order["status"] in FINAL or time.monotonic() > deadline:
            return order
        time.sleep(0.05)


def market_buys(client: httpx.Client, headers: dict[str, str], n: int) -> list[dict[str, Any]]:
    ids = [client.post("/v1/orders", headers=headers, json={
        "symbol": "KO", "side": "buy", "quantity": "1", "type": "market"}).json()["id"]
        for _ in range(n)]
    return [wait_final(client, headers, i) for i in ids]


def test_market_orders_fill_after_a_kill_9_and_a_restart_on_the_same_data_dir(
        tmp_path: Path) -> None:
    """Before the fix the embedded exchange numbered its exec ids from 1 again after a restart,
    and ordex dropped the new fills as repeats of stored ones: the orders stayed accepted."""
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    with serve(data, port) as (proc, keys):
        headers = {"Authorization": f"Bearer {keys['alice']}"}
        with httpx.Client(base_url=url, timeout=10) as client:
            before = market_buys(client, headers, 3)
        proc.send_signal(signal.SIGKILL)
    assert [o["status"] for o in before] == ["filled"] * 3
    with serve(data, port) as (_, keys), httpx.Client(base_url=url, timeout=10) as client:
        headers = {"Authorization": f"Bearer {keys['alice']}"}
        after = market_buys(client, headers, 3)
        assert [(o["status"], o["routing"]) for o in after] == [("filled", "done")] * 3
        fills = client.get("/v1/fills", headers=headers).json()["fills"]
        assert len(fills) == 6 and len({f["exec_id"] for f in fills}) == 6
        position = next(p for p in client.get("/v1/positions", headers=headers).json()[
            "positions"] if p["symbol"] == "KO")
        assert Decimal(position["quantity"]) == 6


# ---- in process: the service stopped and started again on the same data dir -------------------

RESTART = {"execution_enabled": True, "sim_tick_seconds": 0, "retry_base_seconds": 0.05,
           "ack_timeout_seconds": 0.3, "stall_check_seconds": 0.3}


def exchange_of(live: Live) -> SimulatedExchange:
    engine = live.services.engine
    assert engine is not None and isinstance(engine.venue, InProcessVenue)
    return engine.venue.exchange


async def working(ordex: AsyncClient, order_id: str, within: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        order = await ordex.get(order_id)
        if order["routing"] == "at_venue" or asyncio.get_running_loop().time() > deadline:
            return order
        await asyncio.sleep(0.05)


async def test_resting_gtc_and_day_orders_survive_a_restart_of_the_embedded_default(
        settings: Settings) -> None:
    """Before the fix the restarted exchange had forgotten them: the cancel bounced back to
    accepted ("unknown client order id") and the cash stayed reserved for good."""
    settings = settings.model_copy(update=RESTART)
    async with live_service(settings) as live:
        issued = await live.services.accounts.create("alice", Role.TRADER, Decimal("100000"),
                                                     positions={"KO": (Decimal(50),
                                                                       Decimal("60"))})
        key = issued.api_key
        quote = exchange_of(live).quote("KO")
        assert quote.bid is not None and quote.ask is not None
        below = (quote.bid - Decimal("0.50")).quantize(Decimal("0.01"))
        above = (quote.ask + Decimal("0.50")).quantize(Decimal("0.01"))
        async with AsyncClient(live.url, key) as ordex:
            gtc = await ordex.submit("KO", "buy", "10", type="limit", limit_price=below,
                                     time_in_force="gtc")
            day = await ordex.submit("KO", "sell", "5", type="limit", limit_price=above,
                                     time_in_force="day")
            for order in (gtc, day):
                assert (await working(ordex, order["id"]))["routing"] == "at_venue"
            reserved = (await ordex.account())["reserved_cash"]
        assert Decimal(reserved) == 10 * below

    async with live_service(settings) as live, AsyncClient(live.url, key) as ordex:
        await asyncio.sleep(1.5)  # reconciliation, lookups and a few samples of working orders
        for order in (gtc, day):
            back = await ordex.get(order["id"])
            assert (back["status"], back["routing"]) == ("accepted", "at_venue"), back
        assert {o.client_order_id for o in exchange_of(live).open_orders()} == {gtc["id"],
                                                                                 day["id"]}
        await ordex.cancel(day["id"])
        cancelled = await ordex.wait_for(day["id"], FINAL, within=5)
        assert cancelled["status"] == "cancelled"
        engine = live.services.engine
        assert engine is not None and isinstance(engine.venue, InProcessVenue)
        engine.venue.move_market("KO", below - Decimal("0.10"))
        filled = await ordex.wait_for(gtc["id"], FINAL, within=5)
        assert (filled["status"], filled["filled_quantity"]) == ("filled", "10")
        account = await ordex.account()
        assert Decimal(account["reserved_cash"]) == 0


async def test_a_fill_the_exchange_journaled_but_ordex_never_booked_is_booked_after_a_restart(
        settings: Settings) -> None:
    """The kill -9 case: the embedded exchange fills 4 of 10 and journals it, and ordex dies
    before it books the fill. Restarted, the exchange's fresh liquidity fills the other 6, and
    that report reaches ordex before reconciliation. Before the fix ordex took the missed fill
    (CumQty 4, below the 6 it now had) for one already booked and dropped it: the order stayed
    partially filled 6 of 10 for good while the venue had it filled."""
    settings = settings.model_copy(update=RESTART)
    quiet = settings.model_copy(update={"stall_check_seconds": 600})  # no sampler in run one
    async with live_service(quiet) as live:
        issued = await live.services.accounts.create("alice", Role.TRADER, Decimal("100000"))
        key = issued.api_key
        exchange = exchange_of(live)
        quote = exchange.quote("KO")
        assert quote.bid is not None
        limit = (quote.bid - Decimal("0.50")).quantize(Decimal("0.01"))
        async with AsyncClient(live.url, key) as ordex:
            order = await ordex.submit("KO", "buy", "10", type="limit", limit_price=limit,
                                       time_in_force="gtc")
            assert (await working(ordex, order["id"]))["routing"] == "at_venue"
            cash_before = Decimal((await ordex.account())["cash"])
        # Straight on the exchange, not through the venue adapter: journaled, never reported.
        exchange.set_liquidity("KO", depth_levels=1, level_size=Decimal(4),
                               level_size_max=Decimal(4))
        missed = exchange.move_market("KO", limit - Decimal("0.10"))
        assert [(r.last_quantity, r.cum_quantity) for r in missed] == [(4, 4)]

    async with live_service(settings) as live, AsyncClient(live.url, key) as ordex:
        venue_side = exchange_of(live).query(order["id"])
        assert venue_side is not None and venue_side.filled_quantity == 10
        done = await ordex.wait_for(order["id"], FINAL, within=5)
        assert (done["status"], done["filled_quantity"]) == ("filled", "10"), done
        fills = await ordex.fills(order["id"])
        at_venue = {f.exec_id for f in exchange_of(live).fills_since(missed[0].timestamp)
                    if f.client_order_id == order["id"]}
        assert sorted(f["exec_id"] for f in fills) == sorted(at_venue)
        assert missed[0].exec_id in at_venue and len(fills) == 2
        assert sum(Decimal(f["quantity"]) for f in fills) == 10
        ko = next(p for p in await ordex.positions() if p["symbol"] == "KO")
        assert Decimal(ko["quantity"]) == 10
        account = await ordex.account()
        spent = sum((Decimal(f["quantity"]) * Decimal(f["price"]) + Decimal(f["commission"])
                     for f in fills), Decimal(0))
        assert Decimal(account["cash"]) == cash_before - spent
        assert Decimal(account["reserved_cash"]) == 0
