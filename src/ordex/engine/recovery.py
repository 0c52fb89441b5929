"""Keeping ordex and the venue in agreement (FR-009, FR-010).

- **Unconfirmed orders.** An order sent without an answer within the ack timeout is looked up at
  the venue by its client order id. Found: ordex adopts the venue's state (ack, fills, end). Not
  found is not proof of absence (a venue may not show an order for a moment after receiving it),
  so the order is sent again with the *same* client order id: a venue that has it refuses the copy
  as a duplicate, which ordex reads as "the venue has it" and looks it up again. Only when every
  attempt is spent and the venue still does not have it is the order failed.
- **Reconciliation**, on start-up and on every reconnect: the venue's open orders and its fills
  since the oldest order that may be there are compared with every open order of ordex; missed
  fills are applied (each exec id once, also behind a later fill that got through first; what
  the venue's fills leave out of its CumQty is booked from CumQty/AvgPx), ends are adopted,
  orders the venue never received are sent again (or failed, per ``unsent_policy``), and venue
  orders unknown to ordex (ghosts) raise an alert and are cancelled (per ``ghost_policy``).
- **Missing orders.** An order the venue acknowledged but now says it does not know is asked
  about again; unknown twice, with no fill meanwhile, it is cancelled (``engine.missing``).
- **Venues with only the core order flow.** Without mass status (``Capability.MASS_STATUS``)
  each open order is asked about by itself; without trade capture the fills missed are booked
  from the status answer's CumQty and AvgPx (``from_cumulative``), under an exec id made of the
  order and the venue's CumQty, so a second reconciliation books nothing more.
- **Stalled reports.** Working orders are sampled at the venue now and then; if the venue is
  ahead of ordex twice in a row (the report stream is silent while the session looks healthy),
  ordex reconciles.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from ordex import metrics
from ordex.domain.fills import ExecutionLogEntry, LogAction, cumulative_exec_id
from ordex.domain.money import ZERO
from ordex.domain.orders import Order, OrderStatus
from ordex.domain.sending import Routing, never_confirmed_reason, routing_of
from ordex.engine.missing import MissingOrders
from ordex.ids import new_id
from ordex.store.uow import UnitOfWork, reading
from ordex.venues.base import (
    Capability,
    ExecutionReport,
    ReportKind,
    VenueOrder,
    VenueOrderState,
    VenueUnavailable,
)

if TYPE_CHECKING:
    from ordex.engine.engine import ExecutionEngine

log = logging.getLogger("ordex.recovery")

SAMPLE_SIZE = 20
PRICE_QUANTUM = Decimal("1e-10")  # the store keeps prices to 10 places
FILLS_MARGIN = timedelta(seconds=5)
END_REPORTS = {VenueOrderState.CANCELLED: ReportKind.CANCELLED,
               VenueOrderState.REJECTED: ReportKind.REJECTED,
               VenueOrderState.EXPIRED: ReportKind.EXPIRED}


@dataclass(frozen=True, slots=True)
class RecoverySettings:
    stall_check_seconds: float = 5.0
    unsent_policy: str = "resend"  # or "fail"
    ghost_policy: str = "cancel"  # or "alert"


@dataclass(slots=True)
class Reconciled:
    """What one reconciliation found and did."""

    adopted: int = 0
    fills_applied: int = 0
    resent: int = 0
    failed: int = 0
    ghosts: list[str] = field(default_factory=list)


class Recovery:
    def __init__(self, engine: ExecutionEngine, settings: RecoverySettings) -> None:
        self.engine = engine
        self.settings = settings
        self.in_sync = False  # reconciled since the venue was last (re)connected
        self.last: Reconciled | None = None
        self._lookups: set[str] = set()  # client order ids to look up at the venue now
        self._held_by_venue: set[str] = set()  # ids a venue refused a copy of: it has them
        self._suspects: dict[UUID, tuple[str, ...]] = {}
        self._next_sample: datetime | None = None
        self.missing = MissingOrders(
            self, timedelta(seconds=max(engine.policy.ack_seconds, settings.stall_check_seconds)))

    # ---- hooks from the engine ----------------------------------------------------------------

    def disconnected(self) -> None:
        self.in_sync = False

    def venue_has(self, client_order_id: str) -> None:
        """A venue refused a copy of this order as a duplicate: it has the order, even if a
        lookup does not show it yet. It is looked up, never sent again nor failed."""
        self._lookups.add(client_order_id)
        self._held_by_venue.add(client_order_id)

    async def run_due(self, now: datetime) -> None:
        """Nothing new is sent to a venue until ordex has reconciled with it since it last
        (re)connected; a venue that does not answer is asked again at the next sweep."""
        try:
            if not self.in_sync:
                self.last = await self.reconcile(now)
                self.in_sync = True
            await self.check_unconfirmed(now)
            await self.check_cancels(now)
            await self.missing.check(now)
            if self._next_sample is None or now >= self._next_sample:
                self._next_sample = now + timedelta(seconds=self.settings.stall_check_seconds)
                await self.sample_working(now)
        except VenueUnavailable as exc:
            log.warning("venue %s did not answer (%s); reconciliation and lookups wait for the "
                        "next sweep", self.engine.venue.name, exc)

    # ---- unconfirmed orders -------------------------------------------------------------------

    async def check_unconfirmed(self, now: datetime) -> None:
        engine = self.engine
        sent_before = now - timedelta(seconds=engine.policy.ack_seconds)
        async with reading(engine.db) as repo:
            overdue = await repo.orders_unconfirmed(sent_before)
            wanted = await repo.orders_by_ids(_uuids(self._lookups))
        self._lookups.clear()
        late = {o.id for o in overdue}
        for order in {o.id: o for o in [*overdue, *wanted]}.values():
            if routing_of(order) is not Routing.UNCONFIRMED:
                self._held_by_venue.discard(str(order.id))
                continue
            try:
                found = await engine.venue.query(str(order.id))
            except VenueUnavailable:
                return  # still unknown; asked again at the next sweep
            if found is not None:
                await self.adopt(order, found, now)
            elif order.id in late:
                await self._not_at_venue(order, now)

    async def check_cancels(self, now: datetime) -> None:
        """Cancels without an answer: the venue is asked. Still open there: the cancel is sent
        again. Finished there: ordex adopts it. Unknown there, for an order the venue never
        confirmed: it never got there (or it will show up as a ghost and be cancelled), so the
        order is cancelled in ordex."""
        engine = self.engine
        before = now - timedelta(seconds=engine.policy.ack_seconds)
        async with reading(engine.db) as repo:
            waiting = await repo.cancels_unanswered(before)
        for order in waiting:
            found = await engine.venue.query(str(order.id))
            if found is not None and found.state.is_open:
                async with UnitOfWork(engine.db) as uow:
                    await uow.repo.unmark_cancel_sent(order.id)
                    await uow.commit()
                engine.wake()
            elif found is not None:
                await self.adopt(order, found, now)
            elif order.venue_order_id is None and str(order.id) not in self._held_by_venue:
                await engine.settle_cancel(order.id, now)
            else:
                self.missing.noted(order, now)

    async def _not_at_venue(self, order: Order, now: datetime) -> bool:
        """Send again with the same id while attempts are left, else fail. True if resent."""
        engine = self.engine
        if str(order.id) in self._held_by_venue:
            return False  # the venue has it; it will show up
        if not engine.policy.may_retry(order.send_attempts):
            await engine.fail(order.id, never_confirmed_reason(engine.venue.name,
                                                               order.send_attempts),
                              now, {"venue": engine.venue.name,
                                    "attempts": order.send_attempts})
            return False
        retry_at = now + engine.policy.backoff(order.send_attempts, engine.rng)
        async with UnitOfWork(engine.db) as uow:
            await uow.repo.reschedule_send(order.id, retry_at)
            await uow.repo.log(ExecutionLogEntry(
                new_id(), order.trader_id, order.id, LogAction.RETRY, order.status.value, now,
                f"venue {engine.venue.name} has no record of attempt {order.send_attempts}",
                {"venue": engine.venue.name, "attempt": order.send_attempts,
                 "retry_at": retry_at.isoformat()}))
            await uow.commit()
        return True

    # ---- adopting the venue's state -----------------------------------------------------------

    async def adopt(self, order: Order, found: VenueOrder, now: datetime,
                    fills: Iterable[ExecutionReport] | None = None) -> bool:
        """Bring ``order`` to what the venue knows: ack, missed fills, end. True if it moved.
        The fills come first, so an order the venue has ended is closed with all of them."""
        engine = self.engine
        reports: list[ExecutionReport] = []
        if order.venue_order_id is None:
            reports.append(_synthetic(found, ReportKind.ACK, now, "ack"))
        trade_capture = engine.venue.capabilities.supports(Capability.TRADE_CAPTURE)
        if found.filled_quantity > order.filled_quantity:
            if not trade_capture:
                reports.append(from_cumulative(order, found, now))
            else:
                if fills is None:
                    fills = await engine.venue.fills_since(order.created_at - FILLS_MARGIN)
                reports.extend(f for f in fills if f.client_order_id == str(order.id))
        end = END_REPORTS.get(found.state)
        if (not reports and found.filled_quantity <= order.filled_quantity
                and (end is None or order.status.is_terminal)):
            return False
        if reports:
            await engine.apply_all(reports)
        after = await self._reread(order) if reports else order
        if after is not None and after.filled_quantity < found.filled_quantity and trade_capture:
            after = await self._fills_left_out(after, found, now)
        if end is not None and after is not None and not after.status.is_terminal:
            await engine.apply_all([_synthetic(found, end, now, end.value)])
            after = await self._reread(order)
        self._held_by_venue.discard(str(order.id))
        if after is not None and after.filled_quantity < found.filled_quantity:
            log.error("venue %s reports %s filled of order %s but ordex found fills for only %s",
                      found.venue, found.filled_quantity, order.id, after.filled_quantity)
        moved = after is not None and (after.status, after.filled_quantity,
                                       after.venue_order_id) != (
            order.status, order.filled_quantity, order.venue_order_id)
        if moved and after is not None:
            log.info("order %s recovered from venue %s: %s, filled %s", order.id,
                     found.venue, after.status.value, after.filled_quantity,
                     extra={"order_id": order.id, "trader_id": order.trader_id})
            async with UnitOfWork(engine.db) as uow:
                await uow.repo.log(ExecutionLogEntry(
                    new_id(), order.trader_id, order.id, LogAction.RECOVER,
                    after.status.value, now, f"adopted venue {found.venue}'s state",
                    {"venue": found.venue, "venue_state": found.state.value,
                     "venue_filled": str(found.filled_quantity)}))
                await uow.commit()
            engine.metrics.emit(metrics.RECOVERED, now, order_id=order.id,
                                trader_id=order.trader_id, venue=found.venue,
                                status=after.status.value,
                                retry_count=max(order.send_attempts - 1, 0))
        return moved

    async def _reread(self, order: Order) -> Order | None:
        async with reading(self.engine.db) as repo:
            return await repo.order(order.id)

    async def _fills_left_out(self, order: Order, found: VenueOrder, now: datetime) -> Order:
        """The venue has filled more of ``order`` than the fills ordex was given add up to (they
        were read before the venue's latest fills, or its trade capture lacks some): its fills
        are asked for again, and what they still leave out is booked from its CumQty/AvgPx."""
        engine = self.engine
        fresh = await engine.venue.fills_since(order.created_at - FILLS_MARGIN)
        mine = [f for f in fresh if f.client_order_id == str(order.id)]
        if mine:
            await engine.apply_all(mine)
        after = await self._reread(order) or order
        if after.filled_quantity >= found.filled_quantity:
            return after
        log.warning("venue %s reports %s filled of order %s, but its fills add up to %s: the "
                    "rest is booked from its CumQty and AvgPx", found.venue,
                    found.filled_quantity, order.id, after.filled_quantity,
                    extra={"order_id": order.id, "trader_id": order.trader_id})
        await engine.apply_all([from_cumulative(after, found, now)])
        return await self._reread(order) or after

    # ---- reconciliation -----------------------------------------------------------------------

    async def reconcile(self, now: datetime) -> Reconciled:
        engine = self.engine
        venue = engine.venue
        done = Reconciled()
        async with reading(engine.db) as repo:
            mine = await repo.orders_in_flight()
        await venue.capabilities.settled()
        mass_status = venue.capabilities.supports(Capability.MASS_STATUS)
        at_venue = {o.client_order_id: o for o in await venue.open_orders()} if mass_status \
            else {}
        since = min((o.created_at for o in mine), default=now) - FILLS_MARGIN
        fills = await venue.fills_since(since) if mine and venue.capabilities.supports(
            Capability.TRADE_CAPTURE) else []
        ids = {str(o.id) for o in mine}
        async with reading(engine.db) as repo:
            known = {str(o.id): o for o in await repo.orders_by_ids(
                _uuids(set(at_venue) | {f.client_order_id for f in fills}))}
        stray = [f for f in fills if f.client_order_id in known and f.client_order_id not in ids]
        if stray:  # fills of orders ordex already closed: applied once, if new
            await engine.apply_all(stray)
        recent = now - timedelta(seconds=engine.policy.ack_seconds)
        for order in mine:
            found = at_venue.get(str(order.id))
            if found is None:
                found = await venue.query(str(order.id))
            if found is not None:
                order_fills = [f for f in fills if f.client_order_id == str(order.id)]
                before = len(order_fills)
                if await self.adopt(order, found, now, order_fills):
                    done.adopted += 1
                    done.fills_applied += before
            elif (order.status is OrderStatus.ACCEPTED and order.venue_order_id is None
                  and order.routed_at and order.routed_at <= recent):
                if self.settings.unsent_policy == "resend" and await self._not_at_venue(order,
                                                                                         now):
                    done.resent += 1
                elif self.settings.unsent_policy != "resend":
                    await engine.fail(order.id, never_confirmed_reason(
                        venue.name, order.send_attempts), now, {"venue": venue.name})
                    done.failed += 1
            elif order.venue_order_id is not None:
                self.missing.noted(order, now)
        for client_order_id, found in at_venue.items():
            owner = known.get(client_order_id)
            if owner is not None and owner.status.is_terminal:
                # It may have ended at the venue since the open orders were read.
                found = await venue.query(client_order_id) or found
            if owner is None or (owner.status.is_terminal and found.state.is_open):
                done.ghosts.append(client_order_id)
                await self._ghost(found, owner, now)
        log.info("reconciled with venue %s: %d open orders compared, %d adopted, %d fills "
                 "applied, %d sent again, %d failed, %d ghosts", venue.name, len(mine),
                 done.adopted, done.fills_applied, done.resent, done.failed, len(done.ghosts))
        return done

    async def _ghost(self, found: VenueOrder, owner: Order | None, now: datetime) -> None:
        engine = self.engine
        what = "unknown to ordex" if owner is None else f"closed in ordex ({owner.status.value})"
        log.error("ALERT ghost order at venue %s: %s %s %s %s, %s; %s", found.venue,
                  found.client_order_id, found.side.value, found.quantity, found.symbol, what,
                  "cancelling it" if self.settings.ghost_policy == "cancel" else "left alone")
        engine.metrics.emit(metrics.GHOST, now, order_id=found.client_order_id,
                            trader_id=owner.trader_id if owner else None, venue=found.venue,
                            symbol=found.symbol, quantity=str(found.quantity),
                            action=self.settings.ghost_policy)
        if self.settings.ghost_policy == "cancel":
            try:
                await engine.venue.cancel(found.client_order_id)
            except VenueUnavailable:
                log.warning("could not cancel ghost order %s yet", found.client_order_id)

    # ---- stalled report stream ----------------------------------------------------------------

    async def sample_working(self, now: datetime) -> bool:
        """True if the venue was ahead of ordex on the same orders twice in a row: the report
        stream has stalled, and a reconciliation was run."""
        engine = self.engine
        async with reading(engine.db) as repo:
            sample = await repo.orders_working_at_venue(SAMPLE_SIZE)
        ahead: dict[UUID, tuple[str, ...]] = {}
        for order in sample:
            try:
                found = await engine.venue.query(str(order.id))
            except VenueUnavailable:
                return False
            if found is None:
                self.missing.noted(order, now)
                continue
            if found.filled_quantity > order.filled_quantity or not found.state.is_open:
                ahead[order.id] = (found.state.value, str(found.filled_quantity))
        stalled = [oid for oid, seen in ahead.items() if self._suspects.get(oid) == seen]
        self._suspects = ahead
        if not stalled:
            return False
        log.error("execution reports from venue %s have stalled: the venue is ahead of ordex on "
                  "%d working orders; reconciling", engine.venue.name, len(stalled))
        self._suspects = {}
        self.last = await self.reconcile(now)
        return True


def _synthetic(found: VenueOrder, kind: ReportKind, now: datetime, tag: str) -> ExecutionReport:
    """A report made from what a status query returned, for ``apply_report``."""
    return ExecutionReport(
        venue=found.venue, client_order_id=found.client_order_id,
        exec_id=f"recovered-{tag}-{found.client_order_id}", kind=kind, timestamp=now,
        symbol=found.symbol, side=found.side, venue_order_id=found.venue_order_id,
        cum_quantity=found.filled_quantity,
        leaves_quantity=found.quantity - found.filled_quantity,
        reason=found.reason or f"{kind.value} at venue {found.venue} (recovered)")


def from_cumulative(order: Order, found: VenueOrder, now: datetime) -> ExecutionReport:
    """The fills a venue reports in CumQty/AvgPx that ordex has not booked, as one fill: the
    difference in quantity, at the price that brings ordex's average to the venue's AvgPx. Its
    exec id names the order and the venue's CumQty, so it is booked once however often it is
    made."""
    quantity = found.filled_quantity - order.filled_quantity
    venue_notional = (found.average_price or ZERO) * found.filled_quantity
    booked = (order.average_price or ZERO) * order.filled_quantity
    price = ((venue_notional - booked) / quantity).quantize(PRICE_QUANTUM)
    return ExecutionReport(
        venue=found.venue, client_order_id=found.client_order_id,
        exec_id=cumulative_exec_id(found.client_order_id, found.filled_quantity),
        kind=ReportKind.FILL, timestamp=now, symbol=found.symbol, side=found.side,
        venue_order_id=found.venue_order_id, last_quantity=quantity, last_price=price,
        cum_quantity=found.filled_quantity,
        leaves_quantity=found.quantity - found.filled_quantity if found.state.is_open else ZERO,
        reason=f"fills recovered from venue {found.venue}'s order status: "
               f"{found.filled_quantity} filled at an average of {found.average_price}")


def _uuids(values: Iterable[str]) -> list[UUID]:
    found = []
    for value in values:
        try:
            found.append(UUID(value))
        except ValueError:
            continue
    return found
