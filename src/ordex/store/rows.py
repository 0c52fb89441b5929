"""The order path's writes, straight through the driver: one transaction per batch.

The execution core keeps order state in memory and, for each group of commands and venue
reports, hands a :class:`Batch` of resulting rows to a :class:`RowWriter`, which writes them all in
one transaction with statements fixed once and run through ``executemany``: no SQLAlchemy
expression, compilation or greenlet hop on the way. The rows are stored exactly as SQLAlchemy
stores them (``types.py`` and the column types of ``tables.py``), so everything that reads
through the :class:`~ordex.store.repository.Repository` reads them back unchanged:

- SQLite: UUIDs as 32 hex digits, Decimals as ``format(v, "f")`` text, times as
  ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` text, dates as ISO text, booleans as 0/1, JSON as
  ``types.json_text`` (compact orjson, SQLAlchemy's serializer too);
- PostgreSQL: native uuid, numeric, timestamptz and date; JSON as the same text (the ``json``
  type keeps the text as given).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple, Protocol
from uuid import UUID

import asyncpg
from sqlalchemy.engine import make_url

from ordex.domain.accounts import Account
from ordex.domain.fills import Fill
from ordex.domain.instruments import Instrument
from ordex.domain.journal import JournalEntry
from ordex.domain.orders import Order
from ordex.domain.positions import Position
from ordex.store.checkpoint import WalCheckpointer, checkpoint_beside
from ordex.store.database import Database
from ordex.store.idempotency import KeptOutcome
from ordex.store.types import json_text
from ordex.store.worker import OneThread

Row = tuple[Any, ...]


@dataclass(slots=True)
class Batch:
    """Every row one group of commands and venue reports changes, written in this order."""

    new_orders: list[Order] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    positions: list[tuple[UUID, Position, datetime]] = field(default_factory=list)
    accounts: list[tuple[Account, datetime]] = field(default_factory=list)
    instruments: list[tuple[Instrument, datetime]] = field(default_factory=list)
    journal: list[JournalEntry] = field(default_factory=list)
    keys: list[KeptOutcome] = field(default_factory=list)  # outcomes of keyed commands

    def __bool__(self) -> bool:
        return bool(self.new_orders or self.orders or self.fills or self.positions
                    or self.accounts or self.instruments or self.journal or self.keys)


class RowWriter(Protocol):
    async def write(self, batch: Batch) -> None:
        """Write the whole batch in one transaction, or nothing of it: the error propagates (a
        constraint's, :class:`MissingRows`, or ``ValueError`` for a naive datetime). The batch
        must not change until the write returns; a write whose caller is cancelled may still
        commit."""

    async def close(self) -> None: ...


class MissingRows(LookupError):
    """An update by id found no row for some of its ids: the batch is not written."""

    def __init__(self, table: str, expected: int, found: int) -> None:
        super().__init__(f"update of {table}: {found} of {expected} rows exist")
        self.table, self.expected, self.found = table, expected, found


# Columns, in the order the row builders below produce their values.
ORDER_COLUMNS = (
    "id", "trader_id", "client_order_id", "symbol", "side", "type", "quantity", "limit_price",
    "stop_loss", "take_profit", "time_in_force", "status", "filled_quantity", "average_price",
    "reserve_price", "reason", "extra", "created_at", "updated_at", "venue", "venue_order_id",
    "routed_at", "cancel_sent_at", "max_slippage_pct", "slippage_price", "timeout_seconds",
    "expires_at", "send_attempts", "next_attempt_at", "acknowledged_at", "routing",
)
# An order update rewrites every column but these; its row is the others, then the id.
ORDER_FIXED = ("id", "trader_id", "created_at")
ORDER_UPDATED = tuple(c for c in ORDER_COLUMNS if c not in ORDER_FIXED)
FILL_COLUMNS = ("id", "order_id", "trader_id", "symbol", "side", "timestamp", "quantity",
                "price", "venue", "commission", "exec_id")
POSITION_COLUMNS = ("account_id", "symbol", "quantity", "average_cost", "realized_pnl",
                    "updated_at")
POSITION_KEY = ("account_id", "symbol")
# What an account update rewrites (never name, role or key columns); the id comes last.
ACCOUNT_UPDATED = ("cash", "allow_short", "max_position_shares", "max_position_notional",
                   "max_order_notional", "daily_loss_limit", "max_open_orders",
                   "rate_limit_per_minute", "day_start_equity", "trading_day", "updated_at")
# What the market changes of an instrument (never its name, tick or lot); the symbol comes last.
INSTRUMENT_UPDATED = ("status", "reference_price", "updated_at")
JOURNAL_COLUMNS = ("seq", "stream_seq", "trader_seq", "order_id", "trader_id", "actor", "action",
                   "status", "timestamp", "reason", "symbol", "quantity", "price", "venue",
                   "event", "details", "payload")
KEY_COLUMNS = ("actor", "key", "fingerprint", "outcome", "created_at")
KEY_KEY = ("actor", "key")

_order_updated_values = itemgetter(*(ORDER_COLUMNS.index(c) for c in ORDER_UPDATED))


class Statements(NamedTuple):
    insert_order: str
    update_order: str
    insert_fill: str
    upsert_position: str
    update_account: str
    update_instrument: str
    insert_journal: str
    upsert_key: str


def statements(mark: Callable[[int], str], *, returning: bool = False) -> Statements:
    """The SQL of each write, with placeholders ``mark(1)``, ``mark(2)``, ...; ``returning``
    makes the updates return their ids (to count them where the driver gives no row count)."""

    def insert(table: str, columns: Sequence[str], tail: str = "") -> str:
        marks = ", ".join(mark(i) for i in range(1, len(columns) + 1))
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"

    def update(table: str, columns: Sequence[str], key: str = "id") -> str:
        sets = ", ".join(f"{c} = {mark(i)}" for i, c in enumerate(columns, 1))
        back = f" RETURNING {key}" if returning else ""
        return f"UPDATE {table} SET {sets} WHERE {key} = {mark(len(columns) + 1)}{back}"

    def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        return insert(table, columns, tail=f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}")

    return Statements(
        insert_order=insert("orders", ORDER_COLUMNS),
        update_order=update("orders", ORDER_UPDATED),
        insert_fill=insert("fills", FILL_COLUMNS),
        upsert_position=upsert("positions", POSITION_COLUMNS, POSITION_KEY),
        update_account=update("accounts", ACCOUNT_UPDATED),
        update_instrument=update("instruments", INSTRUMENT_UPDATED, key="symbol"),
        insert_journal=insert("journal", JOURNAL_COLUMNS),
        # a key forgotten by the handler (too old, or beyond its count) names a new command
        upsert_key=upsert("idempotency_keys", KEY_COLUMNS, KEY_KEY),
    )


# Values as each backend stores them (see the module's docstring).

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # UTCDateTime's text on SQLite


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime: ordex stores only timezone-aware UTC times")
    return value.astimezone(UTC)


def _sqlite_time_of(value: datetime) -> str:
    value = _utc(value)
    if value.year < 1000:  # strftime does not pad the year to four digits
        return value.strftime(TIME_FORMAT)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


# An order's times (created, routed, acknowledged, expires) are written again with every change
# of the order, and a batch's rows share their timestamp: most values were formatted before.
_TIMES: dict[datetime, str] = {}
_TIMES_KEPT = 8192


def sqlite_time(value: datetime) -> str:
    """``value.astimezone(UTC).strftime(TIME_FORMAT)``."""
    text = _TIMES.get(value)
    if text is None:
        if len(_TIMES) >= _TIMES_KEPT:
            _TIMES.clear()
        text = _TIMES[value] = _sqlite_time_of(value)
    return text


def _sqlite_opt_time(value: datetime | None) -> str | None:
    return None if value is None else sqlite_time(value)


def _sqlite_decimal(value: Decimal) -> str:
    return format(value, "f")


def _sqlite_opt_decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _sqlite_uuid(value: UUID) -> str:
    return value.hex


def _sqlite_opt_uuid(value: UUID | None) -> str | None:
    return None if value is None else value.hex


def _sqlite_day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _same(value: Any) -> Any:
    return value


def _pg_opt_time(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


class Rows(NamedTuple):
    """Row builders for one backend: object(s) in, the statement's parameters out."""

    order: Callable[[Order], Row]
    order_update: Callable[[Order], Row]
    fill: Callable[[Fill], Row]
    position: Callable[[UUID, Position, datetime], Row]
    account: Callable[[Account, datetime], Row]
    instrument: Callable[[Instrument, datetime], Row]
    journal: Callable[[JournalEntry], Row]
    key: Callable[[KeptOutcome], Row]


def row_builders(uuid: Callable[[UUID], Any], opt_uuid: Callable[[UUID | None], Any],
                 dec: Callable[[Decimal], Any], opt_dec: Callable[[Decimal | None], Any],
                 time: Callable[[datetime], Any], opt_time: Callable[[datetime | None], Any],
                 day: Callable[[date | None], Any]) -> Rows:
    """The builders, given how the backend takes each kind of value (bound as closure
    variables: these run for every row)."""
    to_json = json_text

    def order(o: Order) -> Row:
        return (
            uuid(o.id), uuid(o.trader_id), o.client_order_id, o.symbol, o.side.value,
            o.type.value, dec(o.quantity), opt_dec(o.limit_price), opt_dec(o.stop_loss),
            opt_dec(o.take_profit), o.time_in_force.value, o.status.value,
            dec(o.filled_quantity), opt_dec(o.average_price), dec(o.reserve_price), o.reason,
            to_json(o.extra), time(o.created_at), time(o.updated_at), o.venue, o.venue_order_id,
            opt_time(o.routed_at), opt_time(o.cancel_sent_at), opt_dec(o.max_slippage_pct),
            opt_dec(o.slippage_price), o.timeout_seconds, opt_time(o.expires_at),
            o.send_attempts, opt_time(o.next_attempt_at), opt_time(o.acknowledged_at),
            o.routing.value,
        )

    def order_update(o: Order) -> Row:
        full = order(o)
        return (*_order_updated_values(full), full[0])

    def fill(f: Fill) -> Row:
        return (uuid(f.id), uuid(f.order_id), uuid(f.trader_id), f.symbol, f.side.value,
                time(f.timestamp), dec(f.quantity), dec(f.price), f.venue, dec(f.commission),
                f.exec_id)

    def position(account_id: UUID, p: Position, at: datetime) -> Row:
        return (uuid(account_id), p.symbol, dec(p.quantity), dec(p.average_cost),
                dec(p.realized_pnl), time(at))

    def account(a: Account, at: datetime) -> Row:
        limits = a.limits
        return (dec(a.cash), a.allow_short, dec(limits.max_position_shares),
                dec(limits.max_position_notional), dec(limits.max_order_notional),
                dec(limits.daily_loss_limit), limits.max_open_orders, a.rate_limit_per_minute,
                opt_dec(a.day_start_equity), day(a.trading_day), time(at), uuid(a.id))

    def instrument(i: Instrument, at: datetime) -> Row:
        return (i.status.value, dec(i.reference_price), time(at), i.symbol)

    def journal(e: JournalEntry) -> Row:
        return (e.seq, e.stream_seq, e.trader_seq, opt_uuid(e.order_id), uuid(e.trader_id),
                e.actor.value, e.action.value, e.status, time(e.timestamp), e.reason, e.symbol,
                opt_dec(e.quantity), opt_dec(e.price), e.venue, e.event, to_json(e.details),
                None if e.payload is None else to_json(e.payload))

    def key(k: KeptOutcome) -> Row:
        return (uuid(k.actor), k.key, k.fingerprint, k.outcome.decode(), time(k.created_at))

    return Rows(order, order_update, fill, position, account, instrument, journal, key)


SQLITE_ROWS = row_builders(_sqlite_uuid, _sqlite_opt_uuid, _sqlite_decimal, _sqlite_opt_decimal,
                           sqlite_time, _sqlite_opt_time, _sqlite_day)
POSTGRES_ROWS = row_builders(_same, _same, _same, _same, _utc, _pg_opt_time, _same)


class Step(NamedTuple):
    sql: str
    rows: list[Row]
    table: str | None  # an update by id, whose every row must exist


def plan(batch: Batch, sql: Statements, rows: Rows) -> list[Step]:
    """The batch's statements with their parameters, in the order they run, empty ones left
    out. Building every row first means a bad value fails before the transaction begins."""
    steps = []
    if batch.new_orders:
        steps.append(Step(sql.insert_order, [rows.order(o) for o in batch.new_orders], None))
    if batch.orders:
        steps.append(Step(sql.update_order, [rows.order_update(o) for o in batch.orders],
                          "orders"))
    if batch.fills:
        steps.append(Step(sql.insert_fill, [rows.fill(f) for f in batch.fills], None))
    if batch.positions:
        steps.append(Step(sql.upsert_position,
                          [rows.position(a, p, at) for a, p, at in batch.positions], None))
    if batch.accounts:
        steps.append(Step(sql.update_account, [rows.account(a, at) for a, at in batch.accounts],
                          "accounts"))
    if batch.instruments:
        steps.append(Step(sql.update_instrument,
                          [rows.instrument(i, at) for i, at in batch.instruments], "instruments"))
    if batch.journal:
        steps.append(Step(sql.insert_journal, [rows.journal(e) for e in batch.journal], None))
    if batch.keys:
        steps.append(Step(sql.upsert_key, [rows.key(k) for k in batch.keys], None))
    return steps


SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                  "PRAGMA busy_timeout=30000", "PRAGMA foreign_keys=ON")
SQLITE_SQL = statements(lambda _: "?")


