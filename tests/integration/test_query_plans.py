"""Every lookup query at 100,000 stored orders, without planner statistics and after ``ANALYZE``:
each reaches orders, fills and the journal through an index, and each answers within
milliseconds. (The engine's dispatch, timers and recovery sweeps read its memory, not the
store.)

The plans are read for the very statements the repository runs (captured at the driver), with
their parameters. SQLite: no ``SCAN`` of those tables, except through a partial index (it holds
open orders only). PostgreSQL, with sequential scans left enabled: no ``Seq Scan`` of them and no
index scan without an index condition. A listing with nothing to filter may walk an index in
order (LIMIT ends it): the cases say so.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from statistics import median
from typing import Any

import pytest
import pytest_asyncio
from msgspec.structs import replace
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex

from ordex.bootstrap import Services, build, prepare
from ordex.config import Settings
from ordex.domain.accounts import RiskLimits, Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.orders import OPEN_STATUSES, OrderStatus, OrderType, Side
from ordex.store.repository import OrderQuery, Repository
from ordex.store.tables import metadata
from tests.conftest import fresh_postgres_database
from tests.support.history import SYMBOLS, VENUE, History, seed_history

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDERS = 100_000
TRADERS = 8
BIG_TABLES = frozenset({"orders", "fills", "journal"})
# Per run, on a shared 2-core machine: generous, the plans are the real check. Making each row
# returned into a domain object costs its own time, whatever the plan: a page of 1,000 events or
# all the open orders has the time of its rows on top.
BOUND_MS = 50.0
ROW_MS = 0.1
RUNS = 5


Run = Callable[[Repository, History], Awaitable[Any]]


@dataclass(frozen=True)
class Case:
    name: str
    run: Run
    ordered_walk: bool = False  # nothing filtered: walking an index in order, cut by LIMIT
    # A page of a listing, newest first. PostgreSQL may walk the primary key in order and filter
    # (LIMIT ends the walk) where its statistics say matches are common: ids follow the heap's
    # order, so it prefers that to fetching rows in a trader index's order. Never for polling.
    page: bool = False


def page(name: str, run: Run) -> Case:
    return Case(name, run, page=True)


def _first(ids: list[Any]) -> Any:
    return ids[len(ids) // 2]


def cases() -> list[Case]:
    def big(h: History) -> Any:
        return h.traders[0]

    def middle(h: History) -> Any:
        return h.now - timedelta(days=2)

    async def update_order(repo: Repository, h: History) -> None:
        order = await repo.order(_first(h.open_by_kind["resting"]))
        assert order is not None
        await repo.update_order(replace(order, updated_at=h.now))

    open_values = frozenset(OPEN_STATUSES)
    return [
        # the order path: submit, cancel, venue reports
        Case("account by key hash", lambda r, h: r.account_by_key_hash("0" * 64)),
        Case("account (locked)", lambda r, h: r.account(big(h), lock=True)),
        Case("position", lambda r, h: r.position(big(h), SYMBOLS[0])),
        Case("order by id", lambda r, h: r.order(_first(h.open_ids))),
        Case("order by id, the trader's", lambda r, h: r.order(_first(h.open_ids), big(h))),
        Case("order by client order id",
             lambda r, h: r.order_by_client_id(big(h), h.client_order_ids[big(h)])),
        Case("open exposure (account view)", lambda r, h: r.open_exposure(big(h))),
        Case("open orders of a trader", lambda r, h: r.open_orders(big(h))),
        Case("trader's last event seq (event append)", lambda r, h: r.last_event_seq(big(h))),
        Case("order's exec ids from a venue",
             lambda r, h: r.fill_exec_ids(_first(h.open_by_kind["partial"]), VENUE, "E-")),
        Case("update an order", update_order),
        # recovery: the orders a venue is asked about (the rest it reads in memory)
        Case("recovery: orders by ids", lambda r, h: r.orders_by_ids(h.open_ids[:50])),
        # the stream and the events API
        Case("stream: a trader's events from the start",
             lambda r, h: r.events_after(0, trader_id=big(h), limit=1000, per_trader=True)),
        Case("stream: a trader's events after a position",
             lambda r, h: r.events_after(20_000, trader_id=big(h), limit=1000,
                                         per_trader=True)),
        Case("stream: all events after a position", lambda r, h: r.events_after(150_000)),
        Case("stream: a trader's last seq", lambda r, h: r.last_event_seq(big(h))),
        Case("stream: the last service-wide seq", lambda r, h: r.last_event_seq()),
        Case("events of an order (trader's positions)",
             lambda r, h: r.events_after(0, order_id=_first(h.open_ids), per_trader=True)),
        Case("events of an order (service positions)",
             lambda r, h: r.events_after(0, order_id=_first(h.open_ids))),
        # the read API
        page("orders: a trader's newest", lambda r, h: r.orders(OrderQuery(trader_id=big(h)))),
        page("orders: a small trader's newest",
             lambda r, h: r.orders(OrderQuery(trader_id=h.traders[-1]))),
        page("orders: a trader's next page",
             lambda r, h: r.orders(OrderQuery(trader_id=big(h), before_id=_first(h.final_ids)))),
        page("orders: a trader's filled",
             lambda r, h: r.orders(OrderQuery(trader_id=big(h),
                                              statuses=frozenset({OrderStatus.FILLED})))),
        page("orders: a trader's open",
             lambda r, h: r.orders(OrderQuery(trader_id=big(h), statuses=open_values))),
        page("orders: a trader's in one symbol",
             lambda r, h: r.orders(OrderQuery(trader_id=big(h), symbol=SYMBOLS[1]))),
        page("orders: a trader's in an hour",
             lambda r, h: r.orders(OrderQuery(trader_id=big(h), created_from=middle(h),
                                              created_to=middle(h) + timedelta(hours=1)))),
        Case("orders: everyone's newest", lambda r, h: r.orders(OrderQuery()),
             ordered_walk=True),
        page("orders: everyone's failed",
             lambda r, h: r.orders(OrderQuery(statuses=frozenset({OrderStatus.FAILED})))),
        page("orders: everyone's accepted",
             lambda r, h: r.orders(OrderQuery(statuses=frozenset({OrderStatus.ACCEPTED})))),
        Case("fills of an order",
             lambda r, h: r.fills(order_id=_first(h.open_by_kind["partial"]), limit=10_000)),
        page("fills: a trader's newest", lambda r, h: r.fills(trader_id=big(h), limit=100)),
        page("fills: a small trader's newest",
             lambda r, h: r.fills(trader_id=h.traders[-1], limit=100)),
        page("fills: a trader's in one symbol",
             lambda r, h: r.fills(trader_id=big(h), symbol=SYMBOLS[2], limit=100)),
        page("fills: a trader's in an hour",
             lambda r, h: r.fills(trader_id=big(h), since=middle(h),
                                  until=middle(h) + timedelta(hours=1), limit=100)),
        Case("fills: everyone's newest", lambda r, h: r.fills(limit=100), ordered_walk=True),
        page("journal of a trader", lambda r, h: r.journal(trader_id=big(h), limit=100)),
        Case("journal of an order", lambda r, h: r.journal(order_id=_first(h.open_ids))),
    ]


# ---- the store ----------------------------------------------------------------------------------


@dataclass
class Seeded:
    backend: str
    services: Services
    history: History
    seconds: float
    partial_indexes: frozenset[str]
    index_tables: dict[str, str] = field(default_factory=dict)  # PostgreSQL index -> table


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def seeded(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    """One store per backend with 100,000 orders, never analyzed (PostgreSQL's autovacuum is off
    for its tables, so that statistics come only from the test's own ANALYZE)."""
    backend = str(request.param)
    url = None
    if backend == "postgres":
        url = await fresh_postgres_database(request.getfixturevalue("postgres"))
    settings = Settings(data_dir=tmp_path_factory.mktemp(f"plans-{backend}") / "data",
                        database_url=url, seed_demo=False, execution_enabled=False)
    services = build(settings)
    await prepare(services)
    index_tables: dict[str, str] = {}
    if backend == "postgres":
        async with services.db.writer.begin() as conn:
            for table in metadata.sorted_tables:
                await conn.execute(text(f"ALTER TABLE {table.name} "
                                        "SET (autovacuum_enabled = false)"))
            rows = await conn.execute(text(
                "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'public'"))
            index_tables = {name: table for name, table in rows}
    limits = RiskLimits(max_open_orders=10_000, max_order_notional=Decimal(10_000_000))
    traders = [(await services.accounts.create(f"trader-{n}", Role.TRADER, Decimal(10**8),
                                               limits)).account.id for n in range(TRADERS)]
    started = time.perf_counter()
    history = await seed_history(services.db, traders, ORDERS)
    seconds = time.perf_counter() - started
    await services.core.stop()  # the history was written behind the core's back: load it
    await services.core.start()
    partial = frozenset(ix.name for t in metadata.sorted_tables for ix in t.indexes
                        if ix.name and ix.dialect_options["sqlite"]["where"] is not None)
    try:
        yield Seeded(backend, services, history, seconds, partial, index_tables)
    finally:
        await services.close()


async def analyze(seeded: Seeded) -> None:
    async with seeded.services.db.writer.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()
    # SQLite reads the statistics when a connection opens its schema: start afresh.
    await seeded.services.db.writer.dispose()
    await seeded.services.db.reader.dispose()


# ---- plans --------------------------------------------------------------------------------------


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The statements run on ``engine`` meanwhile, as the driver got them."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
               _many: bool) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE"):
            seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listen)


