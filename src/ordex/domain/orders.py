"""The order, its state machine and the events that move it.

The state machine is one table, ``TRANSITIONS``: ``(status, event type) -> status``. Any pair not
in it is refused with :class:`IllegalTransition`. Orders are immutable; ``apply`` returns a new one.

Beside the status, an order stores where it is on its way to a venue, its ``routing``: *pending*
until an attempt to send it starts, *unconfirmed* from then until the venue confirms it, *at the
venue* after, *done* once its status is terminal. It moves by ``ROUTES``, ``(routing, move) ->
routing``, through ``sent``, ``confirmed``, ``not_sent`` and ``apply`` (which ends it); any other
move is refused with :class:`IllegalRouting`. Only ``not_sent`` goes back, from unconfirmed to
pending: the attempt is known not to have reached the venue.

A closed order (cancelled, expired, rejected, failed) has one way out: a fill that was already on
its way when ordex closed it. A fill is a fact at the venue, so it is always booked: one that
completes the order makes it ``filled``; a partial one leaves the status as it was, with the
filled quantity updated. Either way the reason says what happened ("Filled 10 after the cancel
...") and keeps the reason the order had been closed with.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

import msgspec
from msgspec.structs import replace

from ordex.domain.errors import IllegalRouting, IllegalTransition
from ordex.domain.money import ZERO
from ordex.domain.money import average as money_average
from ordex.domain.money import qty as _qty


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL


TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED,
     OrderStatus.FAILED}
)
OPEN_STATUSES = frozenset(OrderStatus) - TERMINAL


class Routing(StrEnum):
    PENDING = "pending"  # not sent yet (or known not to have reached the venue)
    UNCONFIRMED = "unconfirmed"  # sent, no answer yet: the venue may or may not have it
    AT_VENUE = "at_venue"  # confirmed by the venue
    DONE = "done"  # terminal


class RoutingMove(StrEnum):
    SEND = "send"  # an attempt to send starts (recorded before anything goes out)
    CONFIRM = "confirm"  # the venue says it has the order, under its own id
    NOT_SENT = "not_sent"  # the attempt is known not to have reached the venue
    END = "end"  # the status became terminal


_R = Routing
_M = RoutingMove
ROUTES: dict[tuple[Routing, RoutingMove], Routing] = {
    (_R.PENDING, _M.SEND): _R.UNCONFIRMED,
    # an earlier attempt reached the venue after all (refused if there was none, see confirmed)
    (_R.PENDING, _M.CONFIRM): _R.AT_VENUE,
    (_R.PENDING, _M.END): _R.DONE,
    (_R.UNCONFIRMED, _M.CONFIRM): _R.AT_VENUE,
    (_R.UNCONFIRMED, _M.NOT_SENT): _R.PENDING,
    (_R.UNCONFIRMED, _M.END): _R.DONE,
    (_R.AT_VENUE, _M.CONFIRM): _R.AT_VENUE,  # the venue names it again (maybe under a new id)
    (_R.AT_VENUE, _M.END): _R.DONE,
    # a closed order the venue confirms late, or a late fill on it: it stays done
    (_R.DONE, _M.CONFIRM): _R.DONE,
    (_R.DONE, _M.END): _R.DONE,
}


class EventType(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    CANCEL_REQUEST = "cancel_request"
    CANCEL = "cancel"
    CANCEL_REJECT = "cancel_reject"
    EXPIRE = "expire"
    FAIL = "fail"


_S = OrderStatus
_E = EventType
# A cancel refused by the venue puts the order back to where it was: accepted, or partially filled.
_RESUME: OrderStatus | None = None

TRANSITIONS: dict[tuple[OrderStatus, EventType], OrderStatus | None] = {
    (_S.PENDING_NEW, _E.ACCEPT): _S.ACCEPTED,
    (_S.PENDING_NEW, _E.REJECT): _S.REJECTED,
    (_S.ACCEPTED, _E.PARTIAL_FILL): _S.PARTIALLY_FILLED,
    (_S.ACCEPTED, _E.FILL): _S.FILLED,
    (_S.ACCEPTED, _E.CANCEL_REQUEST): _S.PENDING_CANCEL,
    (_S.ACCEPTED, _E.CANCEL): _S.CANCELLED,
    (_S.ACCEPTED, _E.REJECT): _S.REJECTED,
    (_S.ACCEPTED, _E.EXPIRE): _S.EXPIRED,
    (_S.ACCEPTED, _E.FAIL): _S.FAILED,
    (_S.PARTIALLY_FILLED, _E.PARTIAL_FILL): _S.PARTIALLY_FILLED,
    (_S.PARTIALLY_FILLED, _E.FILL): _S.FILLED,
    (_S.PARTIALLY_FILLED, _E.CANCEL_REQUEST): _S.PENDING_CANCEL,
    (_S.PARTIALLY_FILLED, _E.CANCEL): _S.CANCELLED,
    (_S.PARTIALLY_FILLED, _E.REJECT): _S.REJECTED,
    (_S.PARTIALLY_FILLED, _E.EXPIRE): _S.EXPIRED,
    (_S.PARTIALLY_FILLED, _E.FAIL): _S.FAILED,
    (_S.PENDING_CANCEL, _E.PARTIAL_FILL): _S.PENDING_CANCEL,
    (_S.PENDING_CANCEL, _E.FILL): _S.FILLED,
    (_S.PENDING_CANCEL, _E.CANCEL): _S.CANCELLED,
    (_S.PENDING_CANCEL, _E.CANCEL_REJECT): _RESUME,
    (_S.PENDING_CANCEL, _E.REJECT): _S.REJECTED,
    (_S.PENDING_CANCEL, _E.EXPIRE): _S.EXPIRED,
    (_S.PENDING_CANCEL, _E.FAIL): _S.FAILED,
    # late fills: booked on a closed order (see the module's docstring)
    (_S.CANCELLED, _E.PARTIAL_FILL): _S.CANCELLED,
    (_S.CANCELLED, _E.FILL): _S.FILLED,
    (_S.EXPIRED, _E.PARTIAL_FILL): _S.EXPIRED,
    (_S.EXPIRED, _E.FILL): _S.FILLED,
    (_S.REJECTED, _E.PARTIAL_FILL): _S.REJECTED,
    (_S.REJECTED, _E.FILL): _S.FILLED,
    (_S.FAILED, _E.PARTIAL_FILL): _S.FAILED,
    (_S.FAILED, _E.FILL): _S.FILLED,
}
CLOSED = frozenset({_S.CANCELLED, _S.EXPIRED, _S.REJECTED, _S.FAILED})
# how a trader reads "after the order was closed", by the status it was closed in
_AFTER = {_S.CANCELLED: "after the cancel", _S.EXPIRED: "after it expired",
          _S.REJECTED: "after the venue's reject", _S.FAILED: "after it was marked failed"}
# ``extra`` keys of an order a late fill reached: the reason it had been closed with, the status
# it was closed in, and the quantity filled since
CLOSED_REASON, CLOSED_STATUS, FILLED_AFTER_CLOSE = ("closed_reason", "closed_status",
                                                    "filled_after_close")


class OrderEvent(msgspec.Struct, frozen=True, gc=False):
    at: datetime
    type: ClassVar[EventType]


class Accepted(OrderEvent, frozen=True):
    type: ClassVar[EventType] = EventType.ACCEPT


class Rejected(OrderEvent, frozen=True):
    reason: str = ""
    type: ClassVar[EventType] = EventType.REJECT


class Filled(OrderEvent, frozen=True):
    """A fill of ``quantity`` at ``price``; ``apply`` decides whether it completes the order."""

    quantity: Decimal = ZERO
    price: Decimal = ZERO


class CancelRequested(OrderEvent, frozen=True):
    reason: str = "trader"
    type: ClassVar[EventType] = EventType.CANCEL_REQUEST


class Cancelled(OrderEvent, frozen=True):
    reason: str = "trader"
    type: ClassVar[EventType] = EventType.CANCEL


class CancelRejected(OrderEvent, frozen=True):
    reason: str = ""
    type: ClassVar[EventType] = EventType.CANCEL_REJECT


class Expired(OrderEvent, frozen=True):
    reason: str = "time in force"
    type: ClassVar[EventType] = EventType.EXPIRE


class Failed(OrderEvent, frozen=True):
    reason: str = ""
    type: ClassVar[EventType] = EventType.FAIL


class InvalidFill(ValueError):
    """A fill that is not positive, or that would take the order beyond its quantity."""


class Order(msgspec.Struct, frozen=True, gc=False):
    id: UUID
    trader_id: UUID
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    time_in_force: TimeInForce
    created_at: datetime
    updated_at: datetime
    client_order_id: str | None = None
    limit_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    status: OrderStatus = OrderStatus.PENDING_NEW
    filled_quantity: Decimal = ZERO
    average_price: Decimal | None = None
    # The price buying power was reserved at: the limit price, or the reference price for market.
    reserve_price: Decimal = ZERO
    reason: str | None = None
    extra: dict[str, str] = msgspec.field(default_factory=dict)
    venue: str | None = None
    # Changed only by ``ROUTES`` (see the module's docstring), with the two columns below.
    routing: Routing = Routing.PENDING
    venue_order_id: str | None = None
    # Set, and committed, before the order is sent to a venue: the intent to send.
    routed_at: datetime | None = None
    cancel_sent_at: datetime | None = None
    # Execution limits (US4): the worst fill price a market order accepts, and when ordex
    # cancels the order if it is still working.
    max_slippage_pct: Decimal | None = None
    slippage_price: Decimal | None = None
    timeout_seconds: int | None = None
    expires_at: datetime | None = None
    # Sending (FR-008): attempts so far, when the next may start, when a failed order was
    # acknowledged by its trader.
    send_attempts: int = 0
    next_attempt_at: datetime | None = None
    acknowledged_at: datetime | None = None

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return self.status.is_open


def event_type_of(order: Order, event: OrderEvent) -> EventType:
    if isinstance(event, Filled):
        done = order.filled_quantity + event.quantity >= order.quantity
        return EventType.FILL if done else EventType.PARTIAL_FILL
    return event.type


def can_apply(order: Order, event: OrderEvent) -> bool:
    return (order.status, event_type_of(order, event)) in TRANSITIONS


def apply(order: Order, event: OrderEvent) -> Order:
    """Return the order after ``event``; raise ``IllegalTransition`` for a pair not in the table."""
    kind = event_type_of(order, event)
    key = (order.status, kind)
    if key not in TRANSITIONS:
        raise IllegalTransition(order.status.value, kind.value)
    target = TRANSITIONS[key]
    if isinstance(event, Filled):
        return _fill(order, event, target)
    if target is _RESUME:
        target = OrderStatus.PARTIALLY_FILLED if order.filled_quantity > 0 else OrderStatus.ACCEPTED
    reason = getattr(event, "reason", None) or order.reason
    return replace(order, status=target, updated_at=event.at, reason=reason,
                   routing=_routing_after(order, target))


def _routing_after(order: Order, status: OrderStatus) -> Routing:
    return ROUTES[(order.routing, RoutingMove.END)] if status in TERMINAL else order.routing


def _fill(order: Order, event: Filled, target: OrderStatus | None) -> Order:
    if event.quantity <= 0 or event.price <= 0:
        raise InvalidFill(f"fill must be positive, got {event.quantity} @ {event.price}")
    filled = order.filled_quantity + event.quantity
    if filled > order.quantity:
        raise InvalidFill(
            f"fill of {event.quantity} takes the order beyond its quantity {order.quantity}"
        )
    previous_notional = (order.average_price or ZERO) * order.filled_quantity
    average = money_average((previous_notional + event.quantity * event.price) / filled)
    assert target is not None
    after = replace(
        order, status=target, filled_quantity=filled, average_price=average, updated_at=event.at,
        routing=_routing_after(order, target),
    )
    if order.status in CLOSED or CLOSED_STATUS in order.extra:
        after = _late(order, after, event.quantity)
    return after


def _late(before: Order, after: Order, quantity: Decimal) -> Order:
    """``after`` a fill that reached ``before`` once it was closed: the reason tells it."""
    extra = dict(before.extra)
    extra.setdefault(CLOSED_STATUS, before.status.value)
    extra.setdefault(CLOSED_REASON, before.reason or "")
    late = Decimal(extra.get(FILLED_AFTER_CLOSE, "0")) + quantity
    extra[FILLED_AFTER_CLOSE] = str(late)
    closed = OrderStatus(extra[CLOSED_STATUS])
    was = extra[CLOSED_REASON]
    after_what = _AFTER.get(closed, "after it was closed")
    if after.status is OrderStatus.FILLED:
        reason = (f"Filled {_qty(late)} {after_what}: the fill was already on its way, so the "
                  f"order is filled in full.")
    else:
        reason = (f"{_qty(late)} filled {after_what} (the fill was already on its way); "
                  f"{_qty(after.filled_quantity)} of {_qty(after.quantity)} filled in all.")
    if was:
        reason += f" It had been {closed.value}: {was}"
    return replace(after, reason=reason, extra=extra)


def _route(order: Order, move: RoutingMove) -> Routing:
    target = ROUTES.get((order.routing, move))
    if target is None:
        raise IllegalRouting(order.routing.value, move.value)
    return target


def sent(order: Order, at: datetime, venue: str) -> Order:
    """An attempt to send ``order`` to ``venue`` starts at ``at``: it is unconfirmed from then
    (committed before anything goes out)."""
    return replace(order, routing=_route(order, RoutingMove.SEND), routed_at=at, venue=venue,
                   updated_at=at, send_attempts=order.send_attempts + 1, next_attempt_at=None)


def confirmed(order: Order, venue_order_id: str, venue: str | None = None) -> Order:
    """The venue (``venue``, or the order's) has the order, as ``venue_order_id``."""
    if order.routing is Routing.PENDING and order.send_attempts == 0:
        raise IllegalRouting(order.routing.value, RoutingMove.CONFIRM.value,
                             "it was never sent")
    return replace(order, routing=_route(order, RoutingMove.CONFIRM),
                   venue_order_id=venue_order_id, venue=venue or order.venue)


def not_sent(order: Order, retry_at: datetime) -> Order:
    """The attempt is known not to have reached the venue: pending again, sent from
    ``retry_at``."""
    return replace(order, routing=_route(order, RoutingMove.NOT_SENT), routed_at=None,
                   next_attempt_at=retry_at)
