"""The execution engine: accepted orders go to their venues; reports come back and are applied
in order, each in one unit of work, then published. Each venue has its own dispatch, recovery,
reports and reconnects; the timers (timeouts, orders never sent) run on the engine's clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from msgspec.structs import replace

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
    Routing,
    apply,
    sent,
)
from ordex.domain.orders import OrderEvent as DomainEvent
from ordex.domain.routing import venue_of
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
from ordex.venues.base import ExecutionReport, NewOrder, Quote, Venue, VenueUnavailable

log = logging.getLogger("ordex.engine")

Change = tuple[DomainEvent, LogAction, dict[str, Any]]

SWEEP_SECONDS = 0.5
REPORT_BATCH = 200
ROUTE_BATCH = 100
REFERENCE_PERSIST_SECONDS = 5.0


class _Link:
    """One venue as the engine drives it: its recovery, its own wake-up and the orders handed
    to it after a commit. A venue that is down or reconciling holds back only its own orders."""

    def __init__(self, venue: Venue, recovery: Recovery, wake: asyncio.Event) -> None:
        self.venue = venue
        self.recovery = recovery
        self.wake = wake
        self.outbox: list[Marked] = []

    @property
    def name(self) -> str:
        return self.venue.name

    @property
    def ready(self) -> bool:
        """Connected and reconciled since it last (re)connected: new orders may go."""
        return self.venue.connected and self.recovery.in_sync


Marked = tuple[list[Order], list[Order]]  # orders to send, cancels to send, of one venue


class ExecutionEngine:
    """Sends accepted orders to their venues, applies what venues report, and keeps ordex and
    each venue in agreement: retries with backoff, asks the venue about unconfirmed orders,
    reconciles on start-up and on every reconnect, and samples working orders to notice a
    stalled report stream (one ``engine.recovery.Recovery`` per venue).

    ``venues`` are by name; an order goes to the one it records (``Order.venue``, set when it is
    accepted), or to ``default_venue`` if it records none. Market data comes from the default
    venue."""

    def __init__(self, core: Core, venues: Mapping[str, Venue], clock: Clock, market: MarketData,
                 publish_quote: Callable[[Quote], None] | None = None, *,
                 default_venue: str | None = None,
                 policy: RetryPolicy | None = None, metrics: MetricsLog | None = None,
                 recovery: RecoverySettings | None = None, seed: int | None = None,
                 rng: random.Random | None = None) -> None:
        if not venues:
            raise ValueError("the engine needs at least one venue")
        for name, venue in venues.items():
            if name != venue.name:
                raise ValueError(f"venue {venue.name!r} is configured as {name!r}")
        self.core = core
        self.db = core.db
        self.venues: dict[str, Venue] = dict(venues)
        self.default_venue = default_venue or next(iter(self.venues))
        if self.default_venue not in self.venues:
            raise ValueError(f"the default venue {self.default_venue!r} is not configured")
        self.clock = clock
        self.market = market
        self.publish_quote = publish_quote
        self.policy = policy or RetryPolicy()
        self.metrics = metrics or MetricsLog(None)
        self.rng = rng or random.Random(seed)
        settings = recovery or RecoverySettings()
        self._links = {name: self._link(venue, settings) for name, venue in self.venues.items()}
        core.finish = self._route_in_batch
        self._tasks: list[asyncio.Task[None]] = []
        self._timers = asyncio.Event()  # never set: the timers run when the clock says
        self._reference_saved: dict[str, datetime] = {}
        self._halted: dict[str, bool] = {}

    def _link(self, venue: Venue, settings: RecoverySettings) -> _Link:
        wake = asyncio.Event()
        recovery = Recovery(RecoveryPorts(
            venue=venue, db=self.db, open_orders=lambda: self.core.ledger.open.values(),
            write=self.core.run, apply_reports=self.apply_all,
            fail=self.fail, settle_cancel=self.settle_cancel, close_working=self.close_working,
            wake=wake.set, metrics=self.metrics, policy=self.policy, rng=self.rng), settings)
        return _Link(venue, recovery, wake)

    @property
    def venue(self) -> Venue:
        """The default venue."""
        return self.venues[self.default_venue]

    @property
    def recovery(self) -> Recovery:
        """The default venue's recovery."""
        return self._links[self.default_venue].recovery

    @property
    def recoveries(self) -> dict[str, Recovery]:
        return {name: link.recovery for name, link in self._links.items()}

    def wake(self) -> None:
        """Something became routable or cancelable: look now, not at the next sweep."""
        for link in self._links.values():
            link.wake.set()

    async def start(self) -> None:
        elsewhere: dict[str, int] = {}
        for order in self.core.ledger.open.values():
            if order.venue is not None and order.venue not in self.venues:
                elsewhere[order.venue] = elsewhere.get(order.venue, 0) + 1
        for name, count in sorted(elsewhere.items()):
            log.error("%d open orders belong to venue %s, which is not configured: until it is "
                      "again (--venue %s=...), they are neither reconciled nor cancelled there, "
                      "and those never sent expire unsent", count, name, name)
        await asyncio.gather(*(venue.start() for venue in self.venues.values()))
        self._tasks = [asyncio.create_task(self._timer_loop(), name="ordex-timers")]
        for name, link in self._links.items():
            self._tasks += [
                asyncio.create_task(self._dispatch_loop(link), name=f"ordex-dispatch-{name}"),
                asyncio.create_task(self._report_loop(link), name=f"ordex-reports-{name}"),
            ]
        self._tasks.append(asyncio.create_task(
            self._quote_loop(self._links[self.default_venue]), name="ordex-quotes"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for venue in self.venues.values():
            try:
                await venue.stop()
            except Exception:
                log.exception("venue %s did not stop cleanly", venue.name)

    async def _timer_loop(self) -> None:
        """Timeouts and orders never sent, each sweep of the clock."""
        while True:
            await self.clock.wait(self._timers, SWEEP_SECONDS)
            try:
                await self.run_timers(self.clock.now())
            except Exception:
                log.exception("the timers failed; retrying at the next sweep")

    async def run_timers(self, now: datetime) -> None:
        if any(self._past_deadline(now)):
            await self.cancel_overdue(now)
        if any(self._unsent(now)):
            await self.expire_unsent(now)

    async def _dispatch_loop(self, link: _Link) -> None:
        next_sweep: datetime | None = None
        every = timedelta(seconds=SWEEP_SECONDS)
        while True:
            await self.clock.wait(link.wake, SWEEP_SECONDS)
            link.wake.clear()
            try:
                now = self.clock.now()
                # once a sweep, not at every wake (and at once if the clock went back)
                if next_sweep is None or not now < next_sweep <= now + every:
                    next_sweep = now + every
                    await self.sweep(link.name, now)
                await self.send(link.name)
            except Exception:
                log.exception("dispatch to venue %s failed; retrying at the next sweep",
                              link.name)

    async def sweep(self, venue: str, now: datetime) -> None:
        """A venue's periodic duties while it is reachable: reconciliation after a (re)connect,
        unconfirmed orders and the stalled-stream check."""
        link = self._links[venue]
        if not link.venue.connected:
            link.recovery.disconnected()
            return
        await link.recovery.run_due(now)

    async def send(self, venue: str) -> None:
        """Send ``venue`` what was handed to it after a commit, then, while it is ready, what
        waits for it still."""
        link = self._links[venue]
        while link.outbox:
            await self._send_marked(link, *link.outbox.pop(0))
        if link.ready:
            while await self._dispatch(link) >= ROUTE_BATCH:
                pass

    async def dispatch_once(self) -> int:
        """Send what is waiting to every venue that is ready: new orders, then cancels. Returns
        the most any one venue found."""
        found = [await self._dispatch(link) for link in self._links.values() if link.ready]
        return max(found, default=0)

    async def _dispatch(self, link: _Link) -> int:
        if not self._waiting(link.name, self.clock.now()):
            return 0
        marked = await self.core.run(lambda tx: self._mark_for_sending(tx, {link.name}))
        to_send, to_cancel = marked.get(link.name, ([], []))
        await self._send_marked(link, to_send, to_cancel)
        return max(len(to_send), len(to_cancel))

    def _waiting(self, venue: str, now: datetime) -> bool:
        """Whether memory holds an order due to go to ``venue`` or a cancel to send there: a
        venue that is down, or orders waiting out a backoff, cost no unit of work."""
        ledger = self.core.ledger

        def mine(order_id: UUID) -> Order | None:
            order = ledger.open.get(order_id)
            return order if order is not None and venue_of(
                order, self.default_venue) == venue else None
        for order_id in ledger.to_route:
            order = mine(order_id)
            if order is not None and (order.next_attempt_at is None
                                      or order.next_attempt_at <= now):
                return True
        return any(mine(order_id) is not None for order_id in ledger.to_cancel)

    async def _route_in_batch(self, tx: Tx) -> None:
        """At the end of each batch: what its units made routable (new orders, cancels) is
        marked as sent in the same transaction and handed to each venue's sender after the
        commit, grouped by venue."""
        ready = {name for name, link in self._links.items() if link.ready}
        if not ready:
            return
        marked = await self._mark_for_sending(tx, ready)
        if marked:
            tx.after(lambda: self._hand_over(marked))

    def _hand_over(self, marked: dict[str, Marked]) -> None:
        for name, orders in marked.items():
            link = self._links[name]
            link.outbox.append(orders)
            link.wake.set()

    async def _send_marked(self, link: _Link, to_send: list[Order],
                           to_cancel: list[Order]) -> None:
        first = [o for o in to_send if o.send_attempts == 1]
        if first:
            await self._send_first(link, first)
        for order in to_send:
            if order.send_attempts > 1:
                await self._send(link, order)
        for order in to_cancel:
            await self._cancel(link, order)

    async def _mark_for_sending(self, tx: Tx, venues: Collection[str]) -> dict[str, Marked]:
        """The intent to send, recorded before anything is sent: for each of ``venues``, the
        orders to route there and the cancels to send there."""
        now = self.clock.now()
        marked: dict[str, Marked] = {}
        full: set[str] = set()  # venues with a whole batch of orders to send
        for order_id in tx.pending(self.core.ledger.to_route, routable):
            if full.issuperset(venues):
                break
            order = await tx.order(order_id)
            if order is None or not routable(order):
                continue
            if order.next_attempt_at is not None and order.next_attempt_at > now:
                continue
            name = venue_of(order, self.default_venue)
            if name not in venues or name in full:
                continue
            to_send = marked.setdefault(name, ([], []))[0]
            going = sent(order, now, name)
            tx.update_order(going)
            tx.record(entry(going, LogAction.EXECUTE, now, Actor.ENGINE,
                            details={"attempt": going.send_attempts}))
            to_send.append(going)
            if len(to_send) >= ROUTE_BATCH:
                full.add(name)
        for order_id in tx.pending(self.core.ledger.to_cancel, cancel_to_send):
            order = await tx.order(order_id)
            if order is None or not cancel_to_send(order):
                continue
            name = venue_of(order, self.default_venue)
            if name not in venues:
                continue
            to_cancel = marked.setdefault(name, ([], []))[1]
            if len(to_cancel) >= ROUTE_BATCH:
                continue
            tx.update_order(replace(order, cancel_sent_at=now))
            to_cancel.append(order)
        return {name: m for name, m in marked.items() if m[0] or m[1]}

    def _past_deadline(self, now: datetime) -> Iterator[Order]:
        return (o for o in self.core.ledger.open.values()
                if o.status in _TIMED and o.expires_at is not None and o.expires_at <= now)

    def _unsent(self, now: datetime) -> Iterator[Order]:
        before = now - timedelta(seconds=self.policy.order_timeout_seconds)
        return (o for o in self.core.ledger.open.values() if o.status is OrderStatus.ACCEPTED
                and o.routing is Routing.PENDING and o.created_at <= before)

    async def cancel_overdue(self, now: datetime) -> None:
        """Orders past their timeout: cancelled at once if no venue has them, else a cancel is
        requested from the venue (sent with the other cancels)."""
        def change(order: Order) -> Change:
            reason = timeout_reason(order)
            event = (Cancelled(at=now, reason=reason) if order.routing is Routing.PENDING
                     else CancelRequested(at=now, reason=reason))
            return event, LogAction.CANCEL, {"timeout_seconds": order.timeout_seconds}
        async def due(tx: Tx) -> list[Order]:
            return _first(self._past_deadline(now))
        await self._transition(due, change)

    async def expire_unsent(self, now: datetime) -> None:
        """Orders their venue could not take within ORDER_TIMEOUT_SECONDS expire, never sent."""
        def change(order: Order) -> Change:
            venue = venue_of(order, self.default_venue)
            reason = not_sent_in_time_reason(venue, self.policy.order_timeout_seconds)
            return Expired(at=now, reason=reason), LogAction.EXPIRE, {"venue": venue}

        async def due(tx: Tx) -> list[Order]:
            return _first(self._unsent(now))
        await self._transition(due, change)

    async def fail(self, order_id: UUID, reason: str, now: datetime,
                   details: dict[str, Any]) -> None:
        """An order no venue has taken, failed with ``reason`` (if it is still accepted)."""
        await self._transition(_locked(order_id, OrderStatus.ACCEPTED),
                               lambda order: (Failed(at=now, reason=reason), LogAction.FAIL,
                                              details))

    async def settle_cancel(self, order_id: UUID, now: datetime) -> None:
        """A cancelled order no venue has: cancelled in ordex, with the trader's reason."""
        def change(order: Order) -> Change:
            venue = venue_of(order, self.default_venue)
            reason = f"{order.reason or 'cancelled'}; it never reached venue {venue}"
            return Cancelled(at=now, reason=reason), LogAction.CANCEL, {"venue": venue}
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

    async def _send_first(self, link: _Link, orders: list[Order]) -> None:
        """First attempts, handed to the venue together."""
        try:
            outcomes = await link.venue.submit_many([_new_order(o) for o in orders])
        except VenueUnavailable as exc:
            outcomes = [exc] * len(orders)
        for order, failed in zip(orders, outcomes, strict=True):
            if failed is not None:
                await self._not_sent(link, order, str(failed) or "venue unavailable")

    async def _send(self, link: _Link, order: Order) -> None:
        try:
            if order.send_attempts > 1:  # a re-attempt: only if the venue does not have it
                found = await link.venue.query(str(order.id))
                if found is not None:
                    await link.recovery.adopt(order, found, self.clock.now())
                    return
            await link.venue.submit(_new_order(order))
        except VenueUnavailable as exc:
            await self._not_sent(link, order, str(exc) or "venue unavailable")

    async def _not_sent(self, link: _Link, order: Order, why: str) -> None:
        """The venue refused the connection before anything was sent: retry later with backoff,
        or fail the order once every attempt is spent."""
        now = self.clock.now()
        attempts = order.send_attempts
        name = link.name
        log.warning("attempt %d to send order %s to %s failed: %s", attempts, order.id,
                    name, why, extra={"order_id": order.id, "trader_id": order.trader_id})
        if not self.policy.may_retry(attempts):
            await self.fail(order.id, unreachable_reason(name, attempts, why), now,
                            {"venue": name, "attempts": attempts, "error": why})
            return
        retry_at = now + self.policy.backoff(attempts, self.rng)
        await self.core.run(lambda tx: reschedule_send(
            tx, order.id, retry_at, f"attempt {attempts} not sent: {why}",
            {"venue": name, "attempt": attempts, "retry_at": retry_at.isoformat()}, now))

    async def _cancel(self, link: _Link, order: Order) -> None:
        try:
            await link.venue.cancel(str(order.id))
        except VenueUnavailable as exc:
            log.warning("venue %s unavailable to cancel %s: %s", link.name, order.id, exc,
                        extra={"order_id": order.id, "trader_id": order.trader_id})
            await self.core.run(lambda tx: unmark_cancel_sent(tx, order.id))

    async def _report_loop(self, link: _Link) -> None:
        """Reports that are already waiting are applied together, in order, in one transaction:
        an ack and the fills that follow it cost one commit, not several."""
        waiting: asyncio.Queue[ExecutionReport] = asyncio.Queue()

        async def pump() -> None:
            async for report in link.venue.reports():
                waiting.put_nowait(report)

        pumping = asyncio.create_task(pump(), name=f"ordex-report-pump-{link.name}")
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
            link = self._links.get(report.venue)
            if report.duplicate and link is not None:
                link.recovery.venue_has(report.client_order_id)
                self.metrics.emit(metrics.EXECUTED, now, order_id=report.client_order_id,
                                  venue=report.venue, error="duplicate",
                                  detail="the venue refused a second copy: it has the order")

    async def _quote_loop(self, link: _Link) -> None:
        async for quote in link.venue.quotes():
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
        async def unit(tx: Tx) -> None:
            instrument = tx.instrument(quote.symbol)
            if instrument is None:
                return
            status = instrument.status
            if status in (InstrumentStatus.ACTIVE, InstrumentStatus.HALTED):
                status = InstrumentStatus.HALTED if quote.halted else InstrumentStatus.ACTIVE
            reference = price if price is not None else instrument.reference_price
            tx.set_instrument(replace(
                instrument, status=status,
                reference_price=reference.quantize(instrument.tick_size)
                if instrument.tick_size > 0 else Decimal(reference)), self.clock.now())
        await self.core.run(unit)
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
