"""How ordex gets an order to a venue and what it does when that fails (FR-008 to FR-010).

An order is *pending* until an attempt to send it starts, *unconfirmed* from then until the venue
acknowledges it, and *at the venue* after (stored with the order, moved by ``domain.orders``'
routing transitions). An unconfirmed order may or may not have reached the venue: it is never
declared rejected or sent again blindly, only after asking the venue.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import msgspec

from ordex.domain.orders import Order, OrderStatus, Routing

JITTER = 0.2  # each delay is drawn from [1 - JITTER, 1 + JITTER] times the nominal one


class RetryPolicy(msgspec.Struct, frozen=True, gc=False):
    """``retries`` re-attempts after the first (ORDER_RETRY_MAX_ATTEMPTS), the n-th after about
    ``base_seconds * 2 ** (n - 1)``; ``ack_seconds`` without an answer before the venue is asked;
    ``order_timeout_seconds`` an order may wait for a venue before it expires unsent."""

    retries: int = 3
    base_seconds: float = 1.0
    ack_seconds: float = 2.0
    order_timeout_seconds: float = 120.0

    @property
    def max_attempts(self) -> int:
        return 1 + self.retries

    def may_retry(self, attempts: int) -> bool:
        return attempts < self.max_attempts

    def backoff(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait before attempt ``attempts + 1``."""
        nominal = self.base_seconds * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=nominal * rng.uniform(1 - JITTER, 1 + JITTER))

    def ack_overdue(self, order: Order, now: datetime) -> bool:
        return (order.routing is Routing.UNCONFIRMED and order.routed_at is not None
                and now - order.routed_at >= timedelta(seconds=self.ack_seconds))

    def waited_too_long(self, order: Order, now: datetime) -> bool:
        """A pending order that no venue could take within the order timeout."""
        return (order.status is OrderStatus.ACCEPTED and order.routing is Routing.PENDING
                and now - order.created_at >= timedelta(seconds=self.order_timeout_seconds))


def unreachable_reason(venue: str, attempts: int, why: str) -> str:
    tries = "attempt" if attempts == 1 else "attempts"
    return (f"Could not reach venue {venue} after {attempts} {tries} ({why}); the order was not "
            "sent. Retry it, or acknowledge it to close it.")


def never_confirmed_reason(venue: str, attempts: int) -> str:
    tries = "attempt" if attempts == 1 else "attempts"
    return (f"Venue {venue} never confirmed the order after {attempts} {tries} and does not "
            "have it; nothing was executed. Retry it, or acknowledge it to close it.")


def not_sent_in_time_reason(venue: str, seconds: float) -> str:
    return (f"Not sent: venue {venue} could not be reached for {seconds:g} seconds after the "
            "order was accepted. Nothing was executed; send it again when the venue is back.")
