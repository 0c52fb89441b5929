"""Upgrading a store written before the journal: the execution log and the status events become
one table, every row kept in time order, and no stream position moves (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import sqlalchemy as sa

from ordex.domain.journal import Actor, LogAction
from ordex.store.database import Database
from ordex.store.migrate import upgrade
from ordex.store.types import UTCDateTime
from ordex.store.uow import reading

T0 = datetime(2026, 3, 2, 14, 30, 5, 123456, tzinfo=UTC)

old_events = sa.table(
    "order_events", sa.column("order_id", sa.Uuid), sa.column("trader_id", sa.Uuid),
    sa.column("type", sa.String), sa.column("status", sa.String),
    sa.column("timestamp", UTCDateTime), sa.column("payload", sa.JSON),
    sa.column("trader_seq", sa.Integer))
old_logs = sa.table(
    "execution_logs", sa.column("id", sa.Uuid), sa.column("order_id", sa.Uuid),
    sa.column("trader_id", sa.Uuid), sa.column("action", sa.String),
    sa.column("status", sa.String), sa.column("timestamp", UTCDateTime),
    sa.column("reason", sa.Text), sa.column("details", sa.JSON))


async def test_events_are_numbered_per_trader_then_kept_by_the_journal(empty_db: Database) -> None:
    await upgrade(empty_db.writer, "0004")
    alice, bob = uuid4(), uuid4()
    owners = [alice, bob, bob, alice, bob, alice, alice]
    async with empty_db.writer.begin() as conn:
        for n, owner in enumerate(owners):
            await conn.execute(sa.insert(old_events).values(
                order_id=uuid4(), trader_id=owner, type="accepted", status="accepted",
                timestamp=T0 + timedelta(seconds=n), payload={}))
    await upgrade(empty_db.writer)
    async with reading(empty_db) as repo:
        events = await repo.events_after(0)
    assert [(e.trader_id, e.trader_seq) for e in events] == [
        (alice, 1), (bob, 1), (bob, 2), (alice, 2), (bob, 3), (alice, 3), (alice, 4)]
    assert [e.seq for e in events] == list(range(1, 8))


async def test_logs_and_events_merge_in_time_order_and_keep_their_positions(
        empty_db: Database) -> None:
    await upgrade(empty_db.writer, "0007")
    trader, order = uuid4(), uuid4()
    log_ids = [UUID(int=n) for n in range(1, 4)]
    async with empty_db.writer.begin() as conn:
        await conn.execute(sa.insert(old_logs), [
            {"id": log_ids[0], "order_id": order, "trader_id": trader, "action": "submit",
             "status": "pending_new", "timestamp": T0, "reason": None,
             "details": {"symbol": "AAPL", "quantity": "10", "price": "189.5"}},
            {"id": log_ids[1], "order_id": order, "trader_id": trader, "action": "fill",
             "status": "partially_filled", "timestamp": T0 + timedelta(seconds=2),
             "reason": None, "details": {"venue": "SIM", "exec_id": "E1", "quantity": "4",
                                         "price": "189.25", "symbol": "AAPL"}},
            {"id": log_ids[2], "order_id": None, "trader_id": trader, "action": "reject",
             "status": "rejected", "timestamp": T0 + timedelta(seconds=3),
             "reason": "Insufficient funds", "details": {"codes": ["insufficient_funds"],
                                                         "price": "None"}},
        ])
        for n, (kind, at) in enumerate([("accepted", 1), ("partially_filled", 2)], 1):
            await conn.execute(sa.insert(old_events).values(
                order_id=order, trader_id=trader, type=kind, status=kind,
                timestamp=T0 + timedelta(seconds=at), payload={"n": n}, trader_seq=n))
    await upgrade(empty_db.writer)

    async with reading(empty_db) as repo:
        rows = await repo.journal(trader_id=trader)
        events = await repo.events_after(0, trader_id=trader, per_trader=True)
        last_seq = await repo.last_journal_seq()
        tables = await repo.conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert [(r.seq, r.action, r.event) for r in rows] == [
        (1, LogAction.SUBMIT, None), (2, LogAction.APPROVE, "accepted"),
        (3, LogAction.FILL, "partially_filled"), (4, LogAction.FILL, None),
        (5, LogAction.REJECT, None)]
    assert last_seq == 5
    assert [(e.seq, e.trader_seq, e.payload) for e in events] == [(1, 1, {"n": 1}),
                                                                  (2, 2, {"n": 2})]
    submit, _, _, fill, reject = rows
    assert (submit.actor, submit.symbol, submit.quantity, submit.price) == (
        Actor.TRADER, "AAPL", Decimal(10), Decimal("189.5"))
    assert (fill.actor, fill.venue, fill.quantity, fill.price, fill.details["exec_id"]) == (
        Actor.VENUE, "SIM", Decimal(4), Decimal("189.25"), "E1")
    assert (reject.order_id, reject.price, reject.reason) == (None, None, "Insufficient funds")
    assert reject.details["codes"] == ["insufficient_funds"]
    assert {"order_events", "execution_logs"}.isdisjoint(tables) and "journal" in tables
