"""Status events: what a subscriber sees when an order changes. Stored with the change."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from ordex.clock import iso
from ordex.domain.money import tidy
from ordex.domain.orders import Order


class LastFill(msgspec.Struct, frozen=True, gc=False):
    quantity: Decimal
    price: Decimal
    venue: str
    timestamp: datetime


class OrderEvent(msgspec.Struct, frozen=True, gc=False):
    """``seq`` is the position in the whole service's event log; ``trader_seq`` the position
    among this trader's own events (1, 2, 3, ...), which is all a trader is shown, so that
    nothing a trader sees moves when someone else trades."""

    seq: int
    order_id: UUID
    trader_id: UUID
    type: str
    status: str
    timestamp: datetime
    payload: dict[str, Any]
    trader_seq: int = 0

    def position(self, *, service_wide: bool) -> int:
        return self.seq if service_wide else self.trader_seq

    def as_json(self, *, service_wide: bool = False) -> dict[str, Any]:
        """As shown to the trader (``seq`` = trader_seq) or, for compliance and admin, with the
        service-wide ``seq``."""
        return {"seq": self.position(service_wide=service_wide), "type": self.type,
                "order_id": str(self.order_id),
                "trader_id": str(self.trader_id), "status": self.status,
                "timestamp": iso(self.timestamp), **self.payload}


def payload(order: Order, last_fill: LastFill | None = None,
            reason: str | None = None) -> dict[str, Any]:
    """What a subscriber sees of an order after the change: decimals as strings."""
    return {
        "client_order_id": order.client_order_id, "symbol": order.symbol,
        "side": order.side.value, "order_type": order.type.value,
        "time_in_force": order.time_in_force.value, "quantity": _d(order.quantity),
        "limit_price": _d(order.limit_price),
        "filled_quantity": _d(order.filled_quantity),
        "remaining_quantity": _d(order.remaining_quantity),
        "average_price": _d(order.average_price),
        "last_fill_quantity": _d(last_fill.quantity) if last_fill else None,
        "last_fill_price": _d(last_fill.price) if last_fill else None,
        "last_fill_venue": last_fill.venue if last_fill else None,
        "last_fill_time": iso(last_fill.timestamp) if last_fill else None,
        "reason": reason if reason is not None else order.reason,
        "routing": order.routing.value, "send_attempts": order.send_attempts,
    }


def _d(value: Decimal | None) -> str | None:
    return None if value is None else format(tidy(value), "f")
