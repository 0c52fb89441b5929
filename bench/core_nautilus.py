"""NautilusTrader's backtest engine on the orders of ``core_inprocess.plan_orders``.

One simulated venue holds the demo's active symbols as equities; one quote per order, 1 ms apart
in simulated time, at one tick either side of the reference price with deep size; a strategy sends
the planned order of each quote as it arrives (market, or the same marketable limit), through
Nautilus's risk engine (its order-rate throttle raised) and its matching engine. Nothing is stored.
The figure is planned orders per second of wall time of ``BacktestEngine.run``.

Run by ``bench.bench_core`` in a process of its own (it prints one JSON line)::

    python -m bench.core_nautilus --orders 3000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench.core_inprocess import PlannedOrder, plan_orders
from ordex.domain.orders import OrderType, Side

VENUE = "XNAS"
QUOTE_GAP_NS = 1_000_000
START_NS = 1_767_625_200_000_000_000  # 2026-01-05 15:00 UTC


def run(count: int) -> dict[str, Any]:
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, RiskEngineConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.events import OrderFilled
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.trading.strategy import Strategy

    plan = plan_orders(count)
    instruments = {o.symbol: TestInstrumentProvider.equity(symbol=o.symbol, venue=VENUE)
                   for o in plan}

    class Replay(Strategy):
        """Sends the planned order of each quote as the quote arrives."""

        def __init__(self, orders: list[PlannedOrder]) -> None:
            super().__init__()
            self.orders = orders
            self.sent = 0
            self.filled_orders: set[str] = set()
            self.denied = 0

        def on_start(self) -> None:
            for instrument in instruments.values():
                self.subscribe_quote_ticks(instrument.id)

        def on_quote_tick(self, tick: QuoteTick) -> None:
            if self.sent >= len(self.orders):
                return
            o = self.orders[self.sent]
            self.sent += 1
            instrument = instruments[o.symbol]
            side = OrderSide.BUY if o.side is Side.BUY else OrderSide.SELL
            quantity = instrument.make_qty(float(o.quantity))
            if o.type is OrderType.MARKET:
                order = self.order_factory.market(instrument.id, side, quantity)
            else:
                assert o.limit_price is not None
                order = self.order_factory.limit(instrument.id, side, quantity,
                                                 instrument.make_price(float(o.limit_price)))
            self.submit_order(order)

        def on_order_filled(self, event: OrderFilled) -> None:
            order = self.cache.order(event.client_order_id)
            if order is not None and order.is_closed:
                self.filled_orders.add(event.client_order_id.value)

        def on_order_denied(self, event: Any) -> None:
            self.denied += 1

    engine = BacktestEngine(BacktestEngineConfig(
        logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
        risk_engine=RiskEngineConfig(max_order_submit_rate="1000000/00:00:01"),
        run_analysis=False))
    try:
        engine.add_venue(venue=Venue(VENUE), oms_type=OmsType.NETTING,
                         account_type=AccountType.MARGIN,
                         starting_balances=[Money(1_000_000_000, USD)])
        for instrument in instruments.values():
            engine.add_instrument(instrument)
        size = next(iter(instruments.values())).make_qty(1_000_000)
        ticks = []
        for i, o in enumerate(plan):
            instrument = instruments[o.symbol]
            ts = START_NS + i * QUOTE_GAP_NS
            bid = instrument.make_price(float(o.reference - o.tick))
            ask = instrument.make_price(float(o.reference + o.tick))
            ticks.append(QuoteTick(instrument.id, bid, ask, size, size, ts, ts))
        engine.add_data(ticks)
        strategy = Replay(plan)
        engine.add_strategy(strategy)
        t0 = time.perf_counter()
        engine.run()
        seconds = time.perf_counter() - t0
        filled = len(strategy.filled_orders)
        return {"orders": count, "sent": strategy.sent, "filled": filled,
                "denied": strategy.denied, "seconds": seconds,
                "version": _version()}
    finally:
        engine.dispose()


def _version() -> str:
    from importlib.metadata import version

    return version("nautilus_trader")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.core_nautilus")
    p.add_argument("--orders", type=int, required=True)
    args = p.parse_args(argv)
    result = run(args.orders)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