class SqliteRowWriter:
    """Its own ``sqlite3`` connection, used from one worker thread only: a batch is one hop to
    that thread, which builds the rows and writes them between ``BEGIN IMMEDIATE`` and
    ``COMMIT``. Other writers of the file (SQLAlchemy's writer) wait on the busy timeout."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = OneThread("ordex-rows")
        self._conn: sqlite3.Connection | None = None
        self._checkpoints: WalCheckpointer | None = None

    @classmethod
    async def open(cls, path: str) -> SqliteRowWriter:
        writer = cls(path)
        try:
            await writer._run(writer._connect)
        except BaseException:
            writer._thread.stop(wait=False)
            raise
        return writer

    async def _run(self, work: Callable[..., Any], *args: Any) -> Any:
        return await self._thread.run(work, *args)

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            self._checkpoints = checkpoint_beside(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def write(self, batch: Batch) -> None:
        if batch:
            await self._run(self._write, batch)

    def _write(self, batch: Batch) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the row writer is closed")
        steps = plan(batch, SQLITE_SQL, SQLITE_ROWS)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for step in steps:
                done = conn.executemany(step.sql, step.rows)
                if step.table is not None and done.rowcount != len(step.rows):
                    raise MissingRows(step.table, len(step.rows), done.rowcount)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._run(conn.close)
        self._thread.stop()
        if self._checkpoints is not None:
            self._checkpoints.stop()
            self._checkpoints = None


def _dollar(i: int) -> str:
    return f"${i}"


class PostgresRowWriter:
    """One ``asyncpg`` connection (opened again before a batch if it was lost); a batch is one
    transaction with an ``executemany`` per kind of row, whose statements asyncpg prepares once
    and caches: BEGIN, a round trip per kind of row, COMMIT."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._sql = statements(_dollar, returning=True)

    @classmethod
    async def open(cls, dsn: str) -> PostgresRowWriter:
        writer = cls(dsn)
        await writer._connection()
        return writer

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn)
        return self._conn

    async def write(self, batch: Batch) -> None:
        if not batch:
            return
        steps = plan(batch, self._sql, POSTGRES_ROWS)
        conn = await self._connection()
        await conn.execute("BEGIN")
        try:
            for step in steps:
                await self._run(conn, step)
            await conn.execute("COMMIT")
        except BaseException:
            await self._abandon(conn)
            raise

    @staticmethod
    async def _run(conn: asyncpg.Connection, step: Step) -> None:
        # One row goes through execute/fetch: the same prepared statement, less work than the
        # executemany machinery around it.
        if step.table is None:
            if len(step.rows) == 1:
                await conn.execute(step.sql, *step.rows[0])
            else:
                await conn.executemany(step.sql, step.rows)
            return
        if len(step.rows) == 1:
            found = len(await conn.fetch(step.sql, *step.rows[0]))
        else:
            found = len(await conn.fetchmany(step.sql, step.rows))
        if found != len(step.rows):
            raise MissingRows(step.table, len(step.rows), found)

    async def _abandon(self, conn: asyncpg.Connection) -> None:
        """Roll back what a failed batch began; a connection that cannot is dropped (the next
        batch opens another)."""
        try:
            if not conn.is_closed() and conn.is_in_transaction():
                await conn.execute("ROLLBACK")
        except Exception:
            conn.terminate()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


def sqlite_path(url: str) -> str:
    """The database file of a ``sqlite[+driver]:///path`` URL (a separate connection to an
    in-memory database would be another database, so there is none)."""
    path = make_url(url).database
    if not path or path == ":memory:" or "mode=memory" in path:
        raise ValueError(f"the row writer needs a SQLite file, not {url!r}")
    return path


def postgres_dsn(url: str) -> str:
    """asyncpg's DSN for a ``postgresql[+asyncpg]://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def open_writer(db: Database) -> RowWriter:
    """The row writer for ``db``'s backend, connected."""
    if db.is_sqlite:
        return await SqliteRowWriter.open(sqlite_path(db.url))
    return await PostgresRowWriter.open(postgres_dsn(db.url))
