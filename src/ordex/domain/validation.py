"""Order validation (FR-002): instrument, quantity, prices, buying power and position.

Pure: everything it needs arrives as arguments. It returns every violation, not only the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Protocol

import msgspec

from ordex.domain.accounts import Account
from ordex.domain.commands import SubmitOrder
from ordex.domain.controls import MAX_SLIPPAGE_PCT, check_controls, slippage_price
from ordex.domain.errors import Code, Violation
from ordex.domain.instruments import Instrument, InstrumentStatus
from ordex.domain.money import ZERO, ceil_to_step, floor_to_step, is_multiple, money, price, qty
from ordex.domain.orders import OrderType, Side
from ordex.domain.room import Room, room


class PricePolicy(msgspec.Struct, frozen=True, gc=False):
    """How far a limit price may stray from the reference price, and the market-order collar."""

    price_band: Decimal = Decimal("0.10")
    market_buffer: Decimal = Decimal("0.01")


class Working(Protocol):
    """What the checks need of an open order: an ``Order``, or just these fields of one."""

    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def remaining_quantity(self) -> Decimal: ...
    @property
    def reserve_price(self) -> Decimal: ...


class OpenOrder(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    side: Side
    remaining_quantity: Decimal
    reserve_price: Decimal


class Exposure(msgspec.Struct, frozen=True, gc=False):
    """What an account's open orders add up to: how many, the cash they hold back, and the
    quantity still to trade per symbol and side. Kept as running totals by the engine, so a
    check costs the same whatever the number of open orders."""

    count: int = 0
    reserved: Decimal = ZERO
    quantities: Mapping[tuple[str, Side], Decimal] = msgspec.field(default_factory=dict)

    @classmethod
    def of(cls, open_orders: Iterable[Working]) -> Exposure:
        count, reserved, quantities = 0, ZERO, dict[tuple[str, Side], Decimal]()
        for o in open_orders:
            count += 1
            if o.side is Side.BUY:
                reserved += o.remaining_quantity * o.reserve_price
            key = (o.symbol, o.side)
            quantities[key] = quantities.get(key, ZERO) + o.remaining_quantity
        return cls(count, reserved, quantities)

    def quantity(self, symbol: str, side: Side) -> Decimal:
        return self.quantities.get((symbol, side), ZERO)


class AccountState(msgspec.Struct, frozen=True, gc=False):
    """What validation and risk need to know of an account at the moment of the check; its open
    orders as they are or already added up."""

    account: Account
    positions: Mapping[str, Decimal]
    open_orders: Sequence[Working] | Exposure
    daily_pnl: Decimal = ZERO

    @property
    def exposure(self) -> Exposure:
        o = self.open_orders
        return o if isinstance(o, Exposure) else Exposure.of(o)

    def position(self, symbol: str) -> Decimal:
        return self.positions.get(symbol, ZERO)

    def open_count(self) -> int:
        return self.exposure.count

    def reserved_cash(self) -> Decimal:
        return self.exposure.reserved

    def buying_power(self) -> Decimal:
        return self.account.cash - self.reserved_cash()

    def open_quantity(self, symbol: str, side: Side) -> Decimal:
        return self.exposure.quantity(symbol, side)


def reserved_cash(open_orders: Iterable[Working]) -> Decimal:
    """Cash held back for open buy orders: what is left of each at its reserve price."""
    return Exposure.of(open_orders).reserved


def reserve_price(cmd: SubmitOrder, instrument: Instrument, policy: PricePolicy) -> Decimal:
    """The price an order's cost is estimated at: its limit, or the reference plus the collar."""
    if cmd.type is OrderType.LIMIT and cmd.limit_price is not None:
        return cmd.limit_price
    pct = cmd.max_slippage_pct
    if pct is not None and 0 < pct <= MAX_SLIPPAGE_PCT:
        return slippage_price(cmd.side, instrument.reference_price, pct, instrument.tick_size)
    collar = instrument.reference_price * (1 + policy.market_buffer)
    return collar.quantize(instrument.tick_size) if instrument.tick_size > 0 else collar


def check_instrument(symbol: str, instrument: Instrument | None) -> Violation | None:
    if instrument is None:
        return Violation(
            Code.UNKNOWN_SYMBOL, "symbol", f"Unknown symbol '{symbol}'.",
            "Check the ticker; GET /v1/instruments lists every symbol you can trade.",
        )
    s = instrument.symbol
    match instrument.status:
        case InstrumentStatus.HALTED:
            return Violation(
                Code.SYMBOL_HALTED, "symbol", f"Trading in {s} is halted.",
                "Wait until the halt is lifted, then send the order again.",
            )
        case InstrumentStatus.SUSPENDED:
            return Violation(
                Code.SYMBOL_SUSPENDED, "symbol", f"{s} is suspended from trading.",
                "Orders cannot be placed until the suspension ends; choose another symbol.",
            )
        case InstrumentStatus.DELISTED:
            return Violation(
                Code.SYMBOL_DELISTED, "symbol", f"{s} is delisted and can no longer be traded.",
                "Choose an active symbol; GET /v1/instruments lists them.",
            )
    return None


