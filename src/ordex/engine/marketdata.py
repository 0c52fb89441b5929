"""The latest quote per symbol, as venues report it: the reference price for validation, and a
short price history per symbol for charts."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ordex.venues.base import Quote

HISTORY_POINTS = 1200


@dataclass(frozen=True, slots=True)
class PricePoint:
    timestamp: datetime
    price: Decimal


class MarketData:
    """``history`` keeps one point per second (the latest price in it), so ``HISTORY_POINTS``
    cover twenty minutes whatever the venue's quote rate."""

    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}
        self._history: dict[str, deque[PricePoint]] = {}

    def update(self, quote: Quote) -> None:
        self._quotes[quote.symbol] = quote
        price = self.reference_price(quote.symbol)
        if price is None:
            return
        points = self._history.setdefault(quote.symbol, deque(maxlen=HISTORY_POINTS))
        point = PricePoint(quote.timestamp, price)
        if points and _bucket(points[-1].timestamp) == _bucket(quote.timestamp):
            points[-1] = point
        else:
            points.append(point)

    def quote(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def quotes(self) -> list[Quote]:
        return [self._quotes[s] for s in sorted(self._quotes)]

    def history(self, symbol: str, since: datetime | None = None) -> list[PricePoint]:
        points = self._history.get(symbol, ())
        return [p for p in points if since is None or p.timestamp > since]

    def reference_price(self, symbol: str) -> Decimal | None:
        """Last trade, else the mid, else None (the instrument's stored reference applies)."""
        q = self._quotes.get(symbol)
        if q is None:
            return None
        if q.last is not None:
            return q.last
        if q.bid is not None and q.ask is not None:
            return (q.bid + q.ask) / 2
        return None


def _bucket(at: datetime) -> int:
    return int(at.timestamp())
