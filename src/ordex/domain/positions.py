"""Positions and the account's equity and day P&L."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import msgspec
from msgspec.structs import replace

from ordex.domain.instruments import Instrument
from ordex.domain.money import ZERO, average
from ordex.domain.orders import Side


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


class Position(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    quantity: Decimal = ZERO
    average_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO


def apply_fill(position: Position, side: Side, quantity: Decimal, price: Decimal) -> Position:
    """The position after a fill: average cost of what is held, P&L realized on what is closed."""
    signed = quantity if side is Side.BUY else -quantity
    held = position.quantity
    if held == 0 or (held > 0) == (signed > 0):
        total = held + signed
        cost = average((abs(held) * position.average_cost + quantity * price) / abs(total))
        return replace(position, quantity=total, average_cost=cost)
    closed = min(abs(held), quantity)
    direction = 1 if held > 0 else -1
    realized = position.realized_pnl + closed * (price - position.average_cost) * direction
    total = held + signed
    if total == 0:
        return replace(position, quantity=ZERO, average_cost=ZERO, realized_pnl=realized)
    if (total > 0) == (held > 0):
        return replace(position, quantity=total, realized_pnl=realized)
    return replace(position, quantity=total, average_cost=price, realized_pnl=realized)


def cash_change(side: Side, quantity: Decimal, price: Decimal, fee: Decimal) -> Decimal:
    """What a fill does to cash: a buy pays notional and fee, a sell receives notional less fee."""
    notional = quantity * price
    return -(notional + fee) if side is Side.BUY else notional - fee
