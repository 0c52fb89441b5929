"""Orders ordex has working that the venue says it does not know.

A venue that acknowledged an order and later answers "unknown" for it (its book was lost in a
restart, or an operator removed it) will never fill it. ordex does not take one answer for
proof: the first "unknown" after reconciliation is noted with the order's filled quantity, and
the venue is asked again at least ``recheck`` seconds later. Unknown again, with no fill booked
meanwhile, the order ends ``cancelled`` with a reason the trader reads, which releases what it
reserved; the close has its execution-log row and an ``order.recovered`` metrics line. Found
again, or filled meanwhile, it is forgotten (and adopted). NautilusTrader resolves missing
orders the same way after a bounded number of checks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from ordex import metrics
from ordex.domain.journal import LogAction
from ordex.domain.money import qty
from ordex.domain.orders import Cancelled, Order, OrderStatus
from ordex.store.uow import reading
from ordex.venues.base import VenueUnavailable

if TYPE_CHECKING:
    from ordex.engine.recovery import Recovery, RecoveryPorts

log = logging.getLogger("ordex.recovery")

CHECKS = 2  # answers of "unknown", the first after reconciliation, before ordex gives up
WORKING = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED,
                     OrderStatus.PENDING_CANCEL})


def missing_reason(venue: str, order: Order) -> str:
    return (f"Venue {venue} no longer has this order; nothing more will fill. "
            f"{qty(order.filled_quantity)} of {qty(order.quantity)} shares were filled.")


@dataclass(slots=True)
class _Miss:
    answers: int
    filled: Decimal
    ask_at: datetime


class MissingOrders:
    def __init__(self, recovery: Recovery, recheck: timedelta) -> None:
        self.recovery = recovery
        self.recheck = recheck
        self._misses: dict[UUID, _Miss] = {}

    @property
    def ports(self) -> RecoveryPorts:
        return self.recovery.ports

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._misses

    def noted(self, order: Order, now: datetime) -> None:
        """The venue answered "unknown" for ``order``, which it had acknowledged."""
        if order.venue_order_id is None or order.status not in WORKING:
            return
        miss = self._misses.get(order.id)
        if miss is None or miss.filled != order.filled_quantity:
            log.warning("venue %s does not know order %s it acknowledged as %s; asking again",
                        self.ports.venue.name, order.id, order.venue_order_id,
                        extra={"order_id": order.id, "trader_id": order.trader_id})
            self._misses[order.id] = _Miss(1, order.filled_quantity, now + self.recheck)

    def found(self, order_id: UUID) -> None:
        self._misses.pop(order_id, None)

    async def check(self, now: datetime) -> None:
        """Ask the venue again about each noted order that is due."""
        due = [oid for oid, miss in self._misses.items() if now >= miss.ask_at]
        if not due:
            return
        ports = self.ports
        async with reading(ports.db) as repo:
            orders = {o.id: o for o in await repo.orders_by_ids(due)}
        for order_id in due:
            order = orders.get(order_id)
            miss = self._misses[order_id]
            if order is None or order.status not in WORKING:
                self.found(order_id)
                continue
            try:
                there = await ports.venue.query(str(order_id))
            except VenueUnavailable:
                return  # asked again at the next sweep
            if there is not None:
                self.found(order_id)
                await self.recovery.adopt(order, there, now)
            elif order.filled_quantity != miss.filled:  # a fill came meanwhile: start again
                self._misses[order_id] = _Miss(1, order.filled_quantity, now + self.recheck)
            elif miss.answers + 1 >= CHECKS:
                self.found(order_id)
                await self._close(order, now, miss.answers + 1)
            else:
                miss.answers += 1
                miss.ask_at = now + self.recheck

    async def _close(self, order: Order, now: datetime, answers: int) -> None:
        ports = self.ports
        venue = ports.venue.name
        reason = missing_reason(venue, order)
        log.error("order %s closed: venue %s answered %d times that it does not know it",
                  order.id, venue, answers,
                  extra={"order_id": order.id, "trader_id": order.trader_id})
        events = await ports.close_working(
            order.id, Cancelled(at=now, reason=reason), LogAction.RECOVER,
            {"venue": venue, "venue_order_id": order.venue_order_id,
             "venue_state": "unknown", "answers": answers,
             "filled": str(order.filled_quantity)})
        for event in events:
            ports.metrics.emit(metrics.RECOVERED, now, order_id=event.order_id,
                                trader_id=event.trader_id, venue=venue, status=event.status,
                                reason=reason, retry_count=max(order.send_attempts - 1, 0))
