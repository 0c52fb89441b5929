"""Time, injected: the service asks a Clock, never the system directly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def wait(self, wake: asyncio.Event, seconds: float) -> bool:
        """Until ``wake`` is set (True) or ``seconds`` of this clock's time pass (False): a
        simulated clock decides when that is."""


def iso(at: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: how ordex writes every time."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")[:-6] + "Z"


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, wake: asyncio.Event, seconds: float) -> bool:
        if wake.is_set():
            return True
        try:  # a timeout on this task, not ``wait_for``'s extra task for every wait
            async with asyncio.timeout(seconds):
                await wake.wait()
        except TimeoutError:
            return False
        return True
