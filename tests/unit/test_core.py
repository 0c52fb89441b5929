"""The execution core on in-memory ports: one writer, group commit, answers after the commit,
state in memory. Milliseconds each; the store-backed suites check the same end to end."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from ordex.domain.accounts import Account
from ordex.domain.commands import CancelOrder
from ordex.domain.errors import Code, DomainError
from ordex.domain.journal import JournalEntry, LogAction
from ordex.domain.orders import Order, OrderStatus
from ordex.domain.positions import Position
from ordex.domain.status import OrderEvent
from ordex.domain.validation import Exposure, PricePolicy
from ordex.engine.core import Core
from ordex.engine.ledger import Ledger
from ordex.services.orders import OrderService
from ordex.store.rows import Batch
from tests.unit.factories import T0, TRADER, account, instrument, submit
from tests.unit.factories import order as make_order


class FakeStore:
    """The store's two ports for the core: what it writes (every batch kept, or refused while
    ``fail`` says so) and what it reads of closed orders and new accounts."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.orders: dict[UUID, Order] = {}
        self.fail: bool | type[Exception] = False
        self.gate: asyncio.Event | None = None

    async def write(self, batch: Batch) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail and any(o.quantity == Decimal(13) for o in batch.new_orders):
            raise RuntimeError("disk full")
        self.batches.append(batch)
        for o in [*batch.new_orders, *batch.orders]:
            self.orders[o.id] = o

    async def close(self) -> None:
        return None

    async def closed_order(self, order_id: UUID) -> tuple[Order, set[tuple[str, str]]] | None:
        found = self.orders.get(order_id)
        return None if found is None else (found, set())

    async def account(self, account_id: UUID) -> tuple[Account, dict[str, Position]] | None:
        return None


class FixedClock:
    def now(self) -> datetime:
        return T0

    async def wait(self, wake: asyncio.Event, seconds: float) -> bool:
        await wake.wait()
        return True


def wired(cash: str = "100000") -> tuple[Core, OrderService, FakeStore, list[OrderEvent]]:
    ledger = Ledger()
    ledger.add_account(account(cash), {})
    ledger.instruments["AAPL"] = instrument()
    store = FakeStore()
    published: list[OrderEvent] = []

    def publish(journal: list[JournalEntry]) -> None:
        published.extend(e for row in journal if (e := row.stream_event()) is not None)
    core = Core(None, ledger, publish, writer=store, reader=store)
    return core, OrderService(core, FixedClock(), PricePolicy()), store, published


async def test_a_submit_is_answered_after_its_batch_is_written() -> None:
    core, orders, store, published = wired()
    await core.start()
    store.gate = asyncio.Event()
    pending = asyncio.ensure_future(orders.submit(submit()))
    await asyncio.sleep(0.01)
    assert not pending.done() and not store.batches and not published
    store.gate.set()
    done = await pending
    assert done.created and done.order.status is OrderStatus.ACCEPTED
    assert [o.id for o in store.batches[0].new_orders] == [done.order.id]
    assert [e.seq for e in published] == [1] and published[0].trader_seq == 1
    assert core.ledger.open[done.order.id] == done.order
    await core.stop()


async def test_commands_that_arrive_together_share_one_commit_and_numbers_have_no_gaps() -> None:
    core, orders, store, published = wired()
    await core.start()
    results = await asyncio.gather(*(orders.submit(submit(quantity="1")) for _ in range(50)))
    assert len({r.order.id for r in results}) == 50
    assert len(store.batches) < 5, "50 submits waiting together commit in a few batches"
    assert [e.seq for e in published] == list(range(1, 51))
    assert [e.trader_seq for e in published] == list(range(1, 51))
    journal = [e for b in store.batches for e in b.journal]
    assert [e.seq for e in journal] == list(range(1, 101)), "a submit's row and its approval"
    assert [e.action for e in journal] == [LogAction.SUBMIT, LogAction.APPROVE] * 50
    assert core.ledger.totals[TRADER].count == 50
    await core.stop()


