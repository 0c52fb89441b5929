"""Helpers for the simulated-exchange tests: a manual clock, a quiet market, order builders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.venues.base import ExecutionReport, NewOrder, ReportKind
from ordex.venues.simulated import FeeSchedule, MarketConfig, SimulatedExchange

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)

# Fixed sizes, no random walk, no synthetic takers: AAPL shows 99.99/100.01, then 99.98/100.02...
QUIET = MarketConfig(depth_levels=3, spread_ticks=2, level_size_min=Decimal(100),
                     level_size_max=Decimal(100), volatility_bp=0.0, gap_probability=0.0,
                     trade_probability=0.0)

INSTRUMENTS = [("AAPL", Decimal("100.00"), Decimal("0.01"), Decimal(1)),
               ("MSFT", Decimal("400.00"), Decimal("0.01"), Decimal(1)),
               ("LOTS", Decimal("50.00"), Decimal("0.05"), Decimal(10))]


class ManualClock:
    """A clock tests move by hand; ``auto`` seconds pass on every reading."""

    def __init__(self, start: datetime = T0, auto: float = 0.0) -> None:
        self.now = start
        self.auto = timedelta(seconds=auto)

    def __call__(self) -> datetime:
        now = self.now
        self.now += self.auto
        return now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def exchange(config: MarketConfig = QUIET, seed: int = 7, clock: ManualClock | None = None,
             fees: FeeSchedule | None = None) -> SimulatedExchange:
    return SimulatedExchange("SIM", INSTRUMENTS, config=config, fees=fees, seed=seed,
                             clock=clock or ManualClock())


def limit(coid: str, side: Side, quantity: str, price: str, symbol: str = "AAPL",
          tif: TimeInForce = TimeInForce.DAY) -> NewOrder:
    return NewOrder(coid, symbol, side, OrderType.LIMIT, Decimal(quantity), tif, Decimal(price))


def market(coid: str, side: Side, quantity: str, symbol: str = "AAPL",
           tif: TimeInForce = TimeInForce.DAY) -> NewOrder:
    return NewOrder(coid, symbol, side, OrderType.MARKET, Decimal(quantity), tif)


def kinds(reports: list[ExecutionReport]) -> list[ReportKind]:
    return [r.kind for r in reports]


def fills(reports: list[ExecutionReport]) -> list[tuple[Decimal, Decimal]]:
    return [(r.last_quantity, r.last_price) for r in reports if r.kind is ReportKind.FILL]
