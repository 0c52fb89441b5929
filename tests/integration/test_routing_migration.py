"""Upgrading a store written before orders stored their venue lifecycle: every order's
``routing`` is what ordex derived before from its status and columns, the column is required
from then on, and the two partial indexes no query used are gone (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from ordex.domain.orders import Routing
from ordex.store.database import Database
from ordex.store.migrate import alembic_config, upgrade
from ordex.store.tables import accounts, instruments
from ordex.store.types import ExactDecimal, UTCDateTime
from ordex.store.uow import reading

T0 = datetime(2026, 3, 2, 14, 30, 5, 123456, tzinfo=UTC)
TRADER = UUID("00000000-0000-7000-8000-0000000000aa")
DEAD = {"ix_orders_unconfirmed", "ix_orders_deadline"}

# The orders table as revision 0008 left it (no routing column).
old_orders = sa.table(
    "orders", sa.column("id", sa.Uuid), sa.column("trader_id", sa.Uuid),
    sa.column("symbol", sa.String), sa.column("side", sa.String), sa.column("type", sa.String),
    sa.column("quantity", ExactDecimal), sa.column("limit_price", ExactDecimal),
    sa.column("time_in_force", sa.String), sa.column("status", sa.String),
    sa.column("filled_quantity", ExactDecimal), sa.column("reserve_price", ExactDecimal),
    sa.column("extra", sa.JSON), sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime), sa.column("venue", sa.String),
    sa.column("venue_order_id", sa.String), sa.column("routed_at", UTCDateTime),
    sa.column("cancel_sent_at", UTCDateTime), sa.column("expires_at", UTCDateTime),
    sa.column("send_attempts", sa.Integer), sa.column("next_attempt_at", UTCDateTime))

SENT = {"venue": "SIM", "routed_at": T0 + timedelta(milliseconds=2), "send_attempts": 1}
AT_VENUE = {**SENT, "venue_order_id": "SIM-1"}
# (status, columns, the routing the upgrade must give it)
STATES: list[tuple[str, dict[str, Any], Routing]] = [
    ("accepted", {}, Routing.PENDING),
    ("accepted", {"venue": "SIM", "send_attempts": 1,  # backing off after a failed attempt
                  "next_attempt_at": T0 + timedelta(seconds=2)}, Routing.PENDING),
    ("accepted", SENT, Routing.UNCONFIRMED),
    ("pending_cancel", SENT, Routing.UNCONFIRMED),
    ("accepted", AT_VENUE, Routing.AT_VENUE),
    ("partially_filled", {**AT_VENUE, "filled_quantity": Decimal(4)}, Routing.AT_VENUE),
    ("pending_cancel", {**AT_VENUE, "cancel_sent_at": T0 + timedelta(seconds=1)},
     Routing.AT_VENUE),
    ("filled", {**AT_VENUE, "filled_quantity": Decimal(10)}, Routing.DONE),
    ("cancelled", AT_VENUE, Routing.DONE),
    ("cancelled", {}, Routing.DONE),  # cancelled before any venue had it
    ("expired", {"expires_at": T0 + timedelta(seconds=30)}, Routing.DONE),
    ("rejected", SENT, Routing.DONE),
    ("failed", {**SENT, "send_attempts": 4}, Routing.DONE),
]


def _row(status: str, columns: dict[str, Any]) -> dict[str, Any]:
    return {"id": uuid4(), "trader_id": TRADER, "symbol": "AAPL", "side": "buy",
            "type": "limit", "quantity": Decimal(10), "limit_price": Decimal("189.5"),
            "time_in_force": "day", "status": status, "filled_quantity": Decimal(0),
            "reserve_price": Decimal("189.5"), "extra": {}, "created_at": T0,
            "updated_at": T0 + timedelta(seconds=1), "venue": None, "venue_order_id": None,
            "routed_at": None, "cancel_sent_at": None, "expires_at": None, "send_attempts": 0,
            "next_attempt_at": None, **columns}


async def _at_0008(empty_db: Database) -> list[dict[str, Any]]:
    """The store at revision 0008 with one order in each state of ``STATES``."""
    await upgrade(empty_db.writer, "0008")
    rows = [_row(status, columns) for status, columns, _ in STATES]
    async with empty_db.writer.begin() as conn:
        await conn.execute(sa.insert(accounts).values(
            id=TRADER, name="t", role="trader", api_key_hash="0" * 64, cash=Decimal(10_000),
            allow_short=False, max_position_shares=Decimal(1000),
            max_position_notional=Decimal(10**6), max_order_notional=Decimal(10**5),
            daily_loss_limit=Decimal(1000), max_open_orders=100, created_at=T0,
            updated_at=T0))
        await conn.execute(sa.insert(instruments).values(
            symbol="AAPL", name="Apple", tick_size=Decimal("0.01"), lot_size=Decimal(1),
            status="active", reference_price=Decimal(189), updated_at=T0))
        await conn.execute(sa.insert(old_orders), rows)
    return rows


def _schema(conn: Connection) -> tuple[dict[str, Any], dict[str, Any]]:
    inspector = sa.inspect(conn)
    columns = {c["name"]: c for c in inspector.get_columns("orders")}
    indexes = {ix["name"]: ix for ix in inspector.get_indexes("orders")}
    return columns, indexes


def _where(index: dict[str, Any]) -> dict[str, str]:
    """A partial index's predicate, as the database holds it."""
    return {k: str(v) for k, v in index.get("dialect_options", {}).items() if k.endswith("where")}


async def test_each_orders_routing_is_what_was_derived_before_and_the_dead_indexes_go(
        empty_db: Database) -> None:
    rows = await _at_0008(empty_db)
    async with empty_db.writer.connect() as conn:
        _, before = await conn.run_sync(_schema)
    assert DEAD <= set(before)

    await upgrade(empty_db.writer)

    async with empty_db.writer.connect() as conn:
        stored = dict((await conn.execute(sa.text("SELECT id, routing FROM orders"))).all())
        columns, after = await conn.run_sync(_schema)
    by_id = {(r if isinstance(r, UUID) else UUID(str(r))): v for r, v in stored.items()}
    assert [by_id[row["id"]] for row in rows] == [routing.value for _, _, routing in STATES]
    assert columns["routing"]["nullable"] is False
    assert DEAD.isdisjoint(after)
    assert set(after) == set(before) - DEAD  # nothing else added or lost
    assert _where(after["ix_orders_open"]) == _where(before["ix_orders_open"]) != {}
    async with reading(empty_db) as repo:
        read = [await repo.order(row["id"]) for row in rows]
    assert [o.routing if o else None for o in read] == [routing for _, _, routing in STATES]


async def test_without_a_routing_an_order_row_is_refused_and_a_downgrade_restores_the_indexes(
        empty_db: Database) -> None:
    rows = await _at_0008(empty_db)
    await upgrade(empty_db.writer)
    with pytest.raises(sa.exc.IntegrityError):
        async with empty_db.writer.begin() as conn:
            await conn.execute(sa.insert(old_orders), [_row("accepted", {})])

    def down(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0008")

    async with empty_db.writer.begin() as conn:
        await conn.run_sync(down)
    async with empty_db.writer.connect() as conn:
        columns, indexes = await conn.run_sync(_schema)
        count = (await conn.execute(sa.text("SELECT count(*) FROM orders"))).scalar_one()
    assert "routing" not in columns and DEAD <= set(indexes)
    assert count == len(rows)
