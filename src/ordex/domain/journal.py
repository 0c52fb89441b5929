"""The journal: one append-only row for everything that happens to an order (and for a refused
request), in the order the one writer committed it. The execution log is the journal; the
stream shows a trader the rows that carry an ``event``; the Measurement Plan's metrics are read
off it (``ordex.metrics.projected``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import msgspec

from ordex.domain.orders import Order
from ordex.domain.status import OrderEvent


class LogAction(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    EXECUTE = "execute"  # an attempt to send the order to a venue
    ACK = "ack"  # the venue confirmed it has the order
    FILL = "fill"
    CANCEL = "cancel"
    REJECT = "reject"
    EXPIRE = "expire"
    FAIL = "fail"
    RETRY = "retry"  # an attempt to send failed and another is scheduled
    RECOVER = "recover"  # ordex adopted what the venue knows of the order
    ACKNOWLEDGE = "acknowledge"  # the trader closed a failed order


class Actor(StrEnum):
    """Who made the change; a venue's rows name the venue in ``venue``."""

    TRADER = "trader"
    ENGINE = "engine"  # ordex's own decisions: sending, timeouts, expiry
    VENUE = "venue"
    RECOVERY = "recovery"  # what ordex concluded from asking a venue
    ADMIN = "admin"


class JournalEntry(msgspec.Struct, frozen=True, gc=False):
    """One row. ``seq`` is its place in the journal; a row the trader is shown has ``event``
    (its type on the stream) and ``payload`` (what the stream says of the order), and its
    places among the stream's rows: ``stream_seq`` service-wide, ``trader_seq`` among the
    trader's own (1, 2, 3, ...). The writer assigns all three, in commit order."""

    trader_id: UUID
    order_id: UUID | None
    actor: Actor
    action: LogAction
    status: str
    timestamp: datetime
    reason: str | None = None
    symbol: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    venue: str | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    event: str | None = None
    payload: dict[str, Any] | None = None
    seq: int = 0
    stream_seq: int | None = None
    trader_seq: int | None = None

    def stream_event(self) -> OrderEvent | None:
        """The row as the stream shows it, if it is shown."""
        if self.event is None or self.order_id is None:
            return None
        assert self.stream_seq is not None and self.trader_seq is not None
        return OrderEvent(self.stream_seq, self.order_id, self.trader_id, self.event, self.status,
                          self.timestamp, self.payload or {}, self.trader_seq)


def entry(order: Order, action: LogAction, at: datetime, actor: Actor, *,
          reason: str | None = None, quantity: Decimal | None = None,
          price: Decimal | None = None, venue: str | None = None,
          details: dict[str, Any] | None = None) -> JournalEntry:
    """A row about ``order`` as it now is: its symbol, and unless given, its quantity, limit
    price and venue."""
    return JournalEntry(
        order.trader_id, order.id, actor, action, order.status.value, at, reason, order.symbol,
        order.quantity if quantity is None else quantity,
        order.limit_price if price is None else price,
        order.venue if venue is None else venue,
        {"client_order_id": order.client_order_id, "side": order.side.value,
         "type": order.type.value, **(details or {})})
