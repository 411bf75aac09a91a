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
