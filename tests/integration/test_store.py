"""The store on SQLite and on a real PostgreSQL server: persistence, logs, races, schema."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from msgspec.structs import replace
from sqlalchemy import Connection

from ordex.bootstrap import Services
from ordex.domain.accounts import Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Code, DomainError
from ordex.domain.orders import OrderStatus, OrderType, Side
from ordex.store.migrate import upgrade
from ordex.store.tables import metadata
from ordex.store.uow import reading


async def trader(services: Services, cash: str = "100000") -> SubmitOrder:
    issued = await services.accounts.create("t", Role.TRADER, Decimal(cash))
    return SubmitOrder(trader_id=issued.account.id, symbol="AAPL", side=Side.BUY,
                       type=OrderType.LIMIT, quantity=Decimal(10),
                       limit_price=Decimal("189.50"))


async def test_an_accepted_order_is_committed_with_its_log(services: Services) -> None:
    cmd = await trader(services)
    result = await services.orders.submit(cmd)
    assert result.created and result.order.status is OrderStatus.ACCEPTED
    async with reading(services.db) as repo:
        stored = await repo.order(result.order.id)
        logs = await repo.journal(order_id=result.order.id)
    assert stored == result.order
    assert [(e.action, e.status) for e in logs] == [("submit", "pending_new"),
                                                    ("approve", "accepted")]
    assert all(e.trader_id == cmd.trader_id for e in logs)


async def test_a_rejection_is_logged_and_writes_no_order(services: Services) -> None:
    cmd = await trader(services, cash="100")
    with pytest.raises(DomainError) as refused:
        await services.orders.submit(cmd)
    assert refused.value.violations[0].code is Code.INSUFFICIENT_FUNDS
    async with reading(services.db) as repo:
        assert await repo.count_orders() == 0
        logs = await repo.journal(trader_id=cmd.trader_id)
    assert len(logs) == 1
    entry = logs[0]
    assert (entry.action, entry.status, entry.order_id) == ("reject", "rejected", None)
    assert entry.details["codes"] == ["insufficient_funds"]
    assert entry.reason and "Insufficient funds" in entry.reason


async def test_decimals_and_times_round_trip_exactly(services: Services) -> None:
    cmd = await trader(services)
    precise = replace(cmd, symbol="INTC", quantity=Decimal("3"), limit_price=Decimal("30.15"),
                      stop_loss=Decimal("29.12345678"))
    order = (await services.orders.submit(precise)).order
    async with reading(services.db) as repo:
        stored = await repo.order(order.id)
    assert stored is not None
    assert stored.stop_loss == Decimal("29.12345678")
    assert stored.created_at == order.created_at
    assert stored.created_at.tzinfo is UTC and stored.created_at.microsecond == \
        order.created_at.microsecond


async def test_concurrent_buys_never_overspend(services: Services) -> None:
    # 20 orders of $1,895 each against $18,950 of cash: exactly 10 can be accepted.
    cmd = await trader(services, cash="18950")
    results = await asyncio.gather(*(services.orders.submit(cmd) for _ in range(20)),
                                   return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(accepted) == 10 and len(refused) == 10
    assert all(r.violations[0].code is Code.INSUFFICIENT_FUNDS for r in refused)


async def test_concurrent_duplicates_make_one_order(services: Services) -> None:
    cmd = await trader(services)
    keyed = replace(cmd, client_order_id="dup-1")
    results = await asyncio.gather(*(services.orders.submit(keyed) for _ in range(20)))
    assert sum(r.created for r in results) == 1
    assert len({r.order.id for r in results}) == 1
    async with reading(services.db) as repo:
        assert await repo.count_orders() == 1


async def test_migrations_are_idempotent_and_match_the_tables(services: Services) -> None:
    await upgrade(services.db.writer)

    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with services.db.writer.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_time_filters_and_pagination(services: Services) -> None:
    from ordex.store.repository import OrderQuery

    cmd = await trader(services)
    made = [(await services.orders.submit(cmd)).order for _ in range(5)]
    async with reading(services.db) as repo:
        page1 = await repo.orders(OrderQuery(trader_id=cmd.trader_id, limit=2))
        page2 = await repo.orders(OrderQuery(trader_id=cmd.trader_id, limit=2,
                                             before_id=page1[-1].id))
        later = await repo.orders(OrderQuery(trader_id=cmd.trader_id,
                                             created_from=made[3].created_at))
        none = await repo.orders(OrderQuery(trader_id=cmd.trader_id,
                                            created_to=datetime(2000, 1, 1, tzinfo=UTC)))
    assert [o.id for o in page1 + page2] == [o.id for o in reversed(made)][:4]
    assert {o.id for o in later} == {made[3].id, made[4].id}
    assert none == []
