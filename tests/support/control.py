"""Driving the simulated venue from a test, the same way in process or over its admin port."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from ordex.venues.simulated.inprocess import InProcessVenue
from tests.support.venue_process import VenueProcess


class VenueControl(Protocol):
    async def set_liquidity(self, symbol: str, depth_levels: int, level_size: Decimal) -> None: ...
    async def move_market(self, symbol: str, price: Decimal) -> None: ...
    async def halt(self, symbol: str, reason: str) -> None: ...
    async def set_down(self, down: bool) -> None: ...
    async def order(self, client_order_id: str) -> dict[str, Any] | None: ...
    async def orders(self) -> list[dict[str, Any]]: ...


class InProcessControl:
    def __init__(self, venue: InProcessVenue) -> None:
        self.venue = venue

    async def set_liquidity(self, symbol: str, depth_levels: int, level_size: Decimal) -> None:
        self.venue.set_liquidity(symbol, depth_levels=depth_levels, level_size=level_size)

    async def move_market(self, symbol: str, price: Decimal) -> None:
        self.venue.move_market(symbol, price)

    async def halt(self, symbol: str, reason: str) -> None:
        self.venue.halt(symbol, reason)

    async def set_down(self, down: bool) -> None:
        self.venue.faults.update(down=down)

    async def orders(self) -> list[dict[str, Any]]:
        return list(self.venue.exchange.snapshot()["orders"])  # type: ignore[call-overload]

    async def order(self, client_order_id: str) -> dict[str, Any] | None:
        return next((o for o in await self.orders()
                     if o["client_order_id"] == client_order_id), None)


class AdminControl:
    """``ordex venue`` over its admin HTTP port."""

    def __init__(self, process: VenueProcess) -> None:
        self.process = process

    async def set_liquidity(self, symbol: str, depth_levels: int, level_size: Decimal) -> None:
        await self.process.admin("POST", f"/liquidity/{symbol}",
                                 {"depth_levels": depth_levels, "level_size": str(level_size)})

    async def move_market(self, symbol: str, price: Decimal) -> None:
        await self.process.admin("POST", f"/market/{symbol}", {"price": str(price)})

    async def halt(self, symbol: str, reason: str) -> None:
        await self.process.admin("POST", f"/halt/{symbol}", {"reason": reason})

    async def set_down(self, down: bool) -> None:
        await self.process.admin("POST", "/faults", {"down": down})

    async def orders(self) -> list[dict[str, Any]]:
        return list((await self.process.admin("GET", "/orders"))["orders"])

    async def order(self, client_order_id: str) -> dict[str, Any] | None:
        return next((o for o in await self.orders()
                     if o["client_order_id"] == client_order_id), None)
