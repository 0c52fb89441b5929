"""What each venue's recovery looks at, picked from the open orders in the engine's memory."""

from __future__ import annotations

from datetime import timedelta

from msgspec.structs import replace

from ordex.domain.orders import Order, OrderStatus, confirmed
from ordex.domain.orders import sent as mark_sent
from ordex.engine.ledger import cancels_unanswered, in_flight, unconfirmed, working_at
from tests.unit.factories import T0
from tests.unit.factories import order as make_order

S = timedelta(seconds=1)


def at(venue: str | None, status: OrderStatus = OrderStatus.ACCEPTED, *, sent: int | None = None,
       acked: bool = False, cancel_sent: int | None = None, changed: int = 0) -> Order:
    o = make_order(status=status)
    if sent is not None:
        o = mark_sent(o, T0 + sent * S, venue or "SIM")
    if acked:
        o = confirmed(o, "V1")
    return replace(o, venue=venue,
                   cancel_sent_at=None if cancel_sent is None else T0 + cancel_sent * S,
                   updated_at=T0 + changed * S)


def test_unconfirmed_orders_are_those_sent_long_enough_ago_without_an_ack_at_that_venue() -> None:
    late, later, recent = at("SIM", sent=2), at("SIM", sent=1), at("SIM", sent=9)
    orders = [late, recent, at("SIM"), at("SIM", sent=1, acked=True), at("ALT", sent=1),
              at(None, sent=1), later,
              at("SIM", OrderStatus.PENDING_CANCEL, sent=1)]
    assert unconfirmed(orders, "SIM", T0 + 5 * S) == [later, late]
    assert unconfirmed(orders, "SIM", T0 + 5 * S, limit=1) == [later]


def test_unanswered_cancels_are_those_sent_long_ago_or_of_orders_never_confirmed() -> None:
    P = OrderStatus.PENDING_CANCEL
    sent_long_ago = at("SIM", P, sent=0, acked=True, cancel_sent=1, changed=3)
    never_confirmed = at("SIM", P, sent=1, changed=1)
    orders = [sent_long_ago, never_confirmed, at("SIM", P, sent=0, acked=True, cancel_sent=9),
              at("SIM", P, sent=0, acked=True), at("ALT", P, sent=1),
              at("SIM", sent=1, cancel_sent=1)]
    assert cancels_unanswered(orders, "SIM", T0 + 5 * S) == [never_confirmed, sent_long_ago]


def test_in_flight_and_working_orders_are_a_venues_own() -> None:
    routed, acked_old, acked_new = at("SIM", sent=1), at("SIM", sent=0, acked=True, changed=1), \
        at("SIM", sent=0, acked=True, changed=5)
    orders = [acked_new, routed, acked_old, at("SIM"), at("ALT", sent=1, acked=True)]
    assert in_flight(orders, "SIM") == sorted([routed, acked_old, acked_new], key=lambda o: o.id)
    assert working_at(orders, "SIM", 10) == [acked_old, acked_new]
    assert working_at(orders, "SIM", 1) == [acked_old]
