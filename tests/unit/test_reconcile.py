"""``domain.reconcile``: properties over random pairs of views (ordex's and a venue's), and the
tricky cases by example. The plans are carried out with the engine's own ``apply_report`` on an
in-memory store, so "booked" means what the write path books, not what the planner thinks."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from ordex.domain.accounts import Account, Role
from ordex.domain.fills import Fill, cumulative_exec_id
from ordex.domain.money import ZERO
from ordex.domain.orders import (
    Cancelled,
    Expired,
    Failed,
    Order,
    OrderStatus,
    OrderType,
    Routing,
    Side,
    apply,
    confirmed,
    not_sent,
    sent,
)
from ordex.domain.reconcile import (
    ADOPTION,
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
    reconcile,
)
from ordex.domain.sending import RetryPolicy
from ordex.engine.apply import apply_report
from ordex.engine.ledger import Ledger
from ordex.engine.tx import Tx
from ordex.venues.base import ExecutionReport, ReportKind, VenueOrder, VenueOrderState
from tests.unit.factories import T0, TRADER, derived_routing
from tests.unit.factories import order as make_order

NOW = T0 + timedelta(minutes=5)
VENUE = "SIM"
POLICY = Policy(RetryPolicy(retries=3, ack_seconds=2.0))
SENT = frozenset({Routing.UNCONFIRMED, Routing.AT_VENUE})
ENDS = [VenueOrderState.OPEN, VenueOrderState.CANCELLED, VenueOrderState.EXPIRED,
        VenueOrderState.REJECTED]


# ---- an in-memory store for engine.apply.apply_report ------------------------------------------

@dataclass
class Store:
    """The engine's memory (a real ``Ledger``) and, behind it, a store of closed orders."""

    orders: dict[UUID, Order]
    fills: list[Fill] = field(default_factory=list)
    cash: Decimal = Decimal(10_000_000)

    def __post_init__(self) -> None:
        self.ledger = Ledger()
        self.ledger.add_account(Account(TRADER, "t", Role.TRADER, self.cash), {})
        for order in self.orders.values():
            self.ledger.put_order(order)

    async def closed_order(self, order_id: UUID) -> tuple[Order, set[tuple[str, str]]] | None:
        order = self.orders.get(order_id)
        if order is None:
            return None
        return order, {(f.venue, f.exec_id) for f in self.fills if f.order_id == order_id}

    async def account(self, account_id: UUID) -> None:
        return None

    def apply(self, reports: list[ExecutionReport]) -> list[ExecutionReport]:
        """Apply each report as the engine does; the ones that changed the order."""
        async def run() -> list[ExecutionReport]:
            took = []
            for report in reports:
                tx = Tx(self.ledger, self)
                if (await apply_report(tx, report, NOW)).events:
                    took.append(report)
                tx.commit_to(self.ledger)
                assert all(o.routing is derived_routing(o) for o in tx.orders.values())
                self.fills += tx.fills
                self.orders.update(tx.orders)
            return took
        return asyncio.run(run())

    def booked(self) -> dict[str, frozenset[str]]:
        ids: dict[str, set[str]] = {}
        for f in self.fills:
            ids.setdefault(str(f.order_id), set()).add(f.exec_id)
        return {k: frozenset(v) for k, v in ids.items()}


# ---- the venue, as an oracle that answers what reconcile asks ----------------------------------

@dataclass
class Venue:
    orders: dict[str, VenueOrder]  # everything the venue has, open or not
    fills: list[ExecutionReport]
    mass_status: bool = True
    trade_capture: bool = True
    left_out: frozenset[str] = frozenset()  # exec ids its trade capture does not list

    def first_view(self) -> Theirs:
        listed = {c: o for c, o in self.orders.items() if o.state.is_open}
        return Theirs(VENUE, self.mass_status, self.trade_capture,
                      listed if self.mass_status else {})

    def answer(self, wanted: Decision, theirs: Theirs) -> Theirs:
        if isinstance(wanted, NeedsQuery):
            answers = dict(theirs.answers)
            answers.update({c: self.orders.get(c) for c in wanted.client_order_ids})
            return replace(theirs, answers=answers, fills_fresh=False)
        assert isinstance(wanted, NeedsFills) and self.trade_capture
        return replace(theirs, fills=tuple(f for f in self.fills
                                           if f.exec_id not in self.left_out), fills_fresh=True)


