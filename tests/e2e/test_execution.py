"""Orders really trade, in process: what needs the venue's internals (quiet halts, faults,
duplicate copies, races). The acceptance cases against both venues are in
test_execution_venues.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from ordex.client import AsyncClient, OrdexError
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.venues.simulated.inprocess import InProcessVenue
from tests.support.control import InProcessControl
from tests.support.live import FINAL, Live, live_service, quiet_venue


class Desk:
    def __init__(self, live: Live, venue: InProcessVenue) -> None:
        self.live = live
        self.venue = venue

    async def trader(self, name: str, cash: str = "1000000",
                     role: Role = Role.TRADER) -> AsyncClient:
        issued = await self.live.services.accounts.create(name, role, Decimal(cash))
        return AsyncClient(self.live.url, issued.api_key)


@pytest.fixture
async def desk(settings: Settings) -> AsyncIterator[Desk]:
    venue = quiet_venue(11)
    wired = settings.model_copy(update={"execution_enabled": True})
    async with live_service(wired, venue) as live:
        yield Desk(live, venue)


def total(fills: list[dict[str, Any]], key: str) -> Decimal:
    return sum((Decimal(f[key]) for f in fills), Decimal(0))


async def test_symbol_halted_after_acceptance_is_rejected_with_the_reason(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    desk.venue.exchange.halt("NVDA", "news pending")  # the venue knows; ordex not yet
    order = await ordex.submit("NVDA", "buy", "5")
    assert order["status"] == "accepted"
    done = await ordex.wait_for(order["id"], FINAL)
    assert done["status"] == "rejected"
    assert "halted" in done["reason"] and "news pending" in done["reason"]
    await ordex.close()


async def test_a_symbol_halted_on_the_market_feed_is_refused_up_front(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    desk.venue.halt("NVDA", "volatility pause")
    for _ in range(50):
        if (await ordex.quote("NVDA"))["status"] == "halted":
            break
        await asyncio.sleep(0.02)
    with pytest.raises(OrdexError) as refused:
        await ordex.submit("NVDA", "buy", "5")
    assert refused.value.codes == ["symbol_halted"]
    await ordex.close()


async def test_stream_carries_every_change_and_resumes_after_a_reconnect(desk: Desk) -> None:
    desk.venue.set_liquidity("AAPL", depth_levels=5, level_size=Decimal(30))
    ordex = await desk.trader("alice")
    seen: list[dict[str, Any]] = []

    async def follow(after: int, until: str) -> None:
        stream = ordex.stream(after)
        async for event in stream:
            seen.append(event)
            if event["status"] == until:
                break
        await stream.aclose()

    watcher = asyncio.create_task(follow(0, "filled"))
    await asyncio.sleep(0.1)
    order = await ordex.submit("AAPL", "buy", "100", client_order_id="stream-1")
    await asyncio.wait_for(watcher, 5)
    types = [e["type"] for e in seen]
    assert types[0] == "accepted" and types[-1] == "filled" and "partially_filled" in types
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(set(seqs))
    last = seen[-1]
    assert last["order_id"] == order["id"] and last["client_order_id"] == "stream-1"
    assert last["filled_quantity"] == "100" and last["remaining_quantity"] == "0"
    assert last["last_fill_venue"] == "SIM" and last["last_fill_quantity"]
    assert last["average_price"] and last["timestamp"].endswith("Z")

    # Missed while away: a second order's events, delivered on resume from the last seq.
    second = await ordex.submit("KO", "buy", "1")
    await ordex.wait_for(second["id"], FINAL)
    resumed: list[dict[str, Any]] = []
    stream = ordex.stream(seqs[-1])
    async for event in stream:
        resumed.append(event)
        if event["status"] == "filled":
            break
    await stream.aclose()
    assert {e["order_id"] for e in resumed} == {second["id"]}
    assert resumed[0]["seq"] > seqs[-1]
    await ordex.close()


async def test_stream_shows_only_the_traders_own_orders(desk: Desk) -> None:
    alice = await desk.trader("alice")
    bob = await desk.trader("bob")
    carol = await desk.trader("carol", role=Role.COMPLIANCE, cash="0")
    mine = await alice.submit("KO", "buy", "1")
    await alice.wait_for(mine["id"], FINAL)
    theirs = await bob.submit("KO", "buy", "1")
    await bob.wait_for(theirs["id"], FINAL)

    async def ids(client: AsyncClient, everyone: bool = False) -> set[str]:
        """The orders of every event the stream sends from the start, until it has been quiet
        for 0.5 s (the first one, read from the store on connect, may take longer)."""
        found: set[str] = set()
        stream = client.stream(0, everyone=everyone)
        try:
            while True:
                event = await asyncio.wait_for(anext(stream), 0.5 if found else 10)
                found.add(event["order_id"])
        except TimeoutError:
            return found
        finally:
            await stream.aclose()

    assert await ids(bob) == {theirs["id"]}
    assert await ids(carol, everyone=True) == {mine["id"], theirs["id"]}
    for client in (alice, bob, carol):
        await client.close()


async def test_long_poll_returns_when_the_order_changes(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    order = await ordex.submit("KO", "buy", "10", type="limit", limit_price="62.00")
    after = 0
    while True:  # up to the venue's acknowledgement; then the order rests
        page = await ordex.events(order["id"], after=after, wait=2)
        after = page["last_seq"]
        if any(e["type"] == "venue_ack" for e in page["events"]):
            break
    poll = asyncio.create_task(ordex.events(order["id"], after=after, wait=5))
    await asyncio.sleep(0.2)
    assert not poll.done()
    desk.venue.move_market("KO", Decimal("61.50"))
    answer = await asyncio.wait_for(poll, 3)
    assert answer["events"] and answer["events"][-1]["status"] == "filled"
    assert answer["events"][0]["seq"] > after
    await ordex.close()


async def test_fills_listing_filters_by_symbol(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    for symbol in ("KO", "INTC"):
        order = await ordex.submit(symbol, "buy", "2")
        await ordex.wait_for(order["id"], FINAL)
    assert {f["symbol"] for f in await ordex.fills()} == {"KO", "INTC"}
    assert {f["symbol"] for f in await ordex.fills(symbol="intc")} == {"INTC"}
    await ordex.close()


async def test_orders_wait_while_the_venue_is_down_and_go_when_it_returns(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    desk.venue.faults.update(down=True)
    order = await ordex.submit("KO", "buy", "3")
    await asyncio.sleep(0.8)
    assert (await ordex.get(order["id"]))["status"] == "accepted"
    desk.venue.faults.update(down=False)
    done = await ordex.wait_for(order["id"], FINAL, within=5)
    assert done["status"] == "filled"
    assert [v.client_order_id for v in desk.venue.exchange.orders()].count(order["id"]) == 1
    await ordex.close()


async def test_a_venue_refusing_a_second_copy_does_not_reject_the_order(desk: Desk) -> None:
    from ordex.venues.base import NewOrder

    ordex = await desk.trader("alice")
    order = await ordex.submit("KO", "buy", "10", type="limit", limit_price="60.00")
    await asyncio.sleep(0.2)
    await desk.venue.submit(NewOrder(order["id"], "KO", Side.BUY, OrderType.LIMIT, Decimal(10),
                                     TimeInForce.DAY, Decimal("60.00")))
    await asyncio.sleep(0.2)
    assert (await ordex.get(order["id"]))["status"] == "accepted"
    assert desk.venue.exchange.duplicates_refused == 1
    await ordex.close()


@pytest.mark.parametrize("round_", range(3))
async def test_a_cancel_racing_a_fill_ends_in_one_consistent_state(desk: Desk,
                                                                   round_: int) -> None:
    desk.venue.set_liquidity("KO", depth_levels=3, level_size=Decimal(4))
    ordex = await desk.trader(f"racer{round_}")
    order = await ordex.submit("KO", "buy", "10", type="limit", limit_price="62.00",
                               time_in_force="gtc")
    for _ in range(200):  # the race is at the venue: the order must be working there first
        if (await ordex.get(order["id"]))["routing"] == "at_venue":
            break
        await asyncio.sleep(0.025)

    async def cross() -> None:
        await asyncio.sleep(0.001 * round_)
        desk.venue.move_market("KO", Decimal("61.50"))

    async def cancel() -> None:
        try:
            await ordex.cancel(order["id"])
        except OrdexError as too_late:
            assert too_late.codes == ["order_not_cancelable"]

    await asyncio.gather(cancel(), cross())
    done = await ordex.wait_for(order["id"], FINAL)
    fills = await ordex.fills(order["id"])
    assert done["status"] in {"filled", "cancelled"}
    assert Decimal(done["filled_quantity"]) == total(fills, "quantity")
    seen = desk.venue.exchange.query(order["id"])
    assert seen is not None and seen.filled_quantity == Decimal(done["filled_quantity"])
    assert seen.state.value == done["status"]
    await ordex.close()


async def test_max_slippage_stops_a_market_order_at_its_worst_price(desk: Desk) -> None:
    desk.venue.set_liquidity("AAPL", depth_levels=5, level_size=Decimal(20))
    ordex = await desk.trader("alice")
    order = await ordex.submit("AAPL", "buy", "100", max_slippage_pct="0.01")
    worst = Decimal(order["slippage_price"])
    assert order["max_slippage_pct"] == "0.01"
    done = await ordex.wait_for(order["id"], FINAL)
    fills = await ordex.fills(order["id"])
    assert done["status"] == "cancelled"
    assert "max slippage of 0.01%" in done["reason"] and f"${worst}" in done["reason"]
    assert Decimal(done["filled_quantity"]) == total(fills, "quantity") < 100
    assert all(Decimal(f["price"]) <= worst for f in fills)
    sent = await InProcessControl(desk.venue).order(order["id"])
    assert sent is not None and sent["type"] == "limit" and sent["time_in_force"] == "ioc"
    await ordex.close()


async def test_a_market_order_within_its_slippage_fills_whole(desk: Desk) -> None:
    desk.venue.set_liquidity("MSFT", depth_levels=5, level_size=Decimal(50))
    ordex = await desk.trader("alice")
    await ordex.wait_for((await ordex.submit("MSFT", "buy", "40"))["id"], FINAL)
    order = await ordex.submit("MSFT", "sell", "40", max_slippage_pct="1")
    done = await ordex.wait_for(order["id"], FINAL)
    assert done["status"] == "filled" and done["reason"] is None
    assert Decimal(done["average_price"]) >= Decimal(order["slippage_price"])
    await ordex.close()


async def test_a_working_order_is_cancelled_at_its_timeout_with_the_reason(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    bid = Decimal((await ordex.quote("AAPL"))["bid"])
    order = await ordex.submit("AAPL", "buy", "10", type="limit", time_in_force="gtc",
                               limit_price=(bid * Decimal("0.97")).quantize(Decimal("0.01")),
                               timeout_seconds=1)
    assert order["timeout_seconds"] == 1 and order["expires_at"] is not None
    await ordex.wait_for(order["id"], {"accepted"}, within=5)
    done = await ordex.wait_for(order["id"], FINAL, within=5)
    assert done["status"] == "cancelled"
    assert done["reason"] == ("Not filled within your timeout of 1 second; 10 of 10 shares were "
                              "left.")
    sent = await InProcessControl(desk.venue).order(order["id"])
    assert sent is not None and sent["status"] == "cancelled"  # the venue was told
    await ordex.close()


async def test_an_order_still_waiting_for_a_venue_expires_at_its_timeout(desk: Desk) -> None:
    ordex = await desk.trader("alice")
    desk.venue.faults.update(down=True)
    order = await ordex.submit("AAPL", "buy", "5", timeout_seconds=1)
    done = await ordex.wait_for(order["id"], FINAL, within=5)
    desk.venue.faults.update(down=False)
    assert done["status"] == "cancelled" and "timeout of 1 second" in done["reason"]
    await asyncio.sleep(0.7)  # a sweep after the venue is back: nothing is sent
    assert await InProcessControl(desk.venue).order(order["id"]) is None
    await ordex.close()


@pytest.mark.parametrize(("fields", "code", "field"), [
    ({"type": "limit", "limit_price": "189", "max_slippage_pct": "1"},
     "slippage_not_for_limit_orders", "max_slippage_pct"),
    ({"max_slippage_pct": "0"}, "out_of_range", "max_slippage_pct"),
    ({"max_slippage_pct": "11"}, "out_of_range", "max_slippage_pct"),
    ({"timeout_seconds": 0}, "out_of_range", "timeout_seconds"),
    ({"timeout_seconds": 86_401}, "out_of_range", "timeout_seconds"),
    ({"timeout_seconds": "1.5"}, "invalid_number", "timeout_seconds"),
    ({"timeout_seconds": True}, "invalid_number", "timeout_seconds"),
])
async def test_execution_limits_out_of_bounds_are_refused_in_words(
        desk: Desk, fields: dict[str, Any], code: str, field: str) -> None:
    ordex = await desk.trader("alice")
    body = {"symbol": "AAPL", "side": "buy", "quantity": "5", "type": "market", **fields}
    response = await ordex._http.post("/v1/orders", json=body)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"] and error["hint"]
    assert await ordex.list() == []
    await ordex.close()
