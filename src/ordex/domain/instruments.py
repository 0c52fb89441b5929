"""Reference data per symbol."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum

import msgspec
from msgspec.structs import replace


class InstrumentStatus(StrEnum):
    ACTIVE = "active"
    HALTED = "halted"
    SUSPENDED = "suspended"
    DELISTED = "delisted"


class Instrument(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    name: str
    tick_size: Decimal
    lot_size: Decimal
    status: InstrumentStatus
    reference_price: Decimal

    @property
    def tradable(self) -> bool:
        return self.status is InstrumentStatus.ACTIVE


LivePrice = Callable[[str], Decimal | None]


def marked(instrument: Instrument, live_price: LivePrice | None) -> Instrument:
    """The instrument at the live price market data gives, else at its stored reference."""
    live = live_price(instrument.symbol) if live_price is not None else None
    return instrument if live is None else replace(instrument, reference_price=live)
