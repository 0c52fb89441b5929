"""The raw-driver row writer on SQLite and PostgreSQL: one transaction per batch, and rows
stored exactly as SQLAlchemy stores them, so the repository reads them back unchanged."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from msgspec.structs import replace
from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite

from ordex.bootstrap import Services, build, prepare
from ordex.config import Settings
from ordex.domain.accounts import Account, RiskLimits, Role
from ordex.domain.fills import Fill
from ordex.domain.instruments import Instrument, InstrumentStatus
from ordex.domain.journal import Actor, JournalEntry, LogAction, entry
from ordex.domain.orders import Order, OrderStatus, OrderType, Routing, Side, TimeInForce
from ordex.domain.positions import Position
from ordex.domain.status import LastFill, payload
from ordex.store.repository import Repository
from ordex.store.rows import (
    JOURNAL_COLUMNS,
    ORDER_COLUMNS,
    SQLITE_ROWS,
    Batch,
    MissingRows,
    RowWriter,
    open_writer,
    postgres_dsn,
    sqlite_path,
    sqlite_time,
)
from ordex.store.tables import journal as journal_table
from ordex.store.tables import orders
from ordex.store.types import ExactDecimal, UTCDateTime
from ordex.store.uow import UnitOfWork, reading
from tests.conftest import fresh_postgres_database

T0 = datetime(2026, 3, 2, 14, 30, 5, 123456, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


async def stored_account(services: Services, name: str = "t") -> Account:
    issued = await services.accounts.create(name, Role.TRADER, Decimal("100000"))
    return issued.account


def new_order(trader_id: UUID, at: datetime = T0, **changes: Any) -> Order:
    order = Order(id=uuid4(), trader_id=trader_id, symbol="AAPL", side=Side.BUY,
                  type=OrderType.LIMIT, quantity=Decimal("10"), time_in_force=TimeInForce.DAY,
                  created_at=at, updated_at=at, client_order_id=f"c-{uuid4().hex[:8]}",
                  limit_price=Decimal("189.50"), reserve_price=Decimal("189.50"))
    return replace(order, **changes)


def worked(order: Order) -> Order:
    """``order`` accepted, routed and partly filled: every nullable column set."""
    at = order.created_at + timedelta(milliseconds=3)
    return replace(
        order, status=OrderStatus.PARTIALLY_FILLED, filled_quantity=Decimal("4"),
        average_price=Decimal("189.4912345678"), reason="partly filled",
        extra={"note": "ü — x", "closed_status": "cancelled"}, updated_at=at, venue="SIM",
        routing=Routing.AT_VENUE, venue_order_id="SIM-1", routed_at=at.astimezone(PLUS_TWO),
        cancel_sent_at=at,
        stop_loss=Decimal("180.0000000001"), take_profit=Decimal("200"),
        max_slippage_pct=Decimal("0.5"), slippage_price=Decimal("190.4475"),
        timeout_seconds=30, expires_at=at + timedelta(seconds=30), send_attempts=1,
        next_attempt_at=at, acknowledged_at=at)


def fill_of(order: Order, quantity: str, price: str, exec_id: str, at: datetime) -> Fill:
    return Fill(uuid4(), order.id, order.trader_id, order.symbol, order.side, at,
                Decimal(quantity), Decimal(price), "SIM", Decimal("0.0190"), exec_id)


def journal_of(placed: Order, now: Order, at: datetime, last_fill: LastFill,
               seq: int = 1) -> list[JournalEntry]:
    """A submit, its approval and a fill as the stream shows them, and a refusal."""
    return [
        replace(entry(placed, LogAction.SUBMIT, at, Actor.TRADER, details={"retry_of": None}),
                seq=seq),
        replace(entry(placed, LogAction.APPROVE, at, Actor.ENGINE), event="accepted",
                payload=payload(placed), seq=seq + 1, stream_seq=7, trader_seq=1),
        replace(entry(now, LogAction.FILL, at + timedelta(microseconds=1), Actor.VENUE,
                      reason="a fill", quantity=last_fill.quantity, price=last_fill.price,
                      venue=last_fill.venue,
                      details={"exec_id": "E1", "nested": {"list": [1, "two", None, True]}}),
                event="partially_filled", payload=payload(now, last_fill), seq=seq + 2,
                stream_seq=9, trader_seq=2),
        JournalEntry(placed.trader_id, None, Actor.ENGINE, LogAction.REJECT, "rejected",
                     at + timedelta(microseconds=2), "Insufficient funds", "AAPL",
                     Decimal("10"), None, None, {"codes": ["insufficient_funds"]},
                     seq=seq + 3),
    ]


def shown(journal: list[JournalEntry]) -> list[Any]:
    return [e for row in journal if (e := row.stream_event()) is not None]


async def halted_aapl(services: Services) -> Instrument:
    """AAPL as the market changes it: halted, at a new reference price."""
    async with reading(services.db) as repo:
        aapl = await repo.instrument("AAPL")
    assert aapl is not None
    return replace(aapl, status=InstrumentStatus.HALTED, reference_price=Decimal("201.37"))


def changed_account(account: Account) -> Account:
    return replace(account, cash=Decimal("98103.2412345678"), allow_short=True,
                   limits=RiskLimits(Decimal("5000"), Decimal("250000.5"), Decimal("100000"),
                                     Decimal("2500.25"), 17),
                   rate_limit_per_minute=90, day_start_equity=Decimal("100000.0000000001"),
                   trading_day=date(2026, 3, 2))


async def test_a_batch_of_every_kind_of_row_reads_back_through_the_repository(
        services: Services, writer: RowWriter) -> None:
    account = await stored_account(services)
    placed = new_order(account.id)
    now = worked(placed)
    f1 = fill_of(placed, "1.5", "189.49", "E1", T0 + timedelta(milliseconds=1))
    f2 = fill_of(placed, "2.5", "189.4923456789", "E2",
                 (T0 + timedelta(milliseconds=2)).astimezone(PLUS_TWO))
    opened = Position("AAPL", Decimal("1.5"), Decimal("189.49"))
    held = Position("AAPL", Decimal("4"), Decimal("189.4912345678"), Decimal("-0.0000000001"))
    account_now = changed_account(account)
    journal = journal_of(placed, now, T0, LastFill(f2.quantity, f2.price, f2.venue,
                                                   f2.timestamp))
    batch = Batch(new_orders=[placed], orders=[now], fills=[f1, f2],
                  positions=[(account.id, opened, T0), (account.id, held, now.updated_at)],
                  accounts=[(account_now, now.updated_at)], journal=journal,
                  instruments=[(await halted_aapl(services), now.updated_at)])
    assert batch and not Batch()

    await writer.write(batch)

    async with reading(services.db) as repo:
        assert await repo.order(placed.id) == now
        assert sorted(await repo.fills(order_id=placed.id), key=lambda f: f.exec_id) == [f1, f2]
        assert await repo.position(account.id, "AAPL") == held
        assert await repo.account(account.id) == account_now
        assert await repo.instrument("AAPL") == await halted_aapl(services)
        assert await repo.journal(trader_id=account.id) == journal
        assert await repo.journal(order_id=placed.id) == journal[:3]
        events = shown(journal)
        assert [e.seq for e in events] == [7, 9]
        assert await repo.events_after(0) == events
        assert await repo.events_after(7) == events[1:]
        assert await repo.events_after(0, trader_id=account.id, per_trader=True) == events
        assert await repo.last_event_seq() == 9
        assert await repo.last_event_seq(account.id) == 2
        assert await repo.last_journal_seq() == 4


async def test_a_journal_position_is_taken_once(services: Services, writer: RowWriter) -> None:
    account = await stored_account(services)
    order = new_order(account.id)
    journal = journal_of(order, order, T0, LastFill(Decimal(1), Decimal(1), "SIM", T0))
    await writer.write(Batch(new_orders=[order], journal=journal))
    for taken in ({"seq": 2}, {"seq": 5, "stream_seq": 9}, {"seq": 5, "trader_seq": 1}):
        again = replace(journal[1], **({"stream_seq": 10, "trader_seq": 3} | taken))
        with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
            await writer.write(Batch(journal=[again]))
    async with reading(services.db) as repo:
        assert await repo.journal(trader_id=account.id) == journal


async def test_an_empty_batch_writes_nothing(services: Services, writer: RowWriter) -> None:
    await writer.write(Batch())
    async with reading(services.db) as repo:
        assert await repo.count_orders() == 0


async def test_a_failing_batch_writes_nothing_and_the_writer_goes_on(
        services: Services, writer: RowWriter) -> None:
    account = await stored_account(services)
    first = new_order(account.id)
    await writer.write(Batch(new_orders=[first],
                             fills=[fill_of(first, "1", "189.5", "E1", T0)]))

    second = new_order(account.id)
    repeated = fill_of(second, "1", "189.5", "E1", T0)  # same venue and exec id as first's
    moved = Position("AAPL", Decimal("1"), Decimal("189.5"))
    refused = Batch(new_orders=[second], orders=[replace(first, status=OrderStatus.ACCEPTED)],
                    fills=[repeated], positions=[(account.id, moved, T0)],
                    accounts=[(changed_account(account), T0)],
                    journal=journal_of(second, second, T0, LastFill(Decimal(1), Decimal(1),
                                                                    "SIM", T0)))
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        await writer.write(refused)

    ghost = new_order(account.id)  # never inserted: its update finds no row
    with pytest.raises(MissingRows) as missing:
        await writer.write(Batch(new_orders=[second], orders=[first, ghost]))
    assert (missing.value.table, missing.value.expected, missing.value.found) == ("orders", 2, 1)

    async with reading(services.db) as repo:
        assert await repo.order(second.id) is None
        assert await repo.order(first.id) == first
        assert [f.order_id for f in await repo.fills(trader_id=account.id)] == [first.id]
        assert await repo.position(account.id, "AAPL") == Position("AAPL")
        assert await repo.account(account.id) == account
        assert await repo.journal(trader_id=account.id) == []
        assert await repo.events_after(0) == []

    await writer.write(Batch(new_orders=[second], fills=[replace(repeated, exec_id="E2")]))
    async with reading(services.db) as repo:
        assert await repo.order(second.id) == second


async def test_a_naive_time_is_refused_before_anything_is_written(
        services: Services, writer: RowWriter) -> None:
    account = await stored_account(services)
    naive = new_order(account.id, at=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive"):
        await writer.write(Batch(new_orders=[naive]))
    async with reading(services.db) as repo:
        assert await repo.count_orders() == 0


# What SQLAlchemy writes, and what the writer writes, byte for byte.

async def two_stores(backend: str, tmp_path: Path,
                     request: pytest.FixtureRequest) -> tuple[Services, Services]:
    made = []
    for name in ("orm", "raw"):
        url = None
        if backend == "postgres":
            url = await fresh_postgres_database(request.getfixturevalue("postgres"))
        services = build(Settings(data_dir=tmp_path / name, database_url=url, seed_demo=False,
                                  execution_enabled=False))
        await prepare(services)
        made.append(services)
    return made[0], made[1]


TABLES = {"orders": "id", "fills": "id", "positions": "account_id, symbol", "accounts": "id",
          "journal": "seq", "instruments": "symbol"}


async def stored_rows(services: Services) -> dict[str, list[Any]]:
    """Every row of the order path's tables as stored: SQLite's values with their storage
    classes, PostgreSQL's rows as text."""
    if services.db.is_sqlite:
        conn = sqlite3.connect(sqlite_path(services.db.url))
        try:
            return {t: [[(type(v).__name__, v) for v in row] for row in
                        conn.execute(f"SELECT * FROM {t} ORDER BY {key}")]
                    for t, key in TABLES.items()}
        finally:
            conn.close()
    pg = await asyncpg.connect(postgres_dsn(services.db.url))
    try:
        return {t: [r[0] for r in await pg.fetch(f"SELECT t::text FROM {t} t ORDER BY {key}")]
                for t, key in TABLES.items()}
    finally:
        await pg.close()


