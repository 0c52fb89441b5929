"""A SQLite store with a trading history, written before the service starts.

``prepare_store`` migrates the schema and seeds the demo as ``ordex serve`` would; ``seed_history``
then bulk-inserts closed orders of some history traders straight into the store's tables with
SQLAlchemy core (far faster than through the API): each order with what ordex itself would have
written for it (its status events, its execution log, its fill when filled), and the traders'
positions and cash to match their fills. Only closed orders (filled, cancelled, rejected), so the
venue holds nothing of them and the service has nothing to recover.
"""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from msgspec.structs import replace
from sqlalchemy import Connection, create_engine, func, insert, select, update

from bench.core_inprocess import active_instruments
from ordex.bootstrap import build, prepare
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.domain.journal import Actor, JournalEntry, LogAction, entry
from ordex.domain.orders import Order, OrderStatus, OrderType, Routing, Side, TimeInForce
from ordex.domain.status import LastFill, payload
from ordex.store.repository import order_values
from ordex.store.tables import accounts, fills, journal, orders, positions

VENUE = "SIM"
CHUNK = 5_000
HISTORY_DAYS = 30
FEE_BP = Decimal("1.0")


async def prepare_store(data_dir: Path, history_traders: int) -> list[UUID]:
    """Schema, instruments, demo accounts (as ``ordex serve`` seeds them) and the history
    traders; returns the history traders' ids."""
    services = build(Settings(data_dir=data_dir, database_url=None, seed_demo=True,
                              execution_enabled=False))
    try:
        await prepare(services)
        ids = []
        for n in range(history_traders):
            issued = await services.accounts.create(f"history-{n:03d}", Role.TRADER,
                                                    Decimal(1_000_000_000))
            ids.append(issued.account.id)
        return ids
    finally:
        await services.close()


def _uuid7_at(at: datetime, rng: random.Random) -> UUID:
    ms = int(at.timestamp() * 1000)
    rand = rng.getrandbits(74)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return UUID(int=value)


class Numbers:
    """The journal's positions, as the execution core's writer assigns them, after those the
    store holds already (the demo's)."""

    def __init__(self, conn: Connection | None = None) -> None:
        self.seq = 0
        self.stream_seq = 0
        self.trader_seq: dict[UUID, int] = defaultdict(int)
        if conn is not None:
            last = conn.execute(select(func.max(journal.c.seq),
                                       func.max(journal.c.stream_seq))).one()
            self.seq, self.stream_seq = last[0] or 0, last[1] or 0
            for trader, seq in conn.execute(select(journal.c.trader_id,
                                                   func.max(journal.c.trader_seq))
                                            .group_by(journal.c.trader_id)):
                self.trader_seq[trader] = seq or 0

    def row(self, e: JournalEntry) -> dict[str, Any]:
        self.seq += 1
        e = replace(e, seq=self.seq)
        if e.event is not None:
            self.stream_seq += 1
            self.trader_seq[e.trader_id] += 1
            e = replace(e, stream_seq=self.stream_seq, trader_seq=self.trader_seq[e.trader_id])
        return {c.name: getattr(e, c.name) for c in journal.c}


def seed_history(db_path: Path, traders: list[UUID], count: int, seed: int = 1) -> int:
    """``count`` closed orders over the last HISTORY_DAYS days, spread over ``traders``: 70%
    filled market buys, 20% cancelled limit buys, 10% rejected by the venue. Returns the rows
    written in all."""
    rng = random.Random(seed)
    universe = active_instruments()
    end = datetime.now(UTC) - timedelta(hours=1)
    step = timedelta(days=HISTORY_DAYS) / max(count, 1)
    start = end - step * count
    held: dict[tuple[UUID, str], tuple[Decimal, Decimal]] = {}
    spent: dict[UUID, Decimal] = defaultdict(Decimal)
    written = 0
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.begin() as conn:
            numbers = Numbers(conn)
            for first in range(0, count, CHUNK):
                rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for i in range(first, min(first + CHUNK, count)):
                    _one_order(i, start + step * i, traders[i % len(traders)],
                               universe[i % len(universe)], rng, numbers, held, spent, rows)
                for table in (orders, fills, journal):
                    if rows[table.name]:
                        conn.execute(insert(table), rows[table.name])
                        written += len(rows[table.name])
            now = datetime.now(UTC)
            position_rows = [{"account_id": trader, "symbol": symbol, "quantity": quantity,
                              "average_cost": cost, "realized_pnl": Decimal(0),
                              "updated_at": now}
                             for (trader, symbol), (quantity, cost) in held.items()]
            if position_rows:
                conn.execute(insert(positions), position_rows)
                written += len(position_rows)
            for trader, amount in spent.items():
                conn.execute(update(accounts).where(accounts.c.id == trader).values(
                    cash=Decimal(1_000_000_000) - amount, updated_at=now))
    finally:
        engine.dispose()
    return written


