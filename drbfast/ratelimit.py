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
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["CreditBucket", "CreditPools", "Credits", "MATCHING_ENGINE_METHODS", "MATCHING_CREDITS", "SUBSCRIBE_CREDITS",
           "URGENT_METHODS"]

log = logging.getLogger("drbfast.client")


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


#: Methods that take credits ahead of queued places in their pool: a cancel must never
#: wait behind orders that were submitted after it (a quoter pacing itself to the rate
#: would otherwise hold its own cancel back for seconds).
URGENT_METHODS = frozenset({
    "private/cancel", "private/cancel_all", "private/cancel_all_by_currency",
    "private/cancel_all_by_currency_pair", "private/cancel_all_by_instrument",
    "private/cancel_all_by_kind_or_type", "private/cancel_by_label",
    "private/cancel_quotes",
})

#: A call that waits longer than this for credits is logged, once per wait.
SLOW_WAIT = 1.0


class _Waiter:
    """One call queued for credits: woken (``fut``) when it reaches the head."""

    __slots__ = ("fut", "urgent")

    def __init__(self, fut: asyncio.Future[None], urgent: bool) -> None:
        self.fut = fut
        self.urgent = urgent


class CreditBucket:
    """A leaky bucket: ``await acquire()`` returns when a request may be sent.

    Calls are served first come, first served, except that ``urgent`` ones (cancels:
    :data:`URGENT_METHODS`) go ahead of every queued non-urgent call; neither
    :meth:`try_acquire` nor :meth:`acquire` takes credits past a call queued ahead of it.
    A call that waits longer than :data:`SLOW_WAIT` is logged once, with the pool's
    numbers.

    ``reserve`` credits are kept back from ``acquire``: :meth:`charge` (requests that
    are sent whatever the budget says, like the listener's heartbeat answers) may use
    them, so the budget never lets a user call through that would leave nothing for a
    ``public/test`` answer. What :meth:`charge` accounts for never takes the level
    below zero: traffic the client does not choose (an exchange asking for test_request
    answers faster than the refill) must not starve the user's calls for longer than
    one call's worth of refill (``uncharged`` counts what was let go)."""

    def __init__(self, credits: Credits, *, reserve: int = 0, name: str = "credits") -> None:
        if credits.cost <= 0 or credits.cap < credits.cost + reserve or credits.refill <= 0 or reserve < 0:
            raise ValueError("credits need cost > 0, cap >= cost + reserve, refill > 0, reserve >= 0")
        self.credits = credits
        self.name = name
        self.level = float(credits.cap)
        self.reserve = reserve
        self._t = time.monotonic()
        self.waits = 0
        self.charged = 0
        self.uncharged = 0
        self.slow_waits = 0
        self._waiters: deque[_Waiter] = deque()

    def __repr__(self) -> str:
        return (f"CreditBucket({self.name}, level={self.level:.0f}/{self.credits.cap}, "
                f"cost={self.credits.cost}, refill={self.credits.refill:g}/s, queued={len(self._waiters)})")

    @property
    def queued(self) -> int:
        """Calls waiting for credits now."""
        return len(self._waiters)

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(float(self.credits.cap), self.level + (now - self._t) * self.credits.refill)
        self._t = now

    def _take(self, cost: int) -> float:
        self._refill()
        need = cost + self.reserve
        if self.level >= need:
            self.level -= cost
            return 0.0
        return (need - self.level) / self.credits.refill

    def _ahead(self, urgent: bool) -> bool:
        """Is a call queued that must be served before a new one?"""
        if not self._waiters:
            return False
        return not urgent or self._waiters[0].urgent

    def try_acquire(self, cost: int | None = None, *, urgent: bool = False) -> float:
        """Take the credits and return 0, or return how long to wait for them. Never
        takes them past a call already queued ahead (see the class docstring)."""
        cost = self.credits.cost if cost is None else cost
        if self._ahead(urgent):
            return max(self._take_estimate(cost), 1e-6)
        return self._take(cost)

    def _take_estimate(self, cost: int) -> float:
        self._refill()
        ahead = len(self._waiters) * self.credits.cost
        return max(cost + self.reserve + ahead - self.level, 0.0) / self.credits.refill

    def charge(self, cost: int | None = None, count: int = 1) -> None:
        """Account for ``count`` requests already sent (may use the reserve, never
        takes the level below zero)."""
        if count <= 0:
            return
        self._refill()
        per = self.credits.cost if cost is None else cost
        left = self.level - per * count
        if left < 0:
            self.uncharged += min(count, math.ceil(-left / per))
            left = 0.0
        self.level = left
        self.charged += count

    async def acquire(self, cost: int | None = None, *, urgent: bool = False) -> None:
        """Wait until ``cost`` credits are available, in turn (``urgent``: ahead of the
        non-urgent calls queued). With credits at hand and nobody ahead it returns
        without suspending."""
        cost = self.credits.cost if cost is None else cost
        if not self._ahead(urgent) and self._take(cost) == 0.0:
            return
        loop = asyncio.get_running_loop()
        me = _Waiter(loop.create_future(), urgent)
        if urgent:
            at = 0
            while at < len(self._waiters) and self._waiters[at].urgent:
                at += 1
            self._waiters.insert(at, me)
        else:
            self._waiters.append(me)
        started = time.monotonic()
        logged = False
        try:
            while True:
                if self._waiters[0] is not me:
                    me.fut = loop.create_future()
                    await me.fut          # woken when the one ahead of us is served
                    continue
                wait = self._take(cost)
                if wait <= 0:
                    return
                self.waits += 1
                if not logged and time.monotonic() - started + wait > SLOW_WAIT:
                    logged = True
                    self.slow_waits += 1
                    log.warning("drbfast: a call waits %.1f s for %s credits (level %.0f of %d, %d per call, "
                                "refill %g/s, %d calls queued); Deribit would refuse it with 10028 "
                                "(raise the pool with CreditPools if your account's tier allows more)",
                                time.monotonic() - started + wait, self.name, self.level, self.credits.cap,
                                cost, self.credits.refill, len(self._waiters))
                await asyncio.sleep(wait)
        finally:
            self._waiters.remove(me)
            if self._waiters and not self._waiters[0].fut.done():
                self._waiters[0].fut.set_result(None)


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
            CreditBucket(self.non_matching, reserve=self.non_matching.cost * self.reserve_requests,
                         name="non-matching"),
            CreditBucket(self.subscribe, name="subscribe"),
            CreditBucket(self.matching, name="matching-engine"),
        )
