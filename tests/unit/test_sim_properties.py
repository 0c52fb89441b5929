"""Properties of the simulated exchange over random runs of orders, cancels, steps and admin
commands: fills never exceed quantity, cum adds up, exec ids are unique, the book is never crossed
and every order received is in the snapshot exactly once."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordex.domain.money import ZERO
from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.venues.base import ExecutionReport, NewOrder, ReportKind
from ordex.venues.simulated import MarketConfig, SimulatedExchange
from tests.unit.test_sim_support import INSTRUMENTS, ManualClock

D = Decimal
CONFIG = MarketConfig(depth_levels=3, level_size_min=D(10), level_size_max=D(200),
                      volatility_bp=5.0, gap_probability=0.05, gap_bp=30.0,
                      trade_probability=0.5, trade_size_min=D(1), trade_size_max=D(150))

symbols = st.sampled_from(["AAPL", "LOTS"])
sides = st.sampled_from([Side.BUY, Side.SELL])
operations = st.one_of(
    st.tuples(st.just("limit"), symbols, sides, st.sampled_from(list(TimeInForce)),
              st.integers(1, 40), st.integers(-15, 15), st.integers(0, 9)),
    st.tuples(st.just("market"), symbols, sides, st.sampled_from(list(TimeInForce)),
              st.integers(1, 40), st.just(0), st.integers(0, 9)),
    st.tuples(st.just("cancel"), st.integers(0, 1000)),
    st.tuples(st.just("dup"), st.integers(0, 1000)),
    st.tuples(st.just("step"), st.integers(1, 3)),
    st.tuples(st.just("move"), symbols, st.integers(-30, 30)),
    st.tuples(st.just("halt"), symbols),
    st.tuples(st.just("resume"), symbols),
    st.tuples(st.just("fault"), st.sampled_from(["lose_ack", "reject_after_partial"])),
)


def new_order(ex: SimulatedExchange, n: int, op: tuple[object, ...]) -> NewOrder:
    kind, symbol, side, tif, lots, offset, oddity = op
    assert isinstance(symbol, str) and isinstance(lots, int) and isinstance(offset, int)
    tick, lot = (D("0.01"), D(1)) if symbol == "AAPL" else (D("0.05"), D(10))
    quantity = lots * lot + (D("0.5") if oddity == 0 else ZERO)  # now and then off the lot
    mid = D(str(ex.snapshot()["markets"][symbol]["mid"]))  # type: ignore[index]
    price = max(tick, mid + offset * tick) + (tick / 2 if oddity == 1 else ZERO)
    order_type = OrderType.LIMIT if kind == "limit" else OrderType.MARKET
    return NewOrder(f"c{n}", symbol, side, order_type, quantity, tif,  # type: ignore[arg-type]
                    price if order_type is OrderType.LIMIT else None)


def check_books(ex: SimulatedExchange) -> None:
    for symbol in ex.symbols():
        assert not ex.book(symbol).is_crossed(), symbol


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), ops=st.lists(operations, min_size=10, max_size=80))
def test_random_runs_keep_the_invariants(seed: int, ops: list[tuple[object, ...]]) -> None:
    ex = SimulatedExchange("SIM", INSTRUMENTS, CONFIG, None, seed, ManualClock(auto=0.01))
    reports: list[ExecutionReport] = []
    received: list[str] = []
    check_books(ex)
    for n, op in enumerate(ops):
        match op[0]:
            case "limit" | "market":
                order = new_order(ex, n, op)
                reports += ex.submit(order)
                received.append(order.client_order_id)
            case "cancel":
                target = received[op[1] % len(received)] if received else "ghost"  # type: ignore[operator]
                reports += ex.cancel(target)
            case "dup" if received:
                original = ex.query(received[op[1] % len(received)])  # type: ignore[operator]
                assert original is not None
                out = ex.submit(NewOrder(original.client_order_id, "AAPL", Side.BUY,
                                         OrderType.MARKET, D(1), TimeInForce.IOC))
                assert [r.kind for r in out] == [ReportKind.REJECTED]
                assert "duplicate client order id" in (out[0].reason or "")
                assert ex.query(original.client_order_id) == original
                reports += out
            case "step":
                for _ in range(op[1]):  # type: ignore[attr-defined]
                    reports += ex.step()
                    check_books(ex)
            case "move":
                symbol, offset = op[1], op[2]
                tick = D("0.01") if symbol == "AAPL" else D("0.05")
                mid = D(str(ex.snapshot()["markets"][symbol]["mid"]))  # type: ignore[index]
                reports += ex.move_market(symbol, max(tick, mid + offset * tick))  # type: ignore[arg-type, operator]
            case "halt":
                ex.halt(op[1], "test")  # type: ignore[arg-type]
            case "resume":
                reports += ex.resume(op[1])  # type: ignore[arg-type]
            case "fault":
                if op[1] == "lose_ack":
                    ex.faults.lose_acks += 1
                else:
                    ex.faults.reject_after_partial = True
        check_books(ex)

    # exec ids are unique
    ids = Counter(r.exec_id for r in reports)
    assert not [i for i, c in ids.items() if c > 1]

    # every order received is in the snapshot exactly once
    snapshot = ex.snapshot()
    listed = [o["client_order_id"] for o in snapshot["orders"]]  # type: ignore[union-attr, index]
    assert listed == received

    # per order: fills never exceed the quantity and cum is the running sum of fills
    running: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for r in reports:
        if r.kind is ReportKind.FILL:
            running[r.client_order_id] += r.last_quantity
            assert r.cum_quantity == running[r.client_order_id]
            assert r.last_quantity > 0 and r.liquidity in ("maker", "taker")
        if r.venue_order_id is not None:
            order = ex.query(r.client_order_id)
            assert order is not None and r.cum_quantity + r.leaves_quantity <= order.quantity
    for venue_order in ex.orders():
        filled = running[venue_order.client_order_id]
        assert venue_order.filled_quantity == filled <= venue_order.quantity
        assert (venue_order.state.value == "filled") == (filled == venue_order.quantity)
        in_book = ex.book(venue_order.symbol).get(venue_order.venue_order_id) \
            if venue_order.symbol in ex.symbols() else None
        if venue_order.state.is_open:
            assert in_book is not None
            assert in_book.quantity == venue_order.quantity - filled
        else:
            assert in_book is None
    assert sorted(o.client_order_id for o in ex.open_orders()) == sorted(
        o.client_order_id for o in ex.orders() if o.state.is_open)
