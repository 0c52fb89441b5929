"""The most shares an order may have and still pass every check: buying power, the short-selling
rule, the open-order count, the daily-loss rule, the order-notional and both position limits.

Every quantity hint names this one figure, so a hint followed literally is never refused by a
check that runs after the one that gave it. Pure, like validation and risk.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from ordex.domain.money import ZERO, floor_to_step, money, price, qty
from ordex.domain.orders import Side

if TYPE_CHECKING:
    from ordex.domain.validation import AccountState


class Room(msgspec.Struct, frozen=True, gc=False):
    """``quantity`` is a multiple of the lot (zero when nothing fits); ``blocked`` says, in
    words, why no quantity can be accepted when that is so (written when asked for: most orders
    fit, and never show it)."""

    quantity: Decimal
    words: Callable[[], str]

    @property
    def blocked(self) -> str:
        return self.words()

    def hint(self, tail: str = ".") -> str:
        """'Reduce the quantity to N shares or fewer<tail>', or why no quantity fits."""
        if self.quantity > 0:
            return f"Reduce the quantity to {qty(self.quantity)} shares or fewer{tail}"
        return self.blocked


def most_within(limit: Decimal, unit: Decimal, lot: Decimal) -> Decimal:
    """The largest multiple of ``lot`` whose value at ``unit`` is at most ``limit``."""
    if unit <= 0:
        return limit if limit >= 0 else ZERO
    if limit < 0:
        return ZERO
    shares = floor_to_step(limit / unit, lot)
    if lot > 0:
        while shares > 0 and shares * unit > limit:
            shares -= lot
        while (shares + lot) * unit <= limit:
            shares += lot
    return max(shares, ZERO)


def reducing_room(symbol: str, side: Side, state: AccountState) -> Decimal:
    """How many more shares on ``side`` still only shrink the position (open orders counted)."""
    toward = side.sign * state.position(symbol)
    if toward >= 0:
        return ZERO
    return max(-toward - state.open_quantity(symbol, side), ZERO)


def daily_loss_breached(state: AccountState) -> bool:
    return state.daily_pnl <= -state.account.limits.daily_loss_limit


def room(symbol: str, side: Side, unit: Decimal, lot: Decimal, state: AccountState) -> Room:
    """The most shares of ``symbol`` on ``side`` at ``unit`` a new order may have."""
    limits = state.account.limits
    # each cap with the words that explain it, written only for the cap that binds
    caps: list[tuple[Decimal, Callable[[], str]]] = []
    none = f"No quantity of {symbol} can be accepted now: "

    def lots() -> str:
        return f"one lot ({qty(lot)} share{'' if lot == 1 else 's'} at {price(unit)})"

    open_count = state.open_count()
    if open_count >= limits.max_open_orders:
        caps.append((ZERO, lambda: f"{none}you have {open_count} open orders, the most your "
                                   "account allows; cancel some or wait for them to fill."))
    if side is Side.BUY:
        available = state.buying_power()
        caps.append((most_within(available, unit, lot), lambda: (
            f"{none}your buying power of {money(max(available, ZERO))} does not cover "
            f"{lots()}; add at least {money(lot * unit - max(available, ZERO))} of funds "
            "or cancel open buy orders.")))
    elif not state.account.allow_short:
        free = state.position(symbol) - state.open_quantity(symbol, Side.SELL)
        caps.append((floor_to_step(max(free, ZERO), lot), lambda: (
            f"{none}you have no shares free to sell; buy first or cancel open sell orders.")))
    caps.append((most_within(limits.max_order_notional, unit, lot), lambda: (
        f"{none}{lots()} is worth more than your per-order limit of "
        f"{money(limits.max_order_notional)}.")))

    reducing = floor_to_step(reducing_room(symbol, side, state), lot)

    def at_limit() -> str:
        return (f"{none}your position and open orders in {symbol} are at your limit; reduce "
                "the position or cancel open orders in this symbol before adding to it.")

    if daily_loss_breached(state):
        caps.append((reducing, lambda: (
            f"{none}your daily loss limit is reached, and only orders that reduce a position "
            "are accepted for the rest of the day.")))
    else:
        toward = side.sign * state.position(symbol) + state.open_quantity(symbol, side)
        by_shares = floor_to_step(max(limits.max_position_shares - toward, ZERO), lot)
        caps.append((max(by_shares, reducing), at_limit))
        by_value = most_within(limits.max_position_notional - toward * unit, unit, lot)
        caps.append((max(by_value, reducing), at_limit))

    quantity, blocked = min(caps, key=lambda cap: cap[0])
    return Room(quantity, blocked)
