"""The order path's writes: the raw-driver row writer (``ordex.store.rows``) against the same
writes through the ``Repository`` in a ``UnitOfWork``, one transaction per batch.

Run from the project root (see bench/README.md)::

    .venv/bin/python -m bench.bench_rows                 # about a minute on 2 shared cores
    .venv/bin/python -m bench.bench_rows --orders 100    # quicker

Each order's life is the rows one order writes: 1 new order, 2 log rows and 1 event (submit),
then an order update, a fill, a position, an account, a log row and an event (its fill). A batch
holds the lives of 1, 10 or 50 orders, each of a different account. Per backend and batch
size it prints µs per order of this process's CPU (``time.process_time``: the event loop and, on
SQLite, the writer thread and SQLite itself), of wall time, and on PostgreSQL of the server's
CPU (its processes' utime + stime from /proc, 10 ms ticks). Each path writes to a store of its
own (a fresh SQLite file, a fresh PostgreSQL database), created and migrated as the service does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

from msgspec.structs import replace
from sqlalchemy import insert
from tests.support.postgres import PostgresServer

from bench.servers import create_database
from ordex.bootstrap import Services, build, prepare
from ordex.config import Settings
from ordex.domain.accounts import Account, Role
from ordex.domain.fills import Fill
from ordex.domain.journal import Actor, JournalEntry, LogAction, entry
from ordex.domain.orders import Order, OrderStatus, OrderType, Routing, Side, TimeInForce
from ordex.domain.positions import Position
from ordex.domain.status import LastFill, payload
from ordex.store.rows import Batch, open_writer
from ordex.store.tables import journal
from ordex.store.uow import UnitOfWork

SIZES = (1, 10, 50)
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Life:
    """Everything one order's life writes, as the core would hand it over."""

    placed: Order
    submitted: tuple[JournalEntry, JournalEntry]  # the submit and its approval (shown)
    filled: Order
    fill: Fill
    position: Position
    account: Account
    fill_row: JournalEntry  # shown


class Lives:
    """Lives of orders, round robin over the accounts, with the core's numbering of the
    journal."""

    def __init__(self, accounts: list[Account]) -> None:
        self.accounts = accounts
        self.seq = itertools.count(1)
        self.stream_seq = itertools.count(1)
        self.trader_seq = {a.id: itertools.count(1) for a in accounts}
        self.held = {a.id: Decimal(0) for a in accounts}
        self.n = 0

    def next(self) -> Life:
        account = self.accounts[self.n % len(self.accounts)]
        at = START + timedelta(milliseconds=self.n)
        self.n += 1
        placed = Order(id=uuid4(), trader_id=account.id, symbol="AAPL", side=Side.BUY,
                       type=OrderType.LIMIT, quantity=Decimal(10), time_in_force=TimeInForce.DAY,
                       created_at=at, updated_at=at, client_order_id=f"b-{self.n}",
                       limit_price=Decimal("189.50"), reserve_price=Decimal("189.50"),
                       status=OrderStatus.ACCEPTED)
        done = at + timedelta(microseconds=700)
        filled = replace(placed, status=OrderStatus.FILLED, routing=Routing.DONE,
                         filled_quantity=Decimal(10), average_price=Decimal("189.50"),
                         updated_at=done, venue="SIM",
                         venue_order_id=f"SIM-{self.n}", routed_at=at, send_attempts=1)
        fill = Fill(uuid4(), placed.id, account.id, "AAPL", Side.BUY, done, Decimal(10),
                    Decimal("189.50"), "SIM", Decimal("0.19"), f"E-{self.n}")
        self.held[account.id] += fill.quantity
        cash = account.cash - fill.quantity * fill.price - fill.commission
        self.accounts[self.accounts.index(account)] = account = replace(account, cash=cash)

        def row(e: JournalEntry, event: str | None = None,
                body: dict[str, Any] | None = None) -> JournalEntry:
            if event is None:
                return replace(e, seq=next(self.seq))
            return replace(e, seq=next(self.seq), event=event, payload=body,
                           stream_seq=next(self.stream_seq),
                           trader_seq=next(self.trader_seq[account.id]))

        last = LastFill(fill.quantity, fill.price, "SIM", done)
        return Life(
            placed, (row(entry(replace(placed, status=OrderStatus.PENDING_NEW), LogAction.SUBMIT,
                               at, Actor.TRADER)),
                     row(entry(placed, LogAction.APPROVE, at, Actor.ENGINE), "accepted",
                         payload(placed))),
            filled, fill, Position("AAPL", self.held[account.id], Decimal("189.50")), account,
            row(entry(filled, LogAction.FILL, done, Actor.VENUE, quantity=fill.quantity,
                      price=fill.price, details={"exec_id": fill.exec_id}), "filled",
                payload(filled, last)))