def _one_order(i: int, at: datetime, trader: UUID, instrument: Any, rng: random.Random,
               numbers: Numbers, held: dict[tuple[UUID, str], tuple[Decimal, Decimal]],
               spent: dict[UUID, Decimal], rows: dict[str, list[dict[str, Any]]]) -> None:
    kind = i % 10
    quantity = Decimal(1 + i % 20)
    price = instrument.reference_price
    filled = kind < 7
    order = Order(
        id=_uuid7_at(at, rng), trader_id=trader, symbol=instrument.symbol, side=Side.BUY,
        type=OrderType.MARKET if filled else OrderType.LIMIT, quantity=quantity,
        time_in_force=TimeInForce.DAY, created_at=at, updated_at=at,
        client_order_id=f"history-{i}",
        limit_price=None if filled else (price * Decimal("0.95")).quantize(Decimal("0.01")),
        status=OrderStatus.ACCEPTED, reserve_price=price, venue=VENUE,
        routing=Routing.AT_VENUE, venue_order_id=f"H{i}", routed_at=at, send_attempts=1)
    accepted = order
    done_at = at + timedelta(milliseconds=20 if filled else 30_000)
    if filled:
        fee = (quantity * price * FEE_BP / Decimal(10_000)).quantize(Decimal("0.01"))
        order = replace(order, status=OrderStatus.FILLED, routing=Routing.DONE,
                        filled_quantity=quantity, average_price=price, updated_at=done_at)
        rows["fills"].append({
            "id": _uuid7_at(done_at, rng), "order_id": order.id, "trader_id": trader,
            "symbol": order.symbol, "side": order.side.value, "timestamp": done_at,
            "quantity": quantity, "price": price, "venue": VENUE, "commission": fee,
            "exec_id": f"H{i}-1"})
        key = (trader, order.symbol)
        before, cost = held.get(key, (Decimal(0), Decimal(0)))
        total = before + quantity
        held[key] = (total, (before * cost + quantity * price) / total)
        spent[trader] += quantity * price + fee
        body = payload(order, LastFill(quantity, price, VENUE, done_at))
        action = LogAction.FILL
        reason = None
    elif kind < 9:
        reason = "cancelled by trader"
        order = replace(order, status=OrderStatus.CANCELLED, routing=Routing.DONE,
                        reason=reason, updated_at=done_at, cancel_sent_at=done_at)
        body = payload(order)
        action = LogAction.CANCEL
    else:
        reason = "rejected by the venue"
        order = replace(order, status=OrderStatus.REJECTED, routing=Routing.DONE,
                        reason=reason, updated_at=done_at)
        body = payload(order)
        action = LogAction.REJECT
    rows["orders"].append(order_values(order))
    pending = replace(accepted, status=OrderStatus.PENDING_NEW)
    rows["journal"] += [numbers.row(e) for e in (
        entry(pending, LogAction.SUBMIT, at, Actor.TRADER),
        replace(entry(accepted, LogAction.APPROVE, at, Actor.ENGINE), event="accepted",
                payload=payload(accepted)),
        entry(accepted, LogAction.EXECUTE, at, Actor.ENGINE, details={"attempt": 1}),
        replace(entry(order, action, done_at, Actor.VENUE, reason=reason),
                event=order.status.value, payload=body),
    )]


def analyze(db_path: Path) -> None:
    """Planner statistics, as an operator's ``ANALYZE`` (or ``PRAGMA optimize``) leaves them."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("ANALYZE")
