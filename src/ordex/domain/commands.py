"""Commands: what a trader asks ordex to do, already parsed into domain types."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import msgspec

from ordex.domain.orders import OrderType, Side, TimeInForce


class SubmitOrder(msgspec.Struct, frozen=True, gc=False):
    trader_id: UUID
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    client_order_id: str | None = None
    max_slippage_pct: Decimal | None = None
    timeout_seconds: int | None = None
    venue: str | None = None  # None: the configured default venue


class CancelOrder(msgspec.Struct, frozen=True, gc=False):
    trader_id: UUID
    order_id: UUID
