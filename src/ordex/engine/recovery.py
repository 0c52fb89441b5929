"""Keeping ordex and the venue in agreement (FR-009, FR-010).

What to do is decided by ``domain.reconcile`` (pure: both views in, decisions out); this module
gathers the facts it asks for (the venue's open orders, statuses, fills; the store's orders and
booked exec ids) and carries its decisions out through the ports it is given
(:class:`RecoveryPorts`), never through the engine itself.

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
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any
from uuid import UUID

from msgspec.structs import replace

from ordex import metrics
from ordex.domain import reconcile as decide
from ordex.domain.journal import Actor, LogAction
from ordex.domain.orders import Order, OrderEvent, Routing
from ordex.domain.reconcile import (
    AdoptEnd,
    ApplyReports,
    BookFromCumulative,
    Decision,
    FailUnsent,
    Ghost,
    NeedsFills,
    NeedsQuery,
    NoteMissing,
    Ours,
    Policy,
    Resend,
    Theirs,
    from_cumulative,
)
from ordex.domain.sending import RetryPolicy
from ordex.domain.status import OrderEvent as StatusEvent
from ordex.engine.ledger import cancels_unanswered, in_flight, unconfirmed, working_at
from ordex.engine.missing import MissingOrders
from ordex.engine.tx import Tx
from ordex.engine.writes import note, reschedule_send, unmark_cancel_sent
from ordex.metrics import MetricsLog
from ordex.store.database import Database
from ordex.store.uow import reading
from ordex.venues.base import (
    Capability,
    ExecutionReport,
    ReportKind,
    Venue,
    VenueOrder,
    VenueUnavailable,
)

__all__ = ["Reconciled", "Recovery", "RecoveryPorts", "RecoverySettings", "from_cumulative"]

log = logging.getLogger("ordex.recovery")

SAMPLE_SIZE = 20
ROUNDS = 4  # of questions to the venue before a plan: open orders, statuses, fills, fills again


@dataclass(frozen=True, slots=True)
class RecoverySettings:
    stall_check_seconds: float = 5.0
    unsent_policy: str = "resend"  # or "fail"
    ghost_policy: str = "cancel"  # or "alert"


@dataclass(frozen=True, slots=True)
class RecoveryPorts:
    """What recovery acts through: the venue; the open orders in the engine's memory; the store,
    read for what memory does not hold (and written, through the core, for recovery's own
    bookkeeping: resend schedules, cancels to send again, its journal rows); the engine's one way to
    apply venue reports, to fail an order no venue has, to settle a cancel no venue has and to
    close a working order; the wake-up of the dispatcher; metrics; the retry policy and the
    seeded randomness of its backoff."""

    venue: Venue
    db: Database
    open_orders: Callable[[], Iterable[Order]]  # committed, in the engine's memory
    write: Callable[[Callable[[Tx], Awaitable[Any]]], Awaitable[Any]]
    apply_reports: Callable[[list[ExecutionReport]], Awaitable[None]]
    fail: Callable[[UUID, str, datetime, dict[str, Any]], Awaitable[None]]
    settle_cancel: Callable[[UUID, datetime], Awaitable[None]]
    close_working: Callable[[UUID, OrderEvent, LogAction, dict[str, Any]],
                            Awaitable[list[StatusEvent]]]
    wake: Callable[[], None]
    metrics: MetricsLog
    policy: RetryPolicy
    rng: random.Random


@dataclass(slots=True)
class Reconciled:
    """What one reconciliation found and did."""

    adopted: int = 0
    fills_applied: int = 0
    resent: int = 0
    failed: int = 0
    ghosts: list[str] = field(default_factory=list)


class Recovery:
    """Recovery with one venue: it reads and acts on that venue's orders only."""

    def __init__(self, ports: RecoveryPorts, settings: RecoverySettings) -> None:
        self.ports = ports
        self.settings = settings
        self.in_sync = False  # reconciled since the venue was last (re)connected
        self.last: Reconciled | None = None
        self._lookups: set[str] = set()  # client order ids to look up at the venue now
        self._held_by_venue: set[str] = set()  # ids a venue refused a copy of: it has them
        self._suspects: dict[UUID, tuple[str, ...]] = {}
        self._next_sample: datetime | None = None
        self.missing = MissingOrders(
            self, timedelta(seconds=max(ports.policy.ack_seconds, settings.stall_check_seconds)))

    @property
    def venue(self) -> Venue:
        return self.ports.venue

    @property
    def policy(self) -> Policy:
        return Policy(self.ports.policy, self.settings.unsent_policy, self.settings.ghost_policy)

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
                        "next sweep", self.venue.name, exc)

    # ---- unconfirmed orders -------------------------------------------------------------------

    async def check_unconfirmed(self, now: datetime) -> None:
        sent_before = now - timedelta(seconds=self.ports.policy.ack_seconds)
        overdue = unconfirmed(self.ports.open_orders(), self.venue.name, sent_before)
        async with reading(self.ports.db) as repo:
            wanted = await repo.orders_by_ids(_uuids(self._lookups))
        self._lookups.clear()
        late = {o.id for o in overdue}
        for order in {o.id: o for o in [*overdue, *wanted]}.values():
            if order.routing is not Routing.UNCONFIRMED or order.venue != self.venue.name:
                self._held_by_venue.discard(str(order.id))
                continue
            try:
                found = await self.venue.query(str(order.id))
            except VenueUnavailable:
                return  # still unknown; asked again at the next sweep
            if found is not None:
                await self.adopt(order, found, now)
            elif order.id in late:
                unsent = decide.not_at_venue(order, frozenset(self._held_by_venue),
                                             self.ports.policy, self.venue.name)
                if unsent is not None:
                    await self._unsent(order, unsent, now)

    async def check_cancels(self, now: datetime) -> None:
        """Cancels without an answer: the venue is asked. Still open there: the cancel is sent
        again. Finished there: ordex adopts it. Unknown there, for an order the venue never
        confirmed: it never got there (or it will show up as a ghost and be cancelled), so the
        order is cancelled in ordex."""
        before = now - timedelta(seconds=self.ports.policy.ack_seconds)
        waiting = cancels_unanswered(self.ports.open_orders(), self.venue.name, before)
        for order in waiting:
            found = await self.venue.query(str(order.id))
            if found is not None and found.state.is_open:
                await self.ports.write(lambda tx, o=order: unmark_cancel_sent(tx, o.id))
                self.ports.wake()
            elif found is not None:
                await self.adopt(order, found, now)
            elif (order.routing is Routing.UNCONFIRMED
                  and str(order.id) not in self._held_by_venue):
                await self.ports.settle_cancel(order.id, now)
            else:
                self.missing.noted(order, now)

    async def _unsent(self, order: Order, unsent: Resend | FailUnsent, now: datetime) -> None:
        """Send again with the same id after a backoff, or fail the order."""
        name = self.venue.name
        if isinstance(unsent, FailUnsent):
            await self.ports.fail(order.id, unsent.reason, now, dict(unsent.details))
            return
        retry_at = now + self.ports.policy.backoff(order.send_attempts, self.ports.rng)
        await self.ports.write(lambda tx: reschedule_send(
            tx, order.id, retry_at, f"venue {name} has no record of attempt {order.send_attempts}",
            {"venue": name, "attempt": order.send_attempts, "retry_at": retry_at.isoformat()},
            now))

    # ---- adopting the venue's state -----------------------------------------------------------

    async def adopt(self, order: Order, found: VenueOrder, now: datetime) -> bool:
        """Bring ``order`` to what the venue knows: ack, missed fills, end. True if it moved.
        The fills come first, so an order the venue has ended is closed with all of them."""
        trade_capture = self.venue.capabilities.supports(Capability.TRADE_CAPTURE)
        booked: frozenset[str] = frozenset()
        if found.filled_quantity > order.filled_quantity:
            booked = (await self._booked([order])).get(str(order.id), frozenset())
        fills: list[ExecutionReport] | None = None
        plan: list[Decision] = []
        for _ in range(ROUNDS):
            plan = decide.adoption(order, found, booked, fills, now,
                                   trade_capture=trade_capture, fresh=fills is not None)
            if not (plan and isinstance(plan[0], NeedsFills)):
                break
            fills = [f for f in await self.venue.fills_since(plan[0].since)
                     if f.client_order_id == str(order.id)]
        if not plan or isinstance(plan[0], NeedsFills):
            return False
        return await self._carry_out(order, found, plan, now)

    async def _carry_out(self, order: Order, found: VenueOrder, plan: Iterable[Decision],
                         now: datetime) -> bool:
        """Apply what adoption decided for one order in one go (fills before the end), then
        say whether it moved, in the log, the execution log and the metrics."""
        reports: list[ExecutionReport] = []
        for step in plan:
            if isinstance(step, ApplyReports):
                reports += step.reports
            elif isinstance(step, BookFromCumulative):
                if step.trade_capture:
                    log.warning("venue %s reports %s filled of order %s, but its fills add up "
                                "to %s: the rest is booked from its CumQty and AvgPx",
                                found.venue, found.filled_quantity, order.id,
                                step.report.cum_quantity - step.report.last_quantity,
                                extra={"order_id": order.id, "trader_id": order.trader_id})
                reports.append(step.report)
            elif isinstance(step, AdoptEnd):
                reports.append(step.report)
        if reports:
            await self.ports.apply_reports(reports)
        self._held_by_venue.discard(str(order.id))
        after: Order | None = order
        if reports:
            async with reading(self.ports.db) as repo:
                after = await repo.order(order.id)
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
            details = {"venue": found.venue, "venue_state": found.state.value,
                       "venue_filled": str(found.filled_quantity)}
            await self.ports.write(lambda tx: note(
                tx, after, LogAction.RECOVER, Actor.RECOVERY, now,
                f"adopted venue {found.venue}'s state", details))
            self.ports.metrics.emit(metrics.RECOVERED, now, order_id=order.id,
                                    trader_id=order.trader_id, venue=found.venue,
                                    status=after.status.value,
                                    retry_count=max(order.send_attempts - 1, 0))
        return moved

    async def _booked(self, orders: Iterable[Order]) -> dict[str, frozenset[str]]:
        """The exec ids ordex has booked from this venue, for each of ``orders``."""
        async with reading(self.ports.db) as repo:
            return {str(o.id): frozenset(await repo.fill_exec_ids(o.id, self.venue.name, ""))
                    for o in orders}

    # ---- reconciliation -----------------------------------------------------------------------

    async def reconcile(self, now: datetime) -> Reconciled:
        """Ask the venue what ``domain.reconcile`` needs to know, then carry out its plan."""
        venue = self.venue
        mine = in_flight(self.ports.open_orders(), venue.name)
        await venue.capabilities.settled()
        mass_status = venue.capabilities.supports(Capability.MASS_STATUS)
        theirs = Theirs(
            venue.name, mass_status=mass_status,
            trade_capture=venue.capabilities.supports(Capability.TRADE_CAPTURE),
            open_orders={o.client_order_id: o for o in await venue.open_orders()}
            if mass_status else {})
        ours = await self._ours(mine, theirs)
        plan: list[Decision] = []
        for _ in range(ROUNDS):
            plan = decide.reconcile(ours, theirs, now, self.policy)
            wanted = plan[0] if plan else None
            if isinstance(wanted, NeedsQuery):
                answers = dict(theirs.answers)
                for client_order_id in wanted.client_order_ids:
                    answers[client_order_id] = await venue.query(client_order_id)
                theirs = replace(theirs, answers=answers, fills_fresh=False)
            elif isinstance(wanted, NeedsFills):
                fresh = await venue.fills_since(wanted.since)
                seen = {f.exec_id for f in fresh}
                theirs = replace(theirs, fills_fresh=True, fills=(
                    *(f for f in theirs.fills or () if f.exec_id not in seen), *fresh))
            else:
                break
            ours = await self._ours(mine, theirs)
        done = await self._carry_out_plan(ours, theirs, plan, now)
        log.info("reconciled with venue %s: %d open orders compared, %d adopted, %d fills "
                 "applied, %d sent again, %d failed, %d ghosts", venue.name, len(mine),
                 done.adopted, done.fills_applied, done.resent, done.failed, len(done.ghosts))
        return done

    async def _ours(self, mine: list[Order], theirs: Theirs) -> Ours:
        """ordex's side of what the venue's view names: its other orders there, and the exec
        ids it booked for every order with venue fills or a venue status ahead of it."""
        in_flight = {str(o.id): o for o in mine}
        named = {*theirs.open_orders, *(f.client_order_id for f in theirs.fills or ())}
        async with reading(self.ports.db) as repo:
            known = {str(o.id): o for o in await repo.orders_by_ids(
                _uuids(named - set(in_flight)))}
        with_fills = {f.client_order_id for f in theirs.fills or ()}
        ahead = [o for o in mine if str(o.id) in with_fills or (
            (found := theirs.status(str(o.id))) is not None
            and found.filled_quantity > o.filled_quantity)]
        others = [o for cid, o in known.items() if cid in with_fills]
        return Ours(tuple(mine), known, await self._booked([*ahead, *others]),
                    frozenset(self._held_by_venue))

    async def _carry_out_plan(self, ours: Ours, theirs: Theirs, plan: list[Decision],
                              now: datetime) -> Reconciled:
        done = Reconciled()
        by_id = {o.id: o for o in ours.orders}
        for key, group in groupby(plan, key=_order_steps):
            steps = list(group)
            if isinstance(key, UUID):
                order = by_id[key]
                found = theirs.status(str(order.id))
                assert found is not None
                if await self._carry_out(order, found, steps, now):
                    done.adopted += 1
                    done.fills_applied += sum(
                        r.kind is ReportKind.FILL for s in steps if isinstance(s, ApplyReports)
                        for r in s.reports)
                continue
            [step] = steps
            if isinstance(step, ApplyReports):
                await self.ports.apply_reports(list(step.reports))  # late fills, once if new
            elif isinstance(step, (Resend, FailUnsent)):
                await self._unsent(by_id[step.order_id], step, now)
                if isinstance(step, Resend):
                    done.resent += 1
                else:
                    done.failed += 1
            elif isinstance(step, NoteMissing):
                self.missing.noted(by_id[step.order_id], now)
            elif isinstance(step, Ghost):
                done.ghosts.append(step.venue_order.client_order_id)
                await self._ghost(step, now)
        return done

    async def _ghost(self, ghost: Ghost, now: datetime) -> None:
        found, owner = ghost.venue_order, ghost.owner
        what = "unknown to ordex" if owner is None else f"closed in ordex ({owner.status.value})"
        log.error("ALERT ghost order at venue %s: %s %s %s %s, %s; %s", found.venue,
                  found.client_order_id, found.side.value, found.quantity, found.symbol, what,
                  "cancelling it" if ghost.cancel else "left alone")
        self.ports.metrics.emit(metrics.GHOST, now, order_id=found.client_order_id,
                                trader_id=owner.trader_id if owner else None, venue=found.venue,
                                symbol=found.symbol, quantity=str(found.quantity),
                                action=self.settings.ghost_policy)
        if ghost.cancel:
            try:
                await self.venue.cancel(found.client_order_id)
            except VenueUnavailable:
                log.warning("could not cancel ghost order %s yet", found.client_order_id)

    # ---- stalled report stream ----------------------------------------------------------------

    async def sample_working(self, now: datetime) -> bool:
        """True if the venue was ahead of ordex on the same orders twice in a row: the report
        stream has stalled, and a reconciliation was run."""
        sample = working_at(self.ports.open_orders(), self.venue.name, SAMPLE_SIZE)
        ahead: dict[UUID, tuple[str, ...]] = {}
        for order in sample:
            try:
                found = await self.venue.query(str(order.id))
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
                  "%d working orders; reconciling", self.venue.name, len(stalled))
        self._suspects = {}
        self.last = await self.reconcile(now)
        return True


def _order_steps(step: Decision) -> object:
    """Groups the adoption steps of one order (its fills, CumQty rest and end); every other
    decision stands alone."""
    if isinstance(step, decide.ADOPTION) and step.order_id is not None:
        return step.order_id
    return object()


def _uuids(values: Iterable[str]) -> list[UUID]:
    found = []
    for value in values:
        try:
            found.append(UUID(value))
        except ValueError:
            continue
    return found
