"""Time, injected: the service asks a Clock, never the system directly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


def iso(at: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: how ordex writes every time."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
