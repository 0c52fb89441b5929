"""The read side: what the API shows of orders, positions, accounts and instruments."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from msgspec.structs import replace

from ordex.clock import Clock
from ordex.domain.accounts import Account
from ordex.domain.fills import Fill
from ordex.domain.instruments import Instrument, marked
from ordex.domain.money import ZERO, shown_average, tidy
from ordex.domain.orders import Order
from ordex.domain.positions import Position, daily_pnl, equity
from ordex.domain.status import OrderEvent
from ordex.domain.validation import reserved_cash
from ordex.store.database import Database
from ordex.store.repository import OrderQuery
from ordex.store.uow import reading

MAX_SEQ = 2**62  # the largest sequence number a client may name


@dataclass(frozen=True, slots=True)
class PositionView:
    """``tick`` is the instrument's, for showing the market price as it is quoted."""

    row: Position
    market_price: Decimal | None
    tick: Decimal = Decimal(0)

    @property
    def market_value(self) -> Decimal | None:
        return None if self.market_price is None else self.row.quantity * self.market_price

    @property
    def unrealized_pnl(self) -> Decimal | None:
        if self.market_price is None:
            return None
        return (self.market_price - self.row.average_cost) * self.row.quantity


@dataclass(frozen=True, slots=True)
class AccountView:
    account: Account
    reserved_cash: Decimal
    equity: Decimal
    day_pnl: Decimal
    open_orders: int

    @property
    def buying_power(self) -> Decimal:
        return self.account.cash - self.reserved_cash


def shown(event: OrderEvent, trader_name: str | None) -> OrderEvent:
    payload = {**event.payload, "trader_name": trader_name}
    average = payload.get("average_price")
    if isinstance(average, str):
        payload["average_price"] = format(tidy(shown_average(Decimal(average))), "f")
    return replace(event, payload=payload)


class Queries:
    """``live_price`` gives a symbol's price from market data, when there is one: positions and
    equity are marked at it rather than at the stored reference (saved every few seconds)."""

    def __init__(self, db: Database, clock: Clock,
                 live_price: Callable[[str], Decimal | None] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.live_price = live_price
        self._names: dict[UUID, str] = {}

    async def trader_names(self, ids: Iterable[UUID]) -> dict[UUID, str]:
        """Account names by id, for people to read (names never change once created)."""
        wanted = set(ids)
        if not wanted <= self._names.keys():
            async with reading(self.db) as repo:
                self._names = {a.id: a.name for a in await repo.list_accounts()}
        return {i: self._names[i] for i in wanted if i in self._names}

    def known_name(self, trader_id: UUID) -> str | None:
        """The account's name if this process has read it already (no store read)."""
        return self._names.get(trader_id)

    async def order(self, order_id: UUID, trader_id: UUID | None) -> Order | None:
        async with reading(self.db) as repo:
            return await repo.order(order_id, trader_id)

    async def orders(self, query: OrderQuery) -> list[Order]:
        async with reading(self.db) as repo:
            return await repo.orders(query)

    async def instruments(self) -> list[Instrument]:
        async with reading(self.db) as repo:
            return await repo.instruments()

    async def positions(self, account_id: UUID) -> list[PositionView]:
        async with reading(self.db) as repo:
            rows = [p for p in await repo.positions(account_id) if p.quantity]
            marks = self._marks(await repo.instruments(p.symbol for p in rows))
        return [PositionView(p, marks[p.symbol].reference_price, marks[p.symbol].tick_size)
                if p.symbol in marks else PositionView(p, None) for p in rows]

    async def account(self, account_id: UUID) -> AccountView | None:
        async with reading(self.db) as repo:
            account = await repo.account(account_id)
            if account is None:
                return None
            open_orders = await repo.open_exposure(account_id)
            rows = await repo.positions(account_id)
            held = {p.symbol: p.quantity for p in rows if p.quantity}
            marks = self._marks(await repo.instruments(held)) if held else {}
        current = equity(account.cash, held, marks)
        today = self.clock.now().date()
        pnl = daily_pnl(current, account.day_start_equity) if account.trading_day == today else ZERO
        return AccountView(account, reserved_cash(open_orders), current, pnl, len(open_orders))

    def _marks(self, instruments: Iterable[Instrument]) -> dict[str, Instrument]:
        """Instruments marked at the live price where market data has one."""
        return {i.symbol: marked(i, self.live_price) for i in instruments}

    async def instrument(self, symbol: str) -> Instrument | None:
        async with reading(self.db) as repo:
            return await repo.instrument(symbol)

    async def fills(self, **filters: Any) -> list[Fill]:
        async with reading(self.db) as repo:
            return await repo.fills(**filters)

    async def events(self, after: int, *, trader_id: UUID | None = None,
                     order_id: UUID | None = None, limit: int = 1000,
                     per_trader: bool = False) -> list[OrderEvent]:
        """Events as subscribers see them (``per_trader`` positions for what a trader sees),
        with the trader's name, averages to four decimals."""
        async with reading(self.db) as repo:
            events = await repo.events_after(after, trader_id=trader_id, order_id=order_id,
                                             limit=limit, per_trader=per_trader)
        names = await self.trader_names(e.trader_id for e in events)
        return [shown(e, names.get(e.trader_id)) for e in events]

    async def last_event_seq(self, trader_id: UUID | None = None) -> int:
        async with reading(self.db) as repo:
            return await repo.last_event_seq(trader_id)

    async def accounts(self) -> list[Account]:
        async with reading(self.db) as repo:
            return await repo.list_accounts()
