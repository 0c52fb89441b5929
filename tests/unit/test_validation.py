"""FR-002: every validation rule, with the exact words a trader sees."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordex.domain.errors import Code, Violation
from ordex.domain.instruments import InstrumentStatus
from ordex.domain.validation import PricePolicy, band, reserve_price, validate
from tests.unit.factories import instrument, order, state, submit

POLICY = PricePolicy(price_band=Decimal("0.10"), market_buffer=Decimal("0.01"))


def only(found: list[Violation]) -> Violation:
    assert len(found) == 1, found
    return found[0]


def test_a_valid_order_passes() -> None:
    assert validate(submit(), instrument(), state(), POLICY) == []


def test_unknown_symbol() -> None:
    v = only(validate(submit(symbol="ZZZZ"), None, state(), POLICY))
    assert (v.code, v.field) == (Code.UNKNOWN_SYMBOL, "symbol")
    assert v.message == "Unknown symbol 'ZZZZ'."
    assert "GET /v1/instruments" in v.hint


@pytest.mark.parametrize(("status", "code", "message"), [
    (InstrumentStatus.HALTED, Code.SYMBOL_HALTED, "Trading in AAPL is halted."),
    (InstrumentStatus.SUSPENDED, Code.SYMBOL_SUSPENDED, "AAPL is suspended from trading."),
    (InstrumentStatus.DELISTED, Code.SYMBOL_DELISTED,
     "AAPL is delisted and can no longer be traded."),
])
def test_untradable_symbols(status: InstrumentStatus, code: Code, message: str) -> None:
    v = only(validate(submit(), instrument(status=status), state(), POLICY))
    assert (v.code, v.field, v.message) == (code, "symbol", message)
    assert v.hint


@pytest.mark.parametrize("quantity", ["0", "-5"])
def test_quantity_must_be_positive(quantity: str) -> None:
    v = only(validate(submit(quantity=quantity), instrument(), state(), POLICY))
    assert (v.code, v.field) == (Code.QUANTITY_NOT_POSITIVE, "quantity")
    assert v.message == f"Quantity must be greater than zero; you entered {quantity}."
    assert v.hint == "Enter a quantity of at least 1."


def test_quantity_on_the_lot() -> None:
    v = only(validate(submit(quantity="150"), instrument(lot="100"), state(cash="1e9"), POLICY))
    assert v.code is Code.QUANTITY_NOT_LOT_MULTIPLE
    assert v.message == "Quantity 150 is not a multiple of AAPL's lot size of 100."
    assert v.hint == "Use 100 or 200."


def test_market_order_carries_no_limit_price() -> None:
    v = only(validate(submit(type="market", limit_price="100"), instrument(), state(), POLICY))
    assert (v.code, v.field) == (Code.LIMIT_PRICE_NOT_ALLOWED, "limit_price")
    assert v.hint == "Remove limit_price, or set type to limit."


def test_limit_order_needs_a_price() -> None:
    v = only(validate(submit(limit_price=None), instrument(), state(), POLICY))
    assert (v.code, v.message) == (Code.LIMIT_PRICE_REQUIRED, "A limit order needs a limit price.")
    assert v.hint == "Add limit_price (e.g. $100.00), or send a market order."


@pytest.mark.parametrize("price", ["0", "-1"])
def test_limit_price_positive(price: str) -> None:
    v = only(validate(submit(limit_price=price), instrument(), state(), POLICY))
    assert (v.code, v.field) == (Code.PRICE_NOT_POSITIVE, "limit_price")
    assert v.message.startswith("Limit price must be greater than zero")


def test_limit_price_on_the_tick() -> None:
    v = only(validate(submit(limit_price="100.005"), instrument(), state(), POLICY))
    assert v.code is Code.PRICE_OFF_TICK
    assert v.message == "Limit price $100.005 is not a multiple of AAPL's tick size of $0.01."
    assert v.hint == "Use $100.00 or $100.01."


def test_fat_finger_band() -> None:
    v = only(validate(submit(limit_price="1000.00", quantity="1"), instrument(), state(), POLICY))
    assert v.code is Code.PRICE_OUT_OF_BAND
    assert v.message == ("Limit price $1,000.00 is more than 10% away from AAPL's reference "
                         "price of $100.00.")
    assert v.hint == "Use a limit price between $90.00 and $110.00, or check for a typo."


def test_band_edges_are_inside() -> None:
    for price in ("90.00", "110.00"):
        assert validate(submit(limit_price=price, quantity="1"), instrument(), state(),
                        POLICY) == []


@pytest.mark.parametrize(("side", "stop", "message"), [
    ("buy", "101.00", "Stop loss $101.00 must be below the buy price of $100.00."),
    ("sell", "99.00", "Stop loss $99.00 must be above the sell price of $100.00."),
])
def test_stop_loss_side(side: str, stop: str, message: str) -> None:
    st_ = state(positions={"AAPL": "100"})
    v = only(validate(submit(side=side, stop_loss=stop), instrument(), st_, POLICY))
    assert (v.code, v.field, v.message) == (Code.STOP_LOSS_WRONG_SIDE, "stop_loss", message)


@pytest.mark.parametrize(("side", "take", "message"), [
    ("buy", "99.00", "Take profit $99.00 must be above the buy price of $100.00."),
    ("sell", "101.00", "Take profit $101.00 must be below the sell price of $100.00."),
])
def test_take_profit_side(side: str, take: str, message: str) -> None:
    st_ = state(positions={"AAPL": "100"})
    v = only(validate(submit(side=side, take_profit=take), instrument(), st_, POLICY))
    assert (v.code, v.field, v.message) == (Code.TAKE_PROFIT_WRONG_SIDE, "take_profit", message)


def test_brackets_of_a_market_order_use_the_reference_price() -> None:
    v = only(validate(submit(type="market", limit_price=None, stop_loss="100.50"),
                      instrument(), state(), POLICY))
    assert v.code is Code.STOP_LOSS_WRONG_SIDE
    ok = submit(type="market", limit_price=None, stop_loss="95", take_profit="105")
    assert validate(ok, instrument(), state(), POLICY) == []


def test_insufficient_funds_names_cost_available_and_how_much_fits() -> None:
    v = only(validate(submit(quantity="50", limit_price="100.00"), instrument(),
                      state(cash="3200"), POLICY))
    assert (v.code, v.field) == (Code.INSUFFICIENT_FUNDS, "quantity")
    assert v.message == "Insufficient funds for $5,000.00 order; available: $3,200.00"
    assert v.hint == "Reduce the quantity to 32 shares or fewer, or add funds."


def test_buying_power_counts_cash_reserved_by_open_buys() -> None:
    open_buy = order(side="buy", quantity="20", reserve="100", filled="5")
    st_ = state(cash="3200", open_orders=[open_buy, order(side="sell", quantity="10")])
    v = only(validate(submit(quantity="20"), instrument(), st_, POLICY))
    assert v.message == "Insufficient funds for $2,000.00 order; available: $1,700.00"
    assert v.hint == "Reduce the quantity to 17 shares or fewer, or add funds."


def test_market_buy_is_costed_at_reference_plus_collar() -> None:
    cmd = submit(type="market", limit_price=None, quantity="10")
    assert reserve_price(cmd, instrument(ref="100.00"), POLICY) == Decimal("101.00")
    v = only(validate(cmd, instrument(), state(cash="1000"), POLICY))
    assert v.message == "Insufficient funds for $1,010.00 order; available: $1,000.00"


def test_no_funds_at_all_says_how_much_to_add() -> None:
    v = only(validate(submit(quantity="1"), instrument(), state(cash="50"), POLICY))
    assert v.hint == ("No quantity of AAPL can be accepted now: your buying power of $50.00 does "
                      "not cover one lot (1 share at $100.00); add at least $50.00 of funds or "
                      "cancel open buy orders.")


def test_sell_needs_the_position() -> None:
    st_ = state(positions={"AAPL": "50"}, open_orders=[order(side="sell", quantity="10")])
    v = only(validate(submit(side="sell", quantity="100"), instrument(), st_, POLICY))
    assert (v.code, v.field) == (Code.INSUFFICIENT_POSITION, "quantity")
    assert v.message == ("Cannot sell 100 AAPL: you hold 50 (10 already committed to open sell "
                         "orders), and short selling is not enabled for this account.")
    assert v.hint == "Reduce the quantity to 40 shares or fewer."


def test_short_selling_when_the_account_allows_it() -> None:
    st_ = state(allow_short=True)
    assert validate(submit(side="sell", quantity="10"), instrument(), st_, POLICY) == []


def test_every_failure_is_listed_not_only_the_first() -> None:
    found = validate(submit(quantity="0", limit_price="100.005", type="limit"),
                     instrument(), state(), POLICY)
    assert {v.code for v in found} == {Code.QUANTITY_NOT_POSITIVE, Code.PRICE_OFF_TICK}


@given(ref=st.decimals("0.05", "5000", places=2), band_pct=st.decimals("0.01", "0.5", places=2))
def test_band_is_on_the_tick_and_inside_the_percentage(ref: Decimal, band_pct: Decimal) -> None:
    low, high = band(ref, Decimal("0.01"), PricePolicy(price_band=band_pct))
    assert low % Decimal("0.01") == 0 and high % Decimal("0.01") == 0
    assert ref * (1 - band_pct) <= low <= ref <= high <= ref * (1 + band_pct)
