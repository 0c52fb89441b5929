"""US4 execution limits: max slippage and timeout, as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from ordex.domain.commands import SubmitOrder
from ordex.domain.controls import (
    check_controls,
    deadline,
    slippage_price,
    slippage_stop_reason,
    timeout_reason,
    venue_terms,
)
from ordex.domain.errors import Code
from ordex.domain.orders import Order, OrderType, Side, TimeInForce
from ordex.domain.validation import PricePolicy, reserve_price
from tests.unit.factories import instrument
from tests.unit.factories import order as limit_order
from tests.unit.factories import submit as limit_submit


def submit(**changes: object) -> SubmitOrder:
    """A market buy of 10 AAPL, with ``changes``."""
    base = replace(limit_submit(), type=OrderType.MARKET, limit_price=None)
    return replace(base, **changes)  # type: ignore[arg-type]


def order(**changes: object) -> Order:
    return replace(limit_order(), **changes)  # type: ignore[arg-type]


POLICY = PricePolicy(price_band=Decimal("0.10"), market_buffer=Decimal("0.01"))
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100_000), places=2)
percents = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10), places=2)
ticks = st.sampled_from([Decimal("0.01"), Decimal("0.05"), Decimal("0.25"), Decimal(1)])


def test_no_limits_no_violations() -> None:
    assert check_controls(submit()) == []


def test_slippage_is_for_market_orders_only() -> None:
    [v] = check_controls(submit(type=OrderType.LIMIT, limit_price=Decimal("189"),
                                max_slippage_pct=Decimal("0.5")))
    assert (v.code, v.field) == (Code.SLIPPAGE_NOT_FOR_LIMIT, "max_slippage_pct")
    assert v.message == ("Max slippage applies to market orders; a limit order's price already "
                         "caps it.")


def test_slippage_and_timeout_out_of_range_are_both_reported() -> None:
    found = check_controls(submit(max_slippage_pct=Decimal("12.5"), timeout_seconds=0))
    assert [(v.code, v.field) for v in found] == [(Code.OUT_OF_RANGE, "max_slippage_pct"),
                                                   (Code.OUT_OF_RANGE, "timeout_seconds")]
    assert found[0].message == ("Max slippage must be above 0% and at most 10%; you entered "
                                "12.5%.")
    assert found[1].message == "Timeout must be between 1 and 86,400 seconds; you entered 0."


@given(reference=prices, pct=percents, tick=ticks)
def test_a_buys_worst_price_is_within_the_limit_and_on_the_tick(
        reference: Decimal, pct: Decimal, tick: Decimal) -> None:
    worst = slippage_price(Side.BUY, reference, pct, tick)
    limit = reference * (1 + pct / 100)
    assert worst <= limit < worst + tick
    assert worst % tick == 0


@given(reference=prices, pct=percents, tick=ticks)
def test_a_sells_worst_price_is_within_the_limit_and_on_the_tick(
        reference: Decimal, pct: Decimal, tick: Decimal) -> None:
    worst = slippage_price(Side.SELL, reference, pct, tick)
    limit = reference * (1 - pct / 100)
    assert worst - tick < limit <= worst
    assert worst % tick == 0


def test_a_market_buy_with_slippage_reserves_its_worst_price() -> None:
    cmd = submit(max_slippage_pct=Decimal("0.5"))
    inst = instrument()
    assert reserve_price(cmd, inst, POLICY) == slippage_price(
        Side.BUY, inst.reference_price, Decimal("0.5"), inst.tick_size)


def test_a_slippage_limited_market_order_goes_to_the_venue_as_a_limit_ioc() -> None:
    limited = order(type=OrderType.MARKET, limit_price=None, max_slippage_pct=Decimal("1"),
                    slippage_price=Decimal("191.40"))
    assert venue_terms(limited) == (OrderType.LIMIT, TimeInForce.IOC, Decimal("191.40"))
    plain = order(type=OrderType.MARKET, limit_price=None)
    assert venue_terms(plain) == (OrderType.MARKET, plain.time_in_force, None)


def test_deadline_and_reasons() -> None:
    at = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
    assert deadline(at, None) is None
    assert deadline(at, 30) == at + timedelta(seconds=30)
    timed = order(quantity=Decimal(100), filled_quantity=Decimal(40), timeout_seconds=30)
    assert timeout_reason(timed) == ("Not filled within your timeout of 30 seconds; 60 of 100 "
                                     "shares were left.")
    stopped = order(quantity=Decimal(100), filled_quantity=Decimal(20),
                    max_slippage_pct=Decimal("0.50"), slippage_price=Decimal("190.45"))
    assert slippage_stop_reason(stopped) == (
        "Stopped at your max slippage of 0.5%: the venue had no more shares at $190.45 or "
        "better; 80 of 100 not filled.")
