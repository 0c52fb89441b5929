"""A store with a long history, seeded in seconds: many orders over several traders, most of them
final, a few hundred open in every routing state, with their fills, events and execution log.

The orders are written by the driver in one batch (values converted by the schema's own column
types); fills, events and log rows are derived from them by ``INSERT ... SELECT`` in the database.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    String,
    Uuid,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from ordex.domain.journal import Actor, LogAction
from ordex.domain.orders import OrderStatus, Routing
from ordex.store.database import Database
from ordex.store.tables import fills, journal, orders
from ordex.store.types import UTCDateTime

VENUE = "simulated"
SYMBOLS = ("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "TSLA", "META", "JPM")
SPACING = timedelta(seconds=5)  # between two orders of the history
ACK_AFTER = timedelta(milliseconds=40)
TIMEOUT_SECONDS = 300

_S = OrderStatus
FINAL_MIX = ((_S.FILLED, 60), (_S.CANCELLED, 22), (_S.REJECTED, 8), (_S.EXPIRED, 6),
             (_S.FAILED, 4))
# What an open order is waiting for, and how often (in percent of the open orders).
OPEN_MIX = (("queued", 5), ("backing_off", 3), ("unconfirmed", 5), ("resting", 55),
            ("partial", 15), ("cancel_wanted", 7), ("cancel_sent", 10))
_LOG_ACTION = {_S.FILLED: LogAction.FILL, _S.PARTIALLY_FILLED: LogAction.FILL,
               _S.CANCELLED: LogAction.CANCEL, _S.PENDING_CANCEL: LogAction.CANCEL,
               _S.REJECTED: LogAction.REJECT, _S.EXPIRED: LogAction.EXPIRE,
               _S.FAILED: LogAction.FAIL}


@dataclass
class History:
    """What was seeded, and samples of it for queries to look up."""

    now: datetime  # just after the last order
    traders: list[UUID]  # biggest first
    orders: int = 0
    open_by_kind: dict[str, list[UUID]] = field(default_factory=dict)
    final_ids: list[UUID] = field(default_factory=list)
    client_order_ids: dict[UUID, str] = field(default_factory=dict)  # a sample per trader
    overdue: list[UUID] = field(default_factory=list)  # open, past their timeout

    @property
    def open_ids(self) -> list[UUID]:
        return [i for ids in self.open_by_kind.values() for i in ids]


def _uuid7_at(at: datetime, bits: int) -> UUID:
    """A UUIDv7 for time ``at`` (74 random ``bits``), like the service's own ids."""
    ms = int(at.timestamp() * 1000)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (bits >> 62 & 0xFFF) << 64
    return UUID(int=value | 0b10 << 62 | bits & ((1 << 62) - 1))


