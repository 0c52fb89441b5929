"""InProcessVenue: the async Venue around a SimulatedExchange — report stream, ack delay, faults,
quotes and the market ticker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TypeVar

import pytest

from ordex.domain.orders import Side
from ordex.venues.base import ReportKind, Venue, VenueUnavailable
from ordex.venues.simulated import InProcessVenue, MarketConfig
from tests.unit.test_sim_support import T0, ManualClock, exchange, limit, market

BUY, SELL = Side.BUY, Side.SELL
D = Decimal
ACK, FILL = ReportKind.ACK, ReportKind.FILL
X = TypeVar("X")


async def take(stream: AsyncIterator[X], n: int, within: float = 2.0) -> list[X]:
    async with asyncio.timeout(within):
        return [await anext(stream) for _ in range(n)]


async def nothing_more(stream: AsyncIterator[object], wait: float = 0.05) -> bool:
    try:
        await asyncio.wait_for(anext(stream), wait)
    except TimeoutError:
        return True
    return False


@pytest.fixture
async def venue() -> AsyncIterator[InProcessVenue]:
    v = InProcessVenue(exchange(clock=ManualClock()), tick_interval=None)
    await v.start()
    try:
        yield v
    finally:
        await v.stop()


def test_it_is_a_venue() -> None:
    v: Venue = InProcessVenue(exchange(), tick_interval=None)
    assert v.name == "SIM"


async def test_reports_stream_in_order(venue: InProcessVenue) -> None:
    reports = venue.reports()
    await venue.submit(market("c1", BUY, "150"))
    got = await take(reports, 3)
    assert [(r.client_order_id, r.kind) for r in got] == [("c1", ACK), ("c1", FILL), ("c1", FILL)]
    await venue.submit(limit("c2", BUY, "10", "99.00"))
    await venue.cancel("c2")
    got = await take(reports, 2)
    assert [r.kind for r in got] == [ACK, ReportKind.CANCELLED]
    order = await venue.query("c1")
    assert order is not None and order.filled_quantity == D(150)
    assert await venue.open_orders() == []
    assert len(await venue.fills_since(T0)) == 2


async def test_ack_delay_does_not_block_a_second_order(venue: InProcessVenue) -> None:
    reports = venue.reports()
    venue.faults.ack_delay = 0.3
    started = time.perf_counter()
    await venue.submit(limit("slow", BUY, "10", "99.00"))
    assert time.perf_counter() - started < 0.1
    assert (await venue.query("slow")) is not None  # placed at once, only the report waits
    venue.faults.ack_delay = 0
    await venue.submit(limit("fast", BUY, "10", "99.00"))
    [first] = await take(reports, 1, within=0.2)
    assert (first.client_order_id, first.kind) == ("fast", ACK)
    # a fill of the slow order made meanwhile waits behind its ACK
    assert [r.client_order_id for r in venue.move_market("AAPL", D("98.00"))] == ["slow", "fast"]
    [fast_fill] = await take(reports, 1, within=0.2)
    assert (fast_fill.client_order_id, fast_fill.kind) == ("fast", FILL)
    got = await take(reports, 2, within=1.0)
    assert [(r.client_order_id, r.kind) for r in got] == [("slow", ACK), ("slow", FILL)]
    assert time.perf_counter() - started >= 0.3


async def test_down_venue_raises_and_loses_what_it_sends(venue: InProcessVenue) -> None:
    reports = venue.reports()
    await venue.submit(limit("c1", BUY, "10", "99.00"))
    assert (await take(reports, 1))[0].kind is ACK
    venue.faults.down = True
    with pytest.raises(VenueUnavailable):
        await venue.submit(limit("c2", BUY, "10", "99.00"))
    with pytest.raises(VenueUnavailable):
        await venue.cancel("c1")
    with pytest.raises(VenueUnavailable):
        await venue.query("c1")
    with pytest.raises(VenueUnavailable):
        await venue.open_orders()
    with pytest.raises(VenueUnavailable):
        await venue.fills_since(T0)
    assert venue.exchange.query("c2") is None  # never reached the exchange
    venue.move_market("AAPL", D("98.00"))  # c1 fills while the connection is down
    assert await nothing_more(reports)
    assert venue.lost_reports == 1
    venue.faults.down = False
    [fill] = await venue.fills_since(T0)
    assert (fill.client_order_id, fill.last_quantity) == ("c1", D(10))


async def test_lost_ack_via_the_adapter(venue: InProcessVenue) -> None:
    reports = venue.reports()
    venue.faults.lose_acks = 1
    await venue.submit(market("c1", BUY, "10"))
    [only] = await take(reports, 1)
    assert only.kind is FILL
    assert await nothing_more(reports)


async def test_visibility_lag_via_the_adapter() -> None:
    clock = ManualClock()
    v = InProcessVenue(exchange(clock=clock), tick_interval=None)
    v.faults.visibility_lag = 1.0
    await v.submit(limit("c1", BUY, "10", "99.00"))
    assert await v.query("c1") is None
    clock.advance(1.5)
    assert await v.query("c1") is not None


async def test_quotes_start_with_every_symbol_then_follow_changes(venue: InProcessVenue) -> None:
    quotes = venue.quotes()
    first = await take(quotes, len(venue.exchange.symbols()))
    assert {q.symbol for q in first} == set(venue.exchange.symbols())
    venue.move_market("AAPL", D("101.00"))
    [moved] = await take(quotes, 1)
    assert (moved.symbol, moved.bid, moved.ask) == ("AAPL", D("100.99"), D("101.01"))
    venue.halt("AAPL", "news")
    [halted] = await take(quotes, 1)
    assert halted.halted
    await venue.submit(limit("c1", BUY, "10", "399.99", symbol="MSFT"))  # same top: no quote
    assert await nothing_more(quotes)
    await venue.submit(limit("c2", BUY, "10", "400.00", symbol="MSFT"))
    [better] = await take(quotes, 1)
    assert (better.symbol, better.bid) == ("MSFT", D("400.00"))


async def test_the_ticker_moves_the_market_until_stopped() -> None:
    config = MarketConfig(volatility_bp=20.0, trade_probability=1.0)
    v = InProcessVenue(exchange(config=config), tick_interval=0.01)
    quotes = v.quotes()
    await take(quotes, len(v.exchange.symbols()))
    await v.start()
    await take(quotes, 5, within=1.0)
    await v.stop()
    steps = v.exchange.steps
    assert steps > 0
    await asyncio.sleep(0.05)
    assert v.exchange.steps == steps


async def test_no_ticker_when_tick_interval_is_zero() -> None:
    v = InProcessVenue(exchange(), tick_interval=0)
    await v.start()
    await asyncio.sleep(0.03)
    await v.stop()
    assert v.exchange.steps == 0
    v.step()
    assert v.exchange.steps == 1


async def test_a_call_publishes_only_the_quotes_it_could_move(venue: InProcessVenue) -> None:
    """A submit in one symbol does not recompute every symbol's quote; a change made on the
    exchange behind the adapter's back shows at the next call in that symbol or the next
    market step."""
    quotes = venue.quotes()
    await take(quotes, len(venue.exchange.symbols()))
    venue.exchange.halt("MSFT", "behind the adapter")
    await venue.submit(limit("c1", BUY, "10", "100.00", symbol="AAPL"))
    [aapl] = await take(quotes, 1)
    assert (aapl.symbol, aapl.bid) == ("AAPL", D("100.00"))
    assert await nothing_more(quotes)
    venue.step()
    stepped = await take(quotes, 1)
    assert [(q.symbol, q.halted) for q in stepped] == [("MSFT", True)]


async def test_after_an_outage_every_changed_quote_is_published(venue: InProcessVenue) -> None:
    quotes = venue.quotes()
    await take(quotes, len(venue.exchange.symbols()))
    venue.faults.down = True
    venue.halt("MSFT", "while down")
    assert await nothing_more(quotes)
    venue.faults.down = False
    await venue.submit(limit("c1", BUY, "10", "100.00", symbol="AAPL"))
    got = await take(quotes, 2)
    assert {(q.symbol, q.halted) for q in got} == {("AAPL", False), ("MSFT", True)}
