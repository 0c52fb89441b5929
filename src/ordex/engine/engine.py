"""The execution engine: accepted orders from the store go to a venue; reports come back and are
applied in order, each in one unit of work, then published."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from ordex.clock import Clock
from ordex.domain.controls import timeout_reason, venue_terms
from ordex.domain.fills import ExecutionLogEntry, LogAction
from ordex.domain.instruments import InstrumentStatus
from ordex.domain.orders import Cancelled, CancelRequested, Order, apply
from ordex.domain.status import OrderEvent, payload
from ordex.engine.apply import PendingEvent, append_events, apply_report
from ordex.engine.marketdata import MarketData
from ordex.ids import new_id
from ordex.store.database import Database
from ordex.store.uow import UnitOfWork
from ordex.venues.base import ExecutionReport, NewOrder, Quote, Venue, VenueUnavailable

log = logging.getLogger("ordex.engine")

SWEEP_SECONDS = 0.5
REPORT_BATCH = 200
ROUTE_BATCH = 100
REFERENCE_PERSIST_SECONDS = 5.0


class ExecutionEngine:
    def __init__(self, db: Database, venue: Venue, clock: Clock, market: MarketData,
                 publish: Callable[[list[OrderEvent]], None],
                 publish_quote: Callable[[Quote], None] | None = None) -> None:
        self.db = db
        self.venue = venue
        self.clock = clock
        self.market = market
        self.publish = publish
        self.publish_quote = publish_quote
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reference_saved: dict[str, datetime] = {}
        self._halted: dict[str, bool] = {}

    def wake(self) -> None:
        """Something became routable or cancelable: look at the store now, not at the next sweep."""
        self._wake.set()

    async def start(self) -> None:
        await self.venue.start()
        self._tasks = [
            asyncio.create_task(self._dispatch_loop(), name="ordex-dispatch"),
            asyncio.create_task(self._report_loop(), name="ordex-reports"),
            asyncio.create_task(self._quote_loop(), name="ordex-quotes"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.venue.stop()

    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        overdue_check = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_SECONDS)
            self._wake.clear()
            try:
                if loop.time() >= overdue_check:  # once a sweep, not at every wake
                    overdue_check = loop.time() + SWEEP_SECONDS
                    await self.cancel_overdue(self.clock.now())
                while await self.dispatch_once() >= ROUTE_BATCH:
                    pass
            except Exception:
                log.exception("dispatch failed; retrying at the next sweep")

    async def dispatch_once(self) -> int:
        """Send what is waiting: new orders, then cancels. Returns how many it found."""
        now = self.clock.now()
        async with UnitOfWork(self.db) as uow:
            to_send: list[Order] = []
            for order in await uow.repo.orders_to_route(ROUTE_BATCH):
                if await uow.repo.mark_routed(order.id, self.venue.name, now):
                    to_send.append(replace(order, routed_at=now, venue=self.venue.name))
                    await uow.repo.log(ExecutionLogEntry(
                        new_id(), order.trader_id, order.id, LogAction.EXECUTE,
                        order.status.value, now, None, {"venue": self.venue.name}))
            to_cancel: list[Order] = []
            for order in await uow.repo.orders_to_cancel(ROUTE_BATCH):
                if await uow.repo.mark_cancel_sent(order.id, now):
                    to_cancel.append(order)
            await uow.commit()
        for order in to_send:
            await self._send(order)
        for order in to_cancel:
            await self._cancel(order)
        return max(len(to_send), len(to_cancel))

    async def cancel_overdue(self, now: datetime) -> None:
        """Orders past their timeout: cancelled at once if no venue has them, else a cancel is
        requested from the venue (sent below, with the other cancels)."""
        pending: list[PendingEvent] = []
        async with UnitOfWork(self.db) as uow:
            for order in await uow.repo.orders_past_deadline(now, ROUTE_BATCH):
                reason = timeout_reason(order)
                event = (CancelRequested(at=now, reason=reason) if order.routed_at is not None
                         else Cancelled(at=now, reason=reason))
                after = apply(order, event)
                await uow.repo.update_order(after)
                await uow.repo.log(ExecutionLogEntry(
                    new_id(), after.trader_id, after.id, LogAction.CANCEL, after.status.value,
                    now, reason, {"timeout_seconds": order.timeout_seconds}))
                pending.append(PendingEvent(after, after.status.value, payload(after)))
            if not pending:
                return
            events = await append_events(uow.repo, pending, self.clock)
            await uow.commit()
        self.publish(events)

    async def _send(self, order: Order) -> None:
        order_type, time_in_force, limit_price = venue_terms(order)
        try:
            await self.venue.submit(NewOrder(
                client_order_id=str(order.id), symbol=order.symbol, side=order.side,
                type=order_type, quantity=order.quantity, time_in_force=time_in_force,
                limit_price=limit_price))
        except VenueUnavailable as exc:
            # Refused before anything was sent: the order is routable again at the next sweep.
            log.warning("venue %s unavailable for order %s: %s", self.venue.name, order.id, exc,
                        extra={"order_id": order.id, "trader_id": order.trader_id})
            async with UnitOfWork(self.db) as uow:
                await uow.repo.unmark_routed(order.id)
                await uow.commit()

    async def _cancel(self, order: Order) -> None:
        try:
            await self.venue.cancel(str(order.id))
        except VenueUnavailable as exc:
            log.warning("venue %s unavailable to cancel %s: %s", self.venue.name, order.id, exc,
                        extra={"order_id": order.id, "trader_id": order.trader_id})
            async with UnitOfWork(self.db) as uow:
                await uow.repo.unmark_cancel_sent(order.id)
                await uow.commit()

    async def _report_loop(self) -> None:
        """Reports that are already waiting are applied together, in order, in one transaction:
        an ack and the fills that follow it cost one commit, not several."""
        waiting: asyncio.Queue[ExecutionReport] = asyncio.Queue()

        async def pump() -> None:
            async for report in self.venue.reports():
                waiting.put_nowait(report)

        pumping = asyncio.create_task(pump(), name="ordex-report-pump")
        try:
            while True:
                batch = [await waiting.get()]
                while not waiting.empty() and len(batch) < REPORT_BATCH:
                    batch.append(waiting.get_nowait())
                await self.apply_all(batch)
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumping

    async def apply_all(self, reports: list[ExecutionReport]) -> None:
        try:
            await self._apply_in_one(reports)
            return
        except Exception:
            if len(reports) == 1:
                log.exception("could not apply report %s for %s", reports[0].exec_id,
                              reports[0].client_order_id)
                return
        for report in reports:  # one bad report must not hold back the others
            try:
                await self._apply_in_one([report])
            except Exception:
                log.exception("could not apply report %s for %s", report.exec_id,
                              report.client_order_id)

    async def apply(self, report: ExecutionReport) -> None:
        await self._apply_in_one([report])

    async def _apply_in_one(self, reports: list[ExecutionReport]) -> None:
        pending: list[PendingEvent] = []
        async with UnitOfWork(self.db) as uow:
            for report in reports:
                pending.extend((await apply_report(uow.repo, report)).events)
            events = await append_events(uow.repo, pending, self.clock)
            await uow.commit()
        if events:
            self.publish(events)

    async def _quote_loop(self) -> None:
        async for quote in self.venue.quotes():
            self.market.update(quote)
            if self.publish_quote is not None:
                self.publish_quote(quote)
            try:
                await self._persist_reference(quote)
            except Exception:
                log.exception("could not store the reference price of %s", quote.symbol)

    async def _persist_reference(self, quote: Quote) -> None:
        """Keep the stored instrument current: reference price now and then, halts at once."""
        price = self.market.reference_price(quote.symbol)
        halt_changed = self._halted.get(quote.symbol) != quote.halted
        saved = self._reference_saved.get(quote.symbol)
        due = saved is None or quote.timestamp - saved >= timedelta(
            seconds=REFERENCE_PERSIST_SECONDS)
        if not (halt_changed or (due and price is not None)):
            return
        async with UnitOfWork(self.db) as uow:
            instrument = await uow.repo.instrument(quote.symbol)
            if instrument is None:
                return
            status = instrument.status
            if status in (InstrumentStatus.ACTIVE, InstrumentStatus.HALTED):
                status = InstrumentStatus.HALTED if quote.halted else InstrumentStatus.ACTIVE
            reference = price if price is not None else instrument.reference_price
            await uow.repo.upsert_instrument(
                replace(instrument, status=status,
                        reference_price=reference.quantize(instrument.tick_size)
                        if instrument.tick_size > 0 else Decimal(reference)),
                self.clock.now())
            await uow.commit()
        self._halted[quote.symbol] = quote.halted
        self._reference_saved[quote.symbol] = quote.timestamp