SQLITE_STEP = re.compile(r"(SCAN|SEARCH) (\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+))?")


async def sqlite_plan(conn: AsyncConnection, sql: str, params: Any) -> list[str]:
    rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
    return [str(r[3]) for r in rows]


def sqlite_full_scans(plan: list[str], case: Case, partial: frozenset[str]) -> list[str]:
    bad = []
    for step in plan:
        m = SQLITE_STEP.match(step)
        if m is None or m[1] != "SCAN" or m[2] not in BIG_TABLES:
            continue
        if m[3] in partial or (case.ordered_walk and m[3] is not None):
            continue
        bad.append(step)
    return bad


async def postgres_plan(conn: AsyncConnection, sql: str, params: Any) -> dict[str, Any]:
    found = (await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, params)).scalar_one()
    return (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]


def postgres_steps(node: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    yield depth, node
    for child in node.get("Plans", []):
        yield from postgres_steps(child, depth + 1)


def postgres_line(node: dict[str, Any]) -> str:
    line = node["Node Type"]
    if "Index Name" in node:
        line += f" using {node['Index Name']}"
    if "Relation Name" in node:
        line += f" on {node['Relation Name']}"
    for key in ("Index Cond", "Recheck Cond", "Filter"):
        if key in node:
            line += f"  {key}: {node[key]}"
    return line


def postgres_full_scans(plan: dict[str, Any], case: Case, seeded: Seeded) -> list[str]:
    bad = []
    for _, node in postgres_steps(plan):
        index = node.get("Index Name")
        table = node.get("Relation Name") or seeded.index_tables.get(index or "")
        if table not in BIG_TABLES:
            continue
        if node["Node Type"] == "Seq Scan":
            bad.append(postgres_line(node))
        elif index is not None and "Index Cond" not in node and index not in \
                seeded.partial_indexes and not (case.ordered_walk or case.page):
            bad.append(postgres_line(node))
    return bad


@dataclass
class Outcome:
    case: Case
    plan: list[str]
    full_scans: list[str]
    wall_ms: float
    cpu_ms: float
    rows: int

    @property
    def bound_ms(self) -> float:
        return BOUND_MS + ROW_MS * self.rows


async def survey(seeded: Seeded) -> list[Outcome]:
    engine = seeded.services.db.writer
    outcomes = []
    for case in cases():
        async with engine.connect() as conn:
            tx = await conn.begin()
            repo = Repository(conn)
            with statements(engine) as seen:
                answer = await case.run(repo, seeded.history)
            plan: list[str] = []
            bad: list[str] = []
            for sql, params in seen:
                params = tuple(params)
                if seeded.backend == "postgres":
                    tree = await postgres_plan(conn, sql, params)
                    plan += [postgres_line(n) for _, n in postgres_steps(tree)]
                    bad += postgres_full_scans(tree, case, seeded)
                else:
                    steps = await sqlite_plan(conn, sql, params)
                    plan += steps
                    bad += sqlite_full_scans(steps, case, seeded.partial_indexes)
            walls, cpus = [], []
            for _ in range(RUNS):
                wall, cpu = time.perf_counter(), time.process_time()
                await case.run(repo, seeded.history)
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
            await tx.rollback()
        rows = len(answer) if isinstance(answer, list) else 1
        outcomes.append(Outcome(case, plan, bad, median(walls), median(cpus), rows))
    return outcomes


async def cpu_per_call(seeded: Seeded, label: str) -> list[str]:
    """CPU per call of the account view's open-order query, and of a whole submit (printed
    only; on PostgreSQL the process's CPU leaves out the server's: wall time too)."""
    h = seeded.history
    lines = []
    queries: list[tuple[str, Callable[[Repository], Awaitable[Any]]]] = [
        ("open_exposure (account view)", lambda r: r.open_exposure(h.traders[0])),
    ]
    for name, run in queries:
        async with seeded.services.db.writer.connect() as conn:
            repo = Repository(conn)
            await run(repo)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(20):
                await run(repo)
            wall_ms = (time.perf_counter() - wall) * 50
            cpu_ms = (time.process_time() - cpu) * 50
            await conn.rollback()
        lines.append(f"cpu[{seeded.backend}, {label}] {name}: {cpu_ms:.2f} ms CPU, "
                     f"{wall_ms:.2f} ms wall per call")
    instrument = await seeded.services.queries.instrument(SYMBOLS[0])
    assert instrument is not None
    cmd = SubmitOrder(trader_id=h.traders[-1], symbol=SYMBOLS[0], side=Side.BUY,
                      type=OrderType.LIMIT, quantity=Decimal(1),
                      limit_price=instrument.reference_price)
    first = await seeded.services.orders.submit(cmd)
    assert first.order.status is OrderStatus.ACCEPTED, first.order.reason
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(10):
        await seeded.services.orders.submit(cmd)
    lines.append(f"cpu[{seeded.backend}, {label}] submit (whole transaction): "
                 f"{(time.process_time() - cpu) * 100:.2f} ms CPU, "
                 f"{(time.perf_counter() - wall) * 100:.2f} ms wall per order")
    return lines


def report(seeded: Seeded, label: str, outcomes: list[Outcome]) -> list[str]:
    lines = [f"plans[{seeded.backend}, {label}] at {seeded.history.orders:,} orders:"]
    for o in outcomes:
        mark = "FULL SCAN" if o.full_scans else ("SLOW" if o.wall_ms > o.bound_ms else "ok")
        lines.append(f"  {mark:9} {o.wall_ms:7.2f} ms wall {o.cpu_ms:7.2f} ms CPU "
                     f"{o.rows:5} rows  {o.case.name}: {' | '.join(o.plan)}")
    return lines


async def test_every_polling_and_lookup_query_uses_an_index(seeded: Seeded) -> None:
    print(f"\nseeded {seeded.history.orders:,} orders on {seeded.backend} in "
          f"{seeded.seconds:.1f} s")
    failures: list[str] = []
    lines: list[str] = []
    for label in ("no statistics", "after ANALYZE"):
        if label == "after ANALYZE":
            await analyze(seeded)
        outcomes = await survey(seeded)
        lines += report(seeded, label, outcomes)
        lines += await cpu_per_call(seeded, label)
        failures += [f"{label}: {o.case.name}: {'; '.join(o.full_scans)}"
                     for o in outcomes if o.full_scans]
        failures += [f"{label}: {o.case.name}: {o.wall_ms:.1f} ms for {o.rows} rows"
                     for o in outcomes if o.wall_ms > o.bound_ms]
    print("\n".join(lines))
    assert not failures, "full scans or slow queries:\n" + "\n".join(failures)


async def test_the_partial_indexes_in_the_store_are_those_of_the_tables(seeded: Seeded) -> None:
    """The migrations write the open statuses down; the tables (and the queries) take them from
    the domain. A status added there needs a migration of these indexes, or the queries for open
    orders stop matching them. (Alembic's comparison does not look at index predicates.)"""
    assert seeded.partial_indexes, "no partial indexes of open orders"
    indexes = {ix.name: ix for t in metadata.sorted_tables for ix in t.indexes}
    async with seeded.services.db.writer.connect() as conn:
        for name in sorted(seeded.partial_indexes):
            index = indexes[name]
            if seeded.backend == "postgres":
                stored = (await conn.execute(text(
                    "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :name"),
                    {"name": name})).scalar_one()
                wanted = str(CreateIndex(index).compile(dialect=conn.dialect))
                assert sorted(re.findall(r"'(\w+)'", stored)) == \
                    sorted(re.findall(r"'(\w+)'", wanted)), (name, stored, wanted)
            else:
                stored = (await conn.execute(text(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
                    {"name": name})).scalar_one()
                wanted = str(CreateIndex(index).compile(dialect=conn.dialect))
                assert " ".join(stored.split()) == " ".join(wanted.split())
