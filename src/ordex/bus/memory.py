"""In-process fan-out of committed order events and quotes to live subscribers.

A subscriber that falls too far behind is marked lagged; it catches up from the store, which
holds every order event with its sequence number.
"""

from __future__ import annotations

import asyncio
from typing import Any

QUEUE_LIMIT = 10_000


class Subscription:
    def __init__(self, bus: MemoryBus, topic: str) -> None:
        self._bus = bus
        self.topic = topic
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self.lagged = False

    def offer(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.lagged = True

    async def next_within(self, seconds: float) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self.queue.get(), seconds)
        except TimeoutError:
            return None

    def reset(self) -> None:
        """Forget what is queued; for a subscriber that re-reads the store after lagging."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.lagged = False

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class MemoryBus:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}

    def subscribe(self, topic: str) -> Subscription:
        sub = Subscription(self, topic)
        self._subs.setdefault(topic, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None:
            subs.discard(sub)

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        for sub in tuple(self._subs.get(topic, ())):
            sub.offer(message)


ORDER_EVENTS = "order_events"
QUOTES = "quotes"


def trader_topic(trader_id: object) -> str:
    """One trader's order events: subscribers to it are not woken by other traders' orders."""
    return f"{ORDER_EVENTS}:{trader_id}"