def plan(ours: Ours, venue: Venue, policy: Policy = POLICY) -> list[Decision]:
    theirs = venue.first_view()
    for _ in range(4):
        decisions = reconcile(ours, theirs, NOW, policy)
        if not decisions or not isinstance(decisions[0], NeedsQuery | NeedsFills):
            return decisions
        theirs = venue.answer(decisions[0], theirs)
    raise AssertionError("reconcile kept asking")


def carry_out(store: Store, venue: Venue, decisions: list[Decision]) -> None:
    """What recovery does with a plan, on the in-memory store and venue."""
    for d in decisions:  # each report planned changes the order: the plan is what happens
        if isinstance(d, ApplyReports):
            assert store.apply(list(d.reports)) == list(d.reports)
        elif isinstance(d, BookFromCumulative | AdoptEnd):
            assert store.apply([d.report]) == [d.report]
        elif isinstance(d, Resend):
            store.orders[d.order_id] = not_sent(store.orders[d.order_id], NOW)
        elif isinstance(d, FailUnsent):
            o = store.orders[d.order_id]
            store.orders[d.order_id] = apply(o, Failed(at=NOW, reason=d.reason))
        elif isinstance(d, Ghost) and d.cancel:
            cid = d.venue_order.client_order_id
            venue.orders[cid] = replace(venue.orders[cid], state=VenueOrderState.CANCELLED)


def ours_of(store: Store, venue: Venue, held: frozenset[str] = frozenset()) -> Ours:
    """ordex's view as recovery reads it from the store."""
    in_flight = tuple(sorted((o for o in store.orders.values()
                              if o.status.is_open and o.routing in SENT),
                             key=lambda o: o.id))
    named = {*venue.orders, *(f.client_order_id for f in venue.fills)}
    known = {str(o.id): o for o in store.orders.values()
             if str(o.id) in named and o not in in_flight}
    return Ours(in_flight, known, store.booked(), held)


# ---- random worlds ------------------------------------------------------------------------------

@dataclass
class World:
    store: Store
    venue: Venue
    held: frozenset[str]
    policy: Policy

    def ours(self) -> Ours:
        return ours_of(self.store, self.venue, self.held)


def report(cid: str, exec_id: str, size: int, price: Decimal, cum: int) -> ExecutionReport:
    return ExecutionReport(venue=VENUE, client_order_id=cid, exec_id=exec_id,
                           kind=ReportKind.FILL, timestamp=T0, symbol="AAPL", side=Side.BUY,
                           venue_order_id=f"V-{cid[-4:]}", last_quantity=Decimal(size),
                           last_price=price, cum_quantity=Decimal(cum))


def venue_order(o: Order, fills: list[ExecutionReport], state: VenueOrderState) -> VenueOrder:
    filled = sum((f.last_quantity for f in fills), ZERO)
    notional = sum((f.last_quantity * f.last_price for f in fills), ZERO)
    return VenueOrder(VENUE, str(o.id), f"V-{str(o.id)[-4:]}", o.symbol, o.side, OrderType.LIMIT,
                      o.quantity, filled, notional / filled if filled else None,
                      # a venue may also say an order it filled in full ended (a race)
                      VenueOrderState.FILLED if filled == o.quantity and state.is_open else state,
                      o.limit_price)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    orders: dict[UUID, Order] = {}
    at_venue: dict[str, VenueOrder] = {}
    fills: list[ExecutionReport] = []
    booked_now: list[ExecutionReport] = []
    held: set[str] = set()
    for i in range(draw(st.integers(1, 4))):
        quantity = draw(st.integers(1, 12))
        o = sent(make_order(quantity=str(quantity)),
                 NOW - timedelta(seconds=draw(st.integers(0, 10))), VENUE)
        o = replace(o, send_attempts=draw(st.integers(1, 4)))
        if draw(st.booleans()):
            o = confirmed(o, "V-ack")
        cid = str(o.id)
        if draw(st.booleans()):  # the venue has it
            sizes = draw(st.lists(st.integers(1, quantity), max_size=4))
            mine: list[ExecutionReport] = []
            cum = 0
            for k, size in enumerate(sizes):
                if cum + size > quantity:
                    break
                cum += size
                price = Decimal(draw(st.integers(9_000, 11_000))) / 100
                mine.append(report(cid, f"E{i}-{k}", size, price, cum))
            fills += mine
            at_venue[cid] = venue_order(o, mine, draw(st.sampled_from(ENDS)))
            if o.venue_order_id is not None:
                o = confirmed(o, at_venue[cid].venue_order_id)
            # ordex booked any of them, in any order: one may be missed behind a later one
            booked_now += draw(st.permutations(mine))[:draw(st.integers(0, len(mine)))]
        else:
            if draw(st.booleans()):
                held.add(cid)
        if draw(st.booleans()) and o.filled_quantity == 0:
            o = replace(o, status=OrderStatus.PENDING_CANCEL, reason="trader")
        orders[o.id] = o
    for _ in range(draw(st.integers(0, 2))):  # venue orders ordex does not know
        ghost = make_order()
        at_venue[str(ghost.id)] = venue_order(ghost, [], VenueOrderState.OPEN)
    for _ in range(draw(st.integers(0, 2))):  # ordex closed them; the venue has them open
        closed = apply(confirmed(sent(make_order(), T0, VENUE), "V"), draw(st.sampled_from(
            [Cancelled(at=T0), Expired(at=T0)])))
        orders[closed.id] = closed
        at_venue[str(closed.id)] = venue_order(closed, [], VenueOrderState.OPEN)
    store = Store(orders)
    store.apply(booked_now)
    venue = Venue(at_venue, fills, draw(st.booleans()), draw(st.booleans()))
    if venue.trade_capture:
        venue.left_out = frozenset(draw(st.sets(st.sampled_from([f.exec_id for f in fills])))
                                   if fills else frozenset())
    policy = replace(POLICY, unsent=draw(st.sampled_from(["resend", "fail"])),
                     ghosts=draw(st.sampled_from(["cancel", "alert"])))
    return World(store, venue, frozenset(held), policy)


PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _of(d: Decision) -> UUID | None:
    return getattr(d, "order_id", None)


# ---- properties ---------------------------------------------------------------------------------

@PROPERTY
@given(worlds(), st.integers(1, 3))
def test_every_venue_fill_is_booked_exactly_once_however_often_ordex_reconciles(
        world: World, times: int) -> None:
    left_out = world.venue.left_out
    for round in range(times):
        carry_out(world.store, world.venue, plan(world.ours(), world.venue, world.policy))
        if round == 0:
            world.venue.left_out = frozenset()  # its trade capture catches up
    exec_ids = Counter((f.order_id, f.exec_id) for f in world.store.fills)
    assert all(n == 1 for n in exec_ids.values())
    for cid, found in world.venue.orders.items():
        mine = world.store.orders.get(UUID(cid))
        if mine is None:
            continue
        booked = [f for f in world.store.fills if str(f.order_id) == cid]
        assert mine.filled_quantity == found.filled_quantity == sum(
            (f.quantity for f in booked), ZERO)
        listed = {f.exec_id for f in world.venue.fills if f.client_order_id == cid}
        if world.venue.trade_capture and times == 1:  # a fill it lists: booked by its exec id
            assert listed - left_out <= {f.exec_id for f in booked}


@PROPERTY
@given(worlds())
def test_the_real_reports_arriving_after_a_cumqty_booking_book_nothing(world: World) -> None:
    carry_out(world.store, world.venue, plan(world.ours(), world.venue, world.policy))
    filled = {o.id: o.filled_quantity for o in world.store.orders.values()}
    booked = len(world.store.fills)
    world.store.apply(list(world.venue.fills))  # every report, late, in the venue's order
    assert {o.id: o.filled_quantity for o in world.store.orders.values()} == filled
    assert len(world.store.fills) == booked


@PROPERTY
@given(worlds())
def test_a_plan_never_takes_an_order_beyond_its_quantity(world: World) -> None:
    ours = world.ours()
    decisions = plan(ours, world.venue, world.policy)
    for order in ours.orders:
        planned = sum((r.last_quantity for d in decisions if _of(d) == order.id
                       for r in (d.reports if isinstance(d, ApplyReports) else
                                 [d.report] if isinstance(d, BookFromCumulative) else [])
                       if r.kind is ReportKind.FILL), ZERO)
        assert order.filled_quantity + planned <= order.quantity


@PROPERTY
@given(worlds())
def test_the_ghosts_are_the_open_venue_orders_ordex_does_not_have_open_and_nothing_else(
        world: World) -> None:
    ours = world.ours()
    decisions = plan(ours, world.venue, world.policy)
    mine = {str(o.id): o for o in world.store.orders.values()}
    open_there = {c for c, o in world.venue.orders.items() if o.state.is_open}
    expected = ({c for c in open_there if c not in mine or mine[c].status.is_terminal}
                if world.venue.mass_status else set())
    ghosts = [d for d in decisions if isinstance(d, Ghost)]
    assert sorted(g.venue_order.client_order_id for g in ghosts) == sorted(expected)
    assert all(g.cancel is (world.policy.ghosts == "cancel") for g in ghosts)
    assert not {str(_of(d)) for d in decisions} & expected


