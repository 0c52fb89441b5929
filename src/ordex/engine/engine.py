"""The execution engine: accepted orders from the store go to a venue; reports come back and are
applied in order, each in one unit of work, then published."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from ordex import metrics
from ordex.clock import Clock
from ordex.domain.controls import timeout_reason, venue_terms
from ordex.domain.instruments import InstrumentStatus
from ordex.domain.journal import Actor, LogAction, entry
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
from ordex.engine.apply import apply_report
from ordex.engine.core import Core
from ordex.engine.ledger import cancel_to_send, routable
from ordex.engine.marketdata import MarketData
from ordex.engine.recovery import Recovery, RecoveryPorts, RecoverySettings
from ordex.engine.tx import Tx
from ordex.engine.writes import reschedule_send, unmark_cancel_sent
from ordex.metrics import MetricsLog
from ordex.store.uow import UnitOfWork
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

    def __init__(self, core: Core, venue: Venue, clock: Clock, market: MarketData,
                 publish_quote: Callable[[Quote], None] | None = None, *,
                 policy: RetryPolicy | None = None, metrics: MetricsLog | None = None,
                 recovery: RecoverySettings | None = None, seed: int | None = None) -> None:
        self.core = core
        self.db = core.db
        self.venue = venue
        self.clock = clock
        self.market = market
        self.publish_quote = publish_quote
        self.policy = policy or RetryPolicy()
        self.metrics = metrics or MetricsLog(None)
        self.rng = random.Random(seed)
        self.recovery = Recovery(RecoveryPorts(
            venue=venue, db=core.db, write=core.run, apply_reports=self.apply_all, fail=self.fail,
            settle_cancel=self.settle_cancel, close_working=self.close_working, wake=self.wake,
            metrics=self.metrics, policy=self.policy, rng=self.rng),
            recovery or RecoverySettings())
        self._wake = asyncio.Event()
        self._outbox: list[tuple[list[Order], list[Order]]] = []
        core.finish = self._route_in_batch
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
        next_sweep: datetime | None = None
        every = timedelta(seconds=SWEEP_SECONDS)
        while True:
            await self.clock.wait(self._wake, SWEEP_SECONDS)
            self._wake.clear()
            try:
                now = self.clock.now()
                # once a sweep, not at every wake (and at once if the clock went back)
                if next_sweep is None or not now < next_sweep <= now + every:
                    next_sweep = now + every
                    await self.sweep(now)
                while self._outbox:
                    await self._send_marked(*self._outbox.pop(0))
                if self.venue.connected and self.recovery.in_sync:
                    while await self.dispatch_once() >= ROUTE_BATCH:
                        pass
            except Exception:
                log.exception("dispatch failed; retrying at the next sweep")

    async def sweep(self, now: datetime) -> None:
        """The periodic duties: timeouts, orders no venue could take in time, and, while the
        venue is reachable, reconciliation after a (re)connect, unconfirmed orders and the
        stalled-stream check."""
        if any(self._past_deadline(now)):
            await self.cancel_overdue(now)
        if any(self._unsent(now)):
            await self.expire_unsent(now)
        if not self.venue.connected:
            self.recovery.disconnected()
            return
        await self.recovery.run_due(now)

    async def dispatch_once(self) -> int:
        """Send what is waiting: new orders, then cancels. Returns how many it found."""
        if not (self.core.ledger.to_route or self.core.ledger.to_cancel):
            return 0
        to_send, to_cancel = await self.core.run(self._mark_for_sending)
        await self._send_marked(to_send, to_cancel)
        return max(len(to_send), len(to_cancel))

    async def _route_in_batch(self, tx: Tx) -> None:
        """At the end of each batch: what its units made routable (new orders, cancels) is
        marked as sent in the same transaction and handed to the sender after the commit."""
        if not (self.venue.connected and self.recovery.in_sync):
            return
        to_send, to_cancel = await self._mark_for_sending(tx)
        if to_send or to_cancel:
            tx.after(lambda: self._hand_over(to_send, to_cancel))

    def _hand_over(self, to_send: list[Order], to_cancel: list[Order]) -> None:
        self._outbox.append((to_send, to_cancel))
        self._wake.set()

    async def _send_marked(self, to_send: list[Order], to_cancel: list[Order]) -> None:
        first = [o for o in to_send if o.send_attempts == 1]
        if first:
            await self._send_first(first)
        for order in to_send:
            if order.send_attempts > 1:
                await self._send(order)
        for order in to_cancel:
            await self._cancel(order)

    async def _mark_for_sending(self, tx: Tx) -> tuple[list[Order], list[Order]]:
        """The intent to send, recorded before anything is sent: orders to route, cancels."""
        now = self.clock.now()
        to_send: list[Order] = []
        for order_id in tx.pending(self.core.ledger.to_route, routable):
            order = await tx.order(order_id)
            if order is None or not routable(order):
                continue
            if order.next_attempt_at is not None and order.next_attempt_at > now:
                continue
            sent = replace(order, routed_at=now, venue=self.venue.name, updated_at=now,
                           send_attempts=order.send_attempts + 1, next_attempt_at=None)
            tx.update_order(sent)
            tx.record(entry(sent, LogAction.EXECUTE, now, Actor.ENGINE,
                            details={"attempt": sent.send_attempts}))
            to_send.append(sent)
            if len(to_send) >= ROUTE_BATCH:
                break
        to_cancel: list[Order] = []
        for order_id in tx.pending(self.core.ledger.to_cancel, cancel_to_send)[:ROUTE_BATCH]:
            order = await tx.order(order_id)
            if order is None or not cancel_to_send(order):
                continue
            tx.update_order(replace(order, cancel_sent_at=now))
            to_cancel.append(order)
        return to_send, to_cancel

    def _past_deadline(self, now: datetime) -> Iterator[Order]:
        return (o for o in self.core.ledger.open.values()
                if o.status in _TIMED and o.expires_at is not None and o.expires_at <= now)

    def _unsent(self, now: datetime) -> Iterator[Order]:
        before = now - timedelta(seconds=self.policy.order_timeout_seconds)
        return (o for o in self.core.ledger.open.values() if o.status is OrderStatus.ACCEPTED
                and o.routed_at is None and o.created_at <= before)

    async def cancel_overdue(self, now: datetime) -> None:
        """Orders past their timeout: cancelled at once if no venue has them, else a cancel is
        requested from the venue (sent with the other cancels)."""
        def change(order: Order) -> Change:
            reason = timeout_reason(order)
            event = (CancelRequested(at=now, reason=reason) if order.routed_at is not None
                     else Cancelled(at=now, reason=reason))
            return event, LogAction.CANCEL, {"timeout_seconds": order.timeout_seconds}
        async def due(tx: Tx) -> list[Order]:
            return _first(self._past_deadline(now))
        await self._transition(due, change)

    async def expire_unsent(self, now: datetime) -> None:
        """Orders no venue could take within ORDER_TIMEOUT_SECONDS expire, never sent."""
        reason = not_sent_in_time_reason(self.venue.name, self.policy.order_timeout_seconds)

        async def due(tx: Tx) -> list[Order]:
            return _first(self._unsent(now))
        await self._transition(
            due, lambda order: (Expired(at=now, reason=reason), LogAction.EXPIRE, {}))

    async def fail(self, order_id: UUID, reason: str, now: datetime,
                   details: dict[str, Any]) -> None:
        """An order no venue has taken, failed with ``reason`` (if it is still accepted)."""
        await self._transition(_locked(order_id, OrderStatus.ACCEPTED),
                               lambda order: (Failed(at=now, reason=reason), LogAction.FAIL,
                                              details))

    async def settle_cancel(self, order_id: UUID, now: datetime) -> None:
        """A cancelled order no venue has: cancelled in ordex, with the trader's reason."""
        def change(order: Order) -> Change:
            reason = f"{order.reason or 'cancelled'}; it never reached venue {self.venue.name}"
            return Cancelled(at=now, reason=reason), LogAction.CANCEL, {"venue": self.venue.name}
        await self._transition(_locked(order_id, OrderStatus.PENDING_CANCEL), change,
                               Actor.RECOVERY)

    async def close_working(self, order_id: UUID, event: DomainEvent, action: LogAction,
                            details: dict[str, Any]) -> list[OrderEvent]:
        """Close an order that is still working in ordex with ``event`` (a cancel or an end
        ordex decided on): its row, log and status event in one unit of work."""
        async def pick(tx: Tx) -> list[Order]:
            order = await tx.order(order_id)
            return [order] if order is not None and order.status in _WORKING else []
        return await self._transition(pick, lambda order: (event, action, details),
                                      Actor.RECOVERY)

    async def _transition(self, pick: Callable[[Tx], Awaitable[list[Order]]],
                          change: Callable[[Order], Change],
                          actor: Actor = Actor.ENGINE) -> list[OrderEvent]:
        """In one unit of work: the orders ``pick`` returns (those still as picked when it
        runs), each changed as ``change`` says: row, log and status event."""
        async def unit(tx: Tx) -> list[OrderEvent]:
            events: list[OrderEvent] = []
            for order in await pick(tx):
                current = await tx.order(order.id)
                if current is None or current != order:
                    continue
                events.append(self._change(tx, current, actor, *change(current)))
            return events
        return await self.core.run(unit)

    def _change(self, tx: Tx, order: Order, actor: Actor, event: DomainEvent,
                action: LogAction, details: dict[str, Any]) -> OrderEvent:
        """Apply ``event`` to ``order`` in ``tx``: the row, its log and its status event."""
        after = apply(order, event)
        tx.update_order(after)
        row = entry(after, action, event.at, actor, reason=after.reason, details=details)
        return tx.show(row, after.status.value, payload(after))

    async def _send_first(self, orders: list[Order]) -> None:
        """First attempts, handed to the venue together."""
        try:
            outcomes = await self.venue.submit_many([_new_order(o) for o in orders])
        except VenueUnavailable as exc:
            outcomes = [exc] * len(orders)
        for order, failed in zip(orders, outcomes, strict=True):
            if failed is not None:
                await self._not_sent(order, str(failed) or "venue unavailable")

    async def _send(self, order: Order) -> None:
        try:
            if order.send_attempts > 1:  # a re-attempt: only if the venue does not have it
                found = await self.venue.query(str(order.id))
                if found is not None:
                    await self.recovery.adopt(order, found, self.clock.now())
                    return
            await self.venue.submit(_new_order(order))
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
        await self.core.run(lambda tx: reschedule_send(
            tx, order.id, retry_at, f"attempt {attempts} not sent: {why}",
            {"venue": self.venue.name, "attempt": attempts, "retry_at": retry_at.isoformat()},
            now))

    async def _cancel(self, order: Order) -> None:
        try:
            await self.venue.cancel(str(order.id))
        except VenueUnavailable as exc:
            log.warning("venue %s unavailable to cancel %s: %s", self.venue.name, order.id, exc,
                        extra={"order_id": order.id, "trader_id": order.trader_id})
            await self.core.run(lambda tx: unmark_cancel_sent(tx, order.id))

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
        async def unit(tx: Tx) -> None:
            now = self.clock.now()
            for report in reports:
                await apply_report(tx, report, now)
        await self.core.run(unit)
        now = self.clock.now()
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
            changed = replace(instrument, status=status,
                              reference_price=reference.quantize(instrument.tick_size)
                              if instrument.tick_size > 0 else Decimal(reference))
            await uow.repo.upsert_instrument(changed, self.clock.now())
            await uow.commit()
        self.core.ledger.instruments[quote.symbol] = changed
        self._halted[quote.symbol] = quote.halted
        self._reference_saved[quote.symbol] = quote.timestamp


_WORKING = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED,
                      OrderStatus.PENDING_CANCEL})


def _new_order(order: Order) -> NewOrder:
    order_type, time_in_force, limit_price = venue_terms(order)
    return NewOrder(client_order_id=str(order.id), symbol=order.symbol, side=order.side,
                    type=order_type, quantity=order.quantity, time_in_force=time_in_force,
                    limit_price=limit_price)


def _first(orders: Iterable[Order]) -> list[Order]:
    """The oldest of ``orders``, as many as one unit of work takes."""
    return sorted(orders, key=lambda o: o.id)[:ROUTE_BATCH]


_TIMED = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})


def _locked(order_id: UUID, status: OrderStatus) -> Callable[[Tx], Awaitable[list[Order]]]:
    """Picks one order if it is still in ``status``."""
    async def pick(tx: Tx) -> list[Order]:
        order = await tx.order(order_id)
        return [order] if order is not None and order.status is status else []
    return pick
