"""A subscriber's place in its events (``InOrder``), the frames it sends, and the bus's queues."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from ordex.bus.memory import ORDER_EVENTS, MemoryBus, trader_topic
from ordex.domain.status import OrderEvent
from ordex.services.feed import GAP_WAIT_SECONDS, EventFeed, EventFrame, InOrder, event_text

TRADER = UUID(int=7)


def event(trader_seq: int, seq: int | None = None) -> OrderEvent:
    return OrderEvent(seq if seq is not None else trader_seq * 10, uuid4(), TRADER, "accepted",
                      "accepted", datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
                      {"symbol": "KO", "quantity": "1", "reason": None, "send_attempts": 0,
                       "trader_name": "Zoë"}, trader_seq)


def frames(*trader_seqs: int) -> list[EventFrame]:
    return [EventFrame.of(event(n)) for n in trader_seqs]


def test_a_frame_carries_the_stream_text_for_the_trader_and_for_compliance() -> None:
    e = event(3, seq=41)
    frame = EventFrame.of(e)
    assert json.loads(frame.own_text) == e.as_json()
    assert json.loads(frame.service_text) == e.as_json(service_wide=True)
    assert frame.own_text == event_text(e, service_wide=False)
    assert frame.service_text == event_text(e, service_wide=True)
    assert (frame.position(service_wide=False), frame.position(service_wide=True)) == (3, 41)


def test_frames_behind_a_missing_one_are_held_until_it_comes() -> None:
    place = InOrder(1, everyone=False, service_wide=False, counted=1)
    a2, a3, a4 = frames(2, 3, 4)
    assert place.accept([a4, a3]) == []
    assert place.holding and 0 < (place.store_due() or 0) <= GAP_WAIT_SECONDS
    assert place.accept([a2, a3]) == [a2, a3, a4]
    assert (place.shown, place.holding, place.store_due()) == (4, False, None)
    assert place.accept([a2, a4]) == []  # each once


def test_the_store_fills_a_gap_and_what_it_sent_is_not_sent_again() -> None:
    place = InOrder(0, everyone=False, service_wide=False, counted=0)
    a1, a2, a3 = frames(1, 2, 3)
    assert place.accept([a3]) == []
    place.sent_from_store(event(1))
    place.sent_from_store(event(2))
    assert place.accept([]) == [a3]
    assert place.accept([a1, a2, a3]) == []


def test_an_own_stream_with_service_wide_positions_reads_the_store_for_its_first_event() -> None:
    place = InOrder(100, everyone=False, service_wide=True, counted=None)
    assert place.accept(frames(9)) == []  # seq 90: at or before the client's position
    assert not place.holding
    assert place.accept(frames(11)) == []  # seq 110, but is it the trader's next event?
    assert place.store_due() == 0.0
    place.sent_from_store(event(11))
    assert (place.shown, place.counted, place.holding) == (110, 11, False)
    (nxt,) = frames(12)
    assert place.accept([nxt]) == [nxt]


@given(st.permutations(range(1, 30)), st.lists(st.integers(1, 29)),
       st.lists(st.integers(1, 5), min_size=1))
def test_frames_in_any_order_and_chunks_come_out_in_order_each_once(
        order: list[int], repeats: list[int], chunks: list[int]) -> None:
    pool = {n: EventFrame.of(event(n)) for n in range(1, 30)}
    arrivals = [pool[n] for n in [*order, *repeats]]
    place = InOrder(0, everyone=False, service_wide=False, counted=0)
    out: list[EventFrame] = []
    i = 0
    while i < len(arrivals):
        size = chunks[i % len(chunks)]
        out.extend(place.accept(arrivals[i:i + size]))
        i += size
    assert [f.trader_seq for f in out] == list(range(1, 30))
    assert not place.holding


async def test_a_subscription_that_overflows_is_marked_lagged_and_keeps_what_it_had() -> None:
    bus = MemoryBus(queue_limit=2)
    with bus.subscribe("t") as sub, bus.subscribe("t") as other:
        for n in range(5):
            bus.publish("t", n)
        assert (sub.lagged, sub.take()) == (True, [0, 1])
        sub.reset()
        assert not sub.lagged and await sub.wait(0.01) is False
        bus.publish("t", 5)
        assert await sub.wait(1) is True and sub.take() == [5]
        assert other.take() == [0, 1]
        other.reset()
        waiting = asyncio.create_task(other.wait(5))
        await asyncio.sleep(0)
        other.stop()
        assert await waiting is True
    bus.publish("t", 6)  # nobody left on the topic


class Names:
    """The read side's names: ``later`` are known only after a (slow) read of the store."""

    def __init__(self, known: dict[UUID, str], later: dict[UUID, str]) -> None:
        self.known, self.later, self.reads = dict(known), later, 0

    def known_name(self, trader_id: UUID) -> str | None:
        return self.known.get(trader_id)

    async def trader_names(self, ids: Iterable[UUID]) -> dict[UUID, str]:
        wanted = set(ids)
        self.reads += 1
        await asyncio.sleep(0.01)
        self.known.update(self.later)
        return {i: self.known[i] for i in wanted if i in self.known}


async def test_the_feed_keeps_commit_order_while_a_new_traders_name_is_read() -> None:
    bus = MemoryBus()
    old, new = UUID(int=1), UUID(int=2)
    names = Names({old: "Ann"}, {new: "Ned"})
    feed = EventFeed(bus, names)  # type: ignore[arg-type]

    def of(trader: UUID, seq: int) -> OrderEvent:
        return replace(event(seq, seq), trader_id=trader)

    with bus.subscribe(ORDER_EVENTS) as everyone, bus.subscribe(trader_topic(new)) as theirs:
        feed.publish([of(old, 1)])
        assert [f.seq for f in everyone.take()] == [1]  # at once: the name is known
        feed.publish([of(new, 2), of(old, 3)])
        feed.publish([of(old, 4)])
        assert everyone.take() == []
        await asyncio.sleep(0.05)
        got = everyone.take()
        assert [f.seq for f in got] == [2, 3, 4] and names.reads == 1
        assert [json.loads(f.own_text)["trader_name"] for f in got] == ["Ned", "Ann", "Ann"]
        assert [f.seq for f in theirs.take()] == [2]
    feed.publish([of(old, 5)])  # nobody listens: nothing is built
    await feed.close()
