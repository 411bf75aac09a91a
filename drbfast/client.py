"""``drbfast.connect``: the asyncio driver of a Deribit session over the compiled FastListener.

The split: :class:`drbfast.session.Session` (sans I/O) decides; this module does.

- **The session decides** what every message, drop, timeout and moment means: replies
  matched to requests, the set-up plan advancing, notifications routed to their
  holders, book continuity and resyncs, token refresh and its retries, the watchdog,
  lost order acks and their reconciliation, and the lifecycle (:class:`State`, one
  enum kept by the session alone). It returns events and actions.
- **The client does**: one task, the supervisor, opens the socket, feeds the session
  (``connection_made``, every received message, ``tick`` when due, ``expire`` when a
  timer fires, ``connection_lost``), executes the actions (sends charged to the credit
  budget, probes, drops) and turns events into futures resolved, callbacks called and
  public :class:`Event` objects. Any error it did not expect is logged and ends the
  connection (a reconnect follows) or the client (FAILED, a ``fatal`` event): never a
  supervisor that dies silently. A socket whose set-up failed is detached (its
  callbacks are ignored by identity from then on) before it is closed.

The typed order and account calls are in :mod:`drbfast.trading`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal

from ._book import OrderBook
from ._listener import FastListener, monotonic_ns
from .backoff import Backoff
from .book import book_channel
from .errors import (
    ConfigurationError,
    ConnectionLost,
    DrbfastError,
    MalformedReply,
    NotConnected,
    RequestTimeout,
    SubscriptionRefused,
    error_from_reply,
)
from .orders import LabelMaker, OrderResult, order_params
from .protocol import Reply, split_channels
from .queue import BoundedQueue
from .ratelimit import URGENT_METHODS, CreditBucket, CreditPools, Credits
from .session import (
    RESYNC_GRACE,
    Answered,
    BookChanged,
    Drop,
    Failed,
    Notice,
    Notification,
    Probe,
    Send,
    Session,
    SessionOptions,
    Settled,
    State,
    StateChanged,
    Wake,
    pool_of,
    refused_channels,
)
from .stats import ClientStats
from .trading import OrderHandle, TradingMixin
from .transport import (DEFAULT_CLOSE_TIMEOUT, abandon_task, close_at_exit, close_connection, close_now, default_ssl,
                        loop_usable, open_listener, owned_task)
from .urls import TESTNET

__all__ = ["Client", "Connect", "Event", "OrderHandle", "RESYNC_GRACE", "State", "Subscription", "connect"]

log = logging.getLogger("drbfast.client")

Callback = Callable[[str, Any], object]
BookCallback = Callable[[OrderBook], object]
Overflow = Literal["drop_oldest", "drop_newest"]

_STOPPING = (State.CLOSING, State.CLOSED, State.FAILED)


class _BookWatch:
    """Who watches a kept book, and what they last saw (the session keeps the book)."""

    __slots__ = ("book", "sub", "callbacks", "delivered_version", "waiters", "dirty")

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.sub: Subscription | None = None
        self.callbacks: list[BookCallback] = []
        self.delivered_version = -1
        self.waiters: list[asyncio.Future[None]] = []
        self.dirty = False


def _ignore(channel: str, data: Any) -> None:
    """The callback of a kept book's own subscription: the book is fed from bytes."""


@dataclass(frozen=True)
class Event:
    """Something users may want to observe: ``kind`` is one of "connected",
    "disconnected", "reconnecting", "reconnect_failed", "reconnected", "fatal",
    "book_gap", "book_dropped", "book_stale" (the connection went: ``channels`` lists
    the kept books now not synced), "resync_failed", "subscription_refused",
    "watchdog", "token_expired", "order_reconciled"; ``detail`` says more."""

    kind: str
    detail: dict[str, Any] = field(default_factory=dict)
    t: float = field(default_factory=time.time)


async def next_queued(holder: Any, closed: Callable[[], bool]) -> tuple[str, Any]:
    """The next ``(channel, data)`` of ``holder._queue`` (a :class:`BoundedQueue` of
    ``(channel, data)`` with receive times; ``holder.last_rx_ns`` gets the item's);
    StopAsyncIteration once ``closed()`` (or the queue is closed) and the queue is empty."""
    queue: BoundedQueue[tuple[str, Any]] = holder._queue
    while not queue:
        if closed() or queue.closed:
            raise StopAsyncIteration
        await queue.wait()
    item = queue.get_nowait()
    holder.last_rx_ns = queue.last_rx_ns
    return item


