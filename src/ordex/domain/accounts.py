"""Accounts, roles and per-account risk limits."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

import msgspec


class Role(StrEnum):
    TRADER = "trader"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


class RiskLimits(msgspec.Struct, frozen=True, gc=False):
    max_position_shares: Decimal = Decimal(100_000)
    max_position_notional: Decimal = Decimal(5_000_000)
    max_order_notional: Decimal = Decimal(1_000_000)
    daily_loss_limit: Decimal = Decimal(50_000)
    max_open_orders: int = 200


class Account(msgspec.Struct, frozen=True, gc=False):
    id: UUID
    name: str
    role: Role
    cash: Decimal
    allow_short: bool = False
    limits: RiskLimits = msgspec.field(default_factory=RiskLimits)
    rate_limit_per_minute: int | None = None
    day_start_equity: Decimal | None = None
    trading_day: date | None = None
    key_version: int = 1  # bumped by every rotation or revocation of the account's key
    key_revoked_at: datetime | None = None