async def test_rows_are_stored_exactly_as_the_repository_stores_them(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    orm, raw = await two_stores(backend, tmp_path, request)
    try:
        account = Account(uuid4(), "t", Role.TRADER, Decimal("100000"))
        for services in (orm, raw):
            async with UnitOfWork(services.db) as uow:
                await uow.repo.insert_account(account, "0" * 64, T0)
                await uow.commit()
        placed = new_order(account.id, extra={"a": "b"})
        now = worked(placed)
        bare = new_order(account.id, type=OrderType.MARKET, limit_price=None,
                         client_order_id=None, time_in_force=TimeInForce.IOC)
        fills = [fill_of(placed, "1.5", "189.49", "E1", T0),
                 fill_of(placed, "2.5", "189.4923456789", "E2", T0.astimezone(PLUS_TWO))]
        first = Position("AAPL", Decimal("1.5"), Decimal("189.49"))
        second = Position("AAPL", Decimal("4"), Decimal("189.4912345678"), Decimal("-1.25"))
        account_now = changed_account(account)
        last = LastFill(fills[1].quantity, fills[1].price, "SIM", fills[1].timestamp)
        journal = journal_of(placed, now, T0, last)

        async with UnitOfWork(orm.db) as uow:
            repo: Repository = uow.repo
            await repo.insert_order(placed)
            await repo.insert_order(bare)
            await repo.update_order(now)
            for fill in fills:
                await repo.insert_fill(fill)
            await repo.set_position(account.id, first, T0)
            await repo.set_position(account.id, second, now.updated_at)
            await repo.update_account(account_now, now.updated_at)
            await repo.upsert_instrument(await halted_aapl(orm), now.updated_at)
            # the journal's own columns, bound by SQLAlchemy
            await repo.conn.execute(insert(journal_table), [
                {c: getattr(e, c) for c in JOURNAL_COLUMNS if c not in ("actor", "action")}
                | {"actor": e.actor.value, "action": e.action.value} for e in journal])
            await uow.commit()

        writer = await open_writer(raw.db)
        try:
            await writer.write(Batch(
                new_orders=[placed, bare], orders=[now], fills=fills,
                positions=[(account.id, first, T0), (account.id, second, now.updated_at)],
                accounts=[(account_now, now.updated_at)], journal=journal,
                instruments=[(await halted_aapl(raw), now.updated_at)]))
        finally:
            await writer.close()

        by_orm, by_raw = await stored_rows(orm), await stored_rows(raw)
        assert [len(by_orm[t]) for t in TABLES][:5] == [2, 2, 1, 1, 4]
        for table in TABLES:
            if table == "instruments":  # the others were seeded at each store's own start
                for rows in (by_raw, by_orm):
                    rows[table] = [r for r in rows[table] if "AAPL" in str(r)]
                    assert len(rows[table]) == 1
            for raw_row, orm_row in zip(by_raw[table], by_orm[table], strict=True):
                assert raw_row == orm_row, table
    finally:
        await orm.close()
        await raw.close()


def test_the_order_and_journal_rows_cover_every_column_of_their_tables() -> None:
    assert set(ORDER_COLUMNS) == set(orders.c.keys())
    assert len(ORDER_COLUMNS) == len(set(ORDER_COLUMNS))
    assert JOURNAL_COLUMNS == tuple(journal_table.c.keys())


# Values: the writer's encoding against SQLAlchemy's own bind processing, then a round trip.

# Up to 28 significant digits: reading rounds to Decimal's default precision (money.tidy),
# whoever wrote the value.
decimals = st.decimals(min_value=Decimal("-1e17") + 1, max_value=Decimal("1e17") - 1,
                       allow_nan=False, allow_infinity=False, places=10)
zones = st.sampled_from([UTC, PLUS_TWO, timezone(timedelta(hours=-9, minutes=-30))])
times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=zones)


