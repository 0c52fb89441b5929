"""The execution engine: accepted orders from the store go to a venue; reports come back and are
applied in order, each in one unit of work, then published."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from ordex import metrics
from ordex.clock import Clock
from ordex.domain.controls import timeout_reason, venue_terms
from ordex.domain.fills import ExecutionLogEntry, LogAction
from ordex.domain.instruments import InstrumentStatus
from ordex.domain.orders import (
    Cancelled,
    CancelRequested,
    Expired,
    Failed,
    Order,
    OrderStatus,
    apply,
)
from ordex.domain.orders import OrderEvent as DomainEvent
from ordex.domain.sending import (
    RetryPolicy,
    not_sent_in_time_reason,
    unreachable_reason,
)
from ordex.domain.status import OrderEvent, payload
from ordex.engine.apply import PendingEvent, append_events, apply_report
from ordex.engine.marketdata import MarketData
from ordex.engine.recovery import Recovery, RecoveryPorts, RecoverySettings
from ordex.ids import new_id
from ordex.metrics import MetricsLog
from ordex.store.database import Database
from ordex.store.repository import Repository
from ordex.store.uow import UnitOfWork, reading
from ordex.venues.base import ExecutionReport, NewOrder, Quote, Venue, VenueUnavailable

log = logging.getLogger("ordex.engine")

Change = tuple[DomainEvent, LogAction, dict[str, Any]]

SWEEP_SECONDS = 0.5
REPORT_BATCH = 200
ROUTE_BATCH = 100
REFERENCE_PERSIST_SECONDS = 5.0


class ExecutionEngine:
    """Sends accepted orders, applies what venues report, and keeps ordex and the venue in
    agreement: retries with backoff, asks the venue about unconfirmed orders, reconciles on
    start-up and on every reconnect, and samples working orders to notice a stalled report
    stream (see ``engine.recovery``)."""

    def __init__(self, db: Database, venue: Venue, clock: Clock, market: MarketData,
                 publish: Callable[[list[OrderEvent]], None],
                 publish_quote: Callable[[Quote], None] | None = None, *,
                 policy: RetryPolicy | None = None, metrics: MetricsLog | None = None,
                 recovery: RecoverySettings | None = None, seed: int | None = None) -> None:
        self.db = db
        self.venue = venue
        self.clock = clock
        self.market = market
        self.publish = publish
        self.publish_quote = publish_quote
        self.policy = policy or RetryPolicy()
        self.metrics = metrics or MetricsLog(None)
        self.rng = random.Random(seed)
        self.recovery = Recovery(RecoveryPorts(
            venue=venue, db=db, apply_reports=self.apply_all, fail=self.fail,
            settle_cancel=self.settle_cancel, close_working=self.close_working, wake=self.wake,
            metrics=self.metrics, policy=self.policy, rng=self.rng),
            recovery or RecoverySettings())
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
        next_sweep = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_SECONDS)
            self._wake.clear()
            try:
                if loop.time() >= next_sweep:  # once a sweep, not at every wake
                    next_sweep = loop.time() + SWEEP_SECONDS
                    await self.sweep(self.clock.now())
                if self.venue.connected and self.recovery.in_sync:
                    while await self.dispatch_once() >= ROUTE_BATCH:
                        pass
            except Exception:
                log.exception("dispatch failed; retrying at the next sweep")

    async def sweep(self, now: datetime) -> None:
        """The periodic duties: timeouts, orders no venue could take in time, and, while the
        venue is reachable, reconciliation after a (re)connect, unconfirmed orders and the
        stalled-stream check."""
        unsent_before = now - timedelta(seconds=self.policy.order_timeout_seconds)
        async with reading(self.db) as repo:  # a write transaction only when something is due
            timed_out = bool(await repo.orders_past_deadline(now, 1))
            unsent = bool(await repo.orders_unsent(unsent_before, 1))
        if timed_out:
            await self.cancel_overdue(now)
        if unsent:
            await self.expire_unsent(now)
        if not self.venue.connected:
            self.recovery.disconnected()
            return
        await self.recovery.run_due(now)

    async def dispatch_once(self) -> int:
        """Send what is waiting: new orders, then cancels. Returns how many it found."""
        now = self.clock.now()
        async with UnitOfWork(self.db) as uow:
            to_send: list[Order] = []
            for order in await uow.repo.orders_to_route(now, ROUTE_BATCH):
                if await uow.repo.mark_routed(order.id, self.venue.name, now):
                    sent = replace(order, routed_at=now, venue=self.venue.name,
                                   send_attempts=order.send_attempts + 1, next_attempt_at=None)
                    to_send.append(sent)
                    await uow.repo.log(ExecutionLogEntry(
                        new_id(), order.trader_id, order.id, LogAction.EXECUTE,
                        order.status.value, now, None,
                        {"venue": self.venue.name, "attempt": sent.send_attempts}))
            to_cancel: list[Order] = []
            for order in await uow.repo.orders_to_cancel(ROUTE_BATCH):
                if await uow.repo.mark_cancel_sent(order.id, now):
                    to_cancel.append(order)
            await uow.commit()
        for order in to_send:
            self.metrics.emit(metrics.EXECUTED, now, order_id=order.id, trader_id=order.trader_id,
                              venue=self.venue.name, retry_count=order.send_attempts - 1)
            await self._send(order)
        for order in to_cancel:
            await self._cancel(order)
        return max(len(to_send), len(to_cancel))

    async def cancel_overdue(self, now: datetime) -> None:
        """Orders past their timeout: cancelled at once if no venue has them, else a cancel is
        requested from the venue (sent with the other cancels)."""
        def change(order: Order) -> Change:
            reason = timeout_reason(order)
            event = (CancelRequested(at=now, reason=reason) if order.routed_at is not None
                     else Cancelled(at=now, reason=reason))
            return event, LogAction.CANCEL, {"timeout_seconds": order.timeout_seconds}
        await self._transition(lambda repo: repo.orders_past_deadline(now, ROUTE_BATCH), change)

    async def expire_unsent(self, now: datetime) -> None:
        """Orders no venue could take within ORDER_TIMEOUT_SECONDS expire, never sent."""
        limit = now - timedelta(seconds=self.policy.order_timeout_seconds)
        reason = not_sent_in_time_reason(self.venue.name, self.policy.order_timeout_seconds)
        events = await self._transition(
            lambda repo: repo.orders_unsent(limit, ROUTE_BATCH),
            lambda order: (Expired(at=now, reason=reason), LogAction.EXPIRE,
                           {"venue": self.venue.name}))
        for event in events:
            self.metrics.emit(metrics.FAILED, now, order_id=event.order_id,
                              trader_id=event.trader_id, reason=reason, status="expired")

    async def fail(self, order_id: UUID, reason: str, now: datetime,
                   details: dict[str, Any]) -> None:
        """An order no venue has taken, failed with ``reason`` (if it is still accepted)."""
        failed: list[Order] = []

        def change(order: Order) -> Change:
            failed.append(order)
            return Failed(at=now, reason=reason), LogAction.FAIL, details
        await self._transition(_locked(order_id, OrderStatus.ACCEPTED), change)
        for order in failed:
            self.metrics.emit(metrics.FAILED, now, order_id=order.id, trader_id=order.trader_id,
                              reason=reason, retry_count=max(order.send_attempts - 1, 0))

    async def settle_cancel(self, order_id: UUID, now: datetime) -> None:
        """A cancelled order no venue has: cancelled in ordex, with the trader's reason."""
        def change(order: Order) -> Change:
            reason = f"{order.reason or 'cancelled'}; it never reached venue {self.venue.name}"
            return Cancelled(at=now, reason=reason), LogAction.CANCEL, {"venue": self.venue.name}
        await self._transition(_locked(order_id, OrderStatus.PENDING_CANCEL), change)

    async def close_working(self, order_id: UUID, event: DomainEvent, action: LogAction,
                            details: dict[str, Any]) -> list[OrderEvent]:
        """Close an order that is still working in ordex with ``event`` (a cancel or an end
        ordex decided on): its row, log and status event in one unit of work."""
        async def pick(repo: Repository) -> list[Order]:
            order = await repo.order(order_id, lock=True)
            return [order] if order is not None and order.status in _WORKING else []
        return await self._transition(pick, lambda order: (event, action, details))

    async def _transition(self, pick: Callable[[Repository], Awaitable[list[Order]]],
                          change: Callable[[Order], Change]) -> list[OrderEvent]:
        """In one unit of work: the orders ``pick`` returns, each changed as ``change`` says
        (row, log, status event); then published."""
        async with UnitOfWork(self.db) as uow:
            orders = await pick(uow.repo)
            if not orders:
                return []
            pending = [await self._change(uow, order, *change(order)) for order in orders]
            events = await append_events(uow.repo, pending, self.clock)
            await uow.commit()
        self.publish(events)
        return events

    async def _change(self, uow: UnitOfWork, order: Order, event: DomainEvent, action: LogAction,
                      details: dict[str, Any]) -> PendingEvent:
        """Apply ``event`` to a locked ``order`` in ``uow``: the row, its log and its event."""
        after = apply(order, event)
        await uow.repo.update_order(after)
        await uow.repo.log(ExecutionLogEntry(new_id(), after.trader_id, after.id, action,
                                             after.status.value, event.at, after.reason, details))
        return PendingEvent(after, after.status.value, payload(after))

    async def _send(self, order: Order) -> None:
        order_type, time_in_force, limit_price = venue_terms(order)
        try:
            if order.send_attempts > 1:  # a re-attempt: only if the venue does not have it
                found = await self.venue.query(str(order.id))
                if found is not None:
                    await self.recovery.adopt(order, found, self.clock.now())
                    return
            await self.venue.submit(NewOrder(
                client_order_id=str(order.id), symbol=order.symbol, side=order.side,
                type=order_type, quantity=order.quantity, time_in_force=time_in_force,
                limit_price=limit_price))
        except VenueUnavailable as exc:
            await self._not_sent(order, str(exc) or "venue unavailable")

    async def _not_sent(self, order: Order, why: str) -> None:
        """The venue refused the connection before anything was sent: retry later with backoff,
        or fail the order once every attempt is spent."""
        now = self.clock.now()
        attempts = order.send_attempts
        log.warning("attempt %d to send order %s to %s failed: %s", attempts, order.id,
                    self.venue.name, why,
                    extra={"order_id": order.id, "trader_id": order.trader_id})
        if not self.policy.may_retry(attempts):
            await self.fail(order.id, unreachable_reason(self.venue.name, attempts, why), now,
                            {"venue": self.venue.name, "attempts": attempts, "error": why})
            return
        retry_at = now + self.policy.backoff(attempts, self.rng)
        async with UnitOfWork(self.db) as uow:
            await uow.repo.reschedule_send(order.id, retry_at)
            await uow.repo.log(ExecutionLogEntry(
                new_id(), order.trader_id, order.id, LogAction.RETRY, order.status.value, now,
                f"attempt {attempts} not sent: {why}",
                {"venue": self.venue.name, "attempt": attempts, "retry_at": retry_at.isoformat()}))
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
        now = self.clock.now()
        for event in events:
            if event.type == OrderStatus.FILLED.value:
                self.metrics.emit(metrics.FILLED, now, order_id=event.order_id,
                                  trader_id=event.trader_id, venue=self.venue.name,
                                  retry_count=max(event.payload["send_attempts"] - 1, 0))
        for report in reports:
            if report.duplicate:
                self.recovery.venue_has(report.client_order_id)
                self.metrics.emit(metrics.EXECUTED, now, order_id=report.client_order_id,
                                  venue=report.venue, error="duplicate",
                                  detail="the venue refused a second copy: it has the order")

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


_WORKING = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED,
                      OrderStatus.PENDING_CANCEL})


def _locked(order_id: UUID, status: OrderStatus) -> Callable[[Repository],
                                                             Awaitable[list[Order]]]:
    """Picks one order, locked, if it is still in ``status``."""
    async def pick(repo: Repository) -> list[Order]:
        order = await repo.order(order_id, lock=True)
        return [order] if order is not None and order.status is status else []
    return pick
