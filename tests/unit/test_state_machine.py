"""The order state machine: every pair in the table, and properties over random event runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordex.domain.errors import IllegalTransition
from ordex.domain.orders import (
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
from tests.unit.factories import T0, order

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


def test_terminal_states_have_no_way_out() -> None:
    assert not [pair for pair in TRANSITIONS if pair[0] in TERMINAL]


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
        assert not before.status.is_terminal, "a terminal order moved"
        if isinstance(event, Filled):
            notional += event.quantity * event.price
        assert Decimal(0) <= o.filled_quantity <= o.quantity
        assert (o.status is OrderStatus.FILLED) == (o.filled_quantity == o.quantity)
        if o.filled_quantity:
            assert o.average_price is not None
            assert abs(o.average_price - notional / o.filled_quantity) <= Decimal("1e-9")
