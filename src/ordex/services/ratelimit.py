"""Per-trader order rate limit (NFR-007): a sliding one-minute window."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from uuid import UUID

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    retry_after: float = 0.0


class SlidingWindowLimiter:
    """In-process; one per service. Each trader's window holds the times of accepted calls."""

    def __init__(self, default_limit: int, window: float = WINDOW_SECONDS) -> None:
        self.default_limit = default_limit
        self.window = window
        self._hits: dict[UUID, deque[float]] = {}

    def hit(self, trader: UUID, now: float, limit: int | None = None) -> Decision:
        allowed_per_window = limit or self.default_limit
        hits = self._hits.setdefault(trader, deque())
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= allowed_per_window:
            wait = hits[len(hits) - allowed_per_window] + self.window - now
            return Decision(False, allowed_per_window, max(wait, 0.001))
        hits.append(now)
        return Decision(True, allowed_per_window)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
