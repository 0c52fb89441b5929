"""The order state machine: every pair in the table, and properties over random event runs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from ordex.domain.errors import IllegalTransition
from ordex.domain.orders import (
    CLOSED,
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
    OrderEvent,
    OrderStatus,
    Rejected,
    apply,
    can_apply,
)
from tests.unit.factories import T0, derived_routing, order

AT = T0 + timedelta(seconds=1)


def event_for(kind: EventType, quantity: Decimal, filled: Decimal) -> OrderEvent:
    remaining = quantity - filled
    return {
        EventType.ACCEPT: Accepted(at=AT),
        EventType.REJECT: Rejected(at=AT, reason="venue said no"),
        EventType.PARTIAL_FILL: Filled(at=AT, quantity=remaining / 2, price=Decimal("10")),
        EventType.FILL: Filled(at=AT, quantity=remaining, price=Decimal("10")),
        EventType.CANCEL_REQUEST: CancelRequested(at=AT),
        EventType.CANCEL: Cancelled(at=AT),
        EventType.CANCEL_REJECT: CancelRejected(at=AT, reason="too late"),
        EventType.EXPIRE: Expired(at=AT),
        EventType.FAIL: Failed(at=AT, reason="venue down"),
    }[kind]


@pytest.mark.parametrize("status", list(OrderStatus))
@pytest.mark.parametrize("kind", list(EventType))
def test_every_pair_is_either_in_the_table_or_refused(status: OrderStatus,
                                                      kind: EventType) -> None:
    start = order(status=status, quantity="10", filled="0")
    event = event_for(kind, start.quantity, start.filled_quantity)
    if (status, kind) in TRANSITIONS:
        after = apply(start, event)
        expected = TRANSITIONS[(status, kind)]
        if expected is None:
            assert after.status is OrderStatus.ACCEPTED
        else:
            assert after.status is expected
        assert after.updated_at == AT
    else:
        with pytest.raises(IllegalTransition):
            apply(start, event)


def test_a_closed_order_moves_only_by_a_late_fill_and_a_filled_one_never() -> None:
    ways_out = {pair: target for pair, target in TRANSITIONS.items() if pair[0] in TERMINAL}
    assert ways_out == {
        **{(s, EventType.PARTIAL_FILL): s for s in CLOSED},
        **{(s, EventType.FILL): OrderStatus.FILLED for s in CLOSED}}
    assert CLOSED == TERMINAL - {OrderStatus.FILLED}


def test_a_late_full_fill_of_a_cancelled_order_fills_it_and_says_so() -> None:
    """Before, the fill raised IllegalTransition and was dropped: the venue had filled 10 shares
    that ordex never booked."""
    o = order(status=OrderStatus.CANCELLED, quantity="10", filled="0")
    o = replace(o, reason="Cancelled at your request")
    after = apply(o, Filled(at=AT, quantity=Decimal(10), price=Decimal("12.00")))
    assert (after.status, after.filled_quantity, after.average_price) == (
        OrderStatus.FILLED, Decimal(10), Decimal("12.00"))
    assert after.reason == ("Filled 10 after the cancel: the fill was already on its way, so "
                            "the order is filled in full. It had been cancelled: Cancelled at "
                            "your request")


def test_late_partial_fills_keep_the_closed_status_and_count_what_came_after() -> None:
    o = order(status=OrderStatus.EXPIRED, quantity="10", filled="0")
    o = replace(o, reason="Not filled within your timeout of 30 seconds")
    o = apply(o, Filled(at=AT, quantity=Decimal(3), price=Decimal("10")))
    assert (o.status, o.filled_quantity) == (OrderStatus.EXPIRED, Decimal(3))
    assert o.reason == ("3 filled after it expired (the fill was already on its way); 3 of 10 "
                        "filled in all. It had been expired: Not filled within your timeout of "
                        "30 seconds")
    o = apply(o, Filled(at=AT, quantity=Decimal(2), price=Decimal("10")))
    assert o.reason is not None and o.reason.startswith("5 filled after it expired")
    assert o.reason.endswith("It had been expired: Not filled within your timeout of 30 seconds")
    o = apply(o, Filled(at=AT, quantity=Decimal(5), price=Decimal("10")))
    assert o.status is OrderStatus.FILLED and o.reason is not None
    assert o.reason.startswith("Filled 10 after it expired")
    with pytest.raises(IllegalTransition):
        apply(o, Filled(at=AT, quantity=Decimal(1), price=Decimal("10")))


def test_cancel_reject_returns_to_partially_filled_when_something_filled() -> None:
    o = order(status=OrderStatus.PENDING_CANCEL, quantity="10", filled="4")
    assert apply(o, CancelRejected(at=AT)).status is OrderStatus.PARTIALLY_FILLED


def test_fills_update_quantity_and_average_price() -> None:
    o = order(quantity="10")
    o = apply(o, Filled(at=AT, quantity=Decimal(4), price=Decimal("10.00")))
    assert o.status is OrderStatus.PARTIALLY_FILLED
    o = apply(o, Filled(at=AT, quantity=Decimal(6), price=Decimal("12.50")))
    assert o.status is OrderStatus.FILLED
    assert o.filled_quantity == 10
    assert o.average_price == Decimal("11.5")


def test_overfill_and_non_positive_fills_are_refused() -> None:
    o = order(quantity="10")
    with pytest.raises(InvalidFill):
        apply(o, Filled(at=AT, quantity=Decimal(11), price=Decimal(1)))
    with pytest.raises(InvalidFill):
        apply(o, Filled(at=AT, quantity=Decimal(0), price=Decimal(1)))
    with pytest.raises(InvalidFill):
        apply(o, Filled(at=AT, quantity=Decimal(1), price=Decimal(0)))


events = st.one_of(
    st.builds(Accepted, at=st.just(AT)),
    st.builds(Rejected, at=st.just(AT)),
    st.builds(Filled, at=st.just(AT), quantity=st.integers(1, 12).map(Decimal),
              price=st.integers(1, 500).map(Decimal)),
    st.builds(CancelRequested, at=st.just(AT)),
    st.builds(Cancelled, at=st.just(AT)),
    st.builds(CancelRejected, at=st.just(AT)),
    st.builds(Expired, at=st.just(AT)),
    st.builds(Failed, at=st.just(AT)),
)


@given(st.lists(events, max_size=30))
def test_random_event_runs_never_break_the_invariants(run: list[OrderEvent]) -> None:
    o = replace(order(quantity="10"), status=OrderStatus.PENDING_NEW)
    notional = Decimal(0)
    for event in run:
        before = o
        legal = can_apply(o, event)
        try:
            o = apply(o, event)
        except (IllegalTransition, InvalidFill) as exc:
            assert isinstance(exc, InvalidFill) or not legal
            assert o is before
            continue
        assert legal
        if before.status.is_terminal:  # only a late fill moves a closed order
            assert isinstance(event, Filled) and before.status is not OrderStatus.FILLED
            assert o.status in (before.status, OrderStatus.FILLED)
        if isinstance(event, Filled):
            notional += event.quantity * event.price
        assert Decimal(0) <= o.filled_quantity <= o.quantity
        assert (o.status is OrderStatus.FILLED) == (o.filled_quantity == o.quantity)
        assert o.routing is derived_routing(o)  # done exactly once the status is terminal
        if o.filled_quantity:
            assert o.average_price is not None
            assert abs(o.average_price - notional / o.filled_quantity) <= Decimal("1e-9")
