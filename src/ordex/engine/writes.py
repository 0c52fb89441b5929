"""Small units of work of the engine's own bookkeeping: a send rescheduled, a cancel to send
again, a log row."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from msgspec.structs import replace

from ordex.domain.journal import Actor, LogAction, entry
from ordex.domain.orders import Order, OrderStatus, Routing, not_sent
from ordex.engine.tx import Tx


async def reschedule_send(tx: Tx, order_id: UUID, at: datetime, reason: str,
                          details: dict[str, Any], now: datetime) -> None:
    """The order did not reach a venue: it is sent again (same id) from ``at``, if no venue
    has confirmed it meanwhile."""
    order = await tx.order(order_id)
    if order is None or order.status is not OrderStatus.ACCEPTED \
            or order.routing is not Routing.UNCONFIRMED:
        return
    again = not_sent(order, at)
    tx.update_order(again)
    tx.record(entry(again, LogAction.RETRY, now, Actor.ENGINE, reason=reason, details=details))


async def unmark_cancel_sent(tx: Tx, order_id: UUID) -> None:
    """The cancel did not get through: it is sent again."""
    order = await tx.order(order_id)
    if order is not None and order.cancel_sent_at is not None:
        tx.update_order(replace(order, cancel_sent_at=None))


async def note(tx: Tx, order: Order, action: LogAction, actor: Actor, at: datetime,
               reason: str, details: dict[str, Any]) -> None:
    """A journal row of the order's, with nothing else changed."""
    tx.record(entry(order, action, at, actor, reason=reason, details=details))
