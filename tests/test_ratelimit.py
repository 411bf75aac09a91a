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


async def test_a_place_never_takes_credits_past_a_queued_call() -> None:
    """try_acquire (the fire-and-forget order path) used to skip the FIFO: a quoter
    pacing itself to the rate kept a queued call waiting while later places went out."""
    import asyncio
    b = CreditBucket(Credits(cost=100, cap=100, refill=10))      # 0.1 calls/s
    assert b.try_acquire() == 0.0
    queued = asyncio.ensure_future(b.acquire())
    await asyncio.sleep(0)
    assert b.queued == 1 and not queued.done()
    b.level = 100.0                     # credits for one call are back (as if refilled)
    assert b.try_acquire() > 0.0, "a place took the credits of the call queued before it"
    assert b.level == 100.0, "nothing was taken"
    queued.cancel()
    await asyncio.gather(queued, return_exceptions=True)
    assert b.queued == 0 and b.try_acquire() == 0.0


async def test_a_cancel_goes_ahead_of_queued_places() -> None:
    import asyncio
    b = CreditBucket(Credits(cost=100, cap=100, refill=1_000))  # 10 calls/s
    assert b.try_acquire() == 0.0
    order: list[str] = []

    async def one(name: str, urgent: bool) -> None:
        await b.acquire(urgent=urgent)
        order.append(name)

    places = [asyncio.ensure_future(one(f"place{i}", False)) for i in range(5)]
    await asyncio.sleep(0)
    t0 = time.monotonic()
    cancel = asyncio.ensure_future(one("cancel", True))
    await asyncio.wait_for(cancel, 5)
    took = time.monotonic() - t0
    await asyncio.wait_for(asyncio.gather(*places), 5)
    assert order[0] == "cancel" or order[:2] == ["place0", "cancel"], order
    assert [o for o in order if o != "cancel"] == [f"place{i}" for i in range(5)]
    assert took < 0.25, f"the cancel waited {took:.2f} s behind places"
    # a place cannot jump the cancel either
    assert b.try_acquire(urgent=False) >= 0.0


async def test_a_long_wait_for_credits_is_said_once_with_numbers(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    b = CreditBucket(Credits(cost=1_000, cap=1_000, refill=800), name="matching-engine")
    await b.acquire()
    with caplog.at_level("WARNING", logger="drbfast.client"):
        await asyncio.wait_for(b.acquire(), 5)   # 1.25 s
    said = [r.getMessage() for r in caplog.records if "waits" in r.getMessage()]
    assert len(said) == 1 and "matching-engine" in said[0] and "level" in said[0] and "refill 800/s" in said[0]
    assert b.slow_waits == 1
    with caplog.at_level("WARNING", logger="drbfast.client"):
        caplog.clear()
        await asyncio.sleep(1.3)
        await asyncio.wait_for(b.acquire(), 5)  # credits at hand: nothing said
    assert not [r for r in caplog.records if "waits" in r.getMessage()]


def test_what_the_engine_sends_never_puts_the_budget_in_debt() -> None:
    """400 test_request answers charged at once (the demo's flood) used to leave the
    bucket 150,000 credits in debt: the next user call waited 15 s."""
    b = CreditBucket(Credits(cost=500, cap=50_000, refill=10_000), reserve=1_000)
    b.charge(count=400)
    assert b.level == 0.0 and b.charged == 400 and b.uncharged == 300
    wait = b.try_acquire()
    assert 0 < wait <= (500 + 1_000) / 10_000 + 0.01