def as_batch(lives: list[Life]) -> Batch:
    batch = Batch()
    for life in lives:
        batch.new_orders.append(life.placed)
        batch.orders.append(life.filled)
        batch.fills.append(life.fill)
        batch.positions.append((life.account.id, life.position, life.fill.timestamp))
        batch.accounts.append((life.account, life.fill.timestamp))
        batch.journal.extend((*life.submitted, life.fill_row))
    return batch


Writes = Callable[[list[Life]], Coroutine[Any, Any, None]]


async def rows_path(services: Services) -> AsyncIterator[Writes]:
    writer = await open_writer(services.db)

    async def write(lives: list[Life]) -> None:
        await writer.write(as_batch(lives))

    try:
        yield write
    finally:
        await writer.close()


async def repository_path(services: Services) -> AsyncIterator[Writes]:
    async def write(lives: list[Life]) -> None:
        async with UnitOfWork(services.db) as uow:
            repo = uow.repo
            for life in lives:
                await repo.insert_order(life.placed)
                await repo.conn.execute(insert(journal), [_values(e) for e in life.submitted])
                await repo.update_order(life.filled)
                await repo.insert_fill(life.fill)
                await repo.set_position(life.account.id, life.position, life.fill.timestamp)
                await repo.update_account(life.account, life.fill.timestamp)
                await repo.conn.execute(insert(journal), [_values(life.fill_row)])
            await uow.commit()

    yield write


def _values(e: JournalEntry) -> dict[str, Any]:
    return {c.name: getattr(e, c.name) for c in journal.c}


PATHS = {"rows": rows_path, "repository": repository_path}


def server_cpu_s(pg: PostgresServer | None) -> float:
    """CPU seconds used so far by the PostgreSQL server's running processes."""
    if pg is None:
        return 0.0
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    pids, total = [postmaster], 0
    tick = os.sysconf("SC_CLK_TCK")
    while pids:
        pid = pids.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{pid}/task").iterdir():
                pids.extend(int(c) for c in (task / "children").read_text().split())
    return total / tick


@dataclass(frozen=True, slots=True)
class Figure:
    cpu_us: float
    wall_us: float
    server_us: float | None


async def measure(backend: str, path: str, tmp: Path, pg: PostgresServer | None,
                  orders: int, accounts_n: int) -> dict[int, Figure]:
    url = None
    if pg is not None:
        name = f"bench_rows_{path}"
        await create_database(pg.dsn(), name)
        url = pg.url(name)
    services = build(Settings(data_dir=tmp / f"{backend}-{path}", database_url=url,
                              seed_demo=False, execution_enabled=False))
    try:
        await prepare(services)
        accounts = [(await services.accounts.create(f"bench-{n}", Role.TRADER,
                                                    Decimal(10) ** 12)).account
                    for n in range(accounts_n)]
        lives = Lives(accounts)
        figures = {}
        async with contextlib.aclosing(PATHS[path](services)) as writes:
            write = await anext(writes)
            for _ in range(3):  # warm up: statements prepared, positions inserted
                await write([lives.next() for _ in range(accounts_n)])
            for size in SIZES:
                batches = [[lives.next() for _ in range(size)]
                           for _ in range(max(1, orders // size))]
                done = sum(len(b) for b in batches)
                server0, cpu0, wall0 = server_cpu_s(pg), time.process_time(), time.perf_counter()
                for batch in batches:
                    await write(batch)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                server = server_cpu_s(pg) - server0
                figures[size] = Figure(cpu / done * 1e6, wall / done * 1e6,
                                       server / done * 1e6 if pg is not None else None)
        return figures
    finally:
        await services.close()


def line(backend: str, size: int, rows: Figure, repo: Figure) -> str:
    def part(f: Figure) -> str:
        server = "" if f.server_us is None else f" server {f.server_us:7.0f}"
        return f"cpu {f.cpu_us:7.0f} wall {f.wall_us:7.0f}{server}"

    return (f"{backend:<8} batch {size:>2}  rows: {part(rows)}  |  repository: {part(repo)}"
            f"  |  cpu ×{repo.cpu_us / rows.cpu_us:.1f} wall ×{repo.wall_us / rows.wall_us:.1f}")


async def main(opts: argparse.Namespace) -> None:
    print("µs per order (1 new order, 3 journal rows of which 2 shown, an order update, a fill, a "
          "position and an account); a batch is one transaction")
    for backend in opts.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="ordex-bench-rows-") as tmp, \
                contextlib.ExitStack() as stack:
            pg = None
            if backend == "postgres":
                pg = PostgresServer()
                stack.callback(pg.stop)
                pg.start()
            found = {path: await measure(backend, path, Path(tmp), pg, opts.orders,
                                         opts.accounts) for path in PATHS}
            for size in SIZES:
                print(line(backend, size, found["rows"][size], found["repository"][size]),
                      flush=True)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=300, help="orders per batch size and path")
    p.add_argument("--accounts", type=int, default=50, help="accounts the orders go round")
    p.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
