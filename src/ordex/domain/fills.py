"""Fills and execution-log entries: the spec's Fill and Execution Log entities."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from ordex.domain.orders import Side


@dataclass(frozen=True, slots=True)
class Fill:
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


class LogAction(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    EXECUTE = "execute"
    FILL = "fill"
    CANCEL = "cancel"
    REJECT = "reject"
    EXPIRE = "expire"
    FAIL = "fail"
    RETRY = "retry"  # an attempt to send failed and another is scheduled
    RECOVER = "recover"  # ordex adopted what the venue knows of the order
    ACKNOWLEDGE = "acknowledge"  # the trader closed a failed order


@dataclass(frozen=True, slots=True)
class ExecutionLogEntry:
    """An append-only record of something that happened to an order (or to a refused request)."""

    id: UUID
    trader_id: UUID
    order_id: UUID | None
    action: LogAction
    status: str
    timestamp: datetime
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