def check_quantity(cmd: SubmitOrder, instrument: Instrument, fits: Room) -> Violation | None:
    """``fits`` is the room every later check leaves, so the quantities named here pass them."""
    lot = instrument.lot_size
    if cmd.quantity <= 0:
        return Violation(
            Code.QUANTITY_NOT_POSITIVE, "quantity",
            f"Quantity must be greater than zero; you entered {qty(cmd.quantity)}.",
            f"Enter a quantity of at least {qty(lot)}." if fits.quantity > 0 else fits.blocked,
        )
    if not is_multiple(cmd.quantity, lot):
        lower = floor_to_step(cmd.quantity, lot)
        options = [v for v in (lower, lower + lot) if 0 < v <= fits.quantity]
        if options:
            hint = "Use " + " or ".join(qty(v) for v in options) + "."
        elif fits.quantity > 0:
            hint = f"Use {qty(fits.quantity)} or fewer, in multiples of {qty(lot)}."
        else:
            hint = fits.blocked
        return Violation(
            Code.QUANTITY_NOT_LOT_MULTIPLE, "quantity",
            f"Quantity {qty(cmd.quantity)} is not a multiple of {instrument.symbol}'s lot size "
            f"of {qty(lot)}.",
            hint,
        )
    return None


class PriceCheck(msgspec.Struct, frozen=True, gc=False):
    """What is wrong with a limit price, and the price the rest of the order is checked at: the
    price as entered when it is good, else the highest price the hints name (so that any of
    them works with the quantity the other hints name)."""

    violations: list[Violation]
    checked_at: Decimal | None
    brackets_at: Decimal | None


def check_limit_price(
    cmd: SubmitOrder, instrument: Instrument, policy: PricePolicy
) -> PriceCheck:
    ref = instrument.reference_price
    if cmd.type is OrderType.MARKET:
        unit = reserve_price(cmd, instrument, policy)
        if cmd.limit_price is not None:
            return PriceCheck([Violation(
                Code.LIMIT_PRICE_NOT_ALLOWED, "limit_price",
                "A market order cannot carry a limit price.",
                "Remove limit_price, or set type to limit.",
            )], unit, ref)
        return PriceCheck([], unit, ref)
    p = cmd.limit_price
    if p is None:
        return PriceCheck([Violation(
            Code.LIMIT_PRICE_REQUIRED, "limit_price", "A limit order needs a limit price.",
            f"Add limit_price (e.g. {price(ref)}), or send a market order.",
        )], None, None)
    if p <= 0:
        return PriceCheck([_not_positive("limit_price", "Limit price", p)], None, None)
    found: list[Violation] = []
    tick = instrument.tick_size
    low, high = fitting_range(cmd, instrument, policy)
    named: list[Decimal] = []
    if not is_multiple(p, tick):
        named = sorted({_clamp(v, low, high) for v in (floor_to_step(p, tick),
                                                       ceil_to_step(p, tick))})
        found.append(Violation(
            Code.PRICE_OFF_TICK, "limit_price",
            f"Limit price {price(p)} is not a multiple of {instrument.symbol}'s tick size "
            f"of {price(tick)}.",
            "Use " + " or ".join(price(v) for v in named) + ".",
        ))
    band_low, band_high = band(ref, tick, policy)
    if not band_low <= p <= band_high:
        named = [low, high]
        pct = f"{(policy.price_band * 100).normalize():f}%"
        found.append(Violation(
            Code.PRICE_OUT_OF_BAND, "limit_price",
            f"Limit price {price(p)} is more than {pct} away from {instrument.symbol}'s "
            f"reference price of {price(ref)}.",
            f"Use a limit price between {price(low)} and {price(high)}, or check for a typo.",
        ))
    if not found:
        return PriceCheck([], p, p)
    return PriceCheck(found, max(named), _clamp(floor_to_step(p, tick), low, high))


def fitting_range(cmd: SubmitOrder, instrument: Instrument,
                  policy: PricePolicy) -> tuple[Decimal, Decimal]:
    """The band, narrowed to the prices that keep the stop loss and take profit on their right
    sides; the plain band when no price would."""
    tick = instrument.tick_size
    low, high = band(instrument.reference_price, tick, policy)
    below, above = (cmd.stop_loss, cmd.take_profit) if cmd.side is Side.BUY else \
        (cmd.take_profit, cmd.stop_loss)
    narrow_low, narrow_high = low, high
    if below is not None and below > 0:
        narrow_low = max(low, floor_to_step(below, tick) + tick)
    if above is not None and above > 0:
        narrow_high = min(high, ceil_to_step(above, tick) - tick)
    if tick > 0 and narrow_low <= narrow_high:
        return narrow_low, narrow_high
    return low, high


def _clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return min(max(value, low), high)


