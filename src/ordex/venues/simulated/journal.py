"""The simulated exchange's memory on disk: every client order it received, every fill it made,
its id counters and each symbol's price, in one SQLite file (WAL, ``synchronous=NORMAL``).

The exchange writes one transaction at the end of every call that changed anything, before the
call returns its reports: whatever a client was told (an ack, a fill, an id) is on disk first, so
a ``kill -9`` at any moment never leaves the venue behind what it reported. Opened again, the
journal gives the exchange back its book (resting orders, their fills and cumulative quantities)
and its counters, so exec ids and venue order ids stay unique over the venue's whole life.

SQLite from the standard library: the exchange is synchronous, one writer, and a journal of this
size needs nothing more; the same durability settings as ordex's own store: a commit survives the
process being killed at once; no fsync per commit holds up the event loop (as with ordex's store,
a power cut may take back the last commits). The journal's commits run on the event loop, so its
WAL checkpoints do not: a thread of their own (``checkpoint_beside``) copies the log back, as
for the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordex.store.checkpoint import checkpoint_beside

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    venue_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL, time_in_force TEXT NOT NULL,
    quantity TEXT NOT NULL, limit_price TEXT, received_at TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, filled TEXT NOT NULL, notional TEXT NOT NULL,
    ack_lost INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY,
    exec_id TEXT NOT NULL UNIQUE,
    client_order_id TEXT NOT NULL, venue_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, timestamp TEXT NOT NULL,
    quantity TEXT NOT NULL, price TEXT NOT NULL, fee TEXT NOT NULL, liquidity TEXT,
    cum_quantity TEXT NOT NULL, leaves_quantity TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS markets (symbol TEXT PRIMARY KEY, mid TEXT NOT NULL, last TEXT);
"""

FORMAT = "1"

_SAVE_META = "INSERT OR REPLACE INTO meta VALUES (?, ?)"
_SAVE_ORDER = (
    "INSERT INTO orders (client_order_id, venue_order_id, symbol, side, type, time_in_force, "
    "quantity, limit_price, received_at, status, reason, filled, notional, ack_lost) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (client_order_id) DO UPDATE SET status = excluded.status, "
    "reason = excluded.reason, filled = excluded.filled, notional = excluded.notional, "
    "ack_lost = excluded.ack_lost")
