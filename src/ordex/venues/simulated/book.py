"""A limit order book for one symbol: price levels per side, first in first out within a level.

Prices are Decimals; a side keeps its prices sorted (``bisect``) and each level keeps its orders
in arrival order (an ``OrderedDict``), so adding, cancelling and taking the best are cheap with
thousands of resting orders. The book never holds a crossed market: ``add`` refuses an order that
would trade; matching (``matching.py``) takes liquidity first.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from ordex.domain.money import ZERO
from ordex.domain.orders import Side


def opposite(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def marketable(side: Side, limit: Decimal | None, price: Decimal) -> bool:
    """Whether an order on ``side`` with ``limit`` (None: market) would trade at ``price``."""
    if limit is None:
        return True
    return price <= limit if side is Side.BUY else price >= limit


@dataclass(slots=True, eq=False)
class Resting:
    """An order resting in the book; ``quantity`` is what is left of it."""

    id: str
    side: Side
    price: Decimal
    quantity: Decimal
    synthetic: bool = False


class Level:
    """The orders resting at one price, oldest first."""

    __slots__ = ("orders", "price", "total")

    def __init__(self, price: Decimal) -> None:
        self.price = price
        self.orders: OrderedDict[str, Resting] = OrderedDict()
        self.total = ZERO

    def first(self) -> Resting:
        return next(iter(self.orders.values()))

    def __iter__(self) -> Iterator[Resting]:
        return iter(list(self.orders.values()))

    def __len__(self) -> int:
        return len(self.orders)


class BookSide:
    """One side of the book: levels by price, best first when iterated."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self._levels: dict[Decimal, Level] = {}
        self._prices: list[Decimal] = []  # ascending

    def best(self) -> Level | None:
        if not self._prices:
            return None
        return self._levels[self._prices[-1] if self.side is Side.BUY else self._prices[0]]

    def levels(self) -> list[Level]:
        """The levels, best price first (a copy: safe to change the book while iterating)."""
        prices = reversed(self._prices) if self.side is Side.BUY else iter(self._prices)
        return [self._levels[p] for p in prices]

    def add(self, order: Resting) -> None:
        level = self._levels.get(order.price)
        if level is None:
            level = self._levels[order.price] = Level(order.price)
            bisect.insort(self._prices, order.price)
        level.orders[order.id] = order
        level.total += order.quantity

    def remove(self, order: Resting) -> None:
        level = self._levels[order.price]
        del level.orders[order.id]
        level.total -= order.quantity
        if not level.orders:
            del self._levels[order.price]
            index = bisect.bisect_left(self._prices, order.price)
            del self._prices[index]

    def reduce(self, order: Resting, quantity: Decimal) -> None:
        order.quantity -= quantity
        self._levels[order.price].total -= quantity

    def __len__(self) -> int:
        return len(self._prices)


class OrderBook:
    """Bids and asks of one symbol, with resting orders findable by id."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
        self._orders: dict[str, Resting] = {}
        self._synthetic: dict[str, Resting] = {}

    def side(self, side: Side) -> BookSide:
        return self.bids if side is Side.BUY else self.asks

    def best_bid(self) -> Decimal | None:
        level = self.bids.best()
        return None if level is None else level.price

    def best_ask(self) -> Decimal | None:
        level = self.asks.best()
        return None if level is None else level.price

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    def crosses(self, side: Side, price: Decimal) -> bool:
        """Whether an order on ``side`` at ``price`` would trade against the other side now."""
        best = self.side(opposite(side)).best()
        return best is not None and marketable(side, price, best.price)

    def add(self, order: Resting) -> None:
        """Rest ``order``; it must be new, positive and must not cross the other side."""
        if order.id in self._orders:
            raise ValueError(f"order {order.id} already rests in the {self.symbol} book")
        if order.quantity <= 0:
            raise ValueError(f"cannot rest a quantity of {order.quantity}")
        if self.crosses(order.side, order.price):
            raise ValueError(
                f"order {order.id} at {order.price} would cross the {self.symbol} book")
        self.side(order.side).add(order)
        self._orders[order.id] = order
        if order.synthetic:
            self._synthetic[order.id] = order

    def get(self, order_id: str) -> Resting | None:
        return self._orders.get(order_id)

    def remove(self, order_id: str) -> Resting | None:
        order = self._orders.pop(order_id, None)
        if order is not None:
            self.side(order.side).remove(order)
            self._synthetic.pop(order_id, None)
        return order

    def take(self, order: Resting, quantity: Decimal) -> None:
        """Take ``quantity`` from a resting order; it leaves the book when nothing is left."""
        if quantity <= 0 or quantity > order.quantity:
            raise ValueError(f"cannot take {quantity} from {order.id} ({order.quantity} left)")
        self.side(order.side).reduce(order, quantity)
        if order.quantity == 0:
            self.remove(order.id)

    def remove_synthetic(self) -> None:
        """Take every order of the synthetic participants out of the book."""
        for order_id in list(self._synthetic):
            self.remove(order_id)

    def available(self, side: Side, limit: Decimal | None,
                  wanted: Decimal | None = None) -> Decimal:
        """Quantity an order on ``side`` could take at ``limit`` or better (None: any price);
        stops counting once ``wanted`` is reached."""
        total = ZERO
        for level in self.side(opposite(side)).levels():
            if not marketable(side, limit, level.price):
                break
            total += level.total
            if wanted is not None and total >= wanted:
                break
        return total

    def orders(self) -> Iterator[Resting]:
        return iter(list(self._orders.values()))

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def snapshot(self) -> dict[str, list[dict[str, object]]]:
        """Levels per side, best first, with synthetic and client sizes apart."""
        return {"bids": [_level_dict(level) for level in self.bids.levels()],
                "asks": [_level_dict(level) for level in self.asks.levels()]}


def _level_dict(level: Level) -> dict[str, object]:
    synthetic = sum((o.quantity for o in level.orders.values() if o.synthetic), ZERO)
    clients = [o for o in level.orders.values() if not o.synthetic]
    return {
        "price": str(level.price),
        "size": str(level.total),
        "synthetic_size": str(synthetic),
        "client_size": str(level.total - synthetic),
        "client_orders": [{"venue_order_id": o.id, "quantity": str(o.quantity)} for o in clients],
    }