def band(reference: Decimal, tick: Decimal, policy: PricePolicy) -> tuple[Decimal, Decimal]:
    """The lowest and highest acceptable limit prices, on the tick."""
    low = reference * (1 - policy.price_band)
    high = reference * (1 + policy.price_band)
    if tick > 0:
        low = ceil_to_step(low, tick)
        high = floor_to_step(high, tick)
    return low, high


def check_brackets(cmd: SubmitOrder, order_price: Decimal) -> list[Violation]:
    """Stop loss and take profit must sit on the right side of the order's price."""
    found: list[Violation] = []
    buy = cmd.side is Side.BUY
    side_word = "buy" if buy else "sell"
    if cmd.stop_loss is not None:
        sl = cmd.stop_loss
        if sl <= 0:
            found.append(_not_positive("stop_loss", "Stop loss", sl))
        elif (buy and sl >= order_price) or (not buy and sl <= order_price):
            rel = "below" if buy else "above"
            found.append(Violation(
                Code.STOP_LOSS_WRONG_SIDE, "stop_loss",
                f"Stop loss {price(sl)} must be {rel} the {side_word} price of "
                f"{price(order_price)}.",
                f"Set a stop loss {rel} {price(order_price)}, or leave it out.",
            ))
    if cmd.take_profit is not None:
        tp = cmd.take_profit
        if tp <= 0:
            found.append(_not_positive("take_profit", "Take profit", tp))
        elif (buy and tp <= order_price) or (not buy and tp >= order_price):
            rel = "above" if buy else "below"
            found.append(Violation(
                Code.TAKE_PROFIT_WRONG_SIDE, "take_profit",
                f"Take profit {price(tp)} must be {rel} the {side_word} price of "
                f"{price(order_price)}.",
                f"Set a take profit {rel} {price(order_price)}, or leave it out.",
            ))
    return found


def check_buying_power(
    cmd: SubmitOrder, unit_price: Decimal, lot: Decimal, state: AccountState
) -> Violation | None:
    """A limit order whose price is wrong is costed at the highest price its hints name, and
    the message says so."""
    if cmd.side is not Side.BUY:
        return None
    cost = cmd.quantity * unit_price
    available = state.buying_power()
    if cost <= available:
        return None
    repriced = cmd.type is OrderType.LIMIT and cmd.limit_price not in (None, unit_price)
    at = f" at {price(unit_price)}, the highest limit price you may use" if repriced else ""
    return Violation(
        Code.INSUFFICIENT_FUNDS, "quantity",
        f"Insufficient funds for {money(cost)} order{at}; available: "
        f"{money(max(available, ZERO))}",
        room(cmd.symbol, cmd.side, unit_price, lot, state).hint(", or add funds."),
    )


def check_position(cmd: SubmitOrder, state: AccountState, lot: Decimal,
                   unit_price: Decimal) -> Violation | None:
    if cmd.side is not Side.SELL or state.account.allow_short:
        return None
    held = state.position(cmd.symbol)
    committed = state.open_quantity(cmd.symbol, Side.SELL)
    free = held - committed
    if cmd.quantity <= free:
        return None
    detail = f" ({qty(committed)} already committed to open sell orders)" if committed else ""
    return Violation(
        Code.INSUFFICIENT_POSITION, "quantity",
        f"Cannot sell {qty(cmd.quantity)} {cmd.symbol}: you hold {qty(held)}{detail}, and short "
        "selling is not enabled for this account.",
        room(cmd.symbol, cmd.side, unit_price, lot, state).hint(),
    )


def validate(
    cmd: SubmitOrder, instrument: Instrument | None, state: AccountState, policy: PricePolicy
) -> list[Violation]:
    """Every FR-002 violation of ``cmd``. Quantity and funds are checked at the price the
    price hints name when the entered price is wrong, so one refusal lists every fix."""
    bad = check_instrument(cmd.symbol, instrument)
    if instrument is None:
        return [bad] if bad else []
    found = [bad] if bad else []
    found.extend(check_controls(cmd))
    priced = check_limit_price(cmd, instrument, policy)
    unit = priced.checked_at
    lot = instrument.lot_size
    fits = room(cmd.symbol, cmd.side, unit if unit is not None else instrument.reference_price,
                lot, state)
    quantity_bad = check_quantity(cmd, instrument, fits)
    if quantity_bad:
        found.append(quantity_bad)
    found.extend(priced.violations)
    if priced.brackets_at is not None:
        found.extend(check_brackets(cmd, priced.brackets_at))
    if unit is not None and cmd.quantity > 0:
        for check in (check_buying_power(cmd, unit, lot, state),
                      check_position(cmd, state, lot, unit)):
            if check:
                found.append(check)
    return found


def _not_positive(field_name: str, label: str, value: Decimal) -> Violation:
    return Violation(
        Code.PRICE_NOT_POSITIVE, field_name,
        f"{label} must be greater than zero; you entered {value.normalize():f}.",
        f"Enter a {label.lower()} above $0.00.",
    )
