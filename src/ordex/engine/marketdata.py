"""The latest quote per symbol, as venues report it: the reference price for validation."""

from __future__ import annotations

from decimal import Decimal

from ordex.venues.base import Quote


class MarketData:
    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}

    def update(self, quote: Quote) -> None:
        self._quotes[quote.symbol] = quote

    def quote(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def quotes(self) -> list[Quote]:
        return [self._quotes[s] for s in sorted(self._quotes)]

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
