"""Rows to domain objects and back, and every query the services need. No rules live here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BindParameter,
    String,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ordex.domain.accounts import Account, RiskLimits, Role
from ordex.domain.fills import Fill
from ordex.domain.instruments import Instrument, InstrumentStatus
from ordex.domain.journal import Actor, JournalEntry, LogAction
from ordex.domain.orders import (
    Order,
    OrderStatus,
    OrderType,
    Routing,
    Side,
    TimeInForce,
)
from ordex.domain.positions import Position
from ordex.domain.status import OrderEvent
from ordex.domain.validation import OpenOrder
from ordex.store.tables import (
    OPEN_STATUS_VALUES,
    accounts,
    fills,
    instruments,
    journal,
    orders,
    positions,
)


def account_from_row(row: Row[Any]) -> Account:
    m = row._mapping
    return Account(
        id=m["id"], name=m["name"], role=Role(m["role"]), cash=m["cash"],
        allow_short=m["allow_short"],
        limits=RiskLimits(
            max_position_shares=m["max_position_shares"],
            max_position_notional=m["max_position_notional"],
            max_order_notional=m["max_order_notional"],
            daily_loss_limit=m["daily_loss_limit"],
            max_open_orders=m["max_open_orders"],
        ),
        rate_limit_per_minute=m["rate_limit_per_minute"],
        day_start_equity=m["day_start_equity"],
        trading_day=m["trading_day"],
        key_version=m["key_version"], key_revoked_at=m["key_revoked_at"],
    )


def instrument_from_row(row: Row[Any]) -> Instrument:
    m = row._mapping
    return Instrument(
        symbol=m["symbol"], name=m["name"], tick_size=m["tick_size"], lot_size=m["lot_size"],
        status=InstrumentStatus(m["status"]), reference_price=m["reference_price"],
    )


def order_from_row(row: Row[Any]) -> Order:
    m = row._mapping
    return Order(
        id=m["id"], trader_id=m["trader_id"], client_order_id=m["client_order_id"],
        symbol=m["symbol"], side=Side(m["side"]), type=OrderType(m["type"]),
        quantity=m["quantity"], limit_price=m["limit_price"], stop_loss=m["stop_loss"],
        take_profit=m["take_profit"], time_in_force=TimeInForce(m["time_in_force"]),
        status=OrderStatus(m["status"]), filled_quantity=m["filled_quantity"],
        average_price=m["average_price"], reserve_price=m["reserve_price"], reason=m["reason"],
        extra=dict(m["extra"] or {}), created_at=m["created_at"], updated_at=m["updated_at"],
        venue=m["venue"], routing=Routing(m["routing"]), venue_order_id=m["venue_order_id"],
        routed_at=m["routed_at"],
        cancel_sent_at=m["cancel_sent_at"], max_slippage_pct=m["max_slippage_pct"],
        slippage_price=m["slippage_price"], timeout_seconds=m["timeout_seconds"],
        expires_at=m["expires_at"], send_attempts=m["send_attempts"],
        next_attempt_at=m["next_attempt_at"], acknowledged_at=m["acknowledged_at"],
    )


def order_values(order: Order) -> dict[str, Any]:
    return {
        "id": order.id, "trader_id": order.trader_id, "client_order_id": order.client_order_id,
        "symbol": order.symbol, "side": order.side.value, "type": order.type.value,
        "quantity": order.quantity, "limit_price": order.limit_price,
        "stop_loss": order.stop_loss, "take_profit": order.take_profit,
        "time_in_force": order.time_in_force.value, "status": order.status.value,
        "filled_quantity": order.filled_quantity, "average_price": order.average_price,
        "reserve_price": order.reserve_price, "reason": order.reason, "extra": order.extra,
        "created_at": order.created_at, "updated_at": order.updated_at,
        "venue": order.venue, "routing": order.routing.value,
        "venue_order_id": order.venue_order_id,
        "routed_at": order.routed_at, "cancel_sent_at": order.cancel_sent_at,
        "max_slippage_pct": order.max_slippage_pct, "slippage_price": order.slippage_price,
        "timeout_seconds": order.timeout_seconds, "expires_at": order.expires_at,
        "send_attempts": order.send_attempts, "next_attempt_at": order.next_attempt_at,
        "acknowledged_at": order.acknowledged_at,
    }


@dataclass(frozen=True, slots=True)
class OrderQuery:
    trader_id: UUID | None = None
    statuses: frozenset[OrderStatus] | None = None
    symbol: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    before_id: UUID | None = None
    limit: int = 100


def _written(value: str) -> BindParameter[str]:
    """A constant written into the SQL text, not bound: the planner sees the value, so a
    partial index whose predicate names it applies (on a cached, prepared statement too)."""
    return literal(value, String, literal_execute=True)


# The predicate of the open-order indexes (tables.py), word for word: every query for open
# orders includes it, which is how SQLite (and PostgreSQL) know those indexes hold its rows.
OPEN_ORDER = orders.c.status.in_([_written(v) for v in OPEN_STATUS_VALUES])


class Repository:
    """Every statement ordex runs, on one connection (and so inside its transaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    # accounts
    async def account_by_key_hash(self, key_hash: str) -> Account | None:
        """The account whose key this is, unless that key was revoked."""
        row = (await self.conn.execute(
            select(accounts).where(accounts.c.api_key_hash == key_hash,
                                   accounts.c.key_revoked_at.is_(None)))).first()
        return account_from_row(row) if row else None

    async def key_versions_total(self) -> tuple[int, int]:
        """(number of accounts, sum of their key versions): moves with every key change."""
        row = (await self.conn.execute(select(
            func.count(), func.coalesce(func.sum(accounts.c.key_version), 0)))).one()
        return int(row[0]), int(row[1])

    async def key_versions(self) -> dict[UUID, int]:
        rows = await self.conn.execute(select(accounts.c.id, accounts.c.key_version))
        return {r.id: r.key_version for r in rows}

    async def account(self, account_id: UUID, *, lock: bool = False) -> Account | None:
        stmt = select(accounts).where(accounts.c.id == account_id)
        if lock and self._postgres:
            stmt = stmt.with_for_update()
        row = (await self.conn.execute(stmt)).first()
        return account_from_row(row) if row else None

    async def account_by_name(self, name: str) -> Account | None:
        row = (await self.conn.execute(select(accounts).where(accounts.c.name == name))).first()
        return account_from_row(row) if row else None

    async def list_accounts(self) -> list[Account]:
        rows = await self.conn.execute(select(accounts).order_by(accounts.c.name))
        return [account_from_row(r) for r in rows]

    async def insert_account(self, account: Account, key_hash: str, now: datetime) -> None:
        await self.conn.execute(insert(accounts).values(
            id=account.id, name=account.name, role=account.role.value, api_key_hash=key_hash,
            cash=account.cash, allow_short=account.allow_short,
            rate_limit_per_minute=account.rate_limit_per_minute, created_at=now, updated_at=now,
            **_limit_values(account.limits),
        ))

    async def update_account(self, account: Account, now: datetime) -> None:
        await self.conn.execute(update(accounts).where(accounts.c.id == account.id).values(
            cash=account.cash, allow_short=account.allow_short,
            rate_limit_per_minute=account.rate_limit_per_minute,
            day_start_equity=account.day_start_equity, trading_day=account.trading_day,
            updated_at=now, **_limit_values(account.limits),
        ))

    async def set_api_key_hash(self, account_id: UUID, key_hash: str, now: datetime) -> None:
        """A new key for the account (the old one stops working, a revocation ends)."""
        await self.conn.execute(update(accounts).where(accounts.c.id == account_id).values(
            api_key_hash=key_hash, key_version=accounts.c.key_version + 1, key_revoked_at=None,
            updated_at=now))

    async def revoke_api_key(self, account_id: UUID, now: datetime) -> None:
        await self.conn.execute(update(accounts).where(
            accounts.c.id == account_id, accounts.c.key_revoked_at.is_(None)).values(
            key_version=accounts.c.key_version + 1, key_revoked_at=now, updated_at=now))

    # instruments
    async def instrument(self, symbol: str) -> Instrument | None:
        row = (await self.conn.execute(
            select(instruments).where(instruments.c.symbol == symbol))).first()
        return instrument_from_row(row) if row else None

    async def instruments(self, symbols: Iterable[str] | None = None) -> list[Instrument]:
        stmt = select(instruments).order_by(instruments.c.symbol)
        if symbols is not None:
            stmt = stmt.where(instruments.c.symbol.in_(list(symbols)))
        return [instrument_from_row(r) for r in await self.conn.execute(stmt)]

    async def upsert_instrument(self, instrument: Instrument, now: datetime) -> None:
        values = {
            "name": instrument.name, "tick_size": instrument.tick_size,
            "lot_size": instrument.lot_size, "status": instrument.status.value,
            "reference_price": instrument.reference_price, "updated_at": now,
        }
        done = await self.conn.execute(
            update(instruments).where(instruments.c.symbol == instrument.symbol).values(**values))
        if done.rowcount == 0:
            await self.conn.execute(
                insert(instruments).values(symbol=instrument.symbol, **values))

    # positions
    async def positions(self, account_id: UUID) -> list[Position]:
        rows = await self.conn.execute(
            select(positions).where(positions.c.account_id == account_id)
            .order_by(positions.c.symbol))
        return [Position(r.symbol, r.quantity, r.average_cost, r.realized_pnl) for r in rows]

    async def set_position(self, account_id: UUID, pos: Position,
                           now: datetime) -> None:
        values = {"quantity": pos.quantity, "average_cost": pos.average_cost,
                  "realized_pnl": pos.realized_pnl, "updated_at": now}
        where = (positions.c.account_id == account_id, positions.c.symbol == pos.symbol)
        done = await self.conn.execute(update(positions).where(*where).values(**values))
        if done.rowcount == 0:
            await self.conn.execute(insert(positions).values(
                account_id=account_id, symbol=pos.symbol, **values))

    # orders
    async def insert_order(self, order: Order) -> None:
        await self.conn.execute(insert(orders).values(**order_values(order)))

    async def update_order(self, order: Order) -> None:
        values = order_values(order)
        for key in ("id", "trader_id", "created_at"):
            values.pop(key)
        await self.conn.execute(update(orders).where(orders.c.id == order.id).values(**values))

    async def order(self, order_id: UUID, trader_id: UUID | None = None, *,
                    lock: bool = False) -> Order | None:
        stmt = select(orders).where(orders.c.id == order_id)
        if trader_id is not None:
            stmt = stmt.where(orders.c.trader_id == trader_id)
        if lock and self._postgres:
            stmt = stmt.with_for_update()
        row = (await self.conn.execute(stmt)).first()
        return order_from_row(row) if row else None

    async def order_by_client_id(self, trader_id: UUID, client_order_id: str) -> Order | None:
        row = (await self.conn.execute(select(orders).where(
            orders.c.trader_id == trader_id,
            orders.c.client_order_id == client_order_id))).first()
        return order_from_row(row) if row else None

    async def open_exposure(self, trader_id: UUID) -> list[OpenOrder]:
        """Just what the pre-trade checks need of each open order."""
        rows = await self.conn.execute(select(
            orders.c.symbol, orders.c.side, orders.c.quantity, orders.c.filled_quantity,
            orders.c.reserve_price,
        ).where(orders.c.trader_id == trader_id, OPEN_ORDER))
        return [OpenOrder(symbol, Side(side), quantity - filled, reserve)
                for symbol, side, quantity, filled, reserve in rows]

    async def open_orders(self, trader_id: UUID) -> list[Order]:
        rows = await self.conn.execute(select(orders).where(
            orders.c.trader_id == trader_id, OPEN_ORDER))
        return [order_from_row(r) for r in rows]

    async def orders(self, q: OrderQuery) -> list[Order]:
        stmt = select(orders)
        if q.trader_id is not None:
            stmt = stmt.where(orders.c.trader_id == q.trader_id)
        if q.statuses:
            stmt = stmt.where(orders.c.status.in_(sorted(s.value for s in q.statuses)))
        if q.symbol:
            stmt = stmt.where(orders.c.symbol == q.symbol)
        if q.created_from:
            stmt = stmt.where(orders.c.created_at >= q.created_from)
        if q.created_to:
            stmt = stmt.where(orders.c.created_at < q.created_to)
        if q.before_id:
            stmt = stmt.where(orders.c.id < q.before_id)
        stmt = stmt.order_by(orders.c.id.desc()).limit(q.limit)
        return [order_from_row(r) for r in await self.conn.execute(stmt)]

    async def orders_by_ids(self, ids: Iterable[UUID]) -> list[Order]:
        wanted = list(ids)
        if not wanted:
            return []
        rows = await self.conn.execute(select(orders).where(orders.c.id.in_(wanted)))
        return [order_from_row(r) for r in rows]

    async def count_orders(self, trader_id: UUID | None = None) -> int:
        stmt = select(func.count()).select_from(orders)
        if trader_id is not None:
            stmt = stmt.where(orders.c.trader_id == trader_id)
        return int((await self.conn.execute(stmt)).scalar_one())

    # fills
    async def fill_exec_ids(self, order_id: UUID, venue: str, starting: str) -> list[str]:
        """The exec ids of the order's fills from ``venue`` that begin with ``starting``."""
        rows = await self.conn.execute(select(fills.c.exec_id).where(
            fills.c.order_id == order_id, fills.c.venue == venue,
            fills.c.exec_id.startswith(starting, autoescape=True)))
        return [r.exec_id for r in rows]

    async def insert_fill(self, fill: Fill) -> None:
        await self.conn.execute(insert(fills).values(
            id=fill.id, order_id=fill.order_id, trader_id=fill.trader_id, symbol=fill.symbol,
            side=fill.side.value, timestamp=fill.timestamp, quantity=fill.quantity,
            price=fill.price, venue=fill.venue, commission=fill.commission,
            exec_id=fill.exec_id))

    async def fills(self, *, trader_id: UUID | None = None, order_id: UUID | None = None,
                    symbol: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, before_id: UUID | None = None,
                    limit: int = 1000) -> list[Fill]:
        stmt = select(fills)
        if trader_id is not None:
            stmt = stmt.where(fills.c.trader_id == trader_id)
        if order_id is not None:
            stmt = stmt.where(fills.c.order_id == order_id)
        if symbol:
            stmt = stmt.where(fills.c.symbol == symbol)
        if since is not None:
            stmt = stmt.where(fills.c.timestamp >= since)
        if until is not None:
            stmt = stmt.where(fills.c.timestamp < until)
        if before_id is not None:
            stmt = stmt.where(fills.c.id < before_id)
        stmt = stmt.order_by(fills.c.id.desc()).limit(limit)
        return [Fill(r.id, r.order_id, r.trader_id, r.symbol, Side(r.side), r.timestamp,
                     r.quantity, r.price, r.venue, r.commission, r.exec_id)
                for r in await self.conn.execute(stmt)]

    async def position(self, account_id: UUID, symbol: str) -> Position:
        row = (await self.conn.execute(select(positions).where(
            positions.c.account_id == account_id, positions.c.symbol == symbol))).first()
        if row is None:
            return Position(symbol)
        return Position(symbol, row.quantity, row.average_cost, row.realized_pnl)

    async def set_cash(self, account_id: UUID, cash: Decimal, at: datetime) -> None:
        await self.conn.execute(update(accounts).where(accounts.c.id == account_id).values(
            cash=cash, updated_at=at))

    # the journal
    async def events_after(self, after: int, *, trader_id: UUID | None = None,
                           order_id: UUID | None = None, limit: int = 1000,
                           per_trader: bool = False) -> list[OrderEvent]:
        """The stream's rows after position ``after``: the trader's own count when
        ``per_trader`` (then ``trader_id`` or ``order_id`` names whose), else the service-wide
        one."""
        j = journal.c
        position = j.trader_seq if per_trader else j.stream_seq
        if per_trader and trader_id is None and order_id is None:
            raise ValueError("a per-trader position needs a trader or an order")
        stmt = select(j.stream_seq, j.order_id, j.trader_id, j.event, j.status, j.timestamp,
                      j.payload, j.trader_seq).where(position > after)
        if trader_id is not None:
            stmt = stmt.where(j.trader_id == trader_id)
        if order_id is not None:
            stmt = stmt.where(j.order_id == order_id)
        stmt = stmt.order_by(position).limit(limit)
        return [OrderEvent(r.stream_seq, r.order_id, r.trader_id, r.event, r.status,
                           r.timestamp, dict(r.payload or {}), r.trader_seq)
                for r in await self.conn.execute(stmt)]

    async def last_event_seq(self, trader_id: UUID | None = None) -> int:
        """The stream's last service-wide position, or with ``trader_id`` that trader's own."""
        if trader_id is None:
            stmt = select(func.coalesce(func.max(journal.c.stream_seq), 0))
        else:
            stmt = select(func.coalesce(func.max(journal.c.trader_seq), 0)).where(
                journal.c.trader_id == trader_id)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def last_journal_seq(self) -> int:
        stmt = select(func.coalesce(func.max(journal.c.seq), 0))
        return int((await self.conn.execute(stmt)).scalar_one())

    async def journal(self, *, trader_id: UUID | None = None, order_id: UUID | None = None,
                      limit: int = 1000) -> list[JournalEntry]:
        """The journal's rows (of a trader, of an order), oldest first."""
        stmt = select(journal)
        if trader_id is not None:
            stmt = stmt.where(journal.c.trader_id == trader_id)
        if order_id is not None:
            stmt = stmt.where(journal.c.order_id == order_id)
        stmt = stmt.order_by(journal.c.seq).limit(limit)
        return [journal_from_row(r) for r in await self.conn.execute(stmt)]


def journal_from_row(row: Row[Any]) -> JournalEntry:
    m = row._mapping
    return JournalEntry(
        m["trader_id"], m["order_id"], Actor(m["actor"]), LogAction(m["action"]), m["status"],
        m["timestamp"], m["reason"], m["symbol"], m["quantity"], m["price"], m["venue"],
        dict(m["details"] or {}), m["event"],
        None if m["payload"] is None else dict(m["payload"]), m["seq"], m["stream_seq"],
        m["trader_seq"])


def _limit_values(limits: RiskLimits) -> dict[str, Any]:
    return {
        "max_position_shares": limits.max_position_shares,
        "max_position_notional": limits.max_position_notional,
        "max_order_notional": limits.max_order_notional,
        "daily_loss_limit": limits.daily_loss_limit,
        "max_open_orders": limits.max_open_orders,
    }
