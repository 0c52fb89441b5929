"""The command port on the execution core's in-memory fakes: commands in, outcomes out, a
repeated idempotency key answered once, also by a handler started again on the stored keys."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from msgspec.structs import replace

from ordex.domain.errors import Code
from ordex.domain.journal import LogAction
from ordex.domain.orders import OrderStatus
from ordex.engine.core import Core
from ordex.services.command_port import KEY_RETENTION, CommandHandler, InProcessPort, fingerprint
from ordex.services.messages import (
    Acknowledge,
    AnyOutcome,
    Cancel,
    OrderDone,
    Refused,
    Retry,
    Submit,
    decode_command,
    decode_outcome,
    encode,
)
from ordex.services.orders import OrderService
from ordex.store.idempotency import KeptOutcome
from tests.unit.factories import T0, TRADER, account, submit
from tests.unit.factories import order as make_order
from tests.unit.test_core import FakeStore, wired

OTHER = UUID("00000000-0000-7000-8000-000000000002")


class MovingClock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class FakeKeys:
    """The kept outcomes the core wrote in the fake store's batches (a key written again
    replaces its row, as the store's upsert does), less those forgotten."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.reads = 0
        self.forgotten_before: datetime | None = None

    def kept(self) -> dict[tuple[UUID, str], KeptOutcome]:
        rows = {(k.actor, k.key): k for b in self.store.batches for k in b.keys}
        cutoff = self.forgotten_before
        return {scope: k for scope, k in rows.items() if cutoff is None or k.created_at >= cutoff}

    async def recent(self, since: datetime, per_actor: int) -> list[KeptOutcome]:
        self.reads += 1
        by_actor: dict[UUID, list[KeptOutcome]] = defaultdict(list)
        for kept in sorted(self.kept().values(), key=lambda k: (k.created_at, k.key)):
            if kept.created_at >= since:
                by_actor[kept.actor].append(kept)
        return sorted((k for keys in by_actor.values() for k in keys[-per_actor:]),
                      key=lambda k: (k.created_at, k.key))

    async def forget(self, before: datetime, most: int | None = None) -> int:
        gone = [k for k in self.kept().values() if k.created_at < before]
        self.forgotten_before = max(before, self.forgotten_before or before)
        return len(gone)


@dataclass
class Wired:
    core: Core
    orders: OrderService
    store: FakeStore
    keys: FakeKeys
    clock: MovingClock
    handler: CommandHandler
    port: InProcessPort

    def orders_made(self) -> int:
        return sum(len(b.new_orders) for b in self.store.batches)

    async def restarted(self, **options: int) -> CommandHandler:
        """A handler started again on the stored keys, as after a restart of the service."""
        handler = CommandHandler(self.orders, keys=self.keys, clock=self.clock,
                                 **({"remember": 100} | options))
        await handler.start()
        return handler


