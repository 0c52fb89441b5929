"""SimulatedExchange: order handling, rejects, halts, fees, the market process and faults."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.venues.base import NewOrder, ReportKind, VenueOrderState
from ordex.venues.simulated import MAKER, TAKER, FeeSchedule, MarketConfig, SimulatedExchange
from tests.unit.test_sim_support import (
    INSTRUMENTS,
    QUIET,
    T0,
    ManualClock,
    exchange,
    fills,
    kinds,
    limit,
    market,
)

BUY, SELL = Side.BUY, Side.SELL
D = Decimal
ACK, FILL, CANCELLED, REJECTED = (ReportKind.ACK, ReportKind.FILL, ReportKind.CANCELLED,
                                  ReportKind.REJECTED)


def test_synthetic_liquidity_around_the_reference_price() -> None:
    ex = exchange()
    quote = ex.quote("AAPL")
    assert (quote.bid, quote.ask, quote.last, quote.halted) == (
        D("99.99"), D("100.01"), D("100.00"), False)
    book = ex.snapshot()["books"]["AAPL"]  # type: ignore[index]
    assert [lv["price"] for lv in book["asks"]] == ["100.01", "100.02", "100.03"]
    assert [lv["price"] for lv in book["bids"]] == ["99.99", "99.98", "99.97"]
    assert {lv["synthetic_size"] for lv in book["asks"] + book["bids"]} == {"100"}


# ---- submit --------------------------------------------------------------------------------------

def test_market_order_walks_the_book() -> None:
    ex = exchange()
    reports = ex.submit(market("c1", BUY, "250"))
    assert kinds(reports) == [ACK, FILL, FILL, FILL]
    ack = reports[0]
    assert ack.venue_order_id == "SIM-o1" and ack.leaves_quantity == D(250)
    assert ack.timestamp == T0 and ack.timestamp.tzinfo is not None
    assert fills(reports) == [(D(100), D("100.01")), (D(100), D("100.02")), (D(50), D("100.03"))]
    assert [(r.cum_quantity, r.leaves_quantity) for r in reports[1:]] == [
        (D(100), D(150)), (D(200), D(50)), (D(250), D(0))]
    assert {r.liquidity for r in reports[1:]} == {TAKER}
    assert all(r.venue_order_id == "SIM-o1" and r.venue == "SIM" for r in reports)
    assert ex.quote("AAPL").last == D("100.03")
    order = ex.query("c1")
    assert order is not None and order.state is VenueOrderState.FILLED
    assert order.filled_quantity == D(250)
    assert order.average_price == (D(100) * D("100.01") + D(100) * D("100.02")
                                   + D(50) * D("100.03")) / D(250)


def test_market_order_short_of_depth_is_cancelled_for_the_rest() -> None:
    ex = exchange()
    reports = ex.submit(market("c1", SELL, "400"))
    assert kinds(reports) == [ACK, FILL, FILL, FILL, CANCELLED]
    last = reports[-1]
    assert last.cum_quantity == D(300) and last.leaves_quantity == 0
    assert last.reason is not None and "no more liquidity" in last.reason
    assert ex.query("c1").state is VenueOrderState.CANCELLED  # type: ignore[union-attr]
    assert ex.quote("AAPL").bid is None


def test_market_order_with_no_liquidity_at_all() -> None:
    ex = exchange()
    ex.set_liquidity("AAPL", depth_levels=0)
    assert ex.quote("AAPL").ask is None
    reports = ex.submit(market("c1", BUY, "10"))
    assert kinds(reports) == [ACK, CANCELLED]
    assert reports[1].cum_quantity == 0 and "no more liquidity" in (reports[1].reason or "")


def test_limit_day_rests_the_remainder() -> None:
    ex = exchange()
    reports = ex.submit(limit("c1", BUY, "150", "100.01"))
    assert kinds(reports) == [ACK, FILL]
    assert reports[1].leaves_quantity == D(50)
    assert ex.quote("AAPL").bid == D("100.01")
    [open_order] = ex.open_orders()
    assert (open_order.client_order_id, open_order.filled_quantity) == ("c1", D(100))
    assert open_order.state is VenueOrderState.OPEN and open_order.limit_price == D("100.01")


def test_limit_gtc_not_marketable_just_rests() -> None:
    ex = exchange()
    reports = ex.submit(limit("c1", SELL, "10", "100.00", tif=TimeInForce.GTC))
    assert kinds(reports) == [ACK]
    assert ex.quote("AAPL").ask == D("100.00")


def test_ioc_cancels_the_remainder() -> None:
    ex = exchange()
    reports = ex.submit(limit("c1", BUY, "150", "100.01", tif=TimeInForce.IOC))
    assert kinds(reports) == [ACK, FILL, CANCELLED]
    assert "immediate or cancel" in (reports[-1].reason or "")
    assert ex.open_orders() == [] and ex.quote("AAPL").bid == D("99.99")


def test_fok_short_is_a_single_reject_without_fills() -> None:
    ex = exchange()
    reports = ex.submit(limit("c1", BUY, "301", "100.03", tif=TimeInForce.FOK))
    assert kinds(reports) == [REJECTED]
    assert reports[0].reason == "fill or kill: only 300 of 301 available at 100.03 or better"
    assert reports[0].venue_order_id == "SIM-o1"
    assert ex.quote("AAPL").ask == D("100.01") and ex.fills_since(T0) == []
    done = ex.submit(limit("c2", BUY, "300", "100.03", tif=TimeInForce.FOK))
    assert kinds(done) == [ACK, FILL, FILL, FILL] and done[-1].leaves_quantity == 0


@pytest.mark.parametrize(("order", "reason"), [
    (limit("x", BUY, "10", "1.00", symbol="NOPE"), "unknown symbol NOPE at SIM"),
    (limit("x", BUY, "1.5", "100.00"), "quantity 1.5 is not a multiple of the lot size 1"),
    (limit("x", BUY, "15", "50.00", symbol="LOTS"),
     "quantity 15 is not a multiple of the lot size 10"),
    (limit("x", BUY, "10", "100.005"),
     "limit price 100.005 is not a multiple of the tick size 0.01"),
    (limit("x", BUY, "10", "50.01", symbol="LOTS"),
     "limit price 50.01 is not a multiple of the tick size 0.05"),
    (limit("x", BUY, "0", "100.00"), "quantity must be a positive number, got 0"),
    (limit("x", BUY, "10", "-1.00"), "limit price must be a positive number, got -1.00"),
    (limit("x", BUY, "NaN", "100.00"), "quantity must be a positive number, got NaN"),
    (NewOrder("x", "AAPL", BUY, OrderType.LIMIT, D(10), TimeInForce.DAY),
     "a limit order needs a limit price"),
])
def test_plain_words_rejects(order: NewOrder, reason: str) -> None:
    ex = exchange()
    reports = ex.submit(order)
    assert kinds(reports) == [REJECTED]
    assert reports[0].reason == reason
    assert reports[0].cum_quantity == 0 and reports[0].leaves_quantity == 0
    stored = ex.query("x")
    assert stored is not None and stored.state is VenueOrderState.REJECTED
    assert stored.reason == reason


@pytest.mark.parametrize("first", [
    market("dup", BUY, "10"),  # filled
    limit("dup", BUY, "10", "99.00"),  # open
    limit("dup", BUY, "10", "99.001"),  # rejected
])
def test_duplicate_client_order_id_is_rejected_and_creates_nothing(first: NewOrder) -> None:
    ex = exchange()
    ex.submit(first)
    before = ex.query("dup")
    book_before = ex.snapshot()["books"]
    reports = ex.submit(limit("dup", SELL, "5", "100.00"))
    assert kinds(reports) == [REJECTED]
    assert "duplicate client order id" in (reports[0].reason or "")
    assert reports[0].venue_order_id is None
    assert ex.query("dup") == before
    assert len(ex.orders()) == 1 and ex.snapshot()["books"] == book_before
    assert ex.duplicates_refused == 1


def test_client_orders_trade_with_each_other() -> None:
    ex = exchange()
    ex.submit(limit("s1", SELL, "30", "100.00"))
    reports = ex.submit(market("b1", BUY, "50"))
    assert [(r.client_order_id, r.kind, r.liquidity, r.last_quantity, r.last_price)
            for r in reports[1:]] == [
        ("b1", FILL, TAKER, D(30), D("100.00")), ("s1", FILL, MAKER, D(30), D("100.00")),
        ("b1", FILL, TAKER, D(20), D("100.01"))]
    assert ex.query("s1").state is VenueOrderState.FILLED  # type: ignore[union-attr]


def test_exec_ids_are_unique_and_numbered_per_venue() -> None:
    ex = exchange()
    reports = ex.submit(market("c1", BUY, "250")) + ex.submit(limit("c2", SELL, "1", "99.99"))
    ids = [r.exec_id for r in reports]
    assert ids == [f"SIM-e{n}" for n in range(1, len(ids) + 1)]


# ---- cancel, query, fills ------------------------------------------------------------------------

def test_cancel_a_resting_order() -> None:
    ex = exchange()
    ex.submit(limit("c1", BUY, "150", "100.01"))
    [cancelled] = ex.cancel("c1")
    assert cancelled.kind is CANCELLED and cancelled.cum_quantity == D(100)
    assert cancelled.leaves_quantity == 0 and cancelled.venue_order_id == "SIM-o1"
    assert ex.open_orders() == [] and ex.quote("AAPL").bid == D("99.99")
    [again] = ex.cancel("c1")
    assert again.kind is ReportKind.CANCEL_REJECTED
    assert again.reason == "order c1 is already cancelled"


def test_cancel_unknown_or_filled_is_refused() -> None:
    ex = exchange()
    [unknown] = ex.cancel("ghost")
    assert unknown.kind is ReportKind.CANCEL_REJECTED
    assert unknown.reason == "unknown client order id ghost" and unknown.venue_order_id is None
    ex.submit(market("c1", BUY, "10"))
    [filled] = ex.cancel("c1")
    assert filled.kind is ReportKind.CANCEL_REJECTED and "already filled" in (filled.reason or "")
    assert filled.cum_quantity == D(10)


def test_fills_since_and_query() -> None:
    clock = ManualClock()
    ex = exchange(clock=clock)
    ex.submit(market("c1", BUY, "150"))
    clock.advance(10)
    ex.submit(market("c2", SELL, "50"))
    later = ex.fills_since(T0 + (clock.now - T0))
    assert [(r.client_order_id, r.last_quantity) for r in later] == [("c2", D(50))]
    assert [r.client_order_id for r in ex.fills_since(T0)] == ["c1", "c1", "c2"]
    assert ex.query("nobody") is None


def test_expire_day_orders_keeps_gtc() -> None:
    ex = exchange()
    ex.submit(limit("day", BUY, "10", "99.00"))
    ex.submit(limit("gtc", BUY, "10", "99.00", tif=TimeInForce.GTC))
    [expired] = ex.expire_day_orders()
    assert (expired.kind, expired.client_order_id) == (ReportKind.EXPIRED, "day")
    assert [o.client_order_id for o in ex.open_orders()] == ["gtc"]


# ---- fees ----------------------------------------------------------------------------------------

def test_fee_schedule_rounds_half_up_to_cents() -> None:
    fees = FeeSchedule(maker_bp=D("-0.2"), taker_bp=D(1))
    assert fees.fee(D(50), TAKER) == D("0.01")  # 0.005 rounds up
    assert fees.fee(D("49.99"), TAKER) == D("0.00")
    assert fees.fee(D(10_000), TAKER) == D("1.00")
    assert fees.fee(D(10_000), MAKER) == D("-0.20")  # a rebate
    assert FeeSchedule().fee(D(10_000), MAKER) == D("0.50")


def test_fills_carry_taker_and_maker_fees() -> None:
    ex = exchange(fees=FeeSchedule(maker_bp=D("0.5"), taker_bp=D("2")))
    [_, taker] = ex.submit(market("t", BUY, "100"))
    assert taker.fee == (D(100) * D("100.01") * D(2) / 10_000).quantize(D("0.01"))  # 2.00
    ex.submit(limit("m", BUY, "1000", "99.50"))
    maker_fills = ex.move_market("AAPL", D("99.00"))
    assert {r.liquidity for r in maker_fills} == {MAKER}
    assert [r.fee for r in maker_fills] == [D("0.50")] * 3  # 100 x 99.50 x 0.5 bp each


# ---- market process ------------------------------------------------------------------------------

def test_move_market_fills_a_resting_limit_at_its_own_price() -> None:
    ex = exchange()
    ex.submit(limit("c1", BUY, "250", "99.50"))
    assert ex.move_market("AAPL", D("99.60")) == []  # asks at 99.61: not through the bid
    reports = ex.move_market("AAPL", D("99.00"))
    assert fills(reports) == [(D(100), D("99.50")), (D(100), D("99.50")), (D(50), D("99.50"))]
    assert {r.liquidity for r in reports} == {MAKER}
    assert reports[-1].leaves_quantity == 0
    assert ex.query("c1").state is VenueOrderState.FILLED  # type: ignore[union-attr]
    quote = ex.quote("AAPL")
    assert quote.last == D("99.50") and quote.ask == D("99.03") and quote.bid == D("98.99")


def test_price_time_priority_among_client_orders_at_the_same_price() -> None:
    ex = exchange()
    ex.submit(limit("first", BUY, "80", "99.50"))
    ex.submit(limit("second", BUY, "80", "99.50"))
    ex.submit(limit("better", BUY, "10", "99.60"))
    ex.set_liquidity("AAPL", depth_levels=1, level_size=D(100))
    reports = ex.move_market("AAPL", D("99.00"))
    assert [(r.client_order_id, r.last_quantity, r.last_price) for r in reports] == [
        ("better", D(10), D("99.60")), ("first", D(80), D("99.50")),
        ("second", D(10), D("99.50"))]
    second = ex.query("second")
    assert second is not None and second.state.is_open and second.filled_quantity == D(10)


def test_move_market_refuses_a_price_off_the_tick_or_an_unknown_symbol() -> None:
    ex = exchange()
    with pytest.raises(ValueError, match="tick"):
        ex.move_market("AAPL", D("100.005"))
    with pytest.raises(KeyError):
        ex.move_market("NOPE", D("1.00"))


def test_steps_walk_the_mid_and_synthetic_trades_set_last_without_reports() -> None:
    config = MarketConfig(volatility_bp=5.0, trade_probability=1.0)
    ex = exchange(config=config)
    mids = set()
    for _ in range(50):
        assert ex.step() == []
        mids.add(ex.snapshot()["markets"]["AAPL"]["mid"])  # type: ignore[index]
        assert all(not ex.book(s).is_crossed() for s in ex.symbols())
    assert len(mids) > 5
    assert ex.quote("AAPL").last != D("100.00")
    assert ex.steps == 50


def test_gaps_move_the_mid_by_their_size() -> None:
    config = MarketConfig(volatility_bp=0.0, gap_probability=1.0, gap_bp=100.0)
    ex = exchange(config=config)
    ex.step()
    mid = D(ex.snapshot()["markets"]["AAPL"]["mid"])  # type: ignore[index]
    assert D("0.50") <= abs(mid - D("100.00")) <= D("1.50")


def test_a_synthetic_taker_can_hit_a_client_order_at_the_top() -> None:
    config = MarketConfig(volatility_bp=0.0, trade_probability=1.0,
                          trade_size_min=D(5), trade_size_max=D(5))
    ex = exchange(config=config)
    ex.submit(limit("bid", BUY, "1000", "100.00", symbol="AAPL"))
    ex.submit(limit("ask", SELL, "1000", "100.01", symbol="AAPL"))
    reports = [r for _ in range(20) for r in ex.step() if r.symbol == "AAPL"]
    assert reports and {r.liquidity for r in reports} == {MAKER}
    assert all(r.last_quantity == D(5) for r in reports)


def test_same_seed_same_run_other_seed_other_run() -> None:
    config = MarketConfig(volatility_bp=3.0, gap_probability=0.05, trade_probability=0.5,
                          level_size_min=D(10), level_size_max=D(300))

    def run(seed: int) -> tuple[list[object], list[object]]:
        ex = exchange(config=config, seed=seed, clock=ManualClock(auto=0.001))
        reports: list[object] = []
        quotes: list[object] = []
        for n in range(150):
            if n % 10 == 0:
                q = ex.quote("AAPL")
                reports += ex.submit(limit(f"b{n}", BUY, "150", str(q.bid)))
                reports += ex.submit(limit(f"s{n}", SELL, "150", str(q.ask), symbol="AAPL"))
            reports += ex.step()
            quotes += ex.quotes()
        return reports, quotes

    first, second, other = run(11), run(11), run(12)
    assert first == second
    assert any(getattr(r, "kind", None) is FILL for r in first[0])
    assert first[1] != other[1]


# ---- halts ---------------------------------------------------------------------------------------

def test_halted_symbol_rejects_new_orders_and_resting_orders_wait() -> None:
    ex = exchange()
    ex.submit(limit("c1", BUY, "50", "99.50"))
    ex.halt("AAPL", "news pending")
    [rejected] = ex.submit(limit("c2", BUY, "10", "100.01"))
    assert rejected.kind is REJECTED and rejected.reason == "AAPL is halted at SIM: news pending"
    assert ex.quote("AAPL").halted
    assert ex.move_market("AAPL", D("99.00")) == []
    assert not ex.book("AAPL").is_crossed()
    assert ex.step() == [] and ex.query("c1").filled_quantity == 0  # type: ignore[union-attr]
    assert ex.submit(market("m1", BUY, "10", symbol="MSFT"))[0].kind is ACK  # others trade
    assert ex.cancel("nothing")[0].kind is ReportKind.CANCEL_REJECTED
    reports = ex.resume("AAPL")
    assert fills(reports) == [(D(50), D("99.50"))]
    assert not ex.quote("AAPL").halted


# ---- faults --------------------------------------------------------------------------------------

def test_lose_acks_drops_only_the_ack_of_the_next_orders() -> None:
    ex = exchange()
    ex.faults.lose_acks = 1
    assert kinds(ex.submit(limit("c1", BUY, "150", "100.01"))) == [FILL]
    assert ex.query("c1").state.is_open  # type: ignore[union-attr]
    assert ex.faults.lose_acks == 0
    assert kinds(ex.submit(limit("c2", BUY, "10", "99.00"))) == [ACK]
    assert ex.snapshot()["orders"][0]["ack_lost"] is True  # type: ignore[index]


def test_reject_after_partial_rejects_the_remainder_once() -> None:
    ex = exchange()
    ex.faults.reject_after_partial = True
    reports = ex.submit(limit("c1", BUY, "150", "100.01"))
    assert kinds(reports) == [ACK, FILL, REJECTED]
    assert reports[-1].cum_quantity == D(100) and "partial fill" in (reports[-1].reason or "")
    assert ex.open_orders() == [] and ex.quote("AAPL").bid == D("99.99")
    assert not ex.faults.reject_after_partial
    assert kinds(ex.submit(limit("c2", BUY, "150", "100.02"))) == [ACK, FILL]  # 50 rest
    assert ex.query("c2").state.is_open  # type: ignore[union-attr]


def test_reject_after_partial_waits_for_an_order_that_fills_partially() -> None:
    ex = exchange()
    ex.faults.reject_after_partial = True
    assert kinds(ex.submit(limit("rests", BUY, "10", "99.00"))) == [ACK]
    assert kinds(ex.submit(market("full", BUY, "10"))) == [ACK, FILL]
    assert ex.faults.reject_after_partial


def test_visibility_lag_hides_young_orders_from_query() -> None:
    clock = ManualClock()
    ex = exchange(clock=clock)
    ex.faults.visibility_lag = 2.0
    ex.submit(limit("c1", BUY, "10", "99.00"))
    assert ex.query("c1") is None
    assert [o.client_order_id for o in ex.open_orders()] == ["c1"]
    clock.advance(2.0)
    assert ex.query("c1") is not None


def test_fault_switches_update_and_reset() -> None:
    ex = exchange()
    ex.faults.update(ack_delay=1, lose_acks=2, down=True, drop_connection_mid_execution=True)
    assert ex.faults.ack_delay == 1.0 and ex.faults.lose_acks == 2 and ex.faults.down
    with pytest.raises(ValueError, match="unknown"):
        ex.faults.update(explode=True)
    with pytest.raises(ValueError):
        ex.faults.update(down="yes")
    with pytest.raises(ValueError):
        ex.faults.update(lose_acks=-1)
    ex.faults.reset()
    assert ex.faults.as_dict() == {
        "ack_delay": 0.0, "lose_acks": 0, "reject_after_partial": False, "down": False,
        "drop_connection_mid_execution": False, "visibility_lag": 0.0, "refuse_sends": 0,
        "stall_reports": False}


# ---- snapshot ------------------------------------------------------------------------------------

def test_snapshot_is_json_and_holds_every_order_once() -> None:
    ex = exchange()
    ex.submit(market("a", BUY, "120"))
    ex.submit(limit("b", SELL, "10", "100.50"))
    ex.submit(limit("c", SELL, "10", "100.505"))
    ex.submit(limit("a", SELL, "10", "100.50"))  # duplicate
    ex.faults.lose_acks = 3
    snap = json.loads(json.dumps(ex.snapshot()))
    assert [o["client_order_id"] for o in snap["orders"]] == ["a", "b", "c"]
    assert [o["status"] for o in snap["orders"]] == ["filled", "open", "rejected"]
    assert [f["quantity"] for f in snap["orders"][0]["fills"]] == ["100", "20"]
    asks = snap["books"]["AAPL"]["asks"]
    assert any(lv["client_orders"] == [{"venue_order_id": "SIM-o2", "quantity": "10"}]
               for lv in asks)
    assert snap["quotes"]["AAPL"]["bid"] == "99.99" and snap["faults"]["lose_acks"] == 3
    assert snap["markets"]["LOTS"]["lot_size"] == "10" and snap["duplicates_refused"] == 1


def test_instruments_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SimulatedExchange("SIM", [("X", D(0), D("0.01"), D(1))], QUIET, None, 1, ManualClock())
    assert len(exchange().symbols()) == len(INSTRUMENTS)
