"""Committed order events on their way to live subscribers.

Each event is serialized once, after its commit, exactly as the stream sends it, and put on the
bus for its trader's topic and for the service-wide one: subscribers send that text as it is,
never re-reading the store for it. A subscriber reads the store only to resume after a position
(on connect, after lagging, or when an event is still missing after a short wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

import orjson

from ordex.bus.memory import ORDER_EVENTS, MemoryBus, trader_topic
from ordex.domain.status import OrderEvent
from ordex.services.queries import Queries, shown

log = logging.getLogger(__name__)

GAP_WAIT_SECONDS = 0.05  # how long a subscriber holds events behind a missing one
HELD_LIMIT = 1000  # events held behind a missing one before the store is read at once
NAMES_RETRY_SECONDS = 0.5


def event_text(event: OrderEvent, *, service_wide: bool) -> str:
    """The stream's JSON text of an event (as ``shown`` by the read side)."""
    return orjson.dumps(event.as_json(service_wide=service_wide)).decode()


@dataclass(frozen=True, slots=True)
class EventFrame:
    """One committed event as subscribers receive it: its positions and its two texts, the
    trader's (``"seq"`` = the trader's own count) and the service-wide one (compliance, admin).
    """

    seq: int
    trader_seq: int
    trader_id: UUID
    order_id: UUID
    own_text: str
    service_text: str

    @classmethod
    def of(cls, event: OrderEvent) -> EventFrame:
        """``event`` as the read side shows it (trader name, rounded average)."""
        body = event.as_json()
        del body["seq"]
        tail = orjson.dumps(body).decode()[1:]  # the object after its opening brace
        return cls(event.seq, event.trader_seq, event.trader_id, event.order_id,
                   f'{{"seq":{event.trader_seq},{tail}', f'{{"seq":{event.seq},{tail}')

    def position(self, *, service_wide: bool) -> int:
        return self.seq if service_wide else self.trader_seq

    def text(self, *, service_wide: bool) -> str:
        return self.service_text if service_wide else self.own_text


class EventFeed:
    """``publish`` is given the events of each commit, in the order they were written. An event
    whose trader's name this process has not read yet waits (with every event after it, to keep
    their order) until the name is read."""

    def __init__(self, bus: MemoryBus, queries: Queries) -> None:
        self.bus = bus
        self.queries = queries
        self._waiting: list[OrderEvent] = []
        self._naming: asyncio.Task[None] | None = None

    def publish(self, events: Iterable[OrderEvent]) -> None:
        events = list(events)
        if not self._waiting:
            names = [self.queries.known_name(e.trader_id) for e in events]
            if None not in names:
                for event, name in zip(events, names, strict=True):
                    self._put(event, name)
                return
        self._waiting.extend(events)
        if self._naming is None or self._naming.done():
            self._naming = asyncio.get_running_loop().create_task(self._name_and_publish())

    def _put(self, event: OrderEvent, name: str | None) -> None:
        topic = trader_topic(event.trader_id)
        if not (self.bus.listened(topic) or self.bus.listened(ORDER_EVENTS)):
            return  # a subscriber that comes later reads it from the store
        frame = EventFrame.of(shown(event, name))
        self.bus.publish(topic, frame)
        self.bus.publish(ORDER_EVENTS, frame)

    async def _name_and_publish(self) -> None:
        while self._waiting:
            count = len(self._waiting)  # more may come while the names are read
            try:
                names = await self.queries.trader_names(e.trader_id for e in self._waiting)
            except Exception:  # the store is away: the events are committed, keep them
                log.warning("could not read trader names for the stream; retrying",
                            exc_info=True)
                await asyncio.sleep(NAMES_RETRY_SECONDS)
                continue
            events, self._waiting = self._waiting[:count], self._waiting[count:]
            for event in events:
                self._put(event, names.get(event.trader_id))

    async def close(self) -> None:
        if self._naming is not None:
            self._naming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._naming


class InOrder:
    """One subscriber's place in its events, so that each goes out once and in order.

    ``shown`` is the last position sent, as the client sees positions. ``counted`` is the same
    event's place in a count without holes — the trader's own ``trader_seq`` for a trader's
    topic, the service-wide ``seq`` for everyone's — or None until known (a compliance or
    admin account's own stream that has sent nothing yet). A frame ahead of the next one due is
    held until the missing ones arrive; ``store_due`` says when to stop waiting and read the
    store instead (commits publish in any order, but each is in the store before it is published;
    a service-wide ``seq`` taken by a rolled-back transaction never arrives at all).
    """

    def __init__(self, shown: int, *, everyone: bool, service_wide: bool,
                 counted: int | None) -> None:
        self.shown = shown
        self.counted = counted
        self.everyone = everyone
        self.service_wide = service_wide
        self._held: dict[int, EventFrame] = {}
        self._held_since = 0.0

    def _place(self, seq: int, trader_seq: int) -> int:
        return seq if self.everyone else trader_seq

    def accept(self, frames: Iterable[EventFrame]) -> list[EventFrame]:
        """Of ``frames`` and those held, the ones to send now, in order."""
        for frame in frames:
            if frame.position(service_wide=self.service_wide) <= self.shown:
                continue
            place = self._place(frame.seq, frame.trader_seq)
            if self.counted is not None and place <= self.counted:
                continue
            if not self._held:
                self._held_since = time.monotonic()
            self._held[place] = frame
        ready: list[EventFrame] = []
        if self.counted is not None:
            while (frame := self._held.pop(self.counted + 1, None)) is not None:
                ready.append(frame)
                self.counted += 1
                self.shown = frame.position(service_wide=self.service_wide)
        if self._held and ready:
            self._held_since = time.monotonic()
        return ready

    def sent_from_store(self, event: OrderEvent) -> None:
        self.shown = event.position(service_wide=self.service_wide)
        self.counted = self._place(event.seq, event.trader_seq)
        for place in [p for p in self._held if p <= self.counted]:
            del self._held[place]

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def store_due(self) -> float | None:
        """Seconds until the store should be read for what is missing; None if nothing is."""
        if not self._held:
            return None
        if self.counted is None or len(self._held) >= HELD_LIMIT:
            return 0.0
        return max(0.0, self._held_since + GAP_WAIT_SECONDS - time.monotonic())
