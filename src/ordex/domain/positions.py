"""Positions and the account's equity and day P&L."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ordex.domain.instruments import Instrument
from ordex.domain.money import ZERO


def equity(cash: Decimal, positions: Mapping[str, Decimal],
           instruments: Mapping[str, Instrument]) -> Decimal:
    """Cash plus every position marked at its instrument's reference price."""
    marked = ZERO
    for symbol, quantity in positions.items():
        instrument = instruments.get(symbol)
        if instrument is not None and quantity:
            marked += quantity * instrument.reference_price
    return cash + marked


def daily_pnl(current_equity: Decimal, day_start_equity: Decimal | None) -> Decimal:
    """Realized plus unrealized P&L since the day began: the change in marked equity."""
    if day_start_equity is None:
        return ZERO
    return current_equity - day_start_equity
