"""The simulated exchange's order book and matching: price-time priority, walking levels,
cancels, the time-in-force outcomes, and a book that is never crossed."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordex.domain.money import ZERO
from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.venues.simulated.book import OrderBook, Resting
from ordex.venues.simulated.matching import Outcome, execute, match

BUY, SELL = Side.BUY, Side.SELL
D = Decimal


def rest(book: OrderBook, oid: str, side: Side, price: str, quantity: str,
         synthetic: bool = False) -> Resting:
    order = Resting(oid, side, D(price), D(quantity), synthetic)
    book.add(order)
    return order


def ladder() -> OrderBook:
    """Asks 10.01 x 100 (a1 then a2 x 50), 10.02 x 100, 10.03 x 100; bids 9.99, 9.98 x 100."""
    book = OrderBook("X")
    rest(book, "a1", SELL, "10.01", "100")
    rest(book, "a2", SELL, "10.01", "50")
    rest(book, "a3", SELL, "10.02", "100")
    rest(book, "a4", SELL, "10.03", "100", synthetic=True)
    rest(book, "b1", BUY, "9.99", "100")
    rest(book, "b2", BUY, "9.98", "100")
    return book


def test_best_prices_and_levels_best_first() -> None:
    book = ladder()
    assert (book.best_bid(), book.best_ask()) == (D("9.99"), D("10.01"))
    assert [lv.price for lv in book.asks.levels()] == [D("10.01"), D("10.02"), D("10.03")]
    assert [lv.price for lv in book.bids.levels()] == [D("9.99"), D("9.98")]
    assert book.asks.best() is not None and book.asks.best().total == D(150)
    assert not book.is_crossed()


def test_better_price_first_then_older_first() -> None:
    book = ladder()
    rest(book, "a0", SELL, "10.00", "10")
    matches = match(book, BUY, D(200), None)
    assert [(m.maker_id, m.quantity, m.price) for m in matches] == [
        ("a0", D(10), D("10.00")), ("a1", D(100), D("10.01")), ("a2", D(50), D("10.01")),
        ("a3", D(40), D("10.02"))]
    assert book.get("a3") is not None and book.get("a3").quantity == D(60)
    assert "a1" not in book and "a2" not in book
    assert book.best_ask() == D("10.02")


def test_partial_take_keeps_time_priority() -> None:
    book = ladder()
    match(book, BUY, D(30), None)
    assert book.get("a1").quantity == D(70)  # type: ignore[union-attr]
    assert [m.maker_id for m in match(book, BUY, D(80), None)] == ["a1", "a2"]


def test_limit_stops_matching_at_the_price() -> None:
    book = ladder()
    matches = match(book, BUY, D(1000), D("10.01"))
    assert sum(m.quantity for m in matches) == D(150)
    assert book.best_ask() == D("10.02")
    sells = match(book, SELL, D(150), D("9.99"))
    assert [(m.maker_id, m.quantity) for m in sells] == [("b1", D(100))]
    assert book.best_bid() == D("9.98")


def test_synthetic_flag_travels_with_the_match() -> None:
    book = ladder()
    matches = match(book, BUY, D(300), None)
    assert [m.maker_synthetic for m in matches] == [False, False, False, True]


def test_cancel_removes_the_order_and_an_empty_level() -> None:
    book = ladder()
    assert book.remove("a1") is not None
    assert book.asks.best().total == D(50)  # type: ignore[union-attr]
    book.remove("a2")
    assert book.best_ask() == D("10.02")
    assert book.remove("a2") is None
    assert len(book.asks) == 2 and len(book) == 4


def test_add_refuses_crossing_duplicate_and_empty_orders() -> None:
    book = ladder()
    with pytest.raises(ValueError, match="cross"):
        rest(book, "x", BUY, "10.01", "1")
    with pytest.raises(ValueError, match="cross"):
        rest(book, "x", SELL, "9.99", "1")
    with pytest.raises(ValueError, match="already"):
        rest(book, "a1", SELL, "10.05", "1")
    with pytest.raises(ValueError):
        rest(book, "y", SELL, "10.05", "0")
    assert not book.is_crossed()


def test_same_price_with_different_exponent_is_one_level() -> None:
    book = OrderBook("X")
    rest(book, "a", SELL, "10.5", "1")
    rest(book, "b", SELL, "10.50", "2")
    assert len(book.asks) == 1 and book.asks.best().total == D(3)  # type: ignore[union-attr]
    # each maker fills at its own price
    assert [m.price for m in match(book, BUY, D(3), None)] == [D("10.5"), D("10.50")]


def test_available_counts_up_to_the_limit_and_stops_when_enough() -> None:
    book = ladder()
    assert book.available(BUY, D("10.02")) == D(250)
    assert book.available(BUY, None) == D(350)
    assert book.available(BUY, D("10.00")) == ZERO
    assert book.available(BUY, None, wanted=D(120)) == D(150)
    assert book.available(SELL, D("9.98")) == D(200)


def test_remove_synthetic_leaves_client_orders() -> None:
    book = ladder()
    rest(book, "s1", BUY, "9.97", "10", synthetic=True)
    book.remove_synthetic()
    assert "a4" not in book and "s1" not in book and len(book) == 5


def test_snapshot_shows_synthetic_and_client_sizes() -> None:
    book = ladder()
    rest(book, "s1", SELL, "10.02", "40", synthetic=True)
    level = book.snapshot()["asks"][1]
    assert level == {"price": "10.02", "size": "140", "synthetic_size": "40",
                     "client_size": "100",
                     "client_orders": [{"venue_order_id": "a3", "quantity": "100"}]}


# ---- execute: what the time in force decides -----------------------------------------------------

def test_market_order_remainder_is_cancelled() -> None:
    book = ladder()
    done = execute(book, BUY, OrderType.MARKET, TimeInForce.DAY, D(400), None)
    assert done.outcome is Outcome.CANCEL and done.filled == D(350) and done.remaining == D(50)
    assert done.reason is not None and "no more liquidity" in done.reason
    assert book.best_ask() is None


def test_limit_day_rests_and_ioc_cancels() -> None:
    book = ladder()
    day = execute(book, BUY, OrderType.LIMIT, TimeInForce.DAY, D(200), D("10.01"))
    assert (day.outcome, day.filled, day.remaining) == (Outcome.REST, D(150), D(50))
    book = ladder()
    ioc = execute(book, BUY, OrderType.LIMIT, TimeInForce.IOC, D(200), D("10.01"))
    assert (ioc.outcome, ioc.filled) == (Outcome.CANCEL, D(150))
    assert ioc.reason is not None and "immediate or cancel" in ioc.reason


def test_fill_or_kill_is_all_or_nothing() -> None:
    book = ladder()
    killed = execute(book, BUY, OrderType.LIMIT, TimeInForce.FOK, D(251), D("10.02"))
    assert killed.outcome is Outcome.KILL and killed.matches == ()
    assert killed.reason == "fill or kill: only 250 of 251 available at 10.02 or better"
    assert book.available(BUY, None) == D(350)  # nothing taken
    done = execute(book, BUY, OrderType.LIMIT, TimeInForce.FOK, D(250), D("10.02"))
    assert done.outcome is Outcome.FILLED and done.filled == D(250)
    market_fok = execute(book, BUY, OrderType.MARKET, TimeInForce.FOK, D(101), None)
    assert market_fok.outcome is Outcome.KILL


def test_limit_that_fills_completely() -> None:
    book = ladder()
    done = execute(book, SELL, OrderType.LIMIT, TimeInForce.GTC, D(150), D("9.98"))
    assert (done.outcome, done.filled, done.remaining) == (Outcome.FILLED, D(150), ZERO)


# ---- properties and size -------------------------------------------------------------------------

actions = st.lists(st.tuples(
    st.sampled_from(["add", "match", "cancel"]), st.sampled_from([BUY, SELL]),
    st.integers(-10, 10), st.integers(1, 300), st.booleans()), max_size=60)


@settings(max_examples=150, deadline=None)
@given(actions)
def test_book_never_crossed_and_levels_add_up(
        steps: list[tuple[str, Side, int, int, bool]]) -> None:
    book = OrderBook("X")
    ids: list[str] = []
    taken = ZERO
    for n, (action, side, offset, size, synthetic) in enumerate(steps):
        price = D("100.00") + offset * D("0.01")
        if action == "add":
            before = book.available(side, price)
            matches = match(book, side, D(size), price)
            taken += sum((m.quantity for m in matches), ZERO)
            assert sum((m.quantity for m in matches), ZERO) == min(before, D(size))
            left = D(size) - sum((m.quantity for m in matches), ZERO)
            if left:
                book.add(Resting(f"o{n}", side, price, left, synthetic))
                ids.append(f"o{n}")
        elif action == "match":
            taken += sum((m.quantity for m in match(book, side, D(size), None)), ZERO)
        elif ids:
            book.remove(ids[offset % len(ids)])
        assert not book.is_crossed()
        for book_side in (book.bids, book.asks):
            for level in book_side.levels():
                assert level.total == sum((o.quantity for o in level), ZERO) > 0
                assert all(o.price == level.price and o.side is book_side.side for o in level)
        assert len(book) == sum(len(lv) for s in (book.bids, book.asks) for lv in s.levels())


def test_thousands_of_orders_stay_fast() -> None:
    book = OrderBook("X")
    started = time.perf_counter()
    for n in range(5000):
        rest(book, f"s{n}", SELL, str(D("100.00") + (n % 500) * D("0.01")), "10")
        rest(book, f"b{n}", BUY, str(D("99.99") - (n % 500) * D("0.01")), "10")
    for n in range(0, 5000, 2):
        book.remove(f"s{n}")
    matches = match(book, BUY, D(20_000), None)
    elapsed = time.perf_counter() - started
    assert sum(m.quantity for m in matches) == D(20_000)
    assert not book.is_crossed()
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
