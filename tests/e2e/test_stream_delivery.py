"""``/v1/stream`` delivers from memory: the store is read to resume, never per event per
subscriber; events published out of order, or more than a subscriber's queue holds, still reach
it in order, each once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from ordex.client import AsyncClient
from ordex.config import Settings
from ordex.domain.accounts import Role
from tests.support.live import Live, live_service

SUBSCRIBERS = 25


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    wired = settings.model_copy(update={"stream_connections_per_trader": SUBSCRIBERS + 5})
    async with live_service(wired) as service:
        yield service


class StoreReads:
    """Counts the stream's and the long poll's reads of order events from the store."""

    def __init__(self, live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        queries = live.services.queries
        for name in ("events", "last_event_seq"):
            monkeypatch.setattr(queries, name, self._counted(getattr(queries, name)))

    def _counted(self, read: Callable[..., Any]) -> Callable[..., Any]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await read(*args, **kwargs)
        return counted


class HeldBus:
    """Holds what is published on the bus, to hand it on later in another order."""

    def __init__(self, live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
        bus = live.services.bus
        self._publish = bus.publish
        self.held: list[tuple[str, Any]] = []
        monkeypatch.setattr(bus, "publish", lambda topic, message: self.held.append(
            (topic, message)))

    def events(self) -> list[Any]:
        """The held messages of each event, by event in publication order."""
        return list(dict.fromkeys(message for _, message in self.held))

    def release(self, message: Any) -> None:
        for topic, held in [h for h in self.held if h[1] is message]:
            self._publish(topic, held)
        self.held = [h for h in self.held if h[1] is not message]


class Watcher:
    """One open stream, collecting its events (as text, to compare them byte for byte)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.texts: list[str] = []
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for text in self.ws:
            assert isinstance(text, str), "the stream sent a binary frame"
            if "seq" in json.loads(text) and json.loads(text).get("type") != "heartbeat":
                self.texts.append(text)

    @property
    def seqs(self) -> list[int]:
        return [json.loads(t)["seq"] for t in self.texts]

    async def close(self) -> None:
        await self.ws.close()
        await self.task


async def watch(live: Live, api_key: str, after: int = 0, *, everyone: bool = False) -> Watcher:
    ws = await ws_connect(live.url.replace("http://", "ws://") + "/v1/stream")
    await ws.send(json.dumps({"api_key": api_key, "after": after, "all": everyone}))
    assert json.loads(await ws.recv())["type"] == "subscribed"
    return Watcher(ws)


async def until(done: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not done():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def trader(live: Live, name: str, role: Role = Role.TRADER) -> AsyncClient:
    issued = await live.services.accounts.create(name, role, Decimal("1000000"))
    return AsyncClient(live.url, issued.api_key)


async def submit(client: AsyncClient, count: int) -> None:
    for _ in range(count):
        await client.submit("KO", "buy", "1")


async def test_the_store_is_read_to_resume_not_per_event_and_subscriber(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = StoreReads(live, monkeypatch)
    alice = await trader(live, "alice")
    watchers = [await watch(live, alice.api_key) for _ in range(SUBSCRIBERS)]
    await submit(alice, 3)
    await until(lambda: all(len(w.texts) == 3 for w in watchers), "the first events")
    on_connect = reads.count  # the position and the backlog of each subscriber

    reads.count = 0
    events = 10
    await submit(alice, events)
    await until(lambda: all(len(w.texts) == 3 + events for w in watchers), "every event")
    print(f"\nstore reads: {on_connect} to connect {SUBSCRIBERS} subscribers, then "
          f"{reads.count} while they received {events} events each")
    assert reads.count == 0, f"{reads.count} store reads for {events} events x {SUBSCRIBERS}"
    assert on_connect <= 2 * SUBSCRIBERS
    for w in watchers:
        assert w.seqs == list(range(1, 3 + events + 1))
        assert w.texts == watchers[0].texts
    # What came live is exactly what a resume from the store sends.
    late = await watch(live, alice.api_key)
    await until(lambda: len(late.texts) == 3 + events, "the backlog")
    assert late.texts == watchers[0].texts
    for w in [*watchers, late]:
        await w.close()
    await alice.close()


async def test_events_published_out_of_order_arrive_in_order_each_once(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = await trader(live, "alice")
    carol = await trader(live, "carol", Role.COMPLIANCE)
    await submit(alice, 1)
    mine, everyone = await watch(live, alice.api_key), await watch(
        live, carol.api_key, everyone=True)
    await until(lambda: len(mine.texts) == 1 and len(everyone.texts) == 1, "the backlog")
    reads = StoreReads(live, monkeypatch)
    held = HeldBus(live, monkeypatch)

    # Two commits published in reverse order, close together: put back in order in memory.
    await submit(alice, 2)
    await until(lambda: len(held.events()) == 2, "two commits")
    second, third = held.events()
    held.release(third)
    held.release(second)
    await until(lambda: len(mine.texts) == 3 and len(everyone.texts) == 3, "both events")
    assert reads.count == 0
    # The later one alone for longer than a subscriber waits: the store gives the missing one,
    # and when it is published at last, it is not sent again.
    await submit(alice, 2)
    await until(lambda: len(held.events()) == 2, "two more commits")
    fourth, fifth = held.events()
    held.release(fifth)
    await until(lambda: len(mine.texts) == 5 and len(everyone.texts) == 5, "the store's copy")
    assert reads.count >= 2
    held.release(fourth)
    await submit(alice, 1)
    await until(lambda: len(held.events()) == 1, "one more commit")
    (sixth,) = held.events()
    held.release(sixth)
    await until(lambda: len(mine.texts) >= 6 and len(everyone.texts) >= 6, "the last event")
    await asyncio.sleep(0.2)
    assert mine.seqs == [1, 2, 3, 4, 5, 6]
    service_wide = everyone.seqs
    assert service_wide == sorted(set(service_wide)) and len(service_wide) == 6
    assert [json.loads(t)["order_id"] for t in mine.texts] == \
        [json.loads(t)["order_id"] for t in everyone.texts]
    for w in (mine, everyone):
        await w.close()
    for client in (alice, carol):
        await client.close()


async def test_a_lagging_subscriber_resumes_from_the_store_with_nothing_lost_or_doubled(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    live.services.bus.queue_limit = 3
    alice = await trader(live, "alice")
    carol = await trader(live, "carol", Role.COMPLIANCE)
    mine, everyone = await watch(live, alice.api_key), await watch(
        live, carol.api_key, everyone=True)
    reads = StoreReads(live, monkeypatch)
    held = HeldBus(live, monkeypatch)
    burst = 12
    await submit(alice, burst)
    await until(lambda: len(held.events()) == burst, "the burst's commits")
    events = held.events()
    for event in events:  # all at once: more than the subscribers' queues hold
        held.release(event)
    await until(lambda: len(mine.texts) == burst and len(everyone.texts) == burst, "the burst")
    assert reads.count >= 2, "the lagging subscribers did not read the store"
    monkeypatch.undo()
    await submit(alice, 1)  # and live again, from memory
    await until(lambda: len(mine.texts) == burst + 1 and len(everyone.texts) == burst + 1,
                "the next event")
    await asyncio.sleep(0.2)
    assert mine.seqs == list(range(1, burst + 2))
    assert everyone.seqs == sorted(set(everyone.seqs)) and len(everyone.seqs) == burst + 1
    for w in (mine, everyone):
        await w.close()
    for client in (alice, carol):
        await client.close()