@PROPERTY
@given(worlds())
def test_an_order_the_venue_never_saw_is_resent_or_failed_per_policy_never_both(
        world: World) -> None:
    ours = world.ours()
    decisions = plan(ours, world.venue, world.policy)
    window = NOW - world.policy.ack_window
    for order in ours.orders:
        mine = [d for d in decisions if isinstance(d, Resend | FailUnsent)
                and d.order_id == order.id]
        unsent = (str(order.id) not in world.venue.orders
                  and order.status is OrderStatus.ACCEPTED and order.venue_order_id is None
                  and order.routed_at is not None and order.routed_at <= window
                  and str(order.id) not in world.held)
        if not unsent:
            assert mine == []  # at the venue, held by it, in its ack window, or acknowledged
            continue
        [decision] = mine
        resend = (world.policy.unsent == "resend"
                  and world.policy.retry.may_retry(order.send_attempts))
        assert isinstance(decision, Resend if resend else FailUnsent)


@PROPERTY
@given(worlds())
def test_an_acknowledged_order_the_venue_does_not_know_is_noted_missing_only(
        world: World) -> None:
    ours = world.ours()
    decisions = plan(ours, world.venue, world.policy)
    for order in ours.orders:
        mine = [d for d in decisions if _of(d) == order.id]
        if str(order.id) not in world.venue.orders and order.venue_order_id is not None:
            assert mine == [NoteMissing(order.id)]
        else:
            assert not any(isinstance(d, NoteMissing) for d in mine)


@PROPERTY
@given(worlds())
def test_an_orders_end_comes_after_its_fills_and_its_steps_are_together(world: World) -> None:
    decisions = plan(world.ours(), world.venue, world.policy)
    steps = [(i, d) for i, d in enumerate(decisions) if isinstance(d, ADOPTION)
             and d.order_id is not None]
    for order_id in {d.order_id for _, d in steps}:
        mine = [(i, d) for i, d in steps if d.order_id == order_id]
        indexes = [i for i, _ in mine]
        assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))  # one group
        kinds = [type(d) for _, d in mine]
        assert kinds == sorted(kinds, key=[ApplyReports, BookFromCumulative, AdoptEnd].index)
        assert len(set(kinds)) == len(kinds)


@PROPERTY
@given(worlds())
def test_reconciling_again_after_the_plan_is_carried_out_decides_nothing_new(
        world: World) -> None:
    first = plan(world.ours(), world.venue, world.policy)
    carry_out(world.store, world.venue, first)
    again = plan(world.ours(), world.venue, world.policy)
    assert [d for d in again if not isinstance(d, NoteMissing | Ghost)] == []
    assert [d for d in again if isinstance(d, NoteMissing)] == [
        d for d in first if isinstance(d, NoteMissing)]
    assert all(not g.cancel for g in again if isinstance(g, Ghost))


# ---- the tricky cases, by example ---------------------------------------------------------------

def one_order(quantity: int = 10, **changes: Any) -> Order:
    """Sent 30 s ago and confirmed by the venue as ``V-ack`` (``venue_order_id=None``: not)."""
    o = sent(make_order(quantity=str(quantity)), NOW - timedelta(seconds=30), VENUE)
    venue_order_id = changes.pop("venue_order_id", "V-ack")
    if venue_order_id is not None:
        o = confirmed(o, venue_order_id)
    return replace(o, **changes)


def test_a_fill_missed_behind_a_later_one_is_booked_by_its_exec_id() -> None:
    o = one_order()
    cid = str(o.id)
    first, later = report(cid, "E1", 4, Decimal(100), 4), report(cid, "E2", 6, Decimal(101), 10)
    store = Store({o.id: o})
    store.apply([later])  # the stream delivered the later one; the first was lost
    venue = Venue({cid: venue_order(o, [first, later], VenueOrderState.OPEN)}, [first, later])
    decisions = plan(ours_of(store, venue), venue)
    assert decisions == [ApplyReports(o.id, (first,))]
    carry_out(store, venue, decisions)
    after = store.orders[o.id]
    assert (after.status, after.filled_quantity) == (OrderStatus.FILLED, 10)
    assert plan(ours_of(store, venue), venue) == []


