"""Property tests for the buying-power arithmetic."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from ordex.domain.errors import Code
from ordex.domain.validation import PricePolicy, check_buying_power, reserved_cash
from tests.unit.factories import instrument, order, state, submit

money = st.decimals("0", "1000000", places=2)
prices = st.decimals("0.01", "2000", places=2)
quantities = st.integers(1, 10_000)


@st.composite
def open_orders(draw: st.DrawFn) -> list:  # type: ignore[type-arg]
    made = []
    for _ in range(draw(st.integers(0, 6))):
        qty = draw(quantities)
        made.append(order(side=draw(st.sampled_from(["buy", "sell"])), quantity=str(qty),
                          reserve=str(draw(prices)), filled=str(draw(st.integers(0, qty)))))
    return made


@given(open_orders())
def test_reserved_cash_is_remaining_buy_quantity_times_reserve_price(orders: list) -> None:  # type: ignore[type-arg]
    expected = sum((o.remaining_quantity * o.reserve_price for o in orders
                    if o.side.value == "buy"), Decimal(0))
    assert reserved_cash(orders) == expected
    assert reserved_cash(orders) >= 0


@given(cash=money, price=prices, quantity=quantities, orders=open_orders())
def test_an_order_is_refused_exactly_when_it_costs_more_than_buying_power(
        cash: Decimal, price: Decimal, quantity: int, orders: list) -> None:  # type: ignore[type-arg]
    st_ = state(cash=str(cash), open_orders=orders)
    cmd = submit(quantity=str(quantity), limit_price=str(price))
    refused = check_buying_power(cmd, price, Decimal(1), st_)
    available = cash - reserved_cash(orders)
    assert (refused is not None) == (quantity * price > available)


@given(cash=money, price=prices, quantity=quantities)
def test_the_hinted_quantity_fits_and_one_more_lot_does_not(
        cash: Decimal, price: Decimal, quantity: int) -> None:
    unlimited = Decimal("1e12")
    st_ = state(cash=str(cash), max_position_shares=unlimited, max_position_notional=unlimited,
                max_order_notional=unlimited)
    refused = check_buying_power(submit(quantity=str(quantity), limit_price=str(price)), price,
                                 Decimal(1), st_)
    assume(refused is not None)
    assert refused is not None and refused.code is Code.INSUFFICIENT_FUNDS
    if refused.hint.startswith("Reduce the quantity to "):
        hinted = Decimal(refused.hint.split()[4].replace(",", ""))
        assert hinted * price <= cash < (hinted + 1) * price
        fits = check_buying_power(submit(quantity=str(hinted), limit_price=str(price)), price,
                                  Decimal(1), st_)
        assert fits is None
    else:
        assert cash < price


@given(cash=money, quantity=quantities)
def test_sells_never_need_cash(cash: Decimal, quantity: int) -> None:
    cmd = submit(side="sell", quantity=str(quantity))
    assert check_buying_power(cmd, Decimal(100), Decimal(1), state(cash=str(cash))) is None


def test_policy_defaults() -> None:
    assert PricePolicy().price_band == Decimal("0.10")
    assert instrument().lot_size == 1
