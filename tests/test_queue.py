"""drbfast.queue.BoundedQueue: the one bounded queue (subscriptions, the split client,
the websockets drop-in). Unit tests without sockets, and property tests against a plain
deque model of the same policy."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drbfast.errors import ConfigurationError, DrbfastError
from drbfast.queue import BoundedQueue, QueueBusy, QueueClosed, QueueEmpty

from .conftest import TIMEOUT


# ------------------------------------------------------------------ basics

def test_fifo_with_receive_times_and_sizes() -> None:
    q: BoundedQueue[str] = BoundedQueue(10, max_bytes=100)
    for i in range(3):
        assert q.put(f"m{i}", rx_ns=100 + i, size=5)
    assert len(q) == 3 and q.bytes == 15 and q.items() == ["m0", "m1", "m2"] and q.peak == 3
    assert q.get_nowait() == "m0" and q.last_rx_ns == 100 and q.bytes == 10
    assert q.get_nowait() == "m1" and q.last_rx_ns == 101
    assert q.get_nowait() == "m2" and q.last_rx_ns == 102 and q.bytes == 0
    with pytest.raises(QueueEmpty):
        q.get_nowait()
    assert q.put_count == 3 and q.dropped == 0


def test_bad_configuration_is_refused() -> None:
    for kwargs in ({"maxsize": 0}, {"max_bytes": -1}, {"maxsize": True}, {"overflow": "block"},
                   {"maxsize": 4, "overflow": "pause", "low": 5}, {"max_bytes": 4, "low_bytes": -1}):
        with pytest.raises(ConfigurationError):
            BoundedQueue(**kwargs)


def test_drop_oldest_keeps_the_newest_and_counts() -> None:
    dropped: list[tuple[int, int]] = []
    q: BoundedQueue[int] = BoundedQueue(3, on_drop=lambda item, size: dropped.append((item, size)))
    for i in range(5):
        assert q.put(i, size=1)
    assert q.items() == [2, 3, 4] and q.dropped == 2 and q.dropped_bytes == 2
    assert dropped == [(0, 1), (1, 1)] and q.put_count == 5 and q.peak == 3


def test_drop_newest_refuses_the_new_item() -> None:
    dropped: list[int] = []
    q: BoundedQueue[int] = BoundedQueue(2, overflow="drop_newest", on_drop=lambda item, size: dropped.append(item))
    assert [q.put(i) for i in range(4)] == [True, True, False, False]
    assert q.items() == [0, 1] and q.dropped == 2 and dropped == [2, 3]


def test_refuse_counts_a_drop_without_queueing() -> None:
    dropped: list[str] = []
    q: BoundedQueue[str] = BoundedQueue(2, on_drop=lambda item, size: dropped.append(item))
    q.put("a")
    q.refuse("b", size=9)
    assert q.items() == ["a"] and q.dropped == 1 and q.dropped_bytes == 9 and dropped == ["b"] and q.put_count == 2


def test_byte_bound_drops_oldest_but_always_keeps_the_newest() -> None:
    q: BoundedQueue[str] = BoundedQueue(max_bytes=10)
    q.put("a", size=4)
    q.put("b", size=4)
    q.put("c", size=4)                          # 12 > 10: "a" goes
    assert q.items() == ["b", "c"] and q.bytes == 8 and q.dropped_bytes == 4
    q.put("huge", size=50)                      # alone over the bound: kept, the rest go
    assert q.items() == ["huge"] and q.bytes == 50 and q.dropped == 3


def test_pause_policy_drops_nothing_and_signals_at_the_marks() -> None:
    events: list[str] = []
    q: BoundedQueue[int] = BoundedQueue(4, max_bytes=1000, overflow="pause", low=1,
                                        on_pause=lambda: events.append("pause"),
                                        on_resume=lambda: events.append("resume"))
    for i in range(6):
        q.put(i, size=10)
    # Paused at the 4th put (the bound reached), and told again at every later put.
    assert events == ["pause", "pause", "pause"] and q.paused and q.pauses == 1 and len(q) == 6
    assert q.dropped == 0
    for _ in range(4):
        q.get_nowait()
    assert events[-1] == "pause" and q.paused        # 2 left > low=1
    q.get_nowait()
    assert events[-1] == "resume" and not q.paused and len(q) == 1
    # The byte bound pauses too, and resumes under low_bytes (default: a quarter).
    q2: BoundedQueue[int] = BoundedQueue(max_bytes=100, overflow="pause", on_resume=lambda: events.append("r2"))
    q2.put(1, size=60)
    assert not q2.paused
    q2.put(2, size=40)
    assert q2.paused and q2.pauses == 1 and q2.low_bytes == 25
    q2.get_nowait()
    assert q2.paused                                   # 40 > 25
    q2.get_nowait()
    assert not q2.paused and events[-1] == "r2"


def test_drop_where_removes_a_channel_and_counts_it() -> None:
    q: BoundedQueue[tuple[str, int]] = BoundedQueue(10)
    for i in range(6):
        q.put(("book.x" if i % 2 else "ticker", i), size=3)
    assert q.drop_where(lambda item: item[0] == "book.x") == 3
    assert q.items() == [("ticker", 0), ("ticker", 2), ("ticker", 4)]
    assert q.dropped == 3 and q.dropped_bytes == 9 and q.bytes == 9
    assert q.drop_where(lambda item: False) == 0


def test_on_drop_may_purge_the_queue_it_runs_in() -> None:
    """What a subscription does when a book change is dropped: every queued change of
    that channel goes too, inside the put."""
    def purge(item: tuple[str, int], size: int) -> None:
        q.drop_where(lambda other: other[0] == item[0])

    q: BoundedQueue[tuple[str, int]] = BoundedQueue(3, on_drop=purge)
    for item in [("book.a", 1), ("t", 2), ("book.a", 3), ("t", 4)]:
        q.put(item)
    assert q.items() == [("t", 2), ("t", 4)] and q.dropped == 2


def test_close_hands_out_what_is_queued_then_ends() -> None:
    q: BoundedQueue[int] = BoundedQueue(5)
    q.put(1)
    q.put(2)
    q.close()
    assert q.closed and not q.ended
    assert not q.put(3), "a closed queue accepts nothing"
    assert q.get_nowait() == 1 and q.get_nowait() == 2 and q.ended
    with pytest.raises(QueueClosed):
        q.get_nowait()
    assert issubclass(QueueClosed, DrbfastError) and issubclass(QueueBusy, DrbfastError)


# ------------------------------------------------------------------ waiting

async def test_get_waits_for_a_put_from_a_callback() -> None:
    q: BoundedQueue[str] = BoundedQueue(5)
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, q.put, "late", 7)
    assert await q.get(TIMEOUT) == "late" and q.last_rx_ns == 7
    assert not q.waiting


async def test_get_timeout_raises_and_loses_nothing() -> None:
    q: BoundedQueue[str] = BoundedQueue(5)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        await q.get(0.02)
    assert 0.015 <= time.monotonic() - t0 < TIMEOUT and not q.waiting
    q.put("x")
    assert await q.get(TIMEOUT) == "x"


async def test_cancelling_a_waiting_get_loses_nothing() -> None:
    q: BoundedQueue[str] = BoundedQueue(5)
    task = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert q.waiting
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, TIMEOUT)
    assert not q.waiting
    q.put("kept")
    assert len(q) == 1 and await q.get(TIMEOUT) == "kept"


async def test_a_second_concurrent_get_is_refused_not_starved() -> None:
    q: BoundedQueue[int] = BoundedQueue(5)
    first = asyncio.ensure_future(q.get(TIMEOUT))
    await asyncio.sleep(0)
    with pytest.raises(QueueBusy):
        await q.get(TIMEOUT)
    q.put(1)
    assert await asyncio.wait_for(first, TIMEOUT) == 1


async def test_close_wakes_a_waiting_get_and_ends_iteration() -> None:
    q: BoundedQueue[int] = BoundedQueue(5)
    loop = asyncio.get_running_loop()
    for i in range(3):
        q.put(i)
    loop.call_later(0.01, q.close)
    got = []

    async def consume() -> None:
        async for item in q:
            got.append(item)

    await asyncio.wait_for(consume(), TIMEOUT)
    assert got == [0, 1, 2]
    with pytest.raises(QueueClosed):
        await q.get(TIMEOUT)


async def test_waiting_costs_no_wakeups_without_items() -> None:
    """A waiting get sleeps on one future: nothing polls."""
    q: BoundedQueue[int] = BoundedQueue(5)
    cpu = time.process_time()
    with pytest.raises(TimeoutError):
        await q.get(0.2)
    assert time.process_time() - cpu < 0.05


# ------------------------------------------------------------------ properties

class Model:
    """The same policy on a plain deque, written the obvious way."""

    def __init__(self, maxsize: int | None, max_bytes: int | None, overflow: str) -> None:
        self.d: deque[tuple[int, int]] = deque()
        self.maxsize, self.max_bytes, self.overflow = maxsize, max_bytes, overflow
        self.dropped: list[int] = []
        self.paused = False

    def nbytes(self) -> int:
        return sum(s for _, s in self.d)

    def over(self) -> bool:
        return ((self.maxsize is not None and len(self.d) > self.maxsize)
                or (self.max_bytes is not None and self.nbytes() > self.max_bytes))

    def put(self, item: int, size: int) -> bool:
        if self.overflow == "drop_newest":
            self.d.append((item, size))
            if len(self.d) > 1 and self.over():
                self.d.pop()
                self.dropped.append(item)
                return False
            return True
        self.d.append((item, size))
        if self.overflow == "drop_oldest":
            while len(self.d) > 1 and self.over():
                self.dropped.append(self.d.popleft()[0])
        elif self.overflow == "pause":
            if ((self.maxsize is not None and len(self.d) >= self.maxsize)
                    or (self.max_bytes is not None and self.nbytes() >= self.max_bytes)):
                self.paused = True
        return True

    def get(self) -> int | None:
        if not self.d:
            return None
        item = self.d.popleft()[0]
        if (self.paused and (self.maxsize is None or len(self.d) <= self.maxsize // 4)
                and (self.max_bytes is None or self.nbytes() <= self.max_bytes // 4)):
            self.paused = False
        return item


ops = st.lists(st.one_of(st.tuples(st.just("put"), st.integers(0, 40)), st.just(("get", 0))), max_size=80)


@settings(max_examples=300, deadline=None)
@given(ops, st.one_of(st.none(), st.integers(1, 6)), st.one_of(st.none(), st.integers(1, 60)),
       st.sampled_from(["drop_oldest", "drop_newest", "pause"]))
def test_queue_equals_a_deque_model(script: list[tuple[str, int]], maxsize: int | None, max_bytes: int | None,
                                    overflow: Any) -> None:
    model = Model(maxsize, max_bytes, overflow)
    dropped: list[int] = []
    q: BoundedQueue[int] = BoundedQueue(maxsize, max_bytes=max_bytes, overflow=overflow,
                                        on_drop=lambda item, size: dropped.append(item))
    peak = 0
    for n, (op, size) in enumerate(script):
        if op == "put":
            assert q.put(n, rx_ns=1000 + n, size=size) == model.put(n, size)
        else:
            expected = model.get()
            if expected is None:
                with pytest.raises(QueueEmpty):
                    q.get_nowait()
            else:
                assert q.get_nowait() == expected and q.last_rx_ns == 1000 + expected
        peak = max(peak, len(model.d))
        assert q.items() == [i for i, _ in model.d]
        assert q.bytes == model.nbytes()
        assert dropped == model.dropped and q.dropped == len(model.dropped)
        if overflow != "pause":
            # Bounded: never more than maxsize; over max_bytes only by the newest item alone.
            assert maxsize is None or len(q) <= maxsize
            assert max_bytes is None or q.bytes <= max_bytes or len(q) == 1
        assert q.paused == model.paused
    assert q.peak == peak
    assert q.put_count == sum(1 for op, _ in script if op == "put")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30)), max_size=60), st.integers(1, 8))
def test_drop_where_equals_filtering_the_model(items: list[tuple[int, int]], maxsize: int) -> None:
    q: BoundedQueue[tuple[int, int]] = BoundedQueue(maxsize)
    model: deque[tuple[int, int]] = deque(maxlen=maxsize)
    for n, (channel, size) in enumerate(items):
        q.put((channel, n), size=size)
        model.append((channel, n))
    sizes = {n: size for n, (_, size) in enumerate(items)}
    before = q.dropped
    removed = q.drop_where(lambda item: item[0] == 0)
    kept = [item for item in model if item[0] != 0]
    assert q.items() == kept and removed == len(model) - len(kept) and q.dropped == before + removed
    assert q.bytes == sum(sizes[n] for _, n in kept)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=40), st.integers(1, 10), st.integers(0, 10))
def test_pause_resumes_exactly_at_the_low_mark(sizes: list[int], high: int, low_raw: int) -> None:
    low = min(low_raw, high)
    calls: list[str] = []
    q: BoundedQueue[int] = BoundedQueue(high, overflow="pause", low=low,
                                        on_pause=lambda: calls.append("p"), on_resume=lambda: calls.append("r"))
    for i, size in enumerate(sizes):
        q.put(i, size=size)
        assert q.paused == (len(q) >= high) and q.pauses == (1 if q.paused else 0)
    assert len(q) == len(sizes), "pause drops nothing"
    was_paused = q.paused
    while len(q):
        q.get_nowait()
        if was_paused and q.paused:
            assert len(q) > low
    assert not q.paused
    assert calls.count("r") == (1 if was_paused else 0)
