"""A client-side credit budget that spaces requests instead of tripping Deribit's limit.

Deribit's non-matching-engine defaults (PROTOCOL.md 9): each request costs 500 credits
from a pool of 50,000 refilled at 10,000/s (20 requests/s sustained, bursts of 100).
Running out gets 10028 and the session is closed, so the client waits instead.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

__all__ = ["CreditBucket", "Credits"]


@dataclass(frozen=True)
class Credits:
    """Numbers of one credit pool."""

    cost: int = 500
    cap: int = 50_000
    refill: float = 10_000.0


#: Subscribe calls have their own, smaller pool (~3.3 calls/s sustained, burst 10).
SUBSCRIBE_CREDITS = Credits(cost=3_000, cap=30_000, refill=10_000.0)


class CreditBucket:
    """A leaky bucket: ``await acquire()`` returns when a request may be sent."""

    def __init__(self, credits: Credits, *, reserve: int = 0) -> None:
        if credits.cost <= 0 or credits.cap < credits.cost or credits.refill <= 0:
            raise ValueError("credits need cost > 0, cap >= cost and refill > 0")
        self.credits = credits
        self.level = float(credits.cap - reserve)
        self.reserve = reserve
        self._t = time.monotonic()
        self.waits = 0
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.credits.cap - self.reserve, self.level + (now - self._t) * self.credits.refill)
        self._t = now

    def try_acquire(self, cost: int | None = None) -> float:
        """Take the credits and return 0, or return how long to wait for them."""
        cost = self.credits.cost if cost is None else cost
        self._refill()
        if self.level >= cost:
            self.level -= cost
            return 0.0
        return (cost - self.level) / self.credits.refill

    async def acquire(self, cost: int | None = None) -> None:
        """Wait (in order with other callers) until ``cost`` credits are available."""
        async with self._lock:
            while True:
                wait = self.try_acquire(cost)
                if wait <= 0:
                    return
                self.waits += 1
                await asyncio.sleep(wait)