async def test_orders_in_one_batch_see_each_others_reservations() -> None:
    core, orders, store, _ = wired(cash="1500")
    await core.start()
    first, second = await asyncio.gather(
        orders.submit(submit(quantity="10")), orders.submit(submit(quantity="10")),
        return_exceptions=True)
    assert not isinstance(first, BaseException) and first.created
    assert isinstance(second, DomainError)
    assert second.violations[0].code is Code.INSUFFICIENT_FUNDS
    assert len(store.batches) == 1, "the refusal and the order commit together"
    assert [e.action.value for e in store.batches[0].journal] == ["submit", "approve", "reject"]
    await core.stop()


async def test_a_refused_command_leaves_no_change_behind() -> None:
    core, orders, _store, published = wired()
    await core.start()
    placed = await orders.submit(submit())
    with pytest.raises(DomainError):
        await orders.cancel(CancelOrder(TRADER, UUID(int=7)))
    assert core.ledger.open.keys() == {placed.order.id}
    assert [e.seq for e in published] == [1]
    await core.stop()


async def test_a_batch_the_store_refuses_is_retried_unit_by_unit() -> None:
    core, orders, store, published = wired()
    store.fail = True
    await core.start()
    good, bad = await asyncio.gather(
        orders.submit(submit(quantity="2")), orders.submit(submit(quantity="13")),
        return_exceptions=True)
    assert not isinstance(good, BaseException) and good.created
    assert isinstance(bad, RuntimeError)
    assert [o.quantity for o in core.ledger.open.values()] == [Decimal(2)]
    assert [e.seq for e in published] == [1], "the failed unit's number is not used"
    assert [e.seq for b in store.batches for e in b.journal] == [1, 2]
    assert core.ledger.totals[TRADER].count == 1
    await core.stop()


async def test_a_replayed_client_order_id_finds_the_order_in_memory() -> None:
    core, orders, store, _ = wired()
    await core.start()
    cmd = replace(submit(), client_order_id="abc")
    first, again = await asyncio.gather(orders.submit(cmd), orders.submit(cmd))
    assert first.created and not again.created and again.order.id == first.order.id
    assert sum(len(b.new_orders) for b in store.batches) == 1
    await core.stop()


async def test_a_cancel_of_an_order_no_venue_has_closes_it_and_frees_its_cash() -> None:
    core, orders, _store, _ = wired(cash="1000")
    await core.start()
    placed = await orders.submit(submit(quantity="10"))
    assert core.ledger.totals[TRADER].reserved == Decimal("1000.00")
    cancelled = await orders.cancel(CancelOrder(TRADER, placed.order.id))
    assert cancelled.status is OrderStatus.CANCELLED
    assert placed.order.id not in core.ledger.open
    assert core.ledger.totals[TRADER].reserved == 0
    again = await orders.submit(submit(quantity="10"))
    assert again.created
    await core.stop()


_statuses = st.sampled_from(list(OrderStatus))
_orders = st.builds(
    lambda side, qty, filled, reserve, symbol, status: make_order(
        side, str(qty), str(reserve), symbol, status, str(min(filled, qty))),
    st.sampled_from(["buy", "sell"]), st.integers(1, 500), st.integers(0, 500),
    st.decimals("0.01", "999.99", places=2), st.sampled_from(["AAPL", "MSFT"]), _statuses)


@given(st.lists(st.tuples(st.integers(0, 5), _orders), max_size=40))
@settings(max_examples=150, deadline=None)
def test_running_totals_always_equal_the_open_orders_added_up(
        steps: list[tuple[int, Order]]) -> None:
    """Orders placed, changed and closed in any order: the ledger's running totals are what
    adding up its open orders gives."""
    ledger = Ledger()
    ids = [UUID(int=i + 1) for i in range(6)]
    for slot, order in steps:
        ledger.put_order(replace(order, id=ids[slot]))
        expected = Exposure.of(o for o in ledger.open.values() if o.trader_id == TRADER)
        got = ledger.exposure(TRADER).frozen()
        assert (got.count, got.reserved) == (expected.count, expected.reserved)
        assert {k: v for k, v in got.quantities.items() if v} == \
            {k: v for k, v in expected.quantities.items() if v}


def test_ids_made_one_after_the_other_sort_in_that_order() -> None:
    from ordex.ids import new_id

    made = [new_id() for _ in range(10_000)]  # thousands within each millisecond
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(i.version == 7 for i in made[:10])
