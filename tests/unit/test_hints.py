"""A hint followed literally gets the order accepted: the quantity or price a refusal names
passes every check that runs after the one that named it (validation and risk together)."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from ordex.domain.accounts import Account, RiskLimits, Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Code, Violation
from ordex.domain.instruments import Instrument, InstrumentStatus
from ordex.domain.orders import OrderType, Side
from ordex.domain.risk import check_order
from ordex.domain.validation import AccountState, OpenOrder, PricePolicy
from tests.unit.factories import TRADER, instrument, state, submit

POLICY = PricePolicy()
REDUCE = re.compile(r"^Reduce the quantity to ([\d,.]+) shares or fewer")
AT_LEAST = re.compile(r"^Enter a quantity of at least ([\d,.]+)\.")
USE_QTY = re.compile(r"^Use ([\d,.]+)(?: or ([\d,.]+))?(?: or fewer)?[.,]")
USE_PRICE = re.compile(r"^Use \$([\d,.]+)(?: or \$([\d,.]+))?\.")
BETWEEN = re.compile(r"^Use a limit price between \$([\d,.]+) and \$([\d,.]+)")
NONE_FITS = "No quantity of "


def number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def quantities_named(v: Violation) -> list[Decimal]:
    for pattern in (REDUCE, AT_LEAST, USE_QTY):
        m = pattern.match(v.hint)
        if m and v.field == "quantity":
            return [number(g) for g in m.groups() if g]
    return []


def prices_named(v: Violation) -> list[Decimal]:
    if v.field != "limit_price":
        return []
    for pattern in (USE_PRICE, BETWEEN):
        m = pattern.match(v.hint)
        if m:
            return [number(g) for g in m.groups() if g]
    return []


NAMES_A_NUMBER = {
    Code.QUANTITY_NOT_POSITIVE, Code.QUANTITY_NOT_LOT_MULTIPLE, Code.PRICE_OFF_TICK,
    Code.PRICE_OUT_OF_BAND, Code.INSUFFICIENT_FUNDS, Code.INSUFFICIENT_POSITION,
    Code.MAX_ORDER_NOTIONAL, Code.MAX_POSITION_SHARES, Code.MAX_POSITION_NOTIONAL,
}


# --- the concrete case from the issue ---------------------------------------------------------

def test_funds_hint_on_a_large_account_respects_the_max_order_notional() -> None:
    """$10M of cash at $193.83 buys 51,591 shares, but one order may be worth $1M: 5,159."""
    big = state(cash="10000000")
    aapl = instrument(ref="193.83")
    found = check_order(submit(quantity="60000", limit_price="193.83"), aapl, big, POLICY)
    assert {v.code for v in found} == {Code.INSUFFICIENT_FUNDS, Code.MAX_ORDER_NOTIONAL,
                                       Code.MAX_POSITION_NOTIONAL}
    for v in found:
        assert v.hint.startswith("Reduce the quantity to 5,159 shares or fewer"), v.hint
    assert check_order(submit(quantity="5159", limit_price="193.83"), aapl, big, POLICY) == []
    assert check_order(submit(quantity="5160", limit_price="193.83"), aapl, big, POLICY)


def test_lot_hint_names_only_quantities_the_limits_allow() -> None:
    found = check_order(submit(quantity="150"), instrument(lot="100"), state(cash="12000"),
                        POLICY)
    lot = next(v for v in found if v.code is Code.QUANTITY_NOT_LOT_MULTIPLE)
    assert lot.hint == "Use 100."
    assert check_order(submit(quantity="100"), instrument(lot="100"), state(cash="12000"),
                       POLICY) == []


def test_tick_hint_off_the_band_names_a_price_inside_it() -> None:
    found = check_order(submit(limit_price="110.015"), instrument(), state(), POLICY)
    tick = next(v for v in found if v.code is Code.PRICE_OFF_TICK)
    assert tick.hint == "Use $110.00."


def test_tick_hint_keeps_the_stop_loss_valid() -> None:
    cmd = submit(limit_price="100.005", stop_loss="100.00")
    found = check_order(cmd, instrument(), state(), POLICY)
    assert [(v.code, v.hint) for v in found] == [(Code.PRICE_OFF_TICK, "Use $100.01.")]


def test_an_order_priced_outside_the_band_is_costed_at_the_price_the_hint_names() -> None:
    found = check_order(submit(quantity="100", limit_price="150.00"), instrument(),
                        state(cash="10000"), POLICY)
    by_code = {v.code: v for v in found}
    assert by_code[Code.PRICE_OUT_OF_BAND].hint.startswith(
        "Use a limit price between $90.00 and $110.00")
    funds = by_code[Code.INSUFFICIENT_FUNDS]
    assert funds.message == ("Insufficient funds for $11,000.00 order at $110.00, the highest "
                             "limit price you may use; available: $10,000.00")
    assert funds.hint == "Reduce the quantity to 90 shares or fewer, or add funds."
    assert check_order(submit(quantity="90", limit_price="110.00"), instrument(),
                       state(cash="10000"), POLICY) == []


def test_selling_through_a_long_position_counts_the_shares_it_closes() -> None:
    """Long 1,000 with a 1,000-share limit: selling 2,000 ends short 1,000, within the limit."""
    st_ = state(positions={"AAPL": "1000"}, allow_short=True, max_position_shares=Decimal(1000))
    v = check_order(submit(side="sell", quantity="2500"), instrument(), st_, POLICY)
    assert [x.hint for x in v] == ["Reduce the quantity to 2,000 shares or fewer."]
    assert check_order(submit(side="sell", quantity="2000"), instrument(), st_, POLICY) == []


def test_when_no_quantity_fits_the_hint_says_so() -> None:
    st_ = state(cash="1000000", positions={"AAPL": "1000"}, max_position_shares=Decimal(1000))
    found = check_order(submit(quantity="10"), instrument(), st_, POLICY)
    assert [v.code for v in found] == [Code.MAX_POSITION_SHARES]
    assert found[0].hint.startswith("No quantity of AAPL can be accepted now: ")


# --- the property ------------------------------------------------------------------------------

TICKS = st.sampled_from(["0.01", "0.05", "0.0001", "1"])
LOTS = st.sampled_from(["1", "10", "100", "0.5"])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[SubmitOrder, Instrument, AccountState]:
    tick = Decimal(draw(TICKS))
    lot = Decimal(draw(LOTS))
    ref = draw(st.integers(1, 500_000)) * tick if tick < 1 else Decimal(draw(st.integers(1, 900)))
    ref = max(ref, tick * 20)
    inst = Instrument("AAPL", "Apple", tick, lot, InstrumentStatus.ACTIVE, ref)
    limits = RiskLimits(
        max_position_shares=Decimal(draw(st.integers(0, 50_000))),
        max_position_notional=Decimal(draw(st.integers(0, 10_000_000))),
        max_order_notional=Decimal(draw(st.integers(0, 2_000_000))),
        daily_loss_limit=Decimal(50_000),
        max_open_orders=draw(st.integers(1, 8)),
    )
    account = Account(TRADER, "t", Role.TRADER, Decimal(draw(st.integers(0, 20_000_000))),
                      allow_short=draw(st.booleans()), limits=limits)
    open_orders = [
        OpenOrder(draw(st.sampled_from(["AAPL", "MSFT"])), draw(st.sampled_from(list(Side))),
                  draw(st.integers(1, 20_000)) * lot, ref)
        for _ in range(draw(st.integers(0, 4)))
    ]
    position = draw(st.integers(-30_000, 30_000)) * lot
    if not account.allow_short:
        position = abs(position)
    pnl = draw(st.sampled_from([Decimal(0), Decimal(-60_000)]))
    st_ = AccountState(account, {"AAPL": position} if position else {}, open_orders, pnl)

    order_type = draw(st.sampled_from(list(OrderType)))
    limit_price = None
    if order_type is OrderType.LIMIT:
        offset = draw(st.integers(-30, 30)) * ref / 200
        on_tick = draw(st.booleans())
        limit_price = (ref + offset).quantize(tick if on_tick else tick / 10)
    quantity = draw(st.one_of(st.integers(1, 200_000).map(lambda n: n * lot),
                              st.decimals("0.1", "100000", places=1)))
    cmd = SubmitOrder(TRADER, "AAPL", draw(st.sampled_from(list(Side))), order_type,
                      Decimal(quantity), limit_price=limit_price)
    return cmd, inst, st_


def follow(cmd: SubmitOrder, found: list[Violation]) -> list[SubmitOrder]:
    """Every order a trader could send by doing what the hints say, literally."""
    quantities = {q for v in found for q in quantities_named(v)} or {cmd.quantity}
    prices = {p for v in found for p in prices_named(v)} or {cmd.limit_price}
    return [replace(cmd, quantity=q, limit_price=p) for q in quantities for p in prices]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_a_hint_followed_literally_is_accepted(
        scenario: tuple[SubmitOrder, Instrument, AccountState]) -> None:
    cmd, inst, st_ = scenario
    found = check_order(cmd, inst, st_, POLICY)
    if not found:
        return
    by_field: dict[str | None, set[tuple[Decimal, ...]]] = {}
    for v in found:
        named = tuple(quantities_named(v) or prices_named(v))
        if named and v.field == "quantity":
            by_field.setdefault(v.field, set()).add(named)
    assert len(by_field.get("quantity", set())) <= 1, found  # one figure, whichever check spoke

    if any(v.hint.startswith(NONE_FITS) for v in found):
        # said of the price the order was checked at: the highest price the hints name
        highest = max((a.limit_price for a in follow(cmd, found)), default=None)
        smallest = replace(cmd, quantity=inst.lot_size, limit_price=highest)
        assert check_order(smallest, inst, st_, POLICY), ("a hint said no quantity fits", found)
        return
    for again in follow(cmd, found):
        left = check_order(again, inst, st_, POLICY)
        assert not {v.code for v in left} & NAMES_A_NUMBER, (again, found, left)
        assert {v.code for v in left} <= {v.code for v in found}, (again, found, left)
