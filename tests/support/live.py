"""The whole service on a real loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import uvicorn

from ordex.api.app import create_app
from ordex.bootstrap import Services, build
from ordex.config import Settings
from ordex.services.demo import demo_instruments
from ordex.venues.base import Venue
from ordex.venues.simulated.exchange import SimulatedExchange
from ordex.venues.simulated.inprocess import InProcessVenue
from ordex.venues.simulated.market import MarketConfig
from tests.support.postgres import free_port


@dataclass
class Live:
    url: str
    services: Services


def quiet_venue(seed: int, name: str = "SIM") -> InProcessVenue:
    """The simulated exchange with the demo instruments and a market that does not move by
    itself (no trades, no gaps, no ticker): prices change only when a test trades or steps it."""
    exchange = SimulatedExchange(
        name, [(i.symbol, i.reference_price, i.tick_size, i.lot_size)
                for i in demo_instruments()],
        config=MarketConfig(trade_probability=0.0, gap_probability=0.0), seed=seed)
    return InProcessVenue(exchange, tick_interval=None)


@asynccontextmanager
async def live_service(settings: Settings, venue: Venue | None = None, *,
                       venues: dict[str, Venue] | None = None) -> AsyncIterator[Live]:
    services = build(settings, venue=venue, venues=venues)
    port = free_port()
    app = create_app(settings, services)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on",
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield Live(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


FINAL = {"filled", "cancelled", "rejected", "expired", "failed"}
# Retries, acks and stall checks in fractions of a second, so that recovery cases run quickly.
FAST = {"execution_enabled": True, "retry_base_seconds": 0.05, "ack_timeout_seconds": 0.3,
        "stall_check_seconds": 0.3}


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 5.0) -> Any:
    """``check()``'s first true value, or its last value once ``within`` seconds have passed."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


def below_market(venue: InProcessVenue, symbol: str) -> Decimal:
    """A buy limit 2% under the venue's bid: it rests."""
    quote = venue.exchange.quote(symbol)
    assert quote is not None and quote.bid is not None
    return (quote.bid * Decimal("0.98")).quantize(Decimal("0.01"))
