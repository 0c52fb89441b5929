"""Reference data per symbol."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class InstrumentStatus(StrEnum):
    ACTIVE = "active"
    HALTED = "halted"
    SUSPENDED = "suspended"
    DELISTED = "delisted"


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    name: str
    tick_size: Decimal
    lot_size: Decimal
    status: InstrumentStatus
    reference_price: Decimal

    @property
    def tradable(self) -> bool:
        return self.status is InstrumentStatus.ACTIVE
