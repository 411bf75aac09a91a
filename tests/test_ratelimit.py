"""The client-side credit bucket spaces requests at Deribit's refill rate."""

from __future__ import annotations

import time

import pytest

from drbfast.ratelimit import CreditBucket, Credits


def test_burst_then_wait_time() -> None:
    b = CreditBucket(Credits(cost=500, cap=1_500, refill=1_000))
    assert [b.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = b.try_acquire()
    assert 0.45 < wait <= 0.5


async def test_acquire_spaces_calls() -> None:
    b = CreditBucket(Credits(cost=100, cap=100, refill=1_000))
    t0 = time.monotonic()
    for _ in range(4):
        await b.acquire()
    assert time.monotonic() - t0 >= 0.25
    assert b.waits >= 3


def test_bad_numbers_refused() -> None:
    with pytest.raises(ValueError):
        CreditBucket(Credits(cost=0))


def test_reserve_kept_from_acquire_but_charge_may_use_it() -> None:
    b = CreditBucket(Credits(cost=500, cap=2_000, refill=1.0), reserve=1_000)
    assert b.try_acquire() == 0.0 and b.try_acquire() == 0.0
    assert b.try_acquire() > 0, "the reserve is not for acquire"
    b.charge(count=2)  # two heartbeat answers already on the wire
    assert b.level < 100 and b.charged == 2


async def test_waiters_served_in_order() -> None:
    import asyncio
    b = CreditBucket(Credits(cost=100, cap=100, refill=2_000))
    order: list[int] = []

    async def one(i: int) -> None:
        await b.acquire()
        order.append(i)

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(5))), 5)
    assert order == [0, 1, 2, 3, 4]


def test_rate_pool_matches_deribit_limits() -> None:
    c = Credits.rate(5, 20)
    assert c.cap // c.cost == 20 and c.refill / c.cost == 5
    with pytest.raises(ValueError):
        Credits.rate(0, 1)
