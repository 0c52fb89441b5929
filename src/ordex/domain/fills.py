"""Fills: the spec's Fill entity, and the exec ids of fills booked from a venue's CumQty."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from uuid import UUID

import msgspec

from ordex.domain.orders import Side


class Fill(msgspec.Struct, frozen=True, gc=False):
    """One execution against an order; ``exec_id`` is unique per venue, so a repeat is one fill."""

    id: UUID
    order_id: UUID
    trader_id: UUID
    symbol: str
    side: Side
    timestamp: datetime
    quantity: Decimal
    price: Decimal
    venue: str
    commission: Decimal
    exec_id: str

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price


def cumulative_prefix(client_order_id: str) -> str:
    """How the exec ids of the fills booked from a venue's CumQty/AvgPx for one order begin."""
    return f"recovered-cum-{client_order_id}-"


def cumulative_exec_id(client_order_id: str, cum_quantity: Decimal) -> str:
    """The exec id of the fill that brings an order to the venue's CumQty: it names that CumQty,
    so the same fill made twice is booked once."""
    return f"{cumulative_prefix(client_order_id)}{cum_quantity.normalize()}"


def cumulative_covered(client_order_id: str, exec_ids: Iterable[str]) -> Decimal:
    """The highest venue CumQty that fills booked from CumQty/AvgPx brought the order to: every
    venue fill up to it is in them. Zero if there are none."""
    prefix = cumulative_prefix(client_order_id)
    covered = Decimal(0)
    for exec_id in exec_ids:
        if not exec_id.startswith(prefix):
            continue
        try:
            covered = max(covered, Decimal(exec_id.removeprefix(prefix)))
        except InvalidOperation:
            continue
    return covered
