"""In-process fan-out of committed order events and quotes to live subscribers.

A publisher hands every subscriber of a topic the same message object. Each subscription keeps
a bounded queue; one that falls too far behind is marked lagged and drops what comes next: its
reader catches up from the store, which holds every order event with its sequence number.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

QUEUE_LIMIT = 10_000


class Subscription:
    def __init__(self, bus: MemoryBus, topic: str, limit: int) -> None:
        self._bus = bus
        self.topic = topic
        self.limit = limit
        self._queue: deque[Any] = deque()
        self._waiter: asyncio.Future[bool] | None = None
        self.lagged = False
        self.stopped = False

    def offer(self, message: Any) -> None:
        if len(self._queue) >= self.limit:
            self.lagged = True
        else:
            self._queue.append(message)
        self._wake(True)

    def stop(self) -> None:
        """Wake the reader for good (its client left, its key was revoked)."""
        self.stopped = True
        self._wake(True)

    def _wake(self, woken: bool) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(woken)

    async def wait(self, seconds: float) -> bool:
        """True as soon as a message is queued, the subscription lagged or was stopped; False
        when ``seconds`` pass first."""
        if self._queue or self.lagged or self.stopped:
            return True
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = loop.call_later(seconds, self._wake, False)
        try:
            return await self._waiter
        finally:
            timer.cancel()
            self._waiter = None

    def take(self) -> list[Any]:
        """Every queued message, oldest first."""
        taken = list(self._queue)
        self._queue.clear()
        return taken

    async def next_within(self, seconds: float) -> Any | None:
        """The next message, or None after ``seconds`` (or at once if stopped)."""
        if not self._queue and not await self.wait(seconds):
            return None
        return self._queue.popleft() if self._queue else None

    def reset(self) -> None:
        """Forget what is queued; for a subscriber that re-reads the store after lagging."""
        self._queue.clear()
        self.lagged = False

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class MemoryBus:
    """``queue_limit`` bounds each new subscription's queue."""

    def __init__(self, queue_limit: int = QUEUE_LIMIT) -> None:
        self.queue_limit = queue_limit
        self._subs: dict[str, set[Subscription]] = {}

    def subscribe(self, topic: str) -> Subscription:
        sub = Subscription(self, topic, self.queue_limit)
        self._subs.setdefault(topic, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.topic]

    def listened(self, topic: str) -> bool:
        return bool(self._subs.get(topic))

    def publish(self, topic: str, message: Any) -> None:
        subs = self._subs.get(topic)
        if subs:
            for sub in tuple(subs):
                sub.offer(message)


ORDER_EVENTS = "order_events"
QUOTES = "quotes"


def trader_topic(trader_id: object) -> str:
    """One trader's order events: subscribers to it are not woken by other traders' orders."""
    return f"{ORDER_EVENTS}:{trader_id}"
