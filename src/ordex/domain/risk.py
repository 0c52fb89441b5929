"""Risk rules (FR-003): position, order size, daily loss and open-order limits.

One gate every new order passes before it is accepted. Pure, like validation.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Code, Violation
from ordex.domain.instruments import Instrument
from ordex.domain.money import money, qty
from ordex.domain.orders import Side
from ordex.domain.room import daily_loss_breached, room
from ordex.domain.validation import AccountState, PricePolicy, check_limit_price, validate


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"


def trading_state(state: AccountState) -> TradingState:
    """Once the day's loss reaches the limit, only orders that reduce risk are taken."""
    return TradingState.REDUCING if daily_loss_breached(state) else TradingState.ACTIVE


def reduces_position(cmd: SubmitOrder, state: AccountState) -> bool:
    """True when the order, together with open orders on its side, only shrinks the position."""
    position = state.position(cmd.symbol)
    pending = state.open_quantity(cmd.symbol, cmd.side) + cmd.quantity
    if cmd.side is Side.SELL:
        return position > 0 and pending <= position
    return position < 0 and pending <= -position


def check_risk(cmd: SubmitOrder, unit_price: Decimal, lot: Decimal,
               state: AccountState) -> list[Violation]:
    """Every FR-003 violation of ``cmd`` priced at ``unit_price``. Each quantity hint names the
    room every check leaves, validation's included."""
    limits = state.account.limits
    found: list[Violation] = []
    reducing = reduces_position(cmd, state)
    fits = room(cmd.symbol, cmd.side, unit_price, lot, state)

    open_count = state.open_count()
    if open_count >= limits.max_open_orders:
        found.append(Violation(
            Code.MAX_OPEN_ORDERS, None,
            f"You have {open_count} open orders, the most your account allows.",
            "Cancel some open orders, or wait for them to fill, then send this one again.",
        ))

    if trading_state(state) is TradingState.REDUCING and not reducing:
        found.append(Violation(
            Code.DAILY_LOSS_LIMIT, None,
            f"Daily loss limit reached: today's P&L is {money(state.daily_pnl)} against a limit "
            f"of {money(limits.daily_loss_limit)}. Only orders that reduce a position are "
            "accepted for the rest of the day.",
            fits.hint(", so that the order only reduces your position.") if fits.quantity > 0
            else "Close or reduce existing positions, or ask your risk administrator to review "
            "the limit.",
        ))

    notional = cmd.quantity * unit_price
    if notional > limits.max_order_notional:
        found.append(Violation(
            Code.MAX_ORDER_NOTIONAL, "quantity",
            f"Order value {money(notional)} exceeds your per-order limit of "
            f"{money(limits.max_order_notional)}.",
            fits.hint(", or split the order."),
        ))

    if reducing:
        return found
    position = state.position(cmd.symbol)
    same_side_open = state.open_quantity(cmd.symbol, cmd.side)
    signed = cmd.side.sign * (same_side_open + cmd.quantity)
    worst = abs(position + signed)
    if worst > limits.max_position_shares:
        found.append(Violation(
            Code.MAX_POSITION_SHARES, "quantity",
            f"This order could take your {cmd.symbol} position to {qty(worst)} shares; your "
            f"limit is {qty(limits.max_position_shares)}.",
            fits.hint(),
        ))
    worst_notional = worst * unit_price
    if worst_notional > limits.max_position_notional:
        found.append(Violation(
            Code.MAX_POSITION_NOTIONAL, "quantity",
            f"This order could take your {cmd.symbol} position to {money(worst_notional)}; "
            f"your limit is {money(limits.max_position_notional)} per symbol.",
            fits.hint(),
        ))
    return found


def check_order(cmd: SubmitOrder, instrument: Instrument | None, state: AccountState,
                policy: PricePolicy) -> list[Violation]:
    """Validation and risk together: every reason ``cmd`` would be refused now. Risk runs at the
    price validation checks quantities at, so both name the same fixes."""
    found = validate(cmd, instrument, state, policy)
    if instrument is None or cmd.quantity <= 0:
        return found
    unit = check_limit_price(cmd, instrument, policy).checked_at
    if unit is None or unit <= 0:
        return found
    return found + check_risk(cmd, unit, instrument.lot_size, state)
