"""The order path's writes, one transaction per batch (placeholder through the repository)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy import insert

from ordex.domain.accounts import Account
from ordex.domain.fills import ExecutionLogEntry, Fill
from ordex.domain.orders import Order
from ordex.domain.positions import Position
from ordex.domain.status import OrderEvent
from ordex.store.database import Database
from ordex.store.tables import order_events
from ordex.store.uow import UnitOfWork


@dataclass(slots=True)
class Batch:
    new_orders: list[Order] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    positions: list[tuple[UUID, Position, datetime]] = field(default_factory=list)
    accounts: list[tuple[Account, datetime]] = field(default_factory=list)
    logs: list[ExecutionLogEntry] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new_orders or self.orders or self.fills or self.positions
                    or self.accounts or self.logs or self.events)


class RowWriter(Protocol):
    async def write(self, batch: Batch) -> None: ...
    async def close(self) -> None: ...


class RepositoryWriter:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(self, batch: Batch) -> None:
        async with UnitOfWork(self.db) as uow:
            repo = uow.repo
            for order in batch.new_orders:
                await repo.insert_order(order)
            for order in batch.orders:
                await repo.update_order(order)
            for fill in batch.fills:
                await repo.insert_fill(fill)
            for owner, pos, at in batch.positions:
                await repo.set_position(owner, pos, at)
            for account, at in batch.accounts:
                await repo.update_account(account, at)
            if batch.logs:
                await repo.log(*batch.logs)
            for e in batch.events:
                await repo.conn.execute(insert(order_events).values(
                    seq=e.seq, order_id=e.order_id, trader_id=e.trader_id, type=e.type,
                    status=e.status, timestamp=e.timestamp, payload=e.payload,
                    trader_seq=e.trader_seq))
            await uow.commit()

    async def close(self) -> None:
        return None


async def open_writer(db: Database) -> RowWriter:
    return RepositoryWriter(db)