@pytest.fixture(params=[False, True], ids=["direct", "as-bytes"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Wired]:
    core, orders, store, _ = wired()
    core.ledger.add_account(replace(account(), id=OTHER, name="o"), {})
    keys, clock = FakeKeys(store), MovingClock()
    handler = CommandHandler(orders, keys=keys, clock=clock, remember=100)
    await core.start()
    await handler.start()
    yield Wired(core, orders, store, keys, clock, handler,
                InProcessPort(handler, as_bytes=request.param))
    await handler.stop()
    await core.stop()


def done(outcome: AnyOutcome) -> OrderDone:
    assert isinstance(outcome, OrderDone), outcome
    return outcome


async def test_a_submit_is_answered_with_the_order_as_committed(engine: Wired) -> None:
    outcome = done(await engine.port.send(Submit("k", True, submit())))
    assert outcome.created and not outcome.replay
    assert outcome.order.status is OrderStatus.ACCEPTED
    assert engine.store.orders[outcome.order.id] == outcome.order


async def test_a_refusal_is_an_outcome_with_codes_messages_and_hints(engine: Wired) -> None:
    outcome = await engine.port.send(Submit("k", False, submit(quantity="5000")))
    assert isinstance(outcome, Refused)
    assert outcome.code is Code.INSUFFICIENT_FUNDS
    assert outcome.message.startswith("Insufficient funds")
    assert all(v.hint for v in outcome.violations)
    assert engine.orders_made() == 0


async def test_a_repeated_key_gets_the_first_outcome_and_does_the_work_once(
        engine: Wired) -> None:
    first = done(await engine.port.send(Submit("k-1", True, submit())))
    again = done(await engine.port.send(Submit("k-1", True, submit())))
    assert again.replay and replace_replay(again) == first
    assert engine.orders_made() == 1
    assert engine.core.ledger.totals[TRADER].count == 1


async def test_a_key_sent_twice_at_the_same_time_does_the_work_once(engine: Wired) -> None:
    outcomes = await asyncio.gather(*(engine.port.send(Submit("k-2", True, submit()))
                                      for _ in range(10)))
    made = {done(o).order.id for o in outcomes}
    assert len(made) == 1 and engine.orders_made() == 1
    assert sorted(o.replay for o in outcomes) == [False] + [True] * 9


async def test_a_key_used_again_for_another_request_is_refused(engine: Wired) -> None:
    done(await engine.port.send(Submit("k-3", True, submit(quantity="1"))))
    other = await engine.port.send(Submit("k-3", True, submit(quantity="2")))
    assert isinstance(other, Refused) and other.code is Code.IDEMPOTENCY_KEY_REUSED
    assert other.violations[0].field == "Idempotency-Key"
    assert engine.orders_made() == 1


async def test_keys_belong_to_their_trader(engine: Wired) -> None:
    mine = done(await engine.port.send(Submit("k-4", True, submit())))
    theirs = done(await engine.port.send(Submit("k-4", True,
                                                replace(submit(), trader_id=OTHER))))
    assert theirs.created and not theirs.replay and theirs.order.trader_id == OTHER
    assert mine.order.id != theirs.order.id and engine.orders_made() == 2


async def test_a_derived_key_is_not_kept_and_the_command_answers_for_itself(
        engine: Wired) -> None:
    """Without a key of the trader's, a submit sent again is a new order unless it names a
    client_order_id, and then it is the replay the core already answers: created is False."""
    keyed = replace(submit(), client_order_id="abc")
    first = done(await engine.port.send(Submit("client_order_id:abc", False, keyed)))
    again = done(await engine.port.send(Submit("client_order_id:abc", False, keyed)))
    assert first.created and not again.created and not again.replay
    assert again.order.id == first.order.id
    await engine.port.send(Submit("request:1", False, submit(quantity="1")))
    await engine.port.send(Submit("request:2", False, submit(quantity="1")))
    assert engine.orders_made() == 3 and engine.handler.remembered == 0


async def test_a_cancel_sent_again_with_its_key_gets_the_same_answer(engine: Wired) -> None:
    placed = done(await engine.port.send(Submit("s", False, submit())))
    cancel = Cancel("c-1", True, trader_id=TRADER, order_id=placed.order.id)
    first = done(await engine.port.send(cancel))
    again = done(await engine.port.send(cancel))
    assert first.order.status is OrderStatus.CANCELLED and replace_replay(again) == first
    fresh = await engine.port.send(Cancel("c-2", True, trader_id=TRADER,
                                          order_id=placed.order.id))
    assert isinstance(fresh, Refused) and fresh.code is Code.ORDER_NOT_CANCELABLE


async def test_a_cancel_of_another_traders_order_is_not_found(engine: Wired) -> None:
    placed = done(await engine.port.send(Submit("s", False, submit())))
    outcome = await engine.port.send(Cancel("c", True, trader_id=OTHER,
                                            order_id=placed.order.id))
    assert isinstance(outcome, Refused) and outcome.code is Code.NOT_FOUND
    assert placed.order.id in engine.core.ledger.open


async def test_a_failed_order_is_retried_once_and_acknowledged(engine: Wired) -> None:
    failed = make_order(status=OrderStatus.FAILED)
    engine.store.orders[failed.id] = failed
    retry = Retry("r", True, trader_id=TRADER, order_id=failed.id)
    first = done(await engine.port.send(retry))
    again = done(await engine.port.send(retry))
    assert first.created and first.order.extra["retry_of"] == str(failed.id)
    assert replace_replay(again) == first and engine.orders_made() == 1
    later = done(await engine.port.send(Retry("r-2", False, trader_id=TRADER,
                                              order_id=failed.id)))
    assert not later.created and later.order.id == first.order.id
    closed = done(await engine.port.send(Acknowledge("a", True, trader_id=TRADER,
                                                     order_id=failed.id)))
    assert closed.order.acknowledged_at is not None
    assert closed.order.extra["retried_as"] == str(first.order.id)


async def test_a_command_the_store_could_not_commit_is_not_kept(engine: Wired) -> None:
    engine.store.fail = True  # refuses a batch with an order of 13
    command = Submit("k-5", True, submit(quantity="13"))
    with pytest.raises(RuntimeError, match="disk full"):
        await engine.port.send(command)
    assert engine.handler.remembered == 0
    engine.store.fail = False
    outcome = done(await engine.port.send(command))
    assert outcome.created and not outcome.replay and engine.orders_made() == 1


async def test_a_sender_that_stops_waiting_does_not_stop_the_work(engine: Wired) -> None:
    """The client went away mid-command and sends it again with its key: one order."""
    engine.store.gate = asyncio.Event()
    command = Submit("k-7", True, submit())
    first = asyncio.ensure_future(engine.port.send(command))
    await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    again = asyncio.ensure_future(engine.port.send(command))
    engine.store.gate.set()
    outcome = done(await again)
    assert outcome.replay and outcome.created and engine.orders_made() == 1


async def test_only_the_most_recent_keys_are_kept(engine: Wired) -> None:
    engine.handler.remember = 3
    for n in range(5):
        await engine.port.send(Submit(f"k-{n}", True, submit(quantity="1")))
    assert engine.handler.remembered == 3
    assert done(await engine.port.send(Submit("k-4", True, submit(quantity="1")))).replay
    forgotten = done(await engine.port.send(Submit("k-0", True, submit(quantity="1"))))
    assert forgotten.created and not forgotten.replay, "a forgotten key is a new command"
    assert engine.orders_made() == 6


async def test_a_command_and_its_outcome_cross_as_the_same_bytes(engine: Wired) -> None:
    command = Submit("k-6", True, replace(submit(limit_price="99.50"), client_order_id="x-1"))
    data = encode(command)
    received = decode_command(data)
    assert received == command and encode(received) == data
    outcome = await engine.handler.handle(received)
    answer = encode(outcome)
    back = decode_outcome(answer)
    assert back == outcome and encode(back) == answer
    assert done(back).order.limit_price == Decimal("99.50")


# ---- kept in the store, read back at start ---------------------------------------------------

async def test_a_keyed_outcome_is_stored_in_the_same_batch_as_its_order(engine: Wired) -> None:
    command = Submit("k-8", True, submit())
    outcome = done(await engine.port.send(command))
    await engine.port.send(Submit("unkeyed", False, submit(quantity="1")))
    [batch, unkeyed] = engine.store.batches
    assert [o.id for o in batch.new_orders] == [outcome.order.id]
    [kept] = batch.keys
    assert (kept.actor, kept.key, kept.created_at) == (TRADER, "k-8", T0)
    assert kept.fingerprint == fingerprint(command)
    assert decode_outcome(kept.outcome) == outcome
    assert not unkeyed.keys, "a key ordex derived names one request only: nothing is stored"


async def test_a_refused_command_is_not_stored_and_is_decided_again_after_a_restart(
        engine: Wired) -> None:
    refused = Submit("k-9", True, submit(quantity="5000"))
    assert isinstance(await engine.port.send(refused), Refused)
    assert isinstance(await engine.port.send(refused), Refused)
    rejects = [e for b in engine.store.batches for e in b.journal
               if e.action is LogAction.REJECT]
    assert len(rejects) == 1, "in the same process, the repeat is the first answer again"
    assert not engine.keys.kept()
    again = await (await engine.restarted()).handle(refused)
    assert isinstance(again, Refused) and not again.replay
    assert sum(e.action is LogAction.REJECT for b in engine.store.batches for e in b.journal) == 2


async def test_after_a_restart_a_repeat_gets_the_first_outcome_from_memory(
        engine: Wired) -> None:
    submit_once = Submit("k-10", True, submit())
    first = done(await engine.port.send(submit_once))
    cancel = Cancel("c-10", True, trader_id=TRADER, order_id=first.order.id)
    cancelled = done(await engine.port.send(cancel))
    reads = engine.keys.reads
    handler = await engine.restarted()
    assert engine.keys.reads == reads + 1 and handler.remembered == 2
    port = InProcessPort(handler, as_bytes=engine.port.as_bytes)
    again = done(await port.send(submit_once))
    assert again.replay and replace_replay(again) == first
    assert replace_replay(done(await port.send(cancel))) == cancelled
    other = await port.send(Submit("k-10", True, submit(quantity="11")))
    assert isinstance(other, Refused) and other.code is Code.IDEMPOTENCY_KEY_REUSED
    assert engine.orders_made() == 1 and engine.keys.reads == reads + 1, \
        "answered from memory: the store is read once, at start"
    await handler.stop()


async def test_only_recent_keys_are_read_back_and_older_ones_are_forgotten(
        engine: Wired) -> None:
    engine.handler.remember = 1_000
    old = Submit("old", True, submit(quantity="1"))
    await engine.port.send(old)
    engine.clock.at = T0 + timedelta(hours=20)
    recent = [Submit(f"r-{n}", True, submit(quantity="1")) for n in range(3)]
    for command in recent:
        await engine.port.send(command)
    theirs = Submit("r-0", True, replace(submit(quantity="1"), trader_id=OTHER))
    await engine.port.send(theirs)
    engine.clock.at = T0 + KEY_RETENTION + timedelta(seconds=1)
    handler = await engine.restarted(remember=2)
    assert engine.keys.forgotten_before == T0 + timedelta(seconds=1)
    assert set(engine.keys.kept()) == {(TRADER, "r-0"), (TRADER, "r-1"), (TRADER, "r-2"),
                                       (OTHER, "r-0")}
    assert handler.remembered == 3, "two of the trader's (the most recent), one of the other's"
    assert done(await handler.handle(recent[2])).replay
    assert done(await handler.handle(theirs)).replay
    made = engine.orders_made()
    fresh = done(await handler.handle(recent[0]))
    assert fresh.created and not fresh.replay and engine.orders_made() == made + 1
    assert done(await handler.handle(old)).created, "past its retention: a new command"
    await handler.stop()


async def test_a_key_past_its_retention_is_forgotten_and_names_the_next_command(
        engine: Wired) -> None:
    first = done(await engine.port.send(Submit("k-11", True, submit(quantity="1"))))
    engine.clock.at = T0 + KEY_RETENTION + timedelta(microseconds=1)
    await engine.handler.prune()
    assert engine.handler.remembered == 0 and engine.keys.forgotten_before is not None
    second = done(await engine.port.send(Submit("k-11", True, submit(quantity="2"))))
    assert second.created and second.order.id != first.order.id
    handler = await engine.restarted()
    assert replace_replay(done(await handler.handle(
        Submit("k-11", True, submit(quantity="2"))))) == second
    await handler.stop()


async def test_a_retry_sent_again_after_a_restart_is_its_first_answer(engine: Wired) -> None:
    failed = make_order(status=OrderStatus.FAILED)
    engine.store.orders[failed.id] = failed
    retry = Retry("r-3", True, trader_id=TRADER, order_id=failed.id)
    first = done(await engine.port.send(retry))
    [kept] = [k for b in engine.store.batches for k in b.keys]
    assert decode_outcome(kept.outcome) == first, "kept with the acknowledgement, as answered"
    handler = await engine.restarted()
    again = done(await handler.handle(retry))
    assert again.replay and again.created and replace_replay(again) == first
    assert engine.orders_made() == 1
    await handler.stop()


def replace_replay(outcome: OrderDone) -> OrderDone:
    return OrderDone(order=outcome.order, created=outcome.created)