_SAVE_FILL = (
    "INSERT INTO fills (exec_id, client_order_id, venue_order_id, symbol, side, timestamp, "
    "quantity, price, fee, liquidity, cum_quantity, leaves_quantity) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SAVE_MARKET = "INSERT OR REPLACE INTO markets VALUES (?, ?, ?)"


@dataclass(frozen=True, slots=True)
class OrderRow:
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    limit_price: Decimal | None
    received_at: datetime
    status: str
    reason: str | None
    filled: Decimal
    notional: Decimal
    ack_lost: bool


@dataclass(frozen=True, slots=True)
class FillRow:
    exec_id: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: str
    timestamp: datetime
    quantity: Decimal
    price: Decimal
    fee: Decimal
    liquidity: str | None
    cum_quantity: Decimal
    leaves_quantity: Decimal


@dataclass(frozen=True, slots=True)
class Saved:
    """What a journal holds, oldest first."""

    meta: dict[str, str]
    orders: list[OrderRow]
    fills: list[FillRow]
    markets: dict[str, tuple[Decimal, Decimal | None]]


class ExchangeJournal:
    """One exchange's SQLite file. Not thread-safe: the exchange's owner calls it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.created = not self.path.exists()
        self._con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.executescript(_SCHEMA)
        self.path.chmod(0o600)
        found = self._meta().get("format")
        if found is None:
            self._con.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
        elif found != FORMAT:
            raise ValueError(f"{self.path} is an exchange journal of format {found}; this "
                             f"version reads format {FORMAT}")
        self._checkpoints = checkpoint_beside(self._con, self.path)

    def close(self) -> None:
        self._checkpoints.stop()
        self._con.close()

    def set_id_prefix(self, prefix: str) -> None:
        """Ids minted from now on start with ``prefix`` (for a journal started on a data dir
        whose clients already hold ids of an older, unjournaled venue)."""
        self._con.execute("INSERT OR REPLACE INTO meta VALUES ('id_prefix', ?)", (prefix,))

    def _meta(self) -> dict[str, str]:
        return dict(self._con.execute("SELECT key, value FROM meta").fetchall())

    def load(self) -> Saved:
        con = self._con
        orders = [OrderRow(
            r[0], r[1], r[2], r[3], r[4], r[5], Decimal(r[6]), _dec(r[7]),
            datetime.fromisoformat(r[8]), r[9], r[10], Decimal(r[11]), Decimal(r[12]),
            bool(r[13]))
            for r in con.execute(
                "SELECT client_order_id, venue_order_id, symbol, side, type, time_in_force, "
                "quantity, limit_price, received_at, status, reason, filled, notional, ack_lost "
                "FROM orders ORDER BY seq")]
        fills = [FillRow(
            r[0], r[1], r[2], r[3], r[4], datetime.fromisoformat(r[5]), Decimal(r[6]),
            Decimal(r[7]), Decimal(r[8]), r[9], Decimal(r[10]), Decimal(r[11]))
            for r in con.execute(
                "SELECT exec_id, client_order_id, venue_order_id, symbol, side, timestamp, "
                "quantity, price, fee, liquidity, cum_quantity, leaves_quantity "
                "FROM fills ORDER BY seq")]
        markets = {r[0]: (Decimal(r[1]), _dec(r[2]))
                   for r in con.execute("SELECT symbol, mid, last FROM markets")}
        return Saved(self._meta(), orders, fills, markets)

    def save(self, meta: dict[str, str], orders: Iterable[OrderRow], fills: Iterable[FillRow],
             markets: Iterable[tuple[str, Decimal, Decimal | None]]) -> None:
        """Write everything given in one durable transaction (an order replaces its row; a
        meta key or a market its value); kinds with nothing given take no statement."""
        con = self._con
        steps = [(_SAVE_META, list(meta.items())),
                 (_SAVE_ORDER, [_order_values(o) for o in orders]),
                 (_SAVE_FILL, [_fill_values(f) for f in fills]),
                 (_SAVE_MARKET, [(s, str(mid), _text(last)) for s, mid, last in markets])]
        con.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in steps:
                if rows:
                    con.executemany(sql, rows)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def open_journal(data_dir: Path, name: str, now: datetime) -> ExchangeJournal:
    """The journal of exchange ``name`` in ``data_dir``. Started on a data dir used before
    (ordex's store or an ``ordex venue`` run file is there, but no journal), its ids get a
    prefix with the start time, so they cannot repeat the old venue's."""
    path = Path(data_dir) / f"exchange-{name}.db"
    used = not path.exists() and any(
        (Path(data_dir) / f).exists() for f in ("ordex.db", f"venue-{name}.json"))
    journal = ExchangeJournal(path)
    if used:
        journal.set_id_prefix(f"{name}-{now:%Y%m%d%H%M%S}")
    return journal


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _order_values(o: OrderRow) -> tuple[Any, ...]:
    return (o.client_order_id, o.venue_order_id, o.symbol, o.side, o.type, o.time_in_force,
            str(o.quantity), _text(o.limit_price), o.received_at.isoformat(), o.status,
            o.reason, str(o.filled), str(o.notional), int(o.ack_lost))


def _fill_values(f: FillRow) -> tuple[Any, ...]:
    return (f.exec_id, f.client_order_id, f.venue_order_id, f.symbol, f.side,
            f.timestamp.isoformat(), str(f.quantity), str(f.price), str(f.fee), f.liquidity,
            str(f.cum_quantity), str(f.leaves_quantity))
