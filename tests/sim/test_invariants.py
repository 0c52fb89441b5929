"""A seeded random run of thousands of orders through the engine and the simulated venue, then
the books must balance: positions and cash equal what the fills say, fills equal each order's
filled quantity, no fill counted twice, and the venue and the store agree on every order."""

from __future__ import annotations

import asyncio
import os
import random
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from ordex.bootstrap import build, prepare
from ordex.config import Settings
from ordex.domain.accounts import RiskLimits, Role
from ordex.domain.commands import CancelOrder, SubmitOrder
from ordex.domain.errors import DomainError
from ordex.domain.orders import OrderStatus, OrderType, Routing, Side, TimeInForce
from ordex.services.demo import demo_instruments
from ordex.store.repository import OrderQuery
from ordex.store.uow import reading
from ordex.venues.base import VenueOrderState
from ordex.venues.simulated.exchange import SimulatedExchange
from ordex.venues.simulated.inprocess import InProcessVenue
from ordex.venues.simulated.market import MarketConfig

ORDERS = int(os.environ.get("ORDEX_SIM_ORDERS", "1000"))
TRADERS = 8
CASH = Decimal("2000000")
SYMBOLS = ["AAPL", "MSFT", "KO", "INTC", "BAC", "WMT"]
VENUE_STATE = {
    OrderStatus.FILLED: VenueOrderState.FILLED, OrderStatus.CANCELLED: VenueOrderState.CANCELLED,
    OrderStatus.REJECTED: VenueOrderState.REJECTED, OrderStatus.EXPIRED: VenueOrderState.EXPIRED,
}


@pytest.mark.parametrize("seed", [20261126])
async def test_books_balance_after_a_random_run(settings: Settings, seed: int) -> None:
    rng = random.Random(seed)
    backend = "sqlite" if settings.is_sqlite else "postgres"
    print(f"seed {seed}, {ORDERS} orders, {TRADERS} traders, {backend}")
    exchange = SimulatedExchange(
        "SIM", [(i.symbol, i.reference_price, i.tick_size, i.lot_size)
                for i in demo_instruments()],
        config=MarketConfig(trade_probability=0.5, gap_probability=0.01), seed=seed)
    venue = InProcessVenue(exchange, tick_interval=None)
    services = build(settings.model_copy(update={"execution_enabled": True}), venue=venue)
    await prepare(services)
    await services.start()
    try:
        traders = []
        for n in range(TRADERS):
            issued = await services.accounts.create(
                f"sim{n}", Role.TRADER, CASH, RiskLimits(max_open_orders=10_000),
                allow_short=n % 2 == 0)
            traders.append(issued.account.id)
        ids: list[UUID] = []
        for i in range(ORDERS):
            trader = rng.choice(traders)
            symbol = rng.choice(SYMBOLS)
            quote = exchange.quote(symbol)
            mid = (quote.bid + quote.ask) / 2 if quote.bid and quote.ask else quote.last
            kind = rng.choice([OrderType.MARKET, OrderType.LIMIT, OrderType.LIMIT])
            limit = None
            if kind is OrderType.LIMIT:
                limit = (mid * Decimal(1 + rng.uniform(-0.01, 0.01))).quantize(Decimal("0.01"))
            tif = rng.choice([TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK])
            cmd = SubmitOrder(trader_id=trader, symbol=symbol, side=rng.choice(list(Side)),
                              type=kind, quantity=Decimal(rng.randint(1, 300)),
                              time_in_force=tif, limit_price=limit)
            try:
                ids.append((await services.orders.submit(cmd)).order.id)
            except DomainError:
                pass
            roll = rng.random()
            if roll < 0.3:
                venue.step()
            if roll < 0.1 and ids:
                victim = rng.choice(ids)
                async with reading(services.db) as repo:
                    order = await repo.order(victim)
                if order is not None and order.status.is_open:
                    try:
                        await services.orders.cancel(CancelOrder(order.trader_id, victim))
                    except DomainError:
                        pass
            if i % 50 == 0:
                await asyncio.sleep(0)
        # Some reports arrive twice: each must be applied once.
        for report in rng.sample(exchange.fills_since(datetime(2000, 1, 1, tzinfo=UTC)), 50):
            await services.engine.apply(report)  # type: ignore[union-attr]
        await settle(services)
        await check_invariants(services, exchange, traders, ids)
    finally:
        await services.close()


async def settle(services: object) -> None:
    """Cancel what still rests, then wait until every order in the store is final."""
    from ordex.bootstrap import Services

    assert isinstance(services, Services)
    for _ in range(400):
        async with reading(services.db) as repo:
            open_orders = await repo.orders(OrderQuery(
                statuses=frozenset(s for s in OrderStatus if s.is_open), limit=10_000))
        if not open_orders:
            return
        for order in open_orders:
            if order.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED) and \
                    order.venue_order_id is not None:
                try:
                    await services.orders.cancel(CancelOrder(order.trader_id, order.id))
                except DomainError:
                    pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(open_orders)} orders never settled")


async def check_invariants(services: object, exchange: SimulatedExchange, traders: list[UUID],
                           ids: list[UUID]) -> None:
    from ordex.bootstrap import Services

    assert isinstance(services, Services)
    async with reading(services.db) as repo:
        fills = await repo.fills(limit=1_000_000)
        orders = {o.id: o for o in await repo.orders(OrderQuery(limit=1_000_000))}
        accounts = {t: await repo.account(t) for t in traders}
        positions = {t: {p.symbol: p.quantity for p in await repo.positions(t)} for t in traders}
    assert len({(f.venue, f.exec_id) for f in fills}) == len(fills), "a fill counted twice"
    by_order: dict[UUID, Decimal] = defaultdict(Decimal)
    held: dict[UUID, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    cash: dict[UUID, Decimal] = dict.fromkeys(traders, CASH)
    for f in fills:
        by_order[f.order_id] += f.quantity
        signed = f.quantity if f.side is Side.BUY else -f.quantity
        held[f.trader_id][f.symbol] += signed
        cash[f.trader_id] += -(f.notional + f.commission) if f.side is Side.BUY \
            else f.notional - f.commission
    for order in orders.values():
        assert order.filled_quantity == by_order[order.id], f"order {order.id} fills differ"
        assert order.status.is_terminal and order.routing is Routing.DONE
    for t in traders:
        mine = {s: q for s, q in held[t].items() if q}
        assert {s: q for s, q in positions[t].items() if q} == mine, f"positions of {t}"
        account = accounts[t]
        assert account is not None and account.cash == cash[t], f"cash of {t}"
    venue_orders = {v.client_order_id: v for v in exchange.orders()}
    assert set(venue_orders) <= {str(i) for i in orders}, "the venue holds an order ordex lacks"
    for order in orders.values():
        seen = venue_orders.get(str(order.id))
        if seen is None:
            assert order.routed_at is None or order.status is OrderStatus.REJECTED
            continue
        assert seen.filled_quantity == order.filled_quantity, f"venue and store differ: {order.id}"
        assert seen.state is VENUE_STATE.get(order.status, seen.state), (order.status, seen.state)
    assert len(ids) > ORDERS // 2 and len(fills) > ORDERS // 4
