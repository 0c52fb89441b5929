"""The idempotency_keys table on SQLite and PostgreSQL: a command's kept outcome is written in
its batch's transaction (or not at all), stored as SQLAlchemy stores it, read back at start by
a command handler that answers repeats from it, and pruned in bounded chunks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from msgspec.structs import replace
from sqlalchemy import insert, text

from ordex.bootstrap import Services
from ordex.domain.accounts import Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Code
from ordex.domain.orders import OrderType, Side
from ordex.services.command_port import CommandHandler, fingerprint
from ordex.services.messages import (
    AccountDone,
    LimitsChange,
    OrderDone,
    Refused,
    Submit,
    UpdateAccount,
)
from ordex.store.idempotency import KeptOutcome, StoredKeys, forget_keys, recent_keys
from ordex.store.rows import Batch, MissingRows, RowWriter
from ordex.store.tables import idempotency_keys
from ordex.store.uow import UnitOfWork
from tests.integration.test_rows import new_order, stored_account

T0 = datetime(2026, 3, 2, 14, 30, 5, 123456, tzinfo=UTC)
EAST = timezone(timedelta(hours=5, minutes=30))


def kept(actor: UUID, key: str, at: datetime = T0, outcome: bytes = b'{"outcome":"order"}',
         ) -> KeptOutcome:
    return KeptOutcome(actor, key, "ab" * 32, outcome, at)


async def test_a_kept_outcome_is_written_with_its_batch_and_read_back_unchanged(
        services: Services, writer: RowWriter) -> None:
    account = await stored_account(services)
    order = new_order(account.id)
    outcome = '{"outcome":"order","order":{"note":"ü — x"}}'.encode()
    row = kept(account.id, '"quoted" key ~!', at=T0.astimezone(EAST), outcome=outcome)
    await writer.write(Batch(new_orders=[order], keys=[row]))
    [back] = await recent_keys(services.db, T0, 10)
    assert back == row and back.created_at.tzinfo is UTC
    assert await recent_keys(services.db, T0 + timedelta(microseconds=1), 10) == []


async def test_a_kept_outcome_is_not_stored_when_its_batch_fails(
        services: Services, writer: RowWriter) -> None:
    account = await stored_account(services)
    ghost = new_order(account.id)  # never inserted: its update finds no row
    with pytest.raises(MissingRows):
        await writer.write(Batch(orders=[ghost], keys=[kept(account.id, "k")]))
    assert await recent_keys(services.db, T0 - timedelta(days=1), 10) == []


async def test_a_key_written_again_names_the_newer_command(
        services: Services, writer: RowWriter) -> None:
    actor = uuid4()
    await writer.write(Batch(keys=[kept(actor, "k")]))
    newer = KeptOutcome(actor, "k", "cd" * 32, b'{"outcome":"account"}', T0 + timedelta(hours=25))
    await writer.write(Batch(keys=[newer]))
    assert await recent_keys(services.db, T0 - timedelta(days=1), 10) == [newer]


async def test_the_writer_stores_a_key_as_sqlalchemy_does(
        services: Services, writer: RowWriter) -> None:
    actor = uuid4()
    await writer.write(Batch(keys=[kept(actor, "raw", at=T0.astimezone(EAST))]))
    async with UnitOfWork(services.db) as uow:
        await uow.repo.conn.execute(insert(idempotency_keys).values(
            actor=actor, key="orm", fingerprint="ab" * 32, outcome='{"outcome":"order"}',
            created_at=T0))
        await uow.commit()
        columns = "actor, fingerprint, outcome, created_at"
        if not services.db.is_sqlite:
            columns = "actor::text, fingerprint, outcome, created_at::text"
    async with services.db.reader.connect() as conn:
        rows = (await conn.execute(text(
            f"SELECT key, {columns} FROM idempotency_keys ORDER BY key"))).all()
    assert [tuple(r[1:]) for r in rows if r[0] == "raw"] == \
        [tuple(r[1:]) for r in rows if r[0] == "orm"]


async def test_each_actors_most_recent_keys_are_read_and_old_ones_deleted_in_chunks(
        services: Services, writer: RowWriter) -> None:
    alice, bob = uuid4(), uuid4()
    rows = [kept(alice, f"a-{n}", T0 + timedelta(seconds=n)) for n in range(5)]
    rows += [kept(bob, f"b-{n}", T0 + timedelta(seconds=n)) for n in range(2)]
    await writer.write(Batch(keys=rows))
    recent = await recent_keys(services.db, T0 + timedelta(seconds=1), 2)
    assert [k.key for k in recent] == ["b-1", "a-3", "a-4"], "oldest first"
    assert await forget_keys(services.db, T0 + timedelta(seconds=3), chunk=2, most=3) == 3
    assert await forget_keys(services.db, T0 + timedelta(seconds=3), chunk=2) == 2
    left = await recent_keys(services.db, T0 - timedelta(days=1), 10)
    assert [k.key for k in left] == ["a-3", "a-4"]


async def test_a_handler_started_again_answers_keyed_commands_from_the_stored_outcomes(
        services: Services) -> None:
    trader = (await services.accounts.create("alice", Role.TRADER, Decimal("100000"))).account
    admin = (await services.accounts.create("root", Role.ADMIN, Decimal(0))).account
    order = SubmitOrder(trader.id, "AAPL", Side.BUY, OrderType.LIMIT, Decimal("10"),
                        limit_price=Decimal("189.00"))
    submit = Submit("buy-1", True, order)
    change = UpdateAccount("limits-1", True, admin_id=admin.id, account_id=trader.id,
                           limits=LimitsChange(max_open_orders=5))
    first = await services.commands.send(submit)
    changed = await services.commands.send(change)
    assert isinstance(first, OrderDone) and isinstance(changed, AccountDone)
    [kept_submit, kept_change] = await recent_keys(services.db, T0, 10)
    assert (kept_submit.actor, kept_submit.key) == (trader.id, "buy-1")
    assert kept_submit.fingerprint == fingerprint(submit)
    assert (kept_change.actor, kept_change.key) == (admin.id, "limits-1")

    again = CommandHandler(services.orders, services.accounts, keys=StoredKeys(services.db))
    await again.start()
    try:
        replayed = await again.handle(submit)
        assert isinstance(replayed, OrderDone) and replayed.replay
        assert (replayed.order, replayed.created) == (first.order, True)
        account = await again.handle(change)
        assert isinstance(account, AccountDone) and account.replay
        assert account.account.limits == changed.account.limits
        reused = await again.handle(Submit("buy-1", True, replace(order, quantity=Decimal(11))))
        assert isinstance(reused, Refused) and reused.code is Code.IDEMPOTENCY_KEY_REUSED
    finally:
        await again.stop()
    async with UnitOfWork(services.db) as uow:
        assert await uow.repo.count_orders(trader.id) == 1
