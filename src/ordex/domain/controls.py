"""Execution limits a trader sets on an order (US4): the worst price a market order may fill at
(max slippage) and how long an order may work before ordex cancels it (timeout)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Code, Violation
from ordex.domain.money import ceil_to_step, floor_to_step, price, qty
from ordex.domain.orders import Order, OrderType, Side, TimeInForce

MAX_SLIPPAGE_PCT = Decimal(10)
MAX_TIMEOUT_SECONDS = 86_400
HUNDRED = Decimal(100)


def check_controls(cmd: SubmitOrder) -> list[Violation]:
    found: list[Violation] = []
    pct = cmd.max_slippage_pct
    if pct is not None:
        if cmd.type is not OrderType.MARKET:
            found.append(Violation(
                Code.SLIPPAGE_NOT_FOR_LIMIT, "max_slippage_pct",
                "Max slippage applies to market orders; a limit order's price already caps it.",
                "Remove max slippage, or send a market order."))
        elif not Decimal(0) < pct <= MAX_SLIPPAGE_PCT:
            found.append(Violation(
                Code.OUT_OF_RANGE, "max_slippage_pct",
                f"Max slippage must be above 0% and at most {MAX_SLIPPAGE_PCT}%; you entered "
                f"{pct.normalize():f}%.",
                "Enter a percentage such as 0.5 (half a percent from the price now)."))
    seconds = cmd.timeout_seconds
    if seconds is not None and not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
        found.append(Violation(
            Code.OUT_OF_RANGE, "timeout_seconds",
            f"Timeout must be between 1 and {MAX_TIMEOUT_SECONDS:,} seconds; you entered "
            f"{seconds:,}.",
            "Enter the seconds the order may work, such as 30, or leave it out."))
    return found


def slippage_price(side: Side, reference: Decimal, pct: Decimal, tick: Decimal) -> Decimal:
    """The worst price within ``pct`` percent of ``reference``, on the tick grid."""
    if side is Side.BUY:
        return floor_to_step(reference * (1 + pct / HUNDRED), tick)
    return ceil_to_step(reference * (1 - pct / HUNDRED), tick)


def deadline(created_at: datetime, timeout_seconds: int | None) -> datetime | None:
    return None if timeout_seconds is None else created_at + timedelta(seconds=timeout_seconds)


def venue_terms(order: Order) -> tuple[OrderType, TimeInForce, Decimal | None]:
    """How an order is sent: a market order with a slippage limit goes as a limit at its worst
    price, immediate-or-cancel, so that what cannot fill within the limit is cancelled."""
    if order.type is OrderType.MARKET and order.slippage_price is not None:
        return OrderType.LIMIT, TimeInForce.IOC, order.slippage_price
    return order.type, order.time_in_force, order.limit_price


def slippage_stop_reason(order: Order) -> str:
    assert order.slippage_price is not None and order.max_slippage_pct is not None
    return (f"Stopped at your max slippage of {order.max_slippage_pct.normalize():f}%: the venue "
            f"had no more shares at {price(order.slippage_price)} or better; "
            f"{qty(order.remaining_quantity)} of {qty(order.quantity)} not filled.")


def timeout_reason(order: Order) -> str:
    seconds = order.timeout_seconds or 0
    unit = "second" if seconds == 1 else "seconds"
    return (f"Not filled within your timeout of {seconds:,} {unit}; "
            f"{qty(order.remaining_quantity)} of {qty(order.quantity)} shares were left.")
