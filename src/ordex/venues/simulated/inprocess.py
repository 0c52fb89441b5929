"""InProcessVenue: the Venue protocol around a SimulatedExchange in the same event loop.

Exchange calls are synchronous and short; reports go to one queue read by ``reports()``, quotes to
every ``quotes()`` subscriber. Faults the adapter applies: ``down`` (every call raises
VenueUnavailable, and reports and quotes made meanwhile are lost, as on a dropped connection) and
``ack_delay`` (a submit's reports are held back that long without blocking other orders; later
reports for the same order wait behind them, so an order's reports never overtake each other).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

from ordex.venues.base import (
    Capabilities,
    Capability,
    ExecutionReport,
    NewOrder,
    Quote,
    SessionStatus,
    VenueOrder,
    VenueUnavailable,
)
from ordex.venues.simulated.exchange import SimulatedExchange
from ordex.venues.simulated.faults import Faults

log = logging.getLogger("ordex.venues.simulated")

_QuoteKey = tuple[Decimal | None, Decimal | None, Decimal | None, bool]
T = TypeVar("T")


class Stream(Generic[T]):
    """An async iterator over a queue. Cancelling a pending ``anext`` (a timeout) leaves it
    usable, unlike an async generator, which would be closed."""

    def __init__(self, queue: asyncio.Queue[T]) -> None:
        self.queue = queue

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> T:
        return await self.queue.get()

    def offer(self, item: T) -> None:
        """Put without waiting; when full, the oldest item makes room."""
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(item)


class InProcessVenue:
    """A Venue whose exchange runs in process; ``tick_interval`` seconds between market steps
    (0 or None: no automatic steps, call ``step()`` yourself)."""

    def __init__(self, exchange: SimulatedExchange, tick_interval: float | None = 0.25,
                 quote_buffer: int = 10_000) -> None:
        self.exchange = exchange
        self.name = exchange.name
        self.tick_interval = tick_interval
        self.lost_reports = 0  # reports made while down, never delivered
        self.capabilities = Capabilities(
            self.name, dict.fromkeys(Capability, "built in: the embedded exchange"))
        self._quote_buffer = quote_buffer
        self._reports: asyncio.Queue[ExecutionReport] = asyncio.Queue()
        self._quote_streams: weakref.WeakSet[Stream[Quote]] = weakref.WeakSet()
        self._last_quotes: dict[str, _QuoteKey] = {}
        self._quotes_missed = False  # quotes went unpublished (no subscriber, or down)
        self._held: dict[str, list[ExecutionReport]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None

    @property
    def faults(self) -> Faults:
        return self.exchange.faults

    @property
    def connected(self) -> bool:
        return not self.faults.down

    def session_status(self) -> SessionStatus:
        if self.connected:
            return SessionStatus("connected")
        return SessionStatus("disconnected", "the embedded exchange is down (fault switch)",
                             "switch the outage fault off")

    # ---- Venue protocol -----------------------------------------------------------------------

    async def start(self) -> None:
        restored, self.exchange.restored_reports = self.exchange.restored_reports, []
        self._publish(restored)
        if self._ticker is None and self.tick_interval:
            self._ticker = asyncio.create_task(self._tick_loop(), name=f"{self.name}-market")

    async def stop(self) -> None:
        tasks = list(self._tasks)
        if self._ticker is not None:
            tasks.append(self._ticker)
            self._ticker = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._held.clear()

    def close(self) -> None:
        """Close the exchange's journal (after ``stop``)."""
        self.exchange.close()

    async def submit(self, order: NewOrder) -> None:
        self._check_up()
        if self.faults.refuse_sends > 0:
            self.faults.refuse_sends -= 1
            raise VenueUnavailable(f"{self.name} is busy")
        reports = self.exchange.submit(order)
        delay = self.faults.ack_delay
        if delay > 0 and reports:
            self._hold(order.client_order_id, reports, delay)
        else:
            self._publish(reports)
        self._publish_quotes((order.symbol,))

    async def submit_many(self, orders: list[NewOrder]) -> list[VenueUnavailable | None]:
        """Taken by the exchange in one go: matched in turn, journaled once."""
        self._check_up()
        outcomes: list[VenueUnavailable | None] = []
        taken: list[NewOrder] = []
        for order in orders:
            if self.faults.refuse_sends > 0:
                self.faults.refuse_sends -= 1
                outcomes.append(VenueUnavailable(f"{self.name} is busy"))
            else:
                outcomes.append(None)
                taken.append(order)
        delay = self.faults.ack_delay
        for order, reports in zip(taken, self.exchange.submit_many(taken), strict=True):
            if delay > 0 and reports:
                self._hold(order.client_order_id, reports, delay)
            else:
                self._publish(reports)
        self._publish_quotes({order.symbol for order in taken})
        return outcomes

    async def cancel(self, client_order_id: str) -> None:
        self._check_up()
        reports = self.exchange.cancel(client_order_id)
        self._publish(reports)
        self._publish_quotes({report.symbol for report in reports})

    async def query(self, client_order_id: str) -> VenueOrder | None:
        self._check_up()
        return self.exchange.query(client_order_id)

    async def open_orders(self) -> list[VenueOrder]:
        self._check_up()
        return self.exchange.open_orders()

    async def fills_since(self, since: datetime) -> list[ExecutionReport]:
        self._check_up()
        return self.exchange.fills_since(since)

    def reports(self) -> AsyncIterator[ExecutionReport]:
        """Every report, in order; all calls share one queue, so read from one consumer."""
        return Stream(self._reports)

    def quotes(self) -> AsyncIterator[Quote]:
        """The current quote of every symbol, then one whenever a symbol's bid, ask, last or halt
        changes. Each call is a new subscriber (until it is dropped); a slow one loses its oldest
        quotes."""
        stream: Stream[Quote] = Stream(asyncio.Queue(self._quote_buffer))
        for quote in self.exchange.quotes():
            self._last_quotes[quote.symbol] = _key(quote)
            stream.offer(quote)
        self._quote_streams.add(stream)
        return stream

    # ---- admin commands (they publish what they cause) ----------------------------------------

    def step(self) -> list[ExecutionReport]:
        """One market step now (what the ticker does)."""
        reports = self.exchange.step()
        self._publish(reports)
        self._publish_quotes()
        return reports

    def move_market(self, symbol: str, price: Decimal) -> list[ExecutionReport]:
        reports = self.exchange.move_market(symbol, price)
        self._publish(reports)
        self._publish_quotes((symbol,))
        return reports

    def set_liquidity(self, symbol: str, depth_levels: int | None = None,
                      level_size: Decimal | None = None,
                      level_size_max: Decimal | None = None) -> list[ExecutionReport]:
        reports = self.exchange.set_liquidity(symbol, depth_levels, level_size, level_size_max)
        self._publish(reports)
        self._publish_quotes((symbol,))
        return reports

    def halt(self, symbol: str, reason: str = "trading halt") -> None:
        self.exchange.halt(symbol, reason)
        self._publish_quotes((symbol,))

    def resume(self, symbol: str) -> list[ExecutionReport]:
        reports = self.exchange.resume(symbol)
        self._publish(reports)
        self._publish_quotes((symbol,))
        return reports

    def expire_day_orders(self, reason: str = "end of day") -> list[ExecutionReport]:
        reports = self.exchange.expire_day_orders(reason)
        self._publish(reports)
        self._publish_quotes()
        return reports

    # ---- internals ----------------------------------------------------------------------------

    def _check_up(self) -> None:
        if self.faults.down:
            raise VenueUnavailable(f"{self.name} is down")

    def _publish(self, reports: list[ExecutionReport]) -> None:
        for report in reports:
            held = self._held.get(report.client_order_id)
            if held is not None:
                held.append(report)
            elif self.faults.down or self.faults.stall_reports:
                self.lost_reports += 1
            else:
                self._reports.put_nowait(report)

    def _hold(self, client_order_id: str, reports: list[ExecutionReport], delay: float) -> None:
        held = self._held.get(client_order_id)
        if held is not None:
            held.extend(reports)
            return
        self._held[client_order_id] = list(reports)
        task = asyncio.create_task(self._release(client_order_id, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release(self, client_order_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._publish(self._held.pop(client_order_id, []))

    def _publish_quotes(self, symbols: Iterable[str] | None = None) -> None:
        """The quotes of ``symbols`` (those a call could move; None: every symbol) that
        changed; after an outage, every symbol's."""
        if not self._quote_streams or self.faults.down:
            self._quotes_missed = True
            return
        if self._quotes_missed:
            symbols, self._quotes_missed = None, False
        for quote in self.exchange.quotes(symbols):
            key = _key(quote)
            if self._last_quotes.get(quote.symbol) == key:
                continue
            self._last_quotes[quote.symbol] = key
            for stream in list(self._quote_streams):
                stream.offer(quote)

    async def _tick_loop(self) -> None:
        assert self.tick_interval
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.step()
            except Exception:
                log.exception("market step failed at %s", self.name)


def _key(quote: Quote) -> _QuoteKey:
    return quote.bid, quote.ask, quote.last, quote.halted

