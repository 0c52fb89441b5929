"""FR-003: every risk rule, with its message and hint, and the reduce-only trading state."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ordex.domain.errors import Code, Violation
from ordex.domain.risk import TradingState, check_risk, reduces_position, trading_state
from tests.unit.factories import order, state, submit

ONE = Decimal(1)


def codes(found: list[Violation]) -> set[Code]:
    return {v.code for v in found}


def one(found: list[Violation], code: Code) -> Violation:
    matching = [v for v in found if v.code is code]
    assert len(matching) == 1, found
    return matching[0]


def test_within_all_limits_passes() -> None:
    assert check_risk(submit(quantity="10"), Decimal(100), ONE, state()) == []


def test_max_order_notional() -> None:
    v = one(check_risk(submit(quantity="60"), Decimal(100), ONE,
                       state(max_order_notional=Decimal(5000))), Code.MAX_ORDER_NOTIONAL)
    assert v.field == "quantity"
    assert v.message == "Order value $6,000.00 exceeds your per-order limit of $5,000.00."
    assert v.hint == "Reduce the quantity to 50 shares or fewer, or split the order."


def test_max_position_shares_counts_position_and_open_orders() -> None:
    st_ = state(cash="1000000", positions={"AAPL": "700"},
                open_orders=[order(side="buy", quantity="200")], max_position_shares=Decimal(1000))
    v = one(check_risk(submit(quantity="150"), Decimal(100), ONE, st_), Code.MAX_POSITION_SHARES)
    assert v.message == ("This order could take your AAPL position to 1,050 shares; your limit "
                         "is 1,000.")
    assert v.hint == "Reduce the quantity to 100 shares or fewer."


def test_max_position_shares_applies_to_shorts_too() -> None:
    st_ = state(allow_short=True, max_position_shares=Decimal(100))
    v = one(check_risk(submit(side="sell", quantity="150"), Decimal(100), ONE, st_),
            Code.MAX_POSITION_SHARES)
    assert "to 150 shares" in v.message


def test_max_position_notional() -> None:
    st_ = state(positions={"AAPL": "40"}, max_position_notional=Decimal(5000))
    v = one(check_risk(submit(quantity="20"), Decimal(100), ONE, st_), Code.MAX_POSITION_NOTIONAL)
    assert v.message == ("This order could take your AAPL position to $6,000.00; your limit is "
                         "$5,000.00 per symbol.")
    assert v.hint == "Reduce the quantity to 10 shares or fewer."


def test_position_already_at_limit_hints_to_reduce_first() -> None:
    st_ = state(positions={"AAPL": "1000"}, max_position_shares=Decimal(1000))
    v = one(check_risk(submit(quantity="1"), Decimal(100), ONE, st_), Code.MAX_POSITION_SHARES)
    assert v.hint == ("No quantity of AAPL can be accepted now: your position and open orders in "
                      "AAPL are at your limit; reduce the position or cancel open orders in this "
                      "symbol before adding to it.")


def test_max_open_orders() -> None:
    st_ = state(open_orders=[order(symbol="MSFT") for _ in range(3)], max_open_orders=3)
    v = one(check_risk(submit(), Decimal(100), ONE, st_), Code.MAX_OPEN_ORDERS)
    assert v.field is None
    assert v.message == "You have 3 open orders, the most your account allows."
    assert v.hint.startswith("Cancel some open orders")


def test_daily_loss_limit_blocks_orders_that_add_risk() -> None:
    st_ = state(positions={"AAPL": "100"}, daily_pnl="-5200", daily_loss_limit=Decimal(5000))
    assert trading_state(st_) is TradingState.REDUCING
    v = one(check_risk(submit(quantity="10"), Decimal(100), ONE, st_), Code.DAILY_LOSS_LIMIT)
    assert v.message == (
        "Daily loss limit reached: today's P&L is -$5,200.00 against a limit of $5,000.00. Only "
        "orders that reduce a position are accepted for the rest of the day.")
    assert v.hint.startswith("Close or reduce existing positions")


def test_daily_loss_limit_still_lets_a_trader_reduce() -> None:
    st_ = state(positions={"AAPL": "100"}, daily_pnl="-5200", daily_loss_limit=Decimal(5000))
    assert check_risk(submit(side="sell", quantity="100"), Decimal(100), ONE, st_) == []
    assert Code.DAILY_LOSS_LIMIT in codes(
        check_risk(submit(side="sell", quantity="101"), Decimal(100), ONE, st_))


def test_loss_just_under_the_limit_is_still_active() -> None:
    st_ = state(daily_pnl="-4999.99", daily_loss_limit=Decimal(5000))
    assert trading_state(st_) is TradingState.ACTIVE
    assert check_risk(submit(), Decimal(100), ONE, st_) == []


@given(position=st.integers(-500, 500), open_same=st.integers(0, 300),
       quantity=st.integers(1, 600), side=st.sampled_from(["buy", "sell"]))
def test_reducing_orders_never_grow_the_absolute_position(
        position: int, open_same: int, quantity: int, side: str) -> None:
    st_ = state(positions={"AAPL": str(position)},
                open_orders=[order(side=side, quantity=str(open_same))] if open_same else [])
    cmd = submit(side=side, quantity=str(quantity))
    sign = 1 if side == "buy" else -1
    after = position + sign * (open_same + quantity)
    if reduces_position(cmd, st_):
        assert abs(after) <= abs(position)
        assert (after >= 0) == (position >= 0) or after == 0


@given(position=st.integers(0, 2000), quantity=st.integers(1, 2000),
       limit=st.integers(1, 3000))
def test_position_limit_refuses_exactly_what_exceeds_it(position: int, quantity: int,
                                                        limit: int) -> None:
    st_ = state(positions={"AAPL": str(position)}, max_position_shares=Decimal(limit))
    found = check_risk(submit(quantity=str(quantity)), Decimal(1), ONE, st_)
    assert (Code.MAX_POSITION_SHARES in codes(found)) == (position + quantity > limit)
