"""An order's venue lifecycle (``routing``), stored with it: every move of ``ROUTES`` and every
refused one, and a state machine mixing those moves with the status events, over which the
stored routing is always what ordex derived before from the columns and never goes back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from itertools import product

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from msgspec.structs import replace

from ordex.domain.errors import IllegalRouting, IllegalTransition
from ordex.domain.orders import (
    ROUTES,
    TERMINAL,
    TRANSITIONS,
    Accepted,
    Cancelled,
    CancelRejected,
    CancelRequested,
    EventType,
    Expired,
    Failed,
    Filled,
    InvalidFill,
    Order,
    OrderEvent,
    OrderStatus,
    Rejected,
    Routing,
    RoutingMove,
    apply,
    confirmed,
    not_sent,
    sent,
)
from ordex.domain.status import payload
from tests.unit.factories import T0, derived_routing, order

AT = T0 + timedelta(seconds=1)
LATER = T0 + timedelta(seconds=5)
R, M = Routing, RoutingMove


def in_state(routing: Routing) -> Order:
    """An accepted order of 10 in ``routing``, brought there by the transitions (a pending one
    has had one attempt that did not get through, so a late ack of it is possible)."""
    o = order(quantity="10")
    if routing is R.PENDING:
        return not_sent(sent(o, T0, "SIM"), AT)
    o = sent(o, T0, "SIM")
    if routing is R.UNCONFIRMED:
        return o
    o = confirmed(o, "SIM-1")
    return o if routing is R.AT_VENUE else apply(o, Cancelled(at=AT, reason="trader"))


def end(o: Order) -> Order:
    """The status becomes terminal: cancelled, or a late fill of an already closed order."""
    if o.status.is_terminal:
        return apply(o, Filled(at=LATER, quantity=o.remaining_quantity, price=Decimal(10)))
    return apply(o, Cancelled(at=LATER, reason="trader"))


MOVES: dict[RoutingMove, Callable[[Order], Order]] = {
    M.SEND: lambda o: sent(o, LATER, "ALT"),
    M.CONFIRM: lambda o: confirmed(o, "SIM-2", "SIM"),
    M.NOT_SENT: lambda o: not_sent(o, LATER),
    M.END: end,
}


@pytest.mark.parametrize(("routing", "move"), list(product(Routing, RoutingMove)))
def test_every_move_is_either_in_the_table_or_refused(routing: Routing,
                                                      move: RoutingMove) -> None:
    start = in_state(routing)
    assert start.routing is routing is derived_routing(start)
    if (routing, move) in ROUTES:
        after = MOVES[move](start)
        assert after.routing is ROUTES[(routing, move)] is derived_routing(after)
    else:
        with pytest.raises(IllegalRouting, match=f"routing is {routing.value}"):
            MOVES[move](start)


def test_only_not_sent_goes_back_at_venue_never_returns_to_pending_and_done_is_final() -> None:
    rank = list(Routing).index
    back = {pair: target for pair, target in ROUTES.items() if rank(target) < rank(pair[0])}
    assert back == {(R.UNCONFIRMED, M.NOT_SENT): R.PENDING}
    assert {target for (start, _), target in ROUTES.items() if start is R.AT_VENUE} == {
        R.AT_VENUE, R.DONE}
    assert {target for (start, _), target in ROUTES.items() if start is R.DONE} == {R.DONE}
    assert (R.DONE, M.SEND) not in ROUTES and (R.AT_VENUE, M.SEND) not in ROUTES


def test_a_refused_move_is_an_illegal_transition_and_says_why() -> None:
    never_sent = order()
    with pytest.raises(IllegalRouting, match="cannot take the move 'confirm': it was never sent"):
        confirmed(never_sent, "SIM-1")
    with pytest.raises(IllegalTransition):  # what the write path already catches
        not_sent(in_state(R.AT_VENUE), LATER)


def test_sent_records_the_attempt_and_not_sent_schedules_the_next() -> None:
    o = replace(order(), next_attempt_at=T0)
    going = sent(o, AT, "SIM")
    assert (going.routing, going.routed_at, going.venue, going.send_attempts,
            going.next_attempt_at, going.updated_at) == (R.UNCONFIRMED, AT, "SIM", 1, None, AT)
    again = not_sent(going, LATER)
    assert (again.routing, again.routed_at, again.next_attempt_at, again.send_attempts) == (
        R.PENDING, None, LATER, 1)
    assert sent(again, LATER, "ALT").send_attempts == 2


def test_confirmed_records_the_venues_id_and_a_closed_order_stays_done() -> None:
    acked = confirmed(sent(order(), AT, "SIM"), "SIM-7", "SIM")
    assert (acked.routing, acked.venue_order_id, acked.venue) == (R.AT_VENUE, "SIM-7", "SIM")
    unsent_then_expired = apply(not_sent(sent(order(), AT, "SIM"), LATER), Expired(at=LATER))
    late = confirmed(unsent_then_expired, "SIM-8")  # the attempt reached the venue after all
    assert (late.routing, late.venue_order_id, late.status) == (
        R.DONE, "SIM-8", OrderStatus.EXPIRED)


@pytest.mark.parametrize(("status", "kind"), sorted(TRANSITIONS, key=str))
def test_a_status_event_ends_the_routing_exactly_when_the_status_becomes_terminal(
        status: OrderStatus, kind: EventType) -> None:
    starts = [R.DONE] if status in TERMINAL else [R.PENDING, R.UNCONFIRMED, R.AT_VENUE]
    for routing in starts:
        start = replace(in_state(routing), status=status)
        after = apply(start, _event(kind, start))
        assert after.routing is (R.DONE if after.status in TERMINAL else routing)


def _event(kind: str, o: Order) -> OrderEvent:
    remaining = o.remaining_quantity
    return {"accept": Accepted(at=AT), "reject": Rejected(at=AT),
            "partial_fill": Filled(at=AT, quantity=remaining / 2, price=Decimal(10)),
            "fill": Filled(at=AT, quantity=remaining, price=Decimal(10)),
            "cancel_request": CancelRequested(at=AT), "cancel": Cancelled(at=AT),
            "cancel_reject": CancelRejected(at=AT), "expire": Expired(at=AT),
            "fail": Failed(at=AT)}[kind]


@pytest.mark.parametrize("routing", list(Routing))
def test_the_order_json_shows_routing_as_before(routing: Routing) -> None:
    o = in_state(routing)
    shown = payload(o)
    assert shown["routing"] == derived_routing(o).value == routing.value
    assert isinstance(shown["routing"], str)


# ---- a state machine over both kinds of change ----------------------------------------------

STATUS_EVENTS = st.sampled_from(["reject", "partial_fill", "fill", "cancel_request", "cancel",
                                 "cancel_reject", "expire", "fail"])


class VenueLifecycle(RuleBasedStateMachine):
    """One accepted order, moved by the engine's routing steps and by status events in any
    order; whatever is refused leaves it as it was."""

    def __init__(self) -> None:
        super().__init__()
        self.order = order(quantity="10")
        self.moves = 0

    def _try(self, change: Callable[[Order], Order], move: RoutingMove | None) -> None:
        before = self.order
        try:
            after = change(before)
        except IllegalRouting:
            assert move is not None
            never_sent = before.routing is R.PENDING and before.send_attempts == 0
            assert (before.routing, move) not in ROUTES or (move is M.CONFIRM and never_sent)
            return
        except (IllegalTransition, InvalidFill):
            return
        if move is not None:
            assert after.routing is ROUTES[(before.routing, move)]
        rank = list(Routing).index
        if rank(after.routing) < rank(before.routing):  # only an attempt that never got there
            assert (move, before.routing, after.routing) == (M.NOT_SENT, R.UNCONFIRMED,
                                                             R.PENDING)
        if before.routing in (R.AT_VENUE, R.DONE):
            assert after.routing in (before.routing, R.DONE)
        self.order = after
        self.moves += 1

    @rule(venue=st.sampled_from(["SIM", "ALT"]))
    def send(self, venue: str) -> None:
        self._try(lambda o: sent(o, LATER, venue), M.SEND)

    @rule()
    def attempt_did_not_get_there(self) -> None:
        self._try(lambda o: not_sent(o, LATER), M.NOT_SENT)

    @rule(venue_order_id=st.sampled_from(["V-1", "V-2"]))
    def venue_confirms(self, venue_order_id: str) -> None:
        self._try(lambda o: confirmed(o, venue_order_id), M.CONFIRM)

    @rule(kind=STATUS_EVENTS)
    def status_event(self, kind: str) -> None:
        self._try(lambda o: apply(o, _event(kind, o)), None)

    @precondition(lambda self: self.order.routing is R.PENDING)
    @rule()
    def venue_was_never_reachable(self) -> None:
        self._try(lambda o: apply(o, Expired(at=LATER)), None)

    @invariant()
    def stored_routing_is_what_the_columns_said(self) -> None:
        assert self.order.routing is derived_routing(self.order)
        assert (self.order.routing is R.DONE) == self.order.status.is_terminal


VenueLifecycle.TestCase.settings = settings(max_examples=300, stateful_step_count=25,
                                            deadline=None)
TestVenueLifecycle = VenueLifecycle.TestCase