def test_what_trade_capture_leaves_out_is_booked_from_cumqty_after_its_fills_then_the_end(
        ) -> None:
    o = one_order()
    cid = str(o.id)
    listed, missing = report(cid, "E1", 3, Decimal(100), 3), report(cid, "E2", 4, Decimal(102), 7)
    venue = Venue({cid: venue_order(o, [listed, missing], VenueOrderState.CANCELLED)},
                  [listed, missing], left_out=frozenset({"E2"}))
    store = Store({o.id: o})
    decisions = plan(ours_of(store, venue), venue)
    assert [type(d) for d in decisions] == [ApplyReports, BookFromCumulative, AdoptEnd]
    rest = decisions[1]
    assert isinstance(rest, BookFromCumulative) and rest.trade_capture
    assert rest.report.exec_id == f"recovered-cum-{cid}-7"
    assert (rest.report.last_quantity, rest.report.last_price) == (4, Decimal(102))
    assert isinstance(decisions[2], AdoptEnd)
    assert decisions[2].report.exec_id == f"recovered-cancelled-{cid}"
    carry_out(store, venue, decisions)
    after = store.orders[o.id]
    assert (after.status, after.filled_quantity) == (OrderStatus.CANCELLED, 7)
    store.apply([missing])  # the real report, late: covered by the CumQty booking
    assert store.orders[o.id].filled_quantity == 7 and len(store.fills) == 2


def test_without_mass_status_each_order_is_asked_about_and_no_ghost_can_be_seen() -> None:
    o, gone = one_order(), one_order(venue_order_id=None)
    filled = report(str(o.id), "E1", 10, Decimal(100), 10)
    venue = Venue({str(o.id): venue_order(o, [filled], VenueOrderState.OPEN),
                   str(make_order().id): venue_order(make_order(), [], VenueOrderState.OPEN)},
                  [filled], mass_status=False, trade_capture=False)
    store = Store({o.id: o, gone.id: gone})
    ours = ours_of(store, venue)
    theirs = venue.first_view()
    [ask] = reconcile(ours, theirs, NOW, POLICY)
    assert isinstance(ask, NeedsQuery)
    assert sorted(ask.client_order_ids) == sorted([str(o.id), str(gone.id)])
    decisions = reconcile(ours, venue.answer(ask, theirs), NOW, POLICY)
    [book] = [d for d in decisions if isinstance(d, BookFromCumulative)]
    [resend] = [d for d in decisions if not isinstance(d, BookFromCumulative)]
    assert not book.trade_capture
    assert book.report.exec_id == cumulative_exec_id(str(o.id), Decimal(10))
    assert resend == Resend(gone.id)


def test_an_order_the_venue_refused_a_copy_of_is_neither_resent_nor_failed() -> None:
    o = one_order(venue_order_id=None, send_attempts=4)
    venue = Venue({}, [])
    store = Store({o.id: o})
    assert plan(ours_of(store, venue, frozenset({str(o.id)})), venue,
                replace(POLICY, unsent="fail")) == []
    [failed] = plan(ours_of(store, venue), venue)  # every attempt spent: failed
    assert isinstance(failed, FailUnsent) and "after 4 attempts" in failed.reason


def test_stale_fills_are_asked_for_again_before_booking_from_cumqty() -> None:
    o = one_order()
    cid = str(o.id)
    fill = report(cid, "E1", 5, Decimal(100), 5)
    store = Store({o.id: o})
    found = venue_order(o, [fill], VenueOrderState.OPEN)
    theirs = Theirs(VENUE, open_orders={cid: found}, fills=(), fills_fresh=False)
    assert reconcile(ours_of(store, Venue({}, [])), theirs, NOW, POLICY) == [
        NeedsFills(o.created_at - timedelta(seconds=5))]
    fresh = replace(theirs, fills=(fill,), fills_fresh=True)
    assert reconcile(ours_of(store, Venue({}, [])), fresh, NOW, POLICY) == [
        ApplyReports(o.id, (fill,))]


def test_a_cumqty_booking_made_before_a_fill_arrived_is_not_booked_on_top_of_it() -> None:
    """The report stream delivers the fill between the plan and its execution."""
    o = one_order()
    cid = str(o.id)
    fill = report(cid, "E1", 4, Decimal(100), 4)
    venue = Venue({cid: venue_order(o, [fill], VenueOrderState.OPEN)}, [fill],
                  trade_capture=False)
    store = Store({o.id: o})
    [book] = plan(ours_of(store, venue), venue)
    assert isinstance(book, BookFromCumulative)
    assert store.apply([fill]) == [fill]
    assert store.apply([book.report]) == []  # it was made for 0 booked; ordex has 4 now
    assert store.orders[o.id].filled_quantity == 4 and len(store.fills) == 1
