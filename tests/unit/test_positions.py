"""Positions after fills: average cost, realized P&L, and cash, checked against a ledger."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ordex.domain.orders import Side
from ordex.domain.positions import Position, apply_fill, cash_change

fills = st.lists(st.tuples(st.sampled_from(list(Side)), st.integers(1, 500),
                           st.decimals("1", "500", places=2)), max_size=40)


def test_buying_then_selling_part_realizes_pnl_on_what_is_closed() -> None:
    p = apply_fill(Position("AAPL"), Side.BUY, Decimal(10), Decimal(100))
    p = apply_fill(p, Side.BUY, Decimal(10), Decimal(110))
    assert (p.quantity, p.average_cost) == (20, 105)
    p = apply_fill(p, Side.SELL, Decimal(5), Decimal(120))
    assert (p.quantity, p.average_cost, p.realized_pnl) == (15, 105, 75)


def test_crossing_through_zero_opens_the_other_side_at_the_fill_price() -> None:
    p = apply_fill(Position("AAPL"), Side.BUY, Decimal(10), Decimal(100))
    p = apply_fill(p, Side.SELL, Decimal(15), Decimal(90))
    assert (p.quantity, p.average_cost, p.realized_pnl) == (-5, 90, -100)
    p = apply_fill(p, Side.BUY, Decimal(5), Decimal(80))
    assert (p.quantity, p.average_cost, p.realized_pnl) == (0, 0, -50)


def test_cash_change() -> None:
    fee = Decimal("0.10")
    assert cash_change(Side.BUY, Decimal(10), Decimal("12.5"), fee) == Decimal("-125.10")
    assert cash_change(Side.SELL, Decimal(10), Decimal("12.5"), fee) == Decimal("124.90")


@given(fills, st.decimals("1", "500", places=2))
def test_quantity_is_the_signed_sum_and_pnl_matches_a_ledger(
        trades: list[tuple[Side, int, Decimal]], mark: Decimal) -> None:
    p = Position("X")
    cash = Decimal(0)
    for side, quantity, price in trades:
        p = apply_fill(p, side, Decimal(quantity), price)
        cash += cash_change(side, Decimal(quantity), price, Decimal(0))
    signed = sum((q if s is Side.BUY else -q for s, q, _ in trades), 0)
    assert p.quantity == signed
    # realized + unrealized at any mark equals the ledger's cash plus the position's value, up
    # to the 10 decimal places an average cost is kept to (once per fill)
    unrealized = (mark - p.average_cost) * p.quantity
    slack = Decimal("1e-10") * len(trades) * 500
    assert abs(p.realized_pnl + unrealized - (cash + p.quantity * mark)) <= slack
    if p.quantity == 0:
        assert p.average_cost == 0
