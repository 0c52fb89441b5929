"""Per-trader order rate limit (NFR-007): a sliding one-minute window.

A call takes a place in the window when it is let through (so that concurrent calls cannot all
pass); a call that turns out not to create an order (a replay, a refusal) gives its place back.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from uuid import UUID

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Decision:
    """``resets_in``: seconds until the oldest counted call leaves the window (0 if none)."""

    allowed: bool
    limit: int
    retry_after: float = 0.0
    remaining: int = 0
    resets_in: float = 0.0
    at: float = 0.0


class SlidingWindowLimiter:
    """In-process; one per service. Each trader's window holds the times of counted calls."""

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
            return Decision(False, allowed_per_window, max(wait, 0.001), 0,
                            hits[0] + self.window - now, now)
        hits.append(now)
        return Decision(True, allowed_per_window, 0.0, allowed_per_window - len(hits),
                        hits[0] + self.window - now, now)

    def refund(self, trader: UUID, decision: Decision) -> Decision:
        """Give back the place ``decision`` took: the call did not create an order."""
        hits = self._hits.get(trader)
        if decision.allowed and hits:
            try:
                hits.remove(decision.at)
            except ValueError:
                pass
        if not hits:
            return Decision(True, decision.limit, 0.0, decision.limit, 0.0, decision.at)
        return Decision(True, decision.limit, 0.0, max(decision.limit - len(hits), 0),
                        max(hits[0] + self.window - decision.at, 0.0), decision.at)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def rate_headers(decision: Decision, epoch_now: float) -> dict[str, str]:
    """``X-RateLimit-Reset`` is the Unix time at which the remaining count next goes up."""
    return {"X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": str(math.ceil(epoch_now + decision.resets_in))}
