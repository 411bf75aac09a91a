"""A client-side credit budget that spaces requests instead of tripping Deribit's limit.

Deribit's credits are per sub-account (PROTOCOL.md 9), in three pools:

- non-matching-engine requests: 500 credits each from a pool of 50,000 refilled at
  10,000/s (20 requests/s sustained, bursts of 100); heartbeat traffic (our
  ``public/test`` answers) counts here too;
- subscribe calls: their own pool (about 3.3 calls/s sustained, burst 10);
- matching-engine requests (buy, sell, edit, cancel, ...): tiered by volume; the
  lowest tier is 5 requests/s, burst 20.

Running out gets 10028 and the session is closed, so the client waits instead. The
pools live as long as the client (not the connection): a reconnect does not refill them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["CreditBucket", "CreditPools", "Credits", "MATCHING_ENGINE_METHODS", "MATCHING_CREDITS", "SUBSCRIBE_CREDITS"]


@dataclass(frozen=True)
class Credits:
    """Numbers of one credit pool: ``cost`` per request, ``cap``, ``refill`` per second."""

    cost: int = 500
    cap: int = 50_000
    refill: float = 10_000.0

    @classmethod
    def rate(cls, per_second: float, burst: int) -> Credits:
        """A pool given as Deribit's ``limits`` report it: ``rate`` requests/s, ``burst``."""
        if per_second <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        return cls(cost=1_000, cap=burst * 1_000, refill=per_second * 1_000)


#: Subscribe calls have their own, smaller pool (~3.3 calls/s sustained, burst 10).
SUBSCRIBE_CREDITS = Credits(cost=3_000, cap=30_000, refill=10_000.0)
#: The matching engine's lowest tier: 5 requests/s, burst 20.
MATCHING_CREDITS = Credits.rate(5, 20)

#: Methods charged to the matching-engine pool (PROTOCOL.md 9, Deribit's list).
MATCHING_ENGINE_METHODS = frozenset({
    "private/buy", "private/sell", "private/edit", "private/edit_by_label",
    "private/cancel", "private/cancel_all", "private/cancel_all_by_currency",
    "private/cancel_all_by_currency_pair", "private/cancel_all_by_instrument",
    "private/cancel_all_by_kind_or_type", "private/cancel_by_label",
    "private/cancel_quotes", "private/close_position", "private/mass_quote",
    "private/verify_block_trade", "private/execute_block_trade",
    "private/move_positions",
})


class CreditBucket:
    """A leaky bucket: ``await acquire()`` returns when a request may be sent.

    ``reserve`` credits are kept back from ``acquire``: :meth:`charge` (requests that
    are sent whatever the budget says, like the listener's heartbeat answers) may use
    them, so the budget never lets a user call through that would leave nothing for a
    ``public/test`` answer."""

    def __init__(self, credits: Credits, *, reserve: int = 0) -> None:
        if credits.cost <= 0 or credits.cap < credits.cost + reserve or credits.refill <= 0 or reserve < 0:
            raise ValueError("credits need cost > 0, cap >= cost + reserve, refill > 0, reserve >= 0")
        self.credits = credits
        self.level = float(credits.cap)
        self.reserve = reserve
        self._t = time.monotonic()
        self.waits = 0
        self.charged = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(float(self.credits.cap), self.level + (now - self._t) * self.credits.refill)
        self._t = now

    def try_acquire(self, cost: int | None = None) -> float:
        """Take the credits and return 0, or return how long to wait for them."""
        cost = self.credits.cost if cost is None else cost
        self._refill()
        need = cost + self.reserve
        if self.level >= need:
            self.level -= cost
            return 0.0
        return (need - self.level) / self.credits.refill

    def charge(self, cost: int | None = None, count: int = 1) -> None:
        """Account for ``count`` requests already sent (may use the reserve)."""
        if count <= 0:
            return
        self._refill()
        self.level -= (self.credits.cost if cost is None else cost) * count
        self.charged += count

    async def acquire(self, cost: int | None = None) -> None:
        """Wait (first come, first served) until ``cost`` credits are available. With
        credits at hand and nobody waiting it returns without suspending."""
        if not self._waiters and self.try_acquire(cost) == 0.0:
            return
        me = asyncio.get_running_loop().create_future()
        self._waiters.append(me)
        try:
            if self._waiters[0] is not me:
                await me  # woken when the one ahead of us got its credits
            while True:
                wait = self.try_acquire(cost)
                if wait <= 0:
                    return
                self.waits += 1
                await asyncio.sleep(wait)
        finally:
            self._waiters.remove(me)
            if self._waiters and not self._waiters[0].done():
                self._waiters[0].set_result(None)


@dataclass
class CreditPools:
    """The three pools of one sub-account, and which one a method draws on."""

    non_matching: Credits = field(default_factory=Credits)
    subscribe: Credits = SUBSCRIBE_CREDITS
    matching: Credits = MATCHING_CREDITS
    #: requests' worth kept back in the non-matching pool for heartbeat answers
    reserve_requests: int = 2

    def buckets(self) -> tuple[CreditBucket, CreditBucket, CreditBucket]:
        return (
            CreditBucket(self.non_matching, reserve=self.non_matching.cost * self.reserve_requests),
            CreditBucket(self.subscribe),
            CreditBucket(self.matching),
        )
