"""The market-data process: a mid per symbol that walks at random, and the synthetic liquidity
other participants show around it.

Random draws are made on whole ticks and lots (from the exchange's seeded ``random.Random``) and
turned into Decimals; probabilities and volatility are plain floats because they are not prices.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from ordex.domain.orders import Side


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """How the synthetic market behaves; one per exchange (depth and sizes per symbol can be
    changed later with ``SimulatedExchange.set_liquidity``)."""

    depth_levels: int = 5  # synthetic price levels per side
    spread_ticks: int = 2  # best synthetic ask minus best synthetic bid, in ticks
    level_gap_ticks: int = 1  # distance between synthetic levels, in ticks
    level_size_min: Decimal = Decimal(100)  # size of a synthetic level, drawn in lots
    level_size_max: Decimal = Decimal(1000)
    volatility_bp: float = 1.0  # standard deviation of the mid's move per step, in basis points
    gap_probability: float = 0.002  # chance per step and symbol of a price gap
    gap_bp: float = 50.0  # typical size of a gap (drawn between half and one and a half times)
    trade_probability: float = 0.3  # chance per step and symbol that a synthetic taker trades
    trade_size_min: Decimal = Decimal(1)  # size of a synthetic taker's order
    trade_size_max: Decimal = Decimal(200)

    def __post_init__(self) -> None:
        if self.depth_levels < 0 or self.spread_ticks < 1 or self.level_gap_ticks < 1:
            raise ValueError("depth_levels >= 0, spread_ticks >= 1 and level_gap_ticks >= 1")
        if not 0 < self.level_size_min <= self.level_size_max:
            raise ValueError("0 < level_size_min <= level_size_max")
        if not 0 < self.trade_size_min <= self.trade_size_max:
            raise ValueError("0 < trade_size_min <= trade_size_max")
        if self.volatility_bp < 0 or self.gap_bp < 0:
            raise ValueError("volatility_bp and gap_bp must not be negative")
        if not (0 <= self.gap_probability <= 1 and 0 <= self.trade_probability <= 1):
            raise ValueError("probabilities must be between 0 and 1")

    def as_dict(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}


@dataclass(slots=True)
class SymbolMarket:
    """The market state of one symbol."""

    symbol: str
    tick: Decimal
    lot: Decimal
    reference: Decimal
    mid: Decimal
    depth_levels: int
    size_min: Decimal
    size_max: Decimal
    last: Decimal | None = None
    halted: bool = False
    halt_reason: str | None = None

    @property
    def mid_ticks(self) -> int:
        return int((self.mid / self.tick).to_integral_value(rounding=ROUND_HALF_UP))

    def as_dict(self) -> dict[str, object]:
        return {
            "tick_size": str(self.tick), "lot_size": str(self.lot),
            "reference_price": str(self.reference), "mid": str(self.mid),
            "last": None if self.last is None else str(self.last),
            "depth_levels": self.depth_levels, "level_size_min": str(self.size_min),
            "level_size_max": str(self.size_max), "halted": self.halted,
            "halt_reason": self.halt_reason,
        }


def lot_range(low: Decimal, high: Decimal, lot: Decimal) -> tuple[int, int]:
    """The whole numbers of lots between ``low`` and ``high`` (at least one lot)."""
    lots_low = max(1, int((low / lot).to_integral_value(rounding=ROUND_CEILING)))
    lots_high = max(lots_low, int((high / lot).to_integral_value(rounding=ROUND_FLOOR)))
    return lots_low, lots_high


def draw_size(rng: random.Random, low: Decimal, high: Decimal, lot: Decimal) -> Decimal:
    """A random multiple of ``lot`` between ``low`` and ``high`` (at least one lot)."""
    return rng.randint(*lot_range(low, high, lot)) * lot


def lowest_mid_ticks(config: MarketConfig) -> int:
    """The lowest mid, in ticks, that keeps the best synthetic bid above zero."""
    return config.spread_ticks // 2 + 1


def walk(market: SymbolMarket, config: MarketConfig, rng: random.Random) -> None:
    """Move the mid one step: a random walk in whole ticks, now and then a gap."""
    ticks = market.mid_ticks
    sigma = ticks * config.volatility_bp / 10_000
    move = round(rng.gauss(0.0, sigma)) if sigma > 0 else 0
    if config.gap_probability > 0 and rng.random() < config.gap_probability:
        size = max(1, round(ticks * config.gap_bp / 10_000 * (0.5 + rng.random())))
        move += size if rng.random() < 0.5 else -size
    market.mid = max(lowest_mid_ticks(config), ticks + move) * market.tick


def synthetic_orders(market: SymbolMarket, config: MarketConfig,
                     rng: random.Random) -> list[tuple[Side, Decimal, Decimal]]:
    """Fresh synthetic liquidity around the mid: ``(side, price, size)``, asks from the lowest up,
    then bids from the highest down. The best bid is ``spread_ticks // 2`` ticks below the mid."""
    bid_top = market.mid_ticks - config.spread_ticks // 2
    ask_top = bid_top + config.spread_ticks
    asks: list[tuple[Side, Decimal, Decimal]] = []
    bids: list[tuple[Side, Decimal, Decimal]] = []
    low, high = lot_range(market.size_min, market.size_max, market.lot)
    for i in range(market.depth_levels):
        step = i * config.level_gap_ticks
        bid_size = rng.randint(low, high) * market.lot
        ask_size = rng.randint(low, high) * market.lot
        asks.append((Side.SELL, (ask_top + step) * market.tick, ask_size))
        if bid_top - step > 0:
            bids.append((Side.BUY, (bid_top - step) * market.tick, bid_size))
    return asks + bids


def synthetic_trade(market: SymbolMarket, config: MarketConfig,
                    rng: random.Random) -> tuple[Side, Decimal] | None:
    """Maybe a synthetic taker this step: the side it takes from the book and its size."""
    if config.trade_probability <= 0 or rng.random() >= config.trade_probability:
        return None
    side = Side.BUY if rng.random() < 0.5 else Side.SELL
    return side, draw_size(rng, config.trade_size_min, config.trade_size_max, market.lot)
