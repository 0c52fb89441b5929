"""The Venue protocol and the reports a venue sends back.

The core sees only these types; wire formats (FIX tags) stay inside each adapter. The client order
id sent to a venue is ordex's own order id, unique per order and the same on every retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

import msgspec

from ordex.domain.money import ZERO
from ordex.domain.orders import OrderType, Side, TimeInForce

log = logging.getLogger("ordex.venues")


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


class NewOrder(msgspec.Struct, frozen=True, gc=False):
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    time_in_force: TimeInForce
    limit_price: Decimal | None = None


class ExecutionReport(msgspec.Struct, frozen=True, gc=False):
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


class VenueOrder(msgspec.Struct, frozen=True, gc=False):
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


class Quote(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    timestamp: datetime
    halted: bool = False


class VenueUnavailable(Exception):
    """The venue could not be reached (down, connection refused or reset, timed out)."""


class Capability(StrEnum):
    """What a venue may or may not offer beyond the core order flow (new, cancel, replace,
    status of one order, execution reports)."""

    MASS_STATUS = "mass_status"  # every open order in one request
    TRADE_CAPTURE = "trade_capture"  # the fills since a time
    MARKET_DATA = "market_data"  # bid, ask and last trade

    @property
    def words(self) -> str:
        return _CAPABILITY_WORDS[self]

    @property
    def without(self) -> str:
        """What ordex does instead when the venue lacks it."""
        return _WITHOUT[self]


_CAPABILITY_WORDS = {
    Capability.MASS_STATUS: "order mass status (35=AF)",
    Capability.TRADE_CAPTURE: "trade capture reports (35=AD)",
    Capability.MARKET_DATA: "market data (35=x/35=V)",
}
_WITHOUT = {
    Capability.MASS_STATUS: "reconciliation asks about each open order (35=H) instead, and "
                            "cannot find orders ordex does not know",
    Capability.TRADE_CAPTURE: "missed fills are booked from the order status answers' CumQty "
                              "and AvgPx instead",
    Capability.MARKET_DATA: "orders are checked against the instruments' reference prices",
}


class CapabilityState(msgspec.Struct, frozen=True, gc=False):
    """What is known of one capability: ``supported`` is None until it is learnt."""

    supported: bool | None
    how: str
    learnt_at: datetime | None = None

    def as_json(self) -> dict[str, object]:
        return {"supported": self.supported, "how": self.how,
                "learnt_at": self.learnt_at.isoformat() if self.learnt_at else None}


class Capabilities:
    """What one venue supports and how each was learnt. The engine asks ``supports(X)``; a
    capability not learnt yet counts as not supported, so nothing ever waits for it beyond
    ``settled()``, which a venue bounds by its own probe timeout."""

    def __init__(self, venue: str, supported: dict[Capability, str] | None = None) -> None:
        self.venue = venue
        now = datetime.now(UTC)
        self._states = {c: CapabilityState(True, supported[c], now) if supported and c in
                        supported else CapabilityState(None, "not learnt yet")
                        for c in Capability}
        self._idle = asyncio.Event()
        self._idle.set()

    def supports(self, capability: Capability) -> bool:
        return self._states[capability].supported is True

    def state(self, capability: Capability) -> CapabilityState:
        return self._states[capability]

    def unknown(self) -> list[Capability]:
        return [c for c, s in self._states.items() if s.supported is None]

    def learn(self, capability: Capability, supported: bool, how: str) -> None:
        """Record what was learnt; said once in the log, in words, when it is new."""
        old = self._states[capability]
        self._states[capability] = CapabilityState(supported, how, datetime.now(UTC))
        if old.supported == supported:
            return
        if supported:
            log.info("venue %s supports %s (%s)", self.venue, capability.words, how)
        else:
            log.warning("venue %s does not support %s (%s); trading goes on: %s", self.venue,
                        capability.words, how, capability.without)

    def probing(self) -> None:
        """A venue starts learning: ``settled()`` waits until ``probed()``."""
        self._idle.clear()

    def probed(self) -> None:
        self._idle.set()

    async def settled(self) -> None:
        """Wait for a probe in progress (the venue bounds it by its timeout)."""
        await self._idle.wait()

    def as_json(self) -> dict[str, dict[str, object]]:
        return {c.value: s.as_json() for c, s in self._states.items()}


class SessionStatus(msgspec.Struct, frozen=True, gc=False):
    """The venue link as an operator reads it: ``state`` is connected, connecting or
    disconnected; ``problem`` says why it is not connected and ``hint`` what to do."""

    state: str
    problem: str | None = None
    hint: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"state": self.state, "problem": self.problem, "hint": self.hint}


class Venue(Protocol):
    """An async connection to one trading venue."""

    name: str
    capabilities: Capabilities

    @property
    def connected(self) -> bool:
        """Whether the venue can be reached now (its session is up)."""
        ...

    def session_status(self) -> SessionStatus:
        """The link's state, and if it is down, why and what to do."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, order: NewOrder) -> None:
        """Send a new order; its outcome arrives as reports. Raises VenueUnavailable."""

    async def submit_many(self, orders: list[NewOrder]) -> list[VenueUnavailable | None]:
        """Send new orders together (a venue may take them in one go); for each, None if it
        was sent, or why it could not be."""

    async def cancel(self, client_order_id: str) -> None:
        """Ask the venue to cancel; the outcome arrives as a report."""

    async def query(self, client_order_id: str) -> VenueOrder | None:
        """What the venue knows of the order now, or None if it does not know it (yet)."""

    async def open_orders(self) -> list[VenueOrder]:
        """Every open order (only if ``capabilities.supports(MASS_STATUS)``)."""
        ...

    async def fills_since(self, since: datetime) -> list[ExecutionReport]:
        """Every fill since ``since`` (only if ``capabilities.supports(TRADE_CAPTURE)``)."""
        ...

    def reports(self) -> AsyncIterator[ExecutionReport]:
        """Every execution report, in the order the venue sent them."""
        ...

    def quotes(self) -> AsyncIterator[Quote]:
        """Market data: a quote whenever a symbol's top of book or last trade changes."""
        ...
