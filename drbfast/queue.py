"""The one bounded queue between a receive callback and a consumer coroutine.

Subscriptions (:class:`drbfast.Subscription`), the split client's merged iterator and the
``drbfast.websockets`` drop-in's unread-message queue are all this class:

- a FIFO of ``(item, rx_ns, size)``: ``rx_ns`` is the item's CLOCK_MONOTONIC receive
  time (handed back in :attr:`BoundedQueue.last_rx_ns`), ``size`` its bytes, counted
  against ``max_bytes``;
- bounded in items (``maxsize``) and/or bytes (``max_bytes``); ``None`` means no bound;
- an overflow policy for what happens at the bound: ``"drop_oldest"`` (the new item goes
  in, the oldest go out until both bounds hold again; the newest item is always kept),
  ``"drop_newest"`` (the new item is refused), or ``"pause"`` (nothing is dropped: the
  owner's ``on_pause`` is called at every put that finds the queue at or over a bound,
  ``on_resume`` once a get brings it down to the low marks). Every dropped item is
  counted (``dropped``, ``dropped_bytes``) and handed to ``on_drop``;
- one waiter: :meth:`get` waits for the next item; a second concurrent ``get`` raises
  :class:`QueueBusy` instead of waiting forever; cancelling a waiting ``get`` (or its
  ``timeout``) loses nothing;
- close/end: after :meth:`close` no item is accepted; the items already queued are
  still handed out, then :meth:`get` raises :class:`QueueClosed` and ``async for`` ends.

``put`` never blocks and never awaits: it runs inside a receive callback. No asyncio
object exists until a consumer waits (the waiter future is made lazily, on the running
loop of the ``get``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, Literal, TypeVar

from .errors import ConfigurationError, DrbfastError

__all__ = ["BoundedQueue", "Overflow", "QueueBusy", "QueueClosed", "QueueEmpty"]

T = TypeVar("T")

#: What :meth:`BoundedQueue.put` does at a bound.
Overflow = Literal["drop_oldest", "drop_newest", "pause"]
_POLICIES = ("drop_oldest", "drop_newest", "pause")


class QueueClosed(DrbfastError):
    """The queue was closed and every item it held has been taken."""


class QueueEmpty(DrbfastError):
    """:meth:`BoundedQueue.get_nowait` found nothing queued (the queue is still open)."""


class QueueBusy(DrbfastError, RuntimeError):
    """A second coroutine called :meth:`BoundedQueue.get` while one is already waiting."""


def _bound(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int or None, not {value!r}")
    return value


class BoundedQueue(Generic[T]):
    """A bounded FIFO with one waiter, an overflow policy and counted drops.

    ``low``/``low_bytes`` (``"pause"`` only): the marks at or under which a paused
    queue resumes (default: a quarter of the bound, as websockets). ``on_drop(item,
    size)`` runs for every item the policy drops, inside :meth:`put` (it may call
    :meth:`drop_where`). ``on_pause()``/``on_resume()``: see the module docstring.
    """

    __slots__ = ("maxsize", "max_bytes", "overflow", "low", "low_bytes", "_items", "_bytes", "_waiter",
                 "_closed", "_paused", "_on_drop", "_on_pause", "_on_resume",
                 "put_count", "dropped", "dropped_bytes", "peak", "pauses", "last_rx_ns")

    def __init__(self, maxsize: int | None = None, *, max_bytes: int | None = None,
                 overflow: Overflow = "drop_oldest", low: int | None = None, low_bytes: int | None = None,
                 on_drop: Callable[[T, int], object] | None = None,
                 on_pause: Callable[[], object] | None = None,
                 on_resume: Callable[[], object] | None = None) -> None:
        if overflow not in _POLICIES:
            raise ConfigurationError(f"overflow must be one of {', '.join(_POLICIES)}, not {overflow!r}")
        self.maxsize = _bound(maxsize, "maxsize")
        self.max_bytes = _bound(max_bytes, "max_bytes")
        self.overflow: Overflow = overflow
        for mark, high, name in ((low, self.maxsize, "low"), (low_bytes, self.max_bytes, "low_bytes")):
            if mark is not None and (mark < 0 or (high is not None and mark > high)):
                raise ConfigurationError(f"{name} must be between 0 and its bound, not {mark!r}")
        #: resume marks of the ``"pause"`` policy
        self.low = low if low is not None else (self.maxsize // 4 if self.maxsize is not None else 0)
        self.low_bytes = low_bytes if low_bytes is not None else (self.max_bytes // 4 if self.max_bytes is not None else 0)
        self._items: deque[tuple[T, int, int]] = deque()
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._paused = False
        self._on_drop = on_drop
        self._on_pause = on_pause
        self._on_resume = on_resume
        #: items accepted by :meth:`put` (dropped ones included)
        self.put_count = 0
        #: items (and their bytes) dropped by the policy or :meth:`drop_where`
        self.dropped = 0
        self.dropped_bytes = 0
        #: the most items queued at once
        self.peak = 0
        #: times the ``"pause"`` policy started a pause
        self.pauses = 0
        #: receive time of the last item handed out (0 before the first)
        self.last_rx_ns = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("paused" if self._paused else "open")
        return (f"BoundedQueue({len(self._items)}/{self.maxsize} items, {self._bytes}/{self.max_bytes} bytes, "
                f"{self.overflow}, {state}, dropped={self.dropped})")

    # ------------------------------------------------------------ state

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def bytes(self) -> int:
        """Bytes of the queued items (the ``size`` each was put with)."""
        return self._bytes

    @property
    def closed(self) -> bool:
        """:meth:`close` was called (items may still be queued)."""
        return self._closed

    @property
    def ended(self) -> bool:
        """Closed and empty: :meth:`get` raises :class:`QueueClosed`."""
        return self._closed and not self._items

    @property
    def paused(self) -> bool:
        """The ``"pause"`` policy is between ``on_pause`` and ``on_resume``."""
        return self._paused

    @property
    def waiting(self) -> bool:
        """A :meth:`get` is waiting for an item."""
        return self._waiter is not None and not self._waiter.done()

    def full(self, size: int = 0) -> bool:
        """Whether one more item of ``size`` bytes would pass a bound (the newest item
        alone never counts as passing the byte bound)."""
        items = self._items
        if self.maxsize is not None and len(items) >= self.maxsize:
            return True
        return self.max_bytes is not None and bool(items) and self._bytes + size > self.max_bytes

    def items(self) -> list[T]:
        """The queued items, oldest first (a copy)."""
        return [entry[0] for entry in self._items]

    # ------------------------------------------------------------ producing

    def put(self, item: T, rx_ns: int = 0, size: int = 0) -> bool:
        """Queue ``item`` (received at ``rx_ns``, ``size`` bytes) and wake the waiter.
        Returns False if it was not queued: the queue is closed, or ``"drop_newest"``
        refused it (counted as dropped)."""
        if self._closed:
            return False
        self.put_count += 1
        if self.overflow == "drop_newest" and self.full(size):
            self.dropped += 1
            self.dropped_bytes += size
            if self._on_drop is not None:
                self._on_drop(item, size)
            return False
        items = self._items
        items.append((item, rx_ns, size))
        self._bytes += size
        if self.overflow == "drop_oldest":
            maxsize, max_bytes = self.maxsize, self.max_bytes
            while len(items) > 1 and ((maxsize is not None and len(items) > maxsize)
                                      or (max_bytes is not None and self._bytes > max_bytes)):
                old, _, old_size = items.popleft()
                self._bytes -= old_size
                self.dropped += 1
                self.dropped_bytes += old_size
                if self._on_drop is not None:
                    self._on_drop(old, old_size)
        elif self.overflow == "pause" and self._at_bound():
            if not self._paused:
                self._paused = True
                self.pauses += 1
            if self._on_pause is not None:
                self._on_pause()
        if len(items) > self.peak:
            self.peak = len(items)
        self._wake()
        return True

    def refuse(self, item: T, size: int = 0) -> None:
        """Count ``item`` as dropped at the bound without queueing it (``on_drop`` runs),
        for an owner whose policy decides per item (a subscription refuses a book change
        that finds the queue full, whatever ``overflow`` says)."""
        self.put_count += 1
        self.dropped += 1
        self.dropped_bytes += size
        if self._on_drop is not None:
            self._on_drop(item, size)

    def _at_bound(self) -> bool:
        return ((self.maxsize is not None and len(self._items) >= self.maxsize)
                or (self.max_bytes is not None and self._bytes >= self.max_bytes))

    def drop_where(self, predicate: Callable[[T], bool]) -> int:
        """Remove every queued item for which ``predicate`` holds (counted as dropped;
        ``on_drop`` is not called). Returns how many went."""
        items = self._items
        kept: deque[tuple[T, int, int]] = deque()
        removed = removed_bytes = 0
        for entry in items:
            if predicate(entry[0]):
                removed += 1
                removed_bytes += entry[2]
            else:
                kept.append(entry)
        if removed:
            self._items = kept
            self._bytes -= removed_bytes
            self.dropped += removed
            self.dropped_bytes += removed_bytes
            self._maybe_resume()
        return removed

    def close(self) -> None:
        """Accept nothing more; the queued items are still handed out, then the end."""
        self._closed = True
        self._wake()

    def clear(self) -> int:
        """Forget every queued item (not counted as dropped). Returns how many."""
        n = len(self._items)
        self._items.clear()
        self._bytes = 0
        self._maybe_resume()
        return n

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------ consuming

    def get_nowait(self) -> T:
        """The oldest item; :class:`QueueEmpty` if none (:class:`QueueClosed` if none
        will come)."""
        if not self._items:
            raise QueueClosed("the queue is closed") if self._closed else QueueEmpty("nothing queued")
        item, rx_ns, size = self._items.popleft()
        self._bytes -= size
        self.last_rx_ns = rx_ns
        if self._paused:
            self._maybe_resume()
        return item

    def _maybe_resume(self) -> None:
        if (self._paused and (self.maxsize is None or len(self._items) <= self.low)
                and (self.max_bytes is None or self._bytes <= self.low_bytes)):
            self._paused = False
            if self._on_resume is not None:
                self._on_resume()

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until an item is queued or the queue is closed (returns at once if so).
        Raises :class:`QueueBusy` if another coroutine is waiting, ``TimeoutError``
        after ``timeout`` seconds."""
        if self._items or self._closed:
            return
        if self.waiting:
            raise QueueBusy("another coroutine is already waiting on this queue")
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            if timeout is None:
                await waiter
            else:
                try:
                    await asyncio.wait_for(waiter, timeout)
                except asyncio.TimeoutError:
                    # (3.10: asyncio's own TimeoutError is not the builtin one)
                    raise TimeoutError(f"nothing queued within {timeout:g} s") from None
        finally:
            if self._waiter is waiter:
                self._waiter = None

    async def get(self, timeout: float | None = None) -> T:
        """The oldest item, waiting for one if need be (at most ``timeout`` seconds,
        then ``TimeoutError``). :class:`QueueClosed` once closed and empty."""
        if not self._items and not self._closed:
            if timeout is None:
                while not self._items and not self._closed:
                    await self.wait()
            else:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + timeout
                while not self._items and not self._closed:
                    left = deadline - loop.time()
                    if left <= 0:
                        raise TimeoutError(f"nothing queued within {timeout:g} s")
                    await self.wait(left)
        return self.get_nowait()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.get()
        except QueueClosed:
            raise StopAsyncIteration from None
