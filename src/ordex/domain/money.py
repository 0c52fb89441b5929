"""Decimal helpers for money and quantities: exact arithmetic and trader-facing formatting."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")


def money(amount: Decimal) -> str:
    """Format an amount in dollars, e.g. ``$5,000.00`` or ``-$12.50``."""
    q = amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
    sign = "-" if q < 0 else ""
    return f"{sign}${abs(q):,.2f}"


def qty(amount: Decimal) -> str:
    """Format a quantity without trailing zeros, e.g. ``100`` or ``0.5``."""
    if amount == amount.to_integral_value():
        return f"{amount.quantize(Decimal(1)):,}"
    return f"{amount.normalize():,f}"


def price(amount: Decimal) -> str:
    """Format a price: at least two decimals, more when the price has them."""
    q = amount.normalize()
    exponent = q.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"${q:,.{places}f}"


def floor_to_step(amount: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` not above ``amount``."""
    if step <= 0:
        return amount
    return (amount / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to_step(amount: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` not below ``amount``."""
    if step <= 0:
        return amount
    return (amount / step).to_integral_value(rounding=ROUND_CEILING) * step


AVERAGE_SCALE = Decimal("1e-10")


def average(amount: Decimal) -> Decimal:
    """An average price or cost, kept to 10 decimal places (what every store holds exactly)."""
    return amount.quantize(AVERAGE_SCALE, rounding=ROUND_HALF_EVEN)


def tidy(amount: Decimal) -> Decimal:
    """The same value without trailing zeros: ``158660.0`` becomes ``158660``, ``1.50`` ``1.5``."""
    if amount == amount.to_integral_value():
        return amount.quantize(Decimal(1))
    return amount.normalize()


def is_multiple(amount: Decimal, step: Decimal) -> bool:
    return step <= 0 or amount % step == 0


# Presentation: what responses show. Stored values keep full precision; every rounding here is
# half to even (banker's rounding), the same as ``money`` uses for text.
SHOWN_AVERAGE = Decimal("0.0001")


def in_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def on_tick(amount: Decimal, tick: Decimal) -> Decimal:
    """The nearest multiple of ``tick`` (a price as the instrument quotes it)."""
    if tick <= 0:
        return amount
    return (amount / tick).to_integral_value(rounding=ROUND_HALF_EVEN) * tick


def shown_average(amount: Decimal) -> Decimal:
    """An average price or cost as shown: four decimals."""
    return amount.quantize(SHOWN_AVERAGE, rounding=ROUND_HALF_EVEN)
