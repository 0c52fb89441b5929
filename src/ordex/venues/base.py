"""The Venue protocol and the reports a venue sends back.

The core sees only these types; wire formats (FIX tags) stay inside each adapter. The client order
id sent to a venue is ordex's own order id, unique per order and the same on every retry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from ordex.domain.money import ZERO
from ordex.domain.orders import OrderType, Side, TimeInForce


class ReportKind(StrEnum):
    ACK = "ack"
    FILL = "fill"  # a partial or a complete fill: ``leaves_quantity`` tells which
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCEL_REJECTED = "cancel_rejected"


class VenueOrderState(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self is VenueOrderState.OPEN


@dataclass(frozen=True, slots=True)
class NewOrder:
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    time_in_force: TimeInForce
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """One thing that happened to an order at a venue. ``exec_id`` is unique per venue, so a
    report that arrives twice can be recognised and applied once."""

    venue: str
    client_order_id: str
    exec_id: str
    kind: ReportKind
    timestamp: datetime
    symbol: str
    side: Side
    venue_order_id: str | None = None
    last_quantity: Decimal = ZERO
    last_price: Decimal = ZERO
    fee: Decimal = ZERO
    cum_quantity: Decimal = ZERO
    leaves_quantity: Decimal = ZERO
    liquidity: str | None = None  # "maker" or "taker" on fills
    reason: str | None = None
    # A REJECTED that refuses a second copy of an order the venue already holds (FIX
    # OrdRejReason 6): it says "the venue has it", not "the order is rejected".
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """What a venue knows of one order: for status queries and reconciliation."""

    venue: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None
    state: VenueOrderState
    limit_price: Decimal | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    timestamp: datetime
    halted: bool = False


class VenueUnavailable(Exception):
    """The venue could not be reached (down, connection refused or reset, timed out)."""


class Venue(Protocol):
    """An async connection to one trading venue."""

    name: str

    @property
    def connected(self) -> bool:
        """Whether the venue can be reached now (its session is up)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, order: NewOrder) -> None:
        """Send a new order; its outcome arrives as reports. Raises VenueUnavailable."""

    async def cancel(self, client_order_id: str) -> None:
        """Ask the venue to cancel; the outcome arrives as a report."""

    async def query(self, client_order_id: str) -> VenueOrder | None:
        """What the venue knows of the order now, or None if it does not know it (yet)."""

    async def open_orders(self) -> list[VenueOrder]: ...

    async def fills_since(self, since: datetime) -> list[ExecutionReport]: ...

    def reports(self) -> AsyncIterator[ExecutionReport]:
        """Every execution report, in the order the venue sent them."""
        ...

    def quotes(self) -> AsyncIterator[Quote]:
        """Market data: a quote whenever a symbol's top of book or last trade changes."""
        ...