@given(value=times)
def test_times_are_formatted_as_sqlalchemy_binds_them_on_sqlite(value: datetime) -> None:
    assert sqlite_time(value) == UTCDateTime().process_bind_param(value, sqlite.dialect())


@given(value=st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_are_formatted_as_sqlalchemy_binds_them_on_sqlite(value: Decimal) -> None:
    fill = Fill(uuid4(), uuid4(), uuid4(), "AAPL", Side.BUY, T0, value, value, "SIM", value,
                "E")
    stored = ExactDecimal().process_bind_param(value, sqlite.dialect())
    assert SQLITE_ROWS.fill(fill)[6] == stored
    assert ExactDecimal().process_bind_param(value, postgresql.dialect()) == value


@hypothesis_settings(max_examples=12, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quantity=decimals, price=decimals, at=times.filter(lambda t: t.year >= 1000))
async def test_decimals_and_times_round_trip(services: Services, writer: RowWriter,
                                             quantity: Decimal, price: Decimal,
                                             at: datetime) -> None:
    account = await stored_account(services, f"t-{uuid4().hex[:8]}")
    order = new_order(account.id, at=at, quantity=quantity, limit_price=price,
                      average_price=price)
    fill = fill_of(order, "1", "1", uuid4().hex, at)
    fill = replace(fill, quantity=quantity, price=price, commission=quantity)
    await writer.write(Batch(new_orders=[order], fills=[fill]))
    async with reading(services.db) as repo:
        stored = await repo.order(order.id)
        (stored_fill,) = await repo.fills(order_id=order.id)
    assert stored == order and stored_fill == fill
    assert stored is not None and stored.created_at.tzinfo is UTC
    assert stored.created_at.microsecond == at.microsecond


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_lost_connection_is_opened_again_before_the_next_batch(
        services: Services, writer: RowWriter) -> None:
    account = await stored_account(services)
    first, second = new_order(account.id), new_order(account.id)
    await writer.write(Batch(new_orders=[first]))
    admin = await asyncpg.connect(postgres_dsn(services.db.url))
    try:
        cut = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await admin.close()
    assert cut >= 1
    await asyncio.sleep(0.2)  # the writer's event loop sees the connection close
    await writer.write(Batch(new_orders=[second]))
    async with reading(services.db) as repo:
        assert await repo.order(second.id) == second