class Subscription:
    """Channels delivered to one callback, or to an async iterator.

    Iterate with ``async for channel, data in sub``. The queue holds at most
    ``maxsize`` notifications; when the consumer falls behind, ``overflow`` says what
    goes (``"drop_oldest"`` by default) and ``dropped`` counts it; a warning is logged.
    A book channel is never delivered with a hole: when its messages are dropped here,
    its queued changes go too and the client fetches a fresh snapshot, which is the
    next thing the consumer sees of that channel.
    """

    def __init__(self, channels: list[str], callback: Callback | None, maxsize: int, overflow: Overflow, *,
                 stats: ClientStats, on_book_dropped: Callable[[str], object],
                 unsubscribe: Callable[[Subscription], Awaitable[None]]) -> None:
        self.channels = channels
        self.refused: list[str] = []
        self.callback = callback
        self.maxsize = maxsize
        self.overflow = overflow
        self.delivered = 0
        self.closed = False
        #: CLOCK_MONOTONIC ns receive time of the last message handed out (see
        #: :attr:`Client.rx_ns`); compare with :func:`drbfast.monotonic_ns` to skip stale data
        self.last_rx_ns = 0
        self._stats = stats
        self._on_book_dropped = on_book_dropped
        self._unsubscribe = unsubscribe
        self._queue: BoundedQueue[tuple[str, Any]] = BoundedQueue(maxsize, overflow=overflow, on_drop=self._dropped)

    @property
    def dropped(self) -> int:
        """Notifications dropped at the bound (and the queued changes of a book channel
        that lost one)."""
        return self._queue.dropped

    def __repr__(self) -> str:
        mode = "callback" if self.callback is not None else "iterator"
        return f"Subscription({self.channels!r}, {mode}, delivered={self.delivered}, dropped={self.dropped})"

    def _deliver(self, channel: str, data: Any, rx_ns: int) -> None:
        if self.callback is not None:
            self.delivered += 1
            self.last_rx_ns = rx_ns
            try:
                self.callback(channel, data)
            except Exception:
                self._stats.callback_errors += 1
                log.exception("drbfast: subscription callback for %s raised; the connection stays up", channel)
            return
        queue = self._queue
        if channel.startswith("book.") and queue.full():
            # A book change is never dropped alone (whatever the policy): it goes with
            # the channel's queued changes, and the channel restarts from a snapshot.
            queue.refuse((channel, data))
            return
        if queue.put((channel, data), rx_ns):
            self.delivered += 1

    def _dropped(self, item: tuple[str, Any], size: int) -> None:
        """The queue dropped ``item`` at its bound: count it; a book change leaves a
        hole, so the channel's queued changes go too and the client resyncs it."""
        channel = item[0]
        self._stats.overflows += 1
        dropped = self._queue.dropped
        if dropped == 1 or dropped % 1000 == 0:
            log.warning("drbfast: subscription queue full (%d) at %s: %s, %d dropped so far",
                        self.maxsize, channel, self.overflow, dropped)
        if channel.startswith("book."):
            self._stats.overflows += self._queue.drop_where(lambda other: other[0] == channel)
            self._on_book_dropped(channel)

    def _close(self) -> None:
        self.closed = True
        self._queue.close()

    def __aiter__(self) -> AsyncIterator[tuple[str, Any]]:
        return self

    async def __anext__(self) -> tuple[str, Any]:
        if self.callback is not None:
            raise ConfigurationError("this subscription delivers to a callback; subscribe without callback= to iterate")
        return await next_queued(self, lambda: self.closed)

    async def get(self, timeout: float | None = None) -> tuple[str, Any]:
        """The next ``(channel, data)``; raises ``TimeoutError`` after ``timeout``."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def unsubscribe(self) -> None:
        """Stop this subscription (channels no other subscription uses are unsubscribed)."""
        await self._unsubscribe(self)


class Client(TradingMixin):
    """A Deribit session. Create it with :func:`connect`; see that function for options."""

    def __init__(self, url: str, options: SessionOptions | None = None) -> None:
        self.options = o = options if options is not None else SessionOptions()
        self._ssl = default_ssl(url, o.ssl)
        self.url = url
        self._creds = o.credentials
        if self._creds is not None and o.auth == "credentials" and url.startswith("ws://"):
            log.warning("drbfast: auth='credentials' over ws:// sends the client secret unencrypted; "
                        "use wss:// or the default auth='signature'")
        pools = o.credits
        if pools is not None:
            self._buckets: dict[str, CreditBucket] | None = dict(zip(("non_matching", "subscribe", "matching"), pools.buckets()))
        else:
            self._buckets = None
        self._backoff = o.backoff or Backoff()
        self._stats = ClientStats()
        self._session = Session(o, stats=self._stats)
        self._subs: list[Subscription] = []
        self._listener: FastListener | None = None
        self._transport: Any = None
        #: set while the session is READY (mirrors the session's state, to wait on)
        self._ready = asyncio.Event()
        self._lost: asyncio.Future[ConnectionLost] | None = None
        self._kick: asyncio.Future[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed_now = False  # closed without the loop (_close_now): close() has nothing left to do
        self._first: asyncio.Future[None] | None = None
        self._outbox: deque[Send] = deque()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._engine_charged = 0
        self._paused_since_ns = 0
        self._rx_ns = 0
        self.events: deque[Event] = deque(maxlen=256)
        self._labels = LabelMaker()
        self._order_tasks: set[asyncio.Task[Any]] = set()
        self._watches: dict[str, _BookWatch] = {}
        self._dirty_books: list[_BookWatch] = []

    def __repr__(self) -> str:
        who = f", client_id={self._creds.client_id!r}" if self._creds else ""
        return f"Client({self.url!r}{who}, {self.state.value})"

    # ------------------------------------------------------------ lifecycle

    @property
    def state(self) -> State:
        return self._session.state

    @property
    def connected(self) -> bool:
        """True once the session set-up finished on the current socket."""
        return self._session.ready

    @property
    def rx_ns(self) -> int:
        """CLOCK_MONOTONIC ns at which the message being delivered was read from the
        socket (inside a callback: this notification's; compare with
        :func:`drbfast.monotonic_ns` to see how stale it is). Iterators: ``sub.last_rx_ns``."""
        return self._rx_ns

    @property
    def authenticated(self) -> bool:
        return self._creds is not None

    @property
    def stats(self) -> ClientStats:
        """Counters of this client, with the listener's heartbeat figures folded in."""
        s = self._stats.copy()
        if self._listener is not None:
            s.absorb(self._listener.stats)
        return s

    def _stopping(self) -> bool:
        return self._session.state in _STOPPING

    def _emit(self, kind: str, **detail: Any) -> None:
        event = Event(kind, detail)
        self.events.append(event)
        if self.options.on_event is not None:
            try:
                self.options.on_event(event)
            except Exception:
                log.exception("drbfast: on_event callback raised")

    def _poke(self) -> None:
        """Wake the supervisor (a disconnect, a close, something due)."""
        kick = self._kick
        if kick is not None and not kick.done():
            kick.set_result(None)

    # ------------------------------------------------------------ executing the session's outputs

    def _execute(self, outputs: list[Any]) -> None:
        for out in outputs:
            cls = type(out)
            if cls is Notification:
                rx_ns = out.rx_ns
                for sub in out.holders:
                    sub._deliver(out.channel, out.data, rx_ns)
            elif cls is Answered:
                timer = self._timers.pop(out.req_id, None)
                if timer is not None:
                    timer.cancel()
                ref = out.ref
                if type(ref) is OrderHandle:
                    _order_answered(ref, out.reply)
                elif not ref.done():
                    ref.set_result(out.reply)
            elif cls is BookChanged:
                self._book_changed(out.channel)
            elif cls is Send:
                self._outbox.append(out)
            elif cls is Wake:
                self._poke()
            elif cls is Notice:
                self._emit(out.kind, **out.detail)
            elif cls is Failed:
                timer = self._timers.pop(out.req_id, None)
                if timer is not None:
                    timer.cancel()
                ref = out.ref
                if type(ref) is OrderHandle:
                    if out.uncertain:
                        ref.uncertain = True  # it may or may not have reached the engine
                    ref._fail(out.error)
                elif not ref.done():
                    ref.set_exception(out.error)
            elif cls is Settled:
                out.ref._settle(out.outcome, out.order)
            elif cls is StateChanged:
                if out.new is State.READY:
                    self._ready.set()
                else:
                    self._ready.clear()
                if out.new in (State.CLOSED, State.FAILED):
                    self._end_subscriptions()
            elif cls is Probe:
                listener = self._listener
                if listener is not None and listener.is_connected:
                    listener.send_probe()
            elif cls is Drop:
                listener = self._listener
                if listener is not None:
                    listener.close(out.code, out.reason)
            else:
                raise TypeError(f"drbfast: unknown session output {out!r}")

    # ------------------------------------------------------------ the supervisor

    async def _start(self) -> None:
        """Start the supervisor and wait for the first session. If that fails or the
        caller is cancelled, nothing is left behind: no socket, no task, no retry."""
        if self.state is not State.NEW:
            raise ConfigurationError("this client was started already; call drbfast.connect() again for a new one")
        self._loop = loop = asyncio.get_running_loop()
        self._first = loop.create_future()
        self._supervisor = owned_task(loop, self._supervise(), name=f"drbfast supervisor {self.url}")
        close_at_exit(self)
        try:
            await self._first
        except BaseException:
            await self.close()
            raise

    async def _supervise(self) -> None:
        first = True
        try:
            while not self._stopping():
                try:
                    await self._attempt()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    err = _as_drbfast(exc)
                    if first:
                        if self._first is not None and not self._first.done():
                            self._first.set_exception(err)
                        return
                    self._execute(self._session.attempt_failed(err, self._backoff.attempts))
                    if self._stopping():
                        if self.state is State.FAILED:
                            log.error("drbfast: reconnecting gave up: %s", err)
                        return
                    log.warning("drbfast: reconnect attempt failed: %s", err)
                    await self._back_off()
                    continue
                if first:
                    first = False
                    if self._first is not None and not self._first.done():
                        self._first.set_result(None)
                    self._emit("connected", url=self.url)
                else:
                    self._stats.reconnects += 1
                    self._emit("reconnected", url=self.url)
                self._backoff.reset()
                try:
                    await self._serve()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A defect of this package, not a network fault: say so, and start
                    # over on a new connection rather than serve a broken one.
                    log.exception("drbfast: unexpected error serving the connection; reconnecting")
                    if self._listener is not None:
                        self._detach(self._listener, "drbfast internal error")
                if self._stopping():
                    return
                await self._back_off()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Never a zombie: whatever escaped above ends the client visibly.
            log.exception("drbfast: the supervisor failed")
            err = _as_drbfast(exc)
            if self._first is not None and not self._first.done():
                self._first.set_exception(err)
            self._execute(self._session.fail(err))
        finally:
            if self._listener is not None:
                self._detach(self._listener, "drbfast client closed")

    async def _back_off(self) -> None:
        self._execute(self._session.backing_off())
        delay = self._backoff.next()
        self._emit("reconnecting", delay=delay, attempt=self._backoff.attempts)
        await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if poked (close, disconnect, something due)."""
        if self._stopping():
            return
        loop = asyncio.get_running_loop()
        self._kick = kick = loop.create_future()
        handle = loop.call_later(max(delay, 0.0), self._poke)
        try:
            await kick
        finally:
            handle.cancel()
            self._kick = None

    def _listener_factory(self) -> FastListener:
        # Per-listener closures: a detached socket may still hand over what it had
        # queued; the client knows it by identity and ignores it.
        listener: FastListener | None = None
        session = self._session

        def on_message(payload: bytes, binary: bool, lane: int, channel: str, rx_ns: int) -> None:
            # The classifier's lane and channel come with the bytes: nothing here scans them.
            if listener is not None and listener is self._listener:
                self._rx_ns = rx_ns
                outputs = session.receive(payload, lane, channel, rx_ns, binary)
                if outputs:
                    self._execute(outputs)
            else:
                self._stats.stale_messages += 1

        def on_drop(kind: str, channel: str, count: int) -> None:
            if listener is self._listener:
                self._execute(session.listener_dropped(kind, channel, count))

        listener = FastListener(on_message, None, self._on_disconnected, logger=log, on_drop=on_drop,
                                **dict(self.options.listener_options or {}))
        return listener

    async def _attempt(self) -> None:
        """Open a socket and run the session set-up on it."""
        o = self.options
        self._execute(self._session.connecting())
        transport, listener = await open_listener(self._listener_factory, self.url, ssl=self._ssl,
                                                  timeout=o.connect_timeout, listener_type=FastListener,
                                                  max_frame_size=o.max_frame_size)
        if self._stopping():
            listener.close(1000, "drbfast client closed")
            raise NotConnected("the client was closed while connecting")
        self._transport = transport
        self._listener = listener
        self._lost = asyncio.get_running_loop().create_future()
        self._engine_charged = 0
        self._paused_since_ns = 0
        self._outbox.clear()
        try:
            if not listener.is_connected:
                raise ConnectionLost("the connection closed right after the handshake")
            self._execute(self._session.connection_made())
            while True:
                await self._drain_outbox()
                if self._session.setup_error is not None:
                    raise self._session.setup_error
                state = self._session.state
                if state is State.READY:
                    break
                if state is not State.SETTING_UP:
                    raise ConnectionLost("the connection closed during the session set-up")
                await self._sleep(o.request_timeout)
        except BaseException:
            self._detach(listener, "session set-up failed")
            raise

    async def _serve(self) -> None:
        """The connection is ready: keep it so until it goes or the client closes."""
        lost = self._lost
        assert lost is not None
        session = self._session
        while not lost.done() and not self._stopping():
            await self._sleep(0.0 if self._outbox else session.next_deadline(time.monotonic()))
            listener = self._listener
            if lost.done() or self._stopping() or listener is None:
                return
            self._charge_engine()
            self._execute(session.tick(time.monotonic(), self._last_rx(listener)))
            try:
                await self._drain_outbox()
            except ConnectionLost:
                continue

    def _last_rx(self, listener: FastListener) -> float | None:
        """When something was last received, on time.monotonic()'s scale. Time during
        which reading is paused on purpose (a slow consumer's backpressure) does not
        count: the watchdog then sees the moment reading resumed."""
        now_ns = monotonic_ns()
        underlying = getattr(listener.transport, "underlying_transport", None)
        if underlying is not None and not underlying.is_reading():
            self._paused_since_ns = now_ns
            return None
        last = max(listener.stats.last_rx_ns, self._paused_since_ns)
        if not last:
            return None
        return time.monotonic() - (now_ns - last) / 1e9

    async def _drain_outbox(self) -> None:
        """Send what the session asked for, each charged to its credit pool."""
        while self._outbox:
            send = self._outbox[0]
            bucket = self._bucket(send.method)
            if bucket is not None:
                self._charge_engine()
                await bucket.acquire(urgent=send.method in URGENT_METHODS)
            if not self._outbox or self._outbox[0] is not send:
                continue  # the connection went meanwhile: the session failed it already
            self._outbox.popleft()
            listener = self._listener
            if listener is None or not listener.is_connected:
                self._outbox.clear()
                return
            self._transmit(send.req_id, send.method, send.data, listener)

    def _transmit(self, req_id: int, method: str, data: bytes, listener: FastListener) -> None:
        try:
            listener.send(data)
        except Exception as exc:
            self._session.forget(req_id)
            raise ConnectionLost(f"sending {method} failed: {exc}") from exc
        self._timers[req_id] = asyncio.get_running_loop().call_later(
            self.options.request_timeout, self._on_timeout, req_id)

    def _on_timeout(self, req_id: int) -> None:
        self._timers.pop(req_id, None)
        self._execute(self._session.expire(req_id))

    def _detach(self, listener: FastListener, reason: str) -> None:
        """Stop listening to ``listener`` (its callbacks are ignored from now on), fail
        what is in flight on it, and close it."""
        if not loop_usable(self._loop):
            # A coroutine of ours finalized after the loop stopped or closed: failing the
            # calls in flight would schedule their callbacks on a dead loop.
            if not self._closed_now and not self._stopping():
                # Nobody closed it (the garbage collector may finalize the supervisor
                # before the client itself): the same warning as __del__'s.
                warnings.warn(f"unclosed {self!r}: call close() or use async with", ResourceWarning, source=self)
            self._close_now()
            return
        if listener is self._listener:
            self._execute(self._lost_connection(listener, ConnectionLost(f"connection closed: {reason}")))
        if listener.is_connected and not (listener.transport is not None and listener.transport.is_close_frame_sent):
            # (a close frame already sent: a closing handshake is under way, let it end)
            listener.close(1000, reason)
        transport = self._transport
        if transport is not None and transport is listener.transport:
            self._transport = None

    def _lost_connection(self, listener: FastListener, lost: ConnectionLost) -> list[Any]:
        self._charge_engine()
        self._listener = None
        self._outbox.clear()
        self._stats.absorb_final(listener.stats)
        outputs = self._session.connection_lost(lost)
        self._ready.clear()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(lost)
        self._poke()
        return outputs

    def _on_disconnected(self, listener: FastListener) -> None:
        if listener is not self._listener:
            return  # a detached socket: its set-up failed or it was replaced
        code, reason = listener.close_code, listener.close_reason
        lost = ConnectionLost(f"connection lost (close code {code}, {reason!r})" if code else "connection lost",
                              close_code=code, close_reason=reason)
        failed = self._session.in_flight
        outputs = self._lost_connection(listener, lost)
        self._emit("disconnected", close_code=code, close_reason=reason, failed_requests=failed)
        self._execute(outputs)

    def _end_subscriptions(self) -> None:
        for sub in self._subs:
            sub._close()

    async def close(self) -> None:
        """Close the session: no reconnect; pending requests fail with ConnectionLost.
        Closes with the closing handshake: a close frame (1000), what was sent before it
        still reaches the server, then up to ``DEFAULT_CLOSE_TIMEOUT`` (5 s) for the
        server's close frame before the socket is dropped. Returns once the socket is
        closed and every task of the client (supervisor, order submissions) has ended.
        Where the event loop is gone (stopped by a Ctrl-C under ``run_until_complete``,
        closed, or a coroutine finalized at interpreter exit) the socket is closed at
        once instead (:func:`drbfast.transport.close_now`). Never raises."""
        if self._closed_now:
            return  # (first: at interpreter exit this may run with module globals gone)
        if not loop_usable(self._loop):
            self._close_now()
            return
        session = self._session
        if session.state in (State.CLOSED, State.FAILED) and (self._supervisor is None or self._supervisor.done()):
            self._execute(session.closed())
            self._end_subscriptions()
            return
        connecting = session.state is State.CONNECTING
        self._execute(session.close())
        listener, transport = self._listener, self._transport
        if listener is not None:
            self._execute(self._lost_connection(listener, ConnectionLost("connection closed: drbfast client closed")))
        self._transport = None
        self._poke()
        if transport is not None:
            await close_connection(transport, 1000, "drbfast client closed", DEFAULT_CLOSE_TIMEOUT)
        sup = self._supervisor
        if sup is not None and connecting:
            sup.cancel()  # in the middle of TCP/TLS/handshake: nothing to wait for
        if sup is not None and not sup.done() and sup is not asyncio.current_task():
            try:
                await asyncio.wait_for(asyncio.shield(sup), 2.0)
            except (asyncio.TimeoutError, Exception):
                sup.cancel()
                try:
                    await sup
                except BaseException:  # its cancellation (or what ended it): closing either way
                    log.debug("drbfast: supervisor ended while closing", exc_info=True)
        order_tasks = list(self._order_tasks)
        for task in order_tasks:
            task.cancel()
        if order_tasks:
            await asyncio.wait(order_tasks, timeout=2.0)
        for watch in self._watches.values():
            for fut in watch.waiters:
                if not fut.done():
                    fut.set_result(None)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._execute(session.closed())
        self._end_subscriptions()

    def _close_now(self, finalize: bool = False) -> None:
        """close() where the event loop is gone: the socket closed at once, nothing
        awaited, resolved or scheduled (the loop may be closed: the session's outputs
        are not executed); tasks are cancelled only if the loop is still open (it may
        run again); ``finalize``: see :func:`drbfast.transport.abandon_task`."""
        self._closed_now = True
        loop = self._loop
        loop_open = loop is not None and not loop.is_closed()
        transport = self._transport
        self._listener = None
        self._transport = None
        self._session.close()
        self._session.closed()
        if transport is not None:
            close_now(transport, loop, at_exit=finalize)
        current = asyncio.current_task() if loop_usable(loop) else None
        for task in (self._supervisor, *self._order_tasks):
            if task is not current:
                abandon_task(task, loop_open, finalize)

    def _close_at_exit(self) -> None:
        if not self._closed_now and not loop_usable(self._loop):
            self._close_now(finalize=True)

    def __del__(self) -> None:
        # A client dropped while connected: asyncio's transports warn the same way.
        try:
            if self._stopping() or self._closed_now or (
                    self._transport is None and (self._supervisor is None or self._supervisor.done())):
                return
            warnings.warn(f"unclosed {self!r}: call close() or use async with", ResourceWarning, source=self)
            self._close_now()
        except Exception:  # noqa: S110 - at interpreter exit anything may be half torn down
            pass

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the session is (re)connected; raises the fatal error if reconnects
        gave up, :class:`NotConnected` if the client is closed."""
        if self._session.error is not None:
            raise self._session.error
        if self.state is State.CLOSED:
            raise NotConnected("the client is closed")
        await asyncio.wait_for(self._ready.wait(), timeout)

    # ------------------------------------------------------------ kept books

    def _book_changed(self, channel: str) -> None:
        watch = self._watches.get(channel)
        if watch is None or watch.dirty or watch.book.version == watch.delivered_version:
            return
        watch.dirty = True
        if not self._dirty_books:
            # Once per slice of messages, not once per change: a consumer that is
            # behind sees the latest book, never a backlog of deltas.
            asyncio.get_running_loop().call_soon(self._flush_books)
        self._dirty_books.append(watch)

    def _flush_books(self) -> None:
        dirty, self._dirty_books = self._dirty_books, []
        for watch in dirty:
            watch.dirty = False
            book = watch.book
            if book.version == watch.delivered_version:
                continue
            watch.delivered_version = book.version
            for callback in watch.callbacks:
                try:
                    callback(book)
                except Exception:
                    self._stats.callback_errors += 1
                    log.exception("drbfast: on_update for %s raised; the book stays live", book.channel)
            waiters, watch.waiters = watch.waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def order_book(self, instrument: str, interval: str = "100ms", depth: int | None = None,
                         on_update: BookCallback | None = None, *, group: str | None = None) -> OrderBook:
        """A live local book of ``instrument``, kept up to date from
        ``book.{instrument}.{interval}`` (or, with ``depth``, the grouped
        ``book.{instrument}.{group}.{depth}.{interval}``, ``group`` "none" by default).

        Changes are applied in compiled code from the message bytes; reading
        ``best_bid``, ``best_ask``, ``spread``, ``mid``, ``bids(n)``, ``asks(n)`` costs
        next to nothing. A gap, an unknown level, a crossed book or an unreadable message
        puts it in resync (``is_synced`` False, event ``book_gap``): it keeps showing its
        last consistent state and is resubscribed for a fresh snapshot with backoff.
        When the connection goes, every kept book reads not synced at once (event
        ``book_stale``) until the reconnect's snapshot.
        ``on_update(book)`` is called at most once per batch of messages with the latest
        state; :meth:`book_updates` is the iterator form. Asking twice for the same
        channel returns the same book."""
        if depth is not None and group is None:
            group = "none"
        channel = book_channel(instrument, interval, group, depth)
        watch = self._watches.get(channel)
        if watch is None:
            held = channel in self._session.registry
            book = OrderBook(channel)
            kept = self._session.keep_book(book)  # before the call: the snapshot follows the ack
            watch = self._watches[channel] = _BookWatch(book)
            try:
                sub = await self.subscribe(channel, callback=_ignore)
            except BaseException:
                self._session.drop_book(channel)
                del self._watches[channel]
                raise
            watch.sub = sub
            self._execute(self._session.book_subscribed(kept, sub, held))
        if on_update is not None:
            watch.callbacks.append(on_update)
        return watch.book

    async def book_updates(self, book: OrderBook) -> AsyncIterator[OrderBook]:
        """``async for book in client.book_updates(book)``: the book each time it has
        changed since the last step (conflated: a slow loop skips intermediate states)."""
        watch = self._watches.get(book.channel)
        if watch is None or watch.book is not book:
            raise ConfigurationError("that book is not kept by this client: get it from client.order_book()")
        while not self._stopping() and book.channel in self._watches:
            fut = asyncio.get_running_loop().create_future()
            watch.waiters.append(fut)
            await fut
            if self._stopping():
                return
            yield book

    async def close_order_book(self, book: OrderBook) -> None:
        """Stop keeping ``book`` (its channel is unsubscribed unless something else holds it)."""
        watch = self._watches.pop(book.channel, None)
        if watch is None:
            return
        self._session.drop_book(book.channel)
        for fut in watch.waiters:
            if not fut.done():
                fut.set_result(None)
        if watch.sub is not None:
            await watch.sub.unsubscribe()

    def book_waiting(self, channel: str) -> bool:
        """True while ``channel`` (a ``book.*`` subscription) refuses changes until a
        fresh snapshot: after a skipped change_id or changes dropped for a slow
        consumer, until the resubscribe's snapshot arrives."""
        return self._session.book_waiting(channel)

    def _book_dropped(self, channel: str) -> None:
        self._execute(self._session.book_dropped(channel))

    # ------------------------------------------------------------ calling

    def _bucket(self, method: str) -> CreditBucket | None:
        if self._buckets is None:
            return None
        return self._buckets[pool_of(method)]

    def _charge_engine(self) -> None:
        """Charge the listener's own sends (test_request answers, probes) to the
        non-matching pool: Deribit counts them too."""
        listener = self._listener
        if listener is None or self._buckets is None:
            return
        # Every engine public/test (test_request answer or probe) takes the next
        # sequence number: reading it allocates nothing, unlike a stats snapshot.
        sent = listener.sequence
        self._buckets["non_matching"].charge(count=sent - self._engine_charged)
        self._engine_charged = sent

    async def _request(self, method: str, params: dict[str, Any]) -> Any:
        """Charged to the credit budget, then sent now on the current socket; returns
        the result."""
        bucket = self._bucket(method)
        if bucket is not None:
            self._charge_engine()
            # A cancel goes ahead of places waiting for matching-engine credits.
            await bucket.acquire(urgent=method in URGENT_METHODS)
        listener = self._listener
        if listener is None or not listener.is_connected:
            raise ConnectionLost("not connected")
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        req_id, data = self._session.request(method, params, fut)
        self._transmit(req_id, method, data, listener)
        try:
            reply = await fut
        finally:
            timer = self._timers.pop(req_id, None)
            if timer is not None:
                timer.cancel()
            self._session.forget(req_id)
        if reply.error is not None:
            raise error_from_reply(reply.error, method)
        return reply.result

    def _refusal(self) -> NotConnected | None:
        """Why nothing can be sent now and never will (None: it can, maybe later)."""
        session = self._session
        if session.error is not None:
            err = NotConnected(f"reconnecting gave up: {session.error}")
            err.__cause__ = session.error
            return err
        if session.state in (State.CLOSING, State.CLOSED, State.FAILED):
            return NotConnected("the client is closed")
        if session.state is State.NEW:
            return NotConnected("the client is not started")
        return None

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call a Deribit method and return its ``result``.

        Raises :class:`DeribitError` (a subclass by code) on an error reply,
        :class:`RequestTimeout` after ``request_timeout``, :class:`ConnectionLost` if
        the connection drops first. While reconnecting, waits up to ``request_timeout``
        for the session to come back; requests are spaced by the credit budget.
        """
        refusal = self._refusal()
        if refusal is not None:
            raise refusal
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self.options.request_timeout)
            except asyncio.TimeoutError:
                raise NotConnected(f"not connected after {self.options.request_timeout:g} s") from None
        return await self._request(method, params)

    # ------------------------------------------------------------ orders (the fast path)

    def place(self, side: Literal["buy", "sell"], instrument_name: str, amount: float, *, price: float | None = None,
              type: str = "limit", post_only: bool = False, reduce_only: bool = False, time_in_force: str | None = None,
              label: str | None = None, on_ack: Callable[[OrderHandle], object] | None = None, **extra: Any) -> OrderHandle:
        """Fire and forget: send a buy or sell now and return its :class:`OrderHandle`
        at once (``await handle`` for the :class:`OrderResult`). ``on_ack(handle)`` is
        called when the acknowledgement (or the error) arrives, synchronously from the
        receive path (keep it short, as a subscription callback). With credits at hand and
        the session ready the frame is written before this returns; otherwise it is
        sent as soon as both allow."""
        if side not in ("buy", "sell"):
            raise ConfigurationError("side must be 'buy' or 'sell'")
        if self._creds is None:
            raise ConfigurationError("orders need credentials: connect with client_id and client_secret")
        params = order_params(instrument_name, amount, price=price, type=type, post_only=post_only,
                              reduce_only=reduce_only, time_in_force=time_in_force,
                              label=label if label is not None else self._labels(), **extra)
        handle = OrderHandle(f"private/{side}", params, on_ack)
        self._submit(handle)
        return handle

    def _submit(self, handle: OrderHandle) -> None:
        refusal = self._refusal()
        if refusal is not None:
            handle._fail(refusal)
            return
        bucket = self._bucket(handle.method)
        listener = self._listener
        if self._session.ready and listener is not None and (bucket is None or bucket.try_acquire() == 0.0):
            self._send_order(handle, listener)
            return
        task = owned_task(asyncio.get_running_loop(), self._submit_later(handle))
        self._order_tasks.add(task)
        task.add_done_callback(self._order_tasks.discard)

    async def _submit_later(self, handle: OrderHandle) -> None:
        try:
            if not self._ready.is_set():
                try:
                    await asyncio.wait_for(self._ready.wait(), self.options.request_timeout)
                except asyncio.TimeoutError:
                    raise NotConnected(f"not connected after {self.options.request_timeout:g} s") from None
            bucket = self._bucket(handle.method)
            if bucket is not None:
                await bucket.acquire()
            listener = self._listener
            if listener is None or not self._session.ready:
                raise NotConnected("the connection went while the order waited for credits")
            self._send_order(handle, listener)
        except asyncio.CancelledError:
            handle._fail(NotConnected("the client closed before the order was sent"))
            raise
        except DrbfastError as exc:
            handle._fail(exc)

    def _send_order(self, handle: OrderHandle, listener: FastListener) -> None:
        try:
            req_id, data = self._session.order(handle.method, handle.params, handle)
            self._transmit(req_id, handle.method, data, listener)
        except ConnectionLost as exc:
            handle._fail(exc)
            return
        handle.sent = True

    # ------------------------------------------------------------ subscriptions

    async def subscribe(self, *channels: str, callback: Callback | None = None, maxsize: int | None = None,
                        overflow: Overflow = "drop_oldest", strict: bool = True) -> Subscription:
        """Subscribe to ``channels``; deliver ``(channel, data)`` to ``callback`` (called
        in order, synchronously) or, without one, to the returned subscription's async
        iterator. Deribit silently leaves out channels it will not serve: with
        ``strict`` (default) that raises :class:`SubscriptionRefused` naming them (the
        others stay subscribed, see ``exc.subscription``); else they are logged and
        listed in ``sub.refused``. Large lists are split so no request exceeds 32 kB.
        """
        if not channels:
            raise ConfigurationError("subscribe needs at least one channel")
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ConfigurationError("overflow must be 'drop_oldest' or 'drop_newest'")
        wanted = list(dict.fromkeys(channels))
        sub = Subscription(wanted, callback, maxsize or self.options.max_queue, overflow, stats=self._stats,
                           on_book_dropped=self._book_dropped, unsubscribe=self._unsubscribe)
        # Register before the call: the snapshot may arrive right behind the ack.
        self._subs.append(sub)
        new = self._session.subscribe(sub, wanted)
        method = f"{self._session.private}/subscribe"
        refused: list[str] = []
        try:
            for chunk in split_channels(method, new):
                result = await self.call(method, channels=chunk)
                refused.extend(refused_channels(method, chunk, result))
        except BaseException:
            self._drop_sub(sub)
            raise
        if refused:
            self._execute(self._session.refused(sub, refused))
            if strict:
                exc = SubscriptionRefused(refused)
                exc.subscription = sub  # type: ignore[attr-defined]
                raise exc
            log.warning("drbfast: Deribit refused %s", refused)
        return sub

    def _drop_sub(self, sub: Subscription) -> list[str]:
        if sub in self._subs:
            self._subs.remove(sub)
        gone = self._session.unsubscribe(sub)
        sub._close()
        return gone

    async def _unsubscribe(self, sub: Subscription) -> None:
        gone = self._drop_sub(sub)
        if gone and self.connected:
            method = f"{self._session.private}/unsubscribe"
            for chunk in split_channels(method, gone):
                await self.call(method, channels=chunk)

    @property
    def channels(self) -> list[str]:
        """Every channel some subscription holds (resubscribed after a reconnect)."""
        return self._session.registry.channels


def _order_answered(handle: OrderHandle, reply: Reply) -> None:
    """An order's reply settles its handle at once, from the receive path, so that
    ``on_ack`` and the handle's waiter run without a loop iteration in between."""
    if reply.error is not None:
        handle._fail(error_from_reply(reply.error, handle.method))
    elif not isinstance(reply.result, dict) or not isinstance(reply.result.get("order"), dict):
        handle._fail(MalformedReply(handle.method, reply.result))
    else:
        handle._resolve(OrderResult(reply.result))


def _as_drbfast(exc: BaseException) -> DrbfastError:
    """Every error that leaves the public API is a DrbfastError, the cause chained."""
    if isinstance(exc, DrbfastError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        err: DrbfastError = RequestTimeout("session set-up", 0.0)
    elif isinstance(exc, OSError):
        err = ConnectionLost(f"connection failed: {exc}")
    else:
        err = DrbfastError(f"session set-up failed: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


class Connect:
    """What :func:`connect` returns: ``await`` it for a connected :class:`Client`, or
    use ``async with`` (the client is closed on exit)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __await__(self) -> Generator[Any, None, Client]:
        return self._start().__await__()

    async def _start(self) -> Client:
        await self._client._start()
        return self._client

    async def __aenter__(self) -> Client:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()


def connect(
    url: str = TESTNET,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    auth: Literal["signature", "credentials", "coinbase_cdp"] = "signature",
    heartbeat: float | None = 10,
    cancel_on_disconnect: Literal["connection", "account"] | None = None,
    reconnect: bool = True,
    request_timeout: float = 10.0,
    open_timeout: float | None = None,
    ssl: ssl_module.SSLContext | None = None,
    scope: str | None = None,
    client_name: str = "drbfast",
    client_version: str = "0.1.0",
    credits: CreditPools | Credits | None = CreditPools(),
    backoff: Backoff | None = None,
    on_event: Callable[[Event], object] | None = None,
    lazy: bool = False,
    watchdog: float | None = None,
    probe_interval: float | None = None,
    max_queue: int = 10_000,
    max_frame_size: int = 64 * 1024 * 1024,
    listener_options: dict[str, Any] | None = None,
) -> Connect:
    """Open a Deribit session.

    ``url``: ``drbfast.TESTNET`` (default), ``drbfast.MAINNET`` or any ws(s) URL (TLS
    is verified; pass ``ssl=`` to trust another CA). With ``client_id`` and
    ``client_secret`` the session authenticates (``auth="signature"``: the secret never
    leaves the process; ``"credentials"`` sends it). ``heartbeat``: seconds for
    ``public/set_heartbeat`` (None: off). ``cancel_on_disconnect``: "connection" or
    "account", re-armed on every connect. ``reconnect``: reconnect with backoff, redo
    the whole set-up and resubscribe. ``credits``: the client-side credit budget per
    pool (:class:`~drbfast.CreditPools`: non-matching, subscribe, matching engine; a
    bare :class:`~drbfast.Credits` sets the non-matching pool; None: off).
    ``lazy``: hand notification ``data`` as simdjson proxies valid only inside the
    callback (faster when reading a few fields of a large message); book continuity is
    checked in this mode too. ``watchdog``: drop a connection silent this long
    (default 2x heartbeat). ``probe_interval``: also send the engine's own
    ``public/test`` this often and time it. ``on_event``: called with every
    :class:`Event`. ``open_timeout``: deadline for TCP, TLS and the WebSocket
    handshake (default ``request_timeout``).

    If the first connection or its set-up fails, the returned awaitable raises (a
    :class:`~drbfast.DrbfastError`: :class:`~drbfast.ConnectError`, a
    :class:`~drbfast.DeribitError`, :class:`~drbfast.RequestTimeout`, ...) and leaves
    nothing running; cancelling it does the same.
    """
    if isinstance(credits, Credits):
        credits = CreditPools(non_matching=credits)
    options = SessionOptions(
        client_id=client_id, client_secret=client_secret, auth=auth, heartbeat=heartbeat,
        cancel_on_disconnect=cancel_on_disconnect, reconnect=reconnect, request_timeout=request_timeout,
        open_timeout=open_timeout, ssl=ssl, scope=scope, client_name=client_name, client_version=client_version,
        credits=credits, backoff=backoff, on_event=on_event, lazy=lazy, watchdog=watchdog,
        probe_interval=probe_interval, max_queue=max_queue, max_frame_size=max_frame_size,
        listener_options=listener_options,
    )
    return Connect(Client(url, options))