class _Mix:
    def __init__(self, weighted: Sequence[tuple[Any, float]]) -> None:
        self.choices = [k for k, _ in weighted]
        self.cumulative = list(itertools.accumulate(w for _, w in weighted))

    def pick(self, rng: random.Random) -> Any:
        return self.choices[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


QUANTITIES = tuple(Decimal(q) for q in (1, 5, 10, 50, 100, 200))
PRICES = tuple(Decimal(p) / 100 for p in range(10_000, 10_400, 2))  # 200 prices
SIDES = ("buy", "sell")


def _order(i: int, trader: UUID, at: datetime, state: Any, now: datetime,
           rng: random.Random, *, timed: bool = False) -> dict[str, Any]:
    """One order row, final (``state`` an OrderStatus) or open (``state`` one of OPEN_MIX);
    ``timed`` gives it a timeout (else four in ten have one)."""
    r = rng.getrandbits(48)
    limit = r % 10 < 7
    price = PRICES[r // 10 % len(PRICES)]
    quantity = QUANTITIES[r // 2_000 % len(QUANTITIES)]
    timeout = TIMEOUT_SECONDS if timed or r // 12_000 % 10 < 4 else None
    row: dict[str, Any] = {
        "id": _uuid7_at(at, rng.getrandbits(74)), "trader_id": trader,
        "client_order_id": f"c-{i}" if r // 120_000 % 10 < 3 else None,
        "symbol": SYMBOLS[r // 1_200_000 % len(SYMBOLS)], "side": SIDES[r >> 47],
        "type": "limit" if limit else "market", "quantity": quantity,
        "limit_price": price if limit else None, "stop_loss": None, "take_profit": None,
        "time_in_force": "day", "status": None, "filled_quantity": Decimal(0),
        "average_price": None, "reserve_price": price, "reason": None, "extra": {},
        "created_at": at, "updated_at": at, "venue": VENUE, "venue_order_id": f"V{i}",
        "routed_at": at + timedelta(milliseconds=2), "cancel_sent_at": None,
        "max_slippage_pct": None, "slippage_price": None, "timeout_seconds": timeout,
        "expires_at": at + timedelta(seconds=timeout) if timeout else None,
        "send_attempts": 1, "next_attempt_at": None, "acknowledged_at": at + ACK_AFTER,
    }
    unsent = {"venue": None, "venue_order_id": None, "routed_at": None, "send_attempts": 0,
              "acknowledged_at": None}
    if isinstance(state, OrderStatus):
        row["status"] = state.value
        row["updated_at"] = at + timedelta(seconds=1 + r // 10_000_000 % 600)
        if state is _S.FILLED:
            row.update(filled_quantity=quantity, average_price=price)
        elif state is _S.REJECTED:
            row.update(venue_order_id=None, acknowledged_at=None, reason="venue rejected")
        elif state is _S.EXPIRED:
            row.update(unsent, reason="not sent in time")
        elif state is _S.FAILED:
            row.update(venue_order_id=None, acknowledged_at=None, reason="never confirmed")
        return row
    row["status"] = _S.ACCEPTED.value
    if state in ("queued", "backing_off"):
        row.update(unsent)
        if state == "backing_off":
            row.update(send_attempts=1, next_attempt_at=now + timedelta(seconds=20))
    elif state == "unconfirmed":
        row.update(venue_order_id=None, acknowledged_at=None)
    elif state == "partial":
        row.update(status=_S.PARTIALLY_FILLED.value, filled_quantity=quantity / 2,
                   average_price=price, updated_at=at + timedelta(seconds=1))
    elif state in ("cancel_wanted", "cancel_sent"):
        row.update(status=_S.PENDING_CANCEL.value, updated_at=at + timedelta(seconds=1))
        if state == "cancel_sent":
            row["cancel_sent_at"] = at + timedelta(seconds=1)
    return row


def _routing(row: dict[str, Any]) -> Routing:
    if OrderStatus(row["status"]).is_terminal:
        return Routing.DONE
    if row["venue_order_id"] is not None:
        return Routing.AT_VENUE
    return Routing.PENDING if row["routed_at"] is None else Routing.UNCONFIRMED


def _sqlite_time(value: datetime) -> str:
    """What UTCDateTime stores on SQLite, without strftime (ten times slower)."""
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _to_driver(dialect: Dialect, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    """The INSERT of ``rows`` as the driver takes it, values converted by the column types
    (times on SQLite by a faster equivalent, checked against the type on the first row)."""
    compiled = insert(orders).compile(dialect=dialect)
    keys = list(compiled.positiontup or [])
    columns = []
    for key in keys:
        column_type = orders.c[key].type
        convert = column_type.dialect_impl(dialect).bind_processor(dialect)
        if isinstance(column_type, UTCDateTime) and dialect.name == "sqlite" and convert:
            sample = next((r[key] for r in rows if r[key] is not None), None)
            if sample is not None:
                assert _sqlite_time(sample) == convert(sample), (sample, convert(sample))
            convert = _sqlite_time
        values = [row[key] for row in rows]
        if convert is not None and (key in ("id", "extra") or isinstance(column_type,
                                                                         UTCDateTime)):
            values = [None if v is None else convert(v) for v in values]
        elif convert is not None:
            seen: dict[Any, Any] = {None: None}  # few distinct values in most columns
            values = [seen[v] if v in seen else seen.setdefault(v, convert(v)) for v in values]
        columns.append(values)
    return str(compiled), list(zip(*columns, strict=True))


def _derived_id(conn: AsyncConnection, kind: int) -> ColumnElement[Any]:
    """An id for the ``kind``-th row derived from an order: the order's (time-ordered) id with
    its last four hex digits replaced, so that rows arrive in index order as in service."""
    suffix = literal(f"{kind:04x}", String)
    if conn.dialect.name == "postgresql":
        hex_id = func.replace(cast(orders.c.id, String), "-", "")
        return cast(func.substr(hex_id, 1, 28) + suffix, Uuid)
    return func.substr(orders.c.id, 1, 28) + suffix


async def _derive(conn: AsyncConnection) -> None:
    """Fills, events and execution-log rows for the seeded orders."""
    o = orders.c
    worked = o.status.in_([_S.FILLED.value, _S.PARTIALLY_FILLED.value])
    await conn.execute(insert(fills).from_select(
        ["id", "order_id", "trader_id", "symbol", "side", "timestamp", "quantity", "price",
         "venue", "commission", "exec_id"],
        select(_derived_id(conn, 1), o.id, o.trader_id, o.symbol, o.side, o.updated_at,
               o.filled_quantity, o.average_price, literal_column(f"'{VENUE}'"),
               literal_column("0"), literal("E-", String) + cast(o.id, String))
        .where(worked)))

    # The journal: each order's approval (shown as "accepted"), its send (not shown) and its
    # end or latest state (shown), numbered in time order.
    accepted = literal(_S.ACCEPTED.value, String)
    action = case(*((o.status == s.value, a.value) for s, a in _LOG_ACTION.items()),
                  else_=LogAction.APPROVE.value)
    no_event = literal(None, String)
    steps = union_all(
        select(o.id.label("order_id"), o.trader_id, literal(LogAction.APPROVE.value, String)
               .label("action"), accepted.label("event"), accepted.label("status"),
               o.created_at.label("ts"), literal(0).label("step")),
        select(o.id, o.trader_id, literal(LogAction.EXECUTE.value, String), no_event, accepted,
               o.routed_at, literal(1)).where(o.routed_at.is_not(None)),
        select(o.id, o.trader_id, action, o.status, o.status, o.updated_at, literal(2))
        .where(o.status != _S.ACCEPTED.value),
    ).subquery()
    order_by = (steps.c.ts, steps.c.step, steps.c.order_id)
    shown = steps.c.event.is_not(None)
    empty = literal_column("'{}'::json" if conn.dialect.name == "postgresql" else "'{}'")
    await conn.execute(insert(journal).from_select(
        ["seq", "stream_seq", "trader_seq", "order_id", "trader_id", "actor", "action",
         "status", "timestamp", "event", "details", "payload"],
        select(func.row_number().over(order_by=order_by),
               case((shown, func.row_number().over(partition_by=shown, order_by=order_by))),
               case((shown, func.row_number().over(partition_by=(steps.c.trader_id, shown),
                                                   order_by=order_by))),
               steps.c.order_id, steps.c.trader_id, literal(Actor.ENGINE.value, String),
               steps.c.action, steps.c.status, steps.c.ts, steps.c.event,
               empty, case((shown, empty)))))


async def seed_history(db: Database, traders: Sequence[UUID], count: int = 100_000,
                       open_count: int = 600, seed: int = 10) -> History:
    """``count`` orders over ``traders`` (the first ones get more), ``open_count`` of the last
    few thousand still open, three of them past their timeout. Returns what a query may look
    up."""
    rng = random.Random(seed)
    now = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    start = now - SPACING * count
    by_trader = _Mix([(t, len(traders) - n) for n, t in enumerate(traders)])
    finals, opens = _Mix(FINAL_MIX), _Mix(OPEN_MIX)
    open_at = set(rng.sample(range(max(count - 5_000, 0), count), open_count))
    history = History(now=now, traders=list(traders), orders=count)
    rows: list[dict[str, Any]] = []
    for i in range(count):
        at = start + SPACING * i + timedelta(microseconds=rng.randrange(1_000_000))
        trader = by_trader.pick(rng)
        state = opens.pick(rng) if i in open_at else finals.pick(rng)
        overdue = i >= count - 3
        if overdue:  # resting at the venue, past its deadline
            open_at.add(i)
            state = "resting"
            at = now - timedelta(seconds=TIMEOUT_SECONDS + count - i)
        row = _order(i, trader, at, state, now, rng, timed=overdue)
        row["routing"] = _routing(row).value
        if i in open_at:
            history.open_by_kind.setdefault(state, []).append(row["id"])
            if row["expires_at"] is not None and row["expires_at"] <= now:
                history.overdue.append(row["id"])
        elif len(history.final_ids) < 50 and rng.random() < 0.01:
            history.final_ids.append(row["id"])
        if row["client_order_id"] is not None:
            history.client_order_ids.setdefault(trader, row["client_order_id"])
        rows.append(row)
    async with db.writer.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # room for the indexes being filled; the service's own setting after
            cache = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
            await conn.exec_driver_sql("PRAGMA cache_size = -262144")
            await conn.commit()
        sql, values = _to_driver(conn.dialect, rows)
        await conn.exec_driver_sql(sql, values)
        await _derive(conn)
        await conn.commit()
        if sqlite:
            await conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")
            await conn.commit()
    return history
