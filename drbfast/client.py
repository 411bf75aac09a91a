"""``drbfast.connect``: a complete Deribit session over the compiled FastListener.

The listener answers heartbeats by itself. This module is the asyncio driver around the
sans-I/O session (:mod:`drbfast.session`): it moves bytes, wakes futures and keeps time.

One task, the supervisor, owns the connection for the client's whole life: it opens the
socket, runs the set-up (hello, auth, set_heartbeat, cancel-on-disconnect, resubscribe),
serves the ready connection (watchdog, token refresh, book resyncs, probes) and, when
the connection goes, backs off and opens the next one. There is never a second attempt
beside it. A socket whose set-up failed is detached (its callbacks are ignored by
identity from then on) before it is closed. Messages are parsed once with simdjson.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import ssl as ssl_module
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import simdjson

from ._book import OrderBook
from ._listener import FastListener, monotonic_ns
from .auth import auth_params
from .backoff import Backoff
from .book import RESYNC_STATUSES, BookStatus, book_channel
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionLost,
    DeribitError,
    DrbfastError,
    MalformedReply,
    NotConnected,
    RequestTimeout,
    SubscriptionRefused,
    error_from_reply,
)
from .queue import BoundedQueue
from .protocol import BookTracker, Reply, encode_request, split_channels
from .ratelimit import CreditBucket, CreditPools, Credits
from .session import (
    PendingTable,
    ResyncSchedule,
    SessionOptions,
    SetupPlan,
    SubscriptionRegistry,
    TokenSchedule,
    pool_of,
    refused_channels,
)
from .orders import LabelMaker, Order, OrderResult, encode_order, order_params
from .stats import ClientStats
from .transport import (DEFAULT_CLOSE_TIMEOUT, abandon_task, close_at_exit, close_connection, close_now, default_ssl,
                        loop_usable, open_listener, owned_task)
from .urls import TESTNET

__all__ = ["Client", "Connect", "Event", "OrderHandle", "State", "Subscription", "connect"]

log = logging.getLogger("drbfast.client")

Callback = Callable[[str, Any], object]
BookCallback = Callable[[OrderBook], object]

# Deribit's production layout of a notification: the channel starts at a fixed offset.
_NOTIFICATION_PREFIX = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"'
_BOOK_PREFIX = _NOTIFICATION_PREFIX + b"book."
_REPLY_PREFIX = b'{"jsonrpc":"2.0","id":'
#: A book channel still without its snapshot this long after a resync asks again.
RESYNC_GRACE = 2.0


class _LiveBook:
    """A book the client keeps: the compiled OrderBook, the subscription that holds its
    channel, who to tell about updates, and what they last saw."""

    __slots__ = ("book", "sub", "callbacks", "delivered_version", "waiters", "dirty")

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.sub: Subscription | None = None
        self.callbacks: list[BookCallback] = []
        self.delivered_version = -1
        self.waiters: list[asyncio.Future[None]] = []
        self.dirty = False


def _ignore(channel: str, data: Any) -> None:
    """The callback of a live book's own subscription: the book is fed from bytes."""
Overflow = Literal["drop_oldest", "drop_newest"]


class State(str, enum.Enum):
    """Where the client is. ``FAILED`` and ``CLOSED`` are final."""

    NEW = "new"
    CONNECTING = "connecting"
    SETTING_UP = "setting_up"
    READY = "ready"
    BACKING_OFF = "backing_off"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(frozen=True)
class Event:
    """Something users may want to observe: ``kind`` is one of "connected",
    "disconnected", "reconnecting", "reconnect_failed", "reconnected", "fatal",
    "book_gap", "book_dropped", "resync_failed", "subscription_refused", "watchdog";
    ``detail`` says more."""

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

    def __init__(self, client: Client, channels: list[str], callback: Callback | None, maxsize: int, overflow: Overflow) -> None:
        self.client = client
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
                self.client._stats.callback_errors += 1
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
        stats = self.client._stats
        stats.overflows += 1
        dropped = self._queue.dropped
        if dropped == 1 or dropped % 1000 == 0:
            log.warning("drbfast: subscription queue full (%d) at %s: %s, %d dropped so far",
                        self.maxsize, channel, self.overflow, dropped)
        if channel.startswith("book."):
            stats.overflows += self._queue.drop_where(lambda other: other[0] == channel)
            self.client._book_dropped(channel)

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
        await self.client._unsubscribe(self)


class Client:
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
        self._pending: PendingTable[_Waiter] = PendingTable()
        self._registry: SubscriptionRegistry[Subscription] = SubscriptionRegistry()
        self._subs: list[Subscription] = []
        self._books = BookTracker()
        self._resync = ResyncSchedule(lambda: Backoff(initial=0.1, cap=5.0), grace=RESYNC_GRACE)
        self._tokens = TokenSchedule()
        self._parser = simdjson.Parser()
        self._listener: FastListener | None = None
        self._transport: Any = None
        self._state = State.NEW
        self._ready = asyncio.Event()
        self._lost: asyncio.Future[ConnectionLost] | None = None
        self._kick: asyncio.Future[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed_now = False  # closed without the loop (_close_now): close() has nothing left to do
        self._first: asyncio.Future[None] | None = None
        self._closing = False
        self._fatal: BaseException | None = None
        self._engine_charged = 0
        self._paused_since_ns = 0
        self._rx_ns = 0
        self._next_probe = 0.0
        self._stats = ClientStats()
        self.events: deque[Event] = deque(maxlen=256)
        self._labels = LabelMaker()
        #: orders sent whose acknowledgement has not come yet, by label
        self._unacked: dict[str, OrderHandle] = {}
        #: orders whose acknowledgement was lost (drop, timeout): looked up when ready
        self._to_reconcile: deque[OrderHandle] = deque()
        self._order_tasks: set[asyncio.Task[Any]] = set()
        self._live_books: dict[str, _LiveBook] = {}
        self._dirty_books: list[_LiveBook] = []

    def __repr__(self) -> str:
        who = f", client_id={self._creds.client_id!r}" if self._creds else ""
        return f"Client({self.url!r}{who}, {self._state.value})"

    # ------------------------------------------------------------ lifecycle

    @property
    def state(self) -> State:
        return self._state

    @property
    def connected(self) -> bool:
        """True once the session set-up finished on the current socket."""
        return self._ready.is_set()

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

    def _emit(self, kind: str, **detail: Any) -> None:
        event = Event(kind, detail)
        self.events.append(event)
        if self.options.on_event is not None:
            try:
                self.options.on_event(event)
            except Exception:
                log.exception("drbfast: on_event callback raised")

    def _poke(self) -> None:
        """Wake the supervisor (a disconnect, a close, a resync to do)."""
        kick = self._kick
        if kick is not None and not kick.done():
            kick.set_result(None)

    async def _start(self) -> None:
        """Start the supervisor and wait for the first session. If that fails or the
        caller is cancelled, nothing is left behind: no socket, no task, no retry."""
        if self._state is not State.NEW:
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
            while not self._closing:
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
                    if self._closing:
                        return
                    if isinstance(err, (AuthenticationError, ConfigurationError)):
                        # Bad credentials do not get better by retrying.
                        self._fail(err)
                        return
                    log.warning("drbfast: reconnect attempt failed: %s", err)
                    self._emit("reconnect_failed", error=str(err), attempt=self._backoff.attempts)
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
                await self._serve()
                if self._closing:
                    return
                if not self.options.reconnect:
                    self._state = State.CLOSED
                    self._end_subscriptions()
                    return
                await self._back_off()
        finally:
            if self._listener is not None:
                self._detach(self._listener, "drbfast client closed")

    async def _back_off(self) -> None:
        self._state = State.BACKING_OFF
        delay = self._backoff.next()
        self._emit("reconnecting", delay=delay, attempt=self._backoff.attempts)
        await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if poked (close, disconnect, resync)."""
        if self._closing:
            return
        loop = asyncio.get_running_loop()
        self._kick = kick = loop.create_future()
        handle = loop.call_later(max(delay, 0.0), self._poke)
        try:
            await kick
        finally:
            handle.cancel()
            self._kick = None

    def _fail(self, err: BaseException) -> None:
        self._fatal = err
        self._state = State.FAILED
        self._emit("fatal", error=str(err))
        log.error("drbfast: reconnecting gave up: %s", err)
        self._end_subscriptions()

    async def _attempt(self) -> None:
        """Open a socket and run the session set-up on it."""
        o = self.options
        self._state = State.CONNECTING
        opts = dict(o.listener_options or {})

        def factory() -> FastListener:
            # Per-listener closures: a detached socket may still hand over what it had
            # queued; the client knows it by identity and ignores it.
            listener: FastListener | None = None

            def on_message(payload: bytes, binary: bool, lane: int, channel: str, rx_ns: int) -> None:
                if listener is not None and listener is self._listener:
                    self._rx_ns = rx_ns
                    self._on_message(payload, binary)
                else:
                    self._stats.stale_messages += 1

            def on_drop(kind: str, channel: str, count: int) -> None:
                if listener is self._listener:
                    self._on_listener_drop(kind, channel, count)

            listener = FastListener(on_message, None, self._on_disconnected, logger=log, on_drop=on_drop, **opts)
            return listener

        transport, listener = await open_listener(factory, self.url, ssl=self._ssl, timeout=o.connect_timeout,
                                                  listener_type=FastListener, max_frame_size=o.max_frame_size)
        if self._closing:
            listener.close(1000, "drbfast client closed")
            raise NotConnected("the client was closed while connecting")
        self._transport = transport
        self._listener = listener
        self._lost = asyncio.get_running_loop().create_future()
        self._engine_charged = 0
        self._paused_since_ns = 0
        self._books.reset()
        for live in self._live_books.values():
            live.book.reset()  # the resubscribe brings a fresh snapshot
        self._resync.clear()
        self._tokens.clear()
        self._state = State.SETTING_UP
        try:
            if not listener.is_connected:
                raise ConnectionLost("the connection closed right after the handshake")
            plan = SetupPlan(o, self._registry.channels)
            while (step := plan.next()) is not None:
                result = await self._setup_call(step.method, step.params)
                refused = plan.done(step, result)
                if step.kind == "auth" and plan.token is not None:
                    self._tokens.on_auth(plan.token, time.monotonic())
                if refused:
                    self._refused_on_resubscribe(refused)
        except BaseException:
            self._detach(listener, "session set-up failed")
            raise
        self._next_probe = time.monotonic() + (o.probe_interval or 0.0)
        self._state = State.READY
        self._ready.set()

    def _refused_on_resubscribe(self, refused: list[str]) -> None:
        log.warning("drbfast: on resubscribe Deribit refused %s", refused)
        self._emit("subscription_refused", channels=refused)
        for channel in refused:
            for sub in list(self._registry.holders(channel) or ()):
                self._registry.remove(sub, [channel])
                sub.channels = [c for c in sub.channels if c != channel]
                sub.refused.append(channel)
            self._books.forget(channel)

    def _detach(self, listener: FastListener, reason: str) -> None:
        """Stop listening to ``listener`` (its callbacks are ignored from now on), fail
        what is in flight on it, and close it."""
        if not loop_usable(self._loop):
            # A coroutine of ours finalized after the loop stopped or closed: failing the
            # calls in flight would schedule their callbacks on a dead loop.
            self._close_now()
            return
        if listener is self._listener:
            self._lost_connection(listener, ConnectionLost(f"connection closed: {reason}"))
        if listener.is_connected and not (listener.transport is not None and listener.transport.is_close_frame_sent):
            # (a close frame already sent: a closing handshake is under way, let it end)
            listener.close(1000, reason)
        transport = self._transport
        if transport is not None and transport is listener.transport:
            self._transport = None

    def _lost_connection(self, listener: FastListener, lost: ConnectionLost) -> None:
        self._charge_engine()
        self._listener = None
        self._ready.clear()
        for pending in self._pending.fail_all():
            if not pending.waiter.done():
                pending.waiter.set_exception(lost)
        self._stats.absorb_final(listener.stats)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(lost)
        self._poke()

    def _on_disconnected(self, listener: FastListener) -> None:
        if listener is not self._listener:
            return  # a detached socket: its set-up failed or it was replaced
        code, reason = listener.close_code, listener.close_reason
        lost = ConnectionLost(f"connection lost (close code {code}, {reason!r})" if code else "connection lost",
                              close_code=code, close_reason=reason)
        failed = len(self._pending)
        self._lost_connection(listener, lost)
        self._emit("disconnected", close_code=code, close_reason=reason, failed_requests=failed)

    def _end_subscriptions(self) -> None:
        for sub in self._subs:
            sub._close()

    async def _serve(self) -> None:
        """The connection is ready: keep it so until it goes or the client closes."""
        lost = self._lost
        assert lost is not None
        while not lost.done() and not self._closing:
            await self._sleep(self._next_deadline())
            if lost.done() or self._closing:
                return
            try:
                await self._housekeeping()
            except (ConnectionLost, RequestTimeout, NotConnected):
                continue

    def _next_deadline(self) -> float:
        now = time.monotonic()
        delay = 1.0
        wd = self.options.watchdog_timeout
        if wd:
            delay = min(delay, wd / 4)
        if self._to_reconcile:
            return 0.0
        for t in (self._tokens.refresh_at, self._resync.next_due()):
            if t is not None:
                delay = min(delay, t - now)
        if self.options.probe_interval:
            delay = min(delay, self._next_probe - now)
        return max(delay, 0.0)

    async def _housekeeping(self) -> None:
        listener = self._listener
        if listener is None:
            return
        self._charge_engine()
        now = time.monotonic()
        if self._watchdog_fired(listener):
            return
        if self.options.probe_interval and now >= self._next_probe:
            self._next_probe = now + self.options.probe_interval
            if listener.is_connected:
                listener.send_probe()
        if self._tokens.due(now):
            await self._refresh_token()
        self._recheck_waiting_books(time.monotonic())
        for channel in self._resync.due(time.monotonic()):
            await self._resync_channel(channel)
        while self._to_reconcile and self._listener is not None:
            await self._reconcile(self._to_reconcile[0])
            self._to_reconcile.popleft()

    def _watchdog_fired(self, listener: FastListener) -> bool:
        """Drop a connection that received nothing (heartbeats included) for longer than
        the heartbeat interval allows, before Deribit drops it. Time during which reading
        is paused on purpose (a slow consumer's backpressure) does not count."""
        timeout = self.options.watchdog_timeout
        if not timeout:
            return False
        now = monotonic_ns()
        underlying = getattr(listener.transport, "underlying_transport", None)
        if underlying is not None and not underlying.is_reading():
            self._paused_since_ns = now
            return False
        last = max(listener.stats.last_rx_ns, self._paused_since_ns)
        if last and (now - last) / 1e9 > timeout:
            silent = (now - last) / 1e9
            self._stats.watchdog_drops += 1
            self._emit("watchdog", silent_for=silent)
            log.warning("drbfast: nothing received for %.1f s; dropping the connection", silent)
            listener.close(1001, "drbfast watchdog: connection stale")
            return True
        return False

    async def _refresh_token(self) -> None:
        params = self._tokens.refresh_params() if self.options.auth != "coinbase_cdp" else None
        self._tokens.refresh_at = None
        try:
            if params is None:
                raise DeribitError(13009, "unauthorized", "no refresh token")
            result = await self._setup_call("public/auth", params)
        except DeribitError:
            if self.options.auth != "coinbase_cdp":
                log.warning("drbfast: token refresh failed; authenticating again")
            if self._creds is None:
                return
            try:
                result = await self._setup_call("public/auth", auth_params(self._creds, self.options.auth, self.options.scope))
            except DeribitError as exc:
                log.error("drbfast: re-authentication failed: %s", exc)
                self._tokens.refresh_at = time.monotonic() + 5.0
                return
        if isinstance(result, dict):
            self._tokens.on_auth(result, time.monotonic())
        self._stats.token_refreshes += 1

    async def _resync_channel(self, channel: str) -> None:
        """A fresh snapshot needs unsubscribe then subscribe (PROTOCOL.md 4.3); retried
        with backoff until it works or the channel is unsubscribed."""
        if channel not in self._registry:
            self._resync.cancel(channel)
            return
        prefix = "private" if self._creds else "public"
        self._resync.begin(channel)
        try:
            await self._setup_call(f"{prefix}/unsubscribe", {"channels": [channel]})
            if channel in self._registry:
                result = await self._setup_call(f"{prefix}/subscribe", {"channels": [channel]})
                if refused_channels(f"{prefix}/subscribe", [channel], result):
                    raise SubscriptionRefused([channel])
        except (DeribitError, MalformedReply, SubscriptionRefused, RequestTimeout) as exc:
            delay = self._resync.failed(channel, time.monotonic())
            self._emit("resync_failed", channel=channel, error=str(exc), retry_in=delay)
            log.warning("drbfast: resync of %s failed (%s); retrying in %.2f s", channel, exc, delay)
            return
        if self._resync.done(channel, time.monotonic()):
            # Its snapshot was dropped by the listener (or the book broke) while this
            # attempt ran: go again.
            self._poke()

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
        if self._state in (State.CLOSED, State.FAILED) and (self._supervisor is None or self._supervisor.done()):
            self._state = State.CLOSED
            self._end_subscriptions()
            return
        self._closing = True
        connecting = self._state is State.CONNECTING
        self._state = State.CLOSING
        self._ready.clear()
        listener, transport = self._listener, self._transport
        if listener is not None:
            self._lost_connection(listener, ConnectionLost("connection closed: drbfast client closed"))
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
        for live in self._live_books.values():
            for fut in live.waiters:
                if not fut.done():
                    fut.set_result(None)
        self._state = State.CLOSED
        self._end_subscriptions()
        for handle in list(self._to_reconcile):
            handle._settle("unknown", None)
        self._to_reconcile.clear()

    def _close_now(self, finalize: bool = False) -> None:
        """close() where the event loop is gone: the socket closed at once, nothing
        awaited, resolved or scheduled (the loop may be closed); tasks are cancelled
        only if the loop is still open (it may run again); ``finalize``: see
        :func:`drbfast.transport.abandon_task`."""
        self._closed_now = True
        self._closing = True
        loop = self._loop
        loop_open = loop is not None and not loop.is_closed()
        transport = self._transport
        self._listener = None
        self._transport = None
        if transport is not None:
            close_now(transport, loop, at_exit=finalize)
        current = asyncio.current_task() if loop_usable(loop) else None
        for task in (self._supervisor, *self._order_tasks):
            if task is not current:
                abandon_task(task, loop_open, finalize)
        self._state = State.CLOSED

    def _close_at_exit(self) -> None:
        if not self._closed_now and not loop_usable(self._loop):
            self._close_now(finalize=True)

    def __del__(self) -> None:
        # A client dropped while connected: asyncio's transports warn the same way.
        try:
            if self._closing or self._closed_now or (self._transport is None and (self._supervisor is None or self._supervisor.done())):
                return
            warnings.warn(f"unclosed {self!r}: call close() or use async with", ResourceWarning, source=self)
            self._close_now()
        except Exception:  # noqa: S110 - at interpreter exit anything may be half torn down
            pass

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the session is (re)connected; raises the fatal error if reconnects
        gave up, :class:`NotConnected` if the client is closed."""
        if self._fatal is not None:
            raise self._fatal
        if self._state is State.CLOSED:
            raise NotConnected("the client is closed")
        await asyncio.wait_for(self._ready.wait(), timeout)

    # ------------------------------------------------------------ receiving

    def _on_message(self, payload: bytes, binary: bool) -> None:
        self._stats.messages += 1
        applied: _LiveBook | None = None
        if self._live_books and payload.startswith(_BOOK_PREFIX):
            # A book the client keeps is applied straight from the bytes (compiled);
            # the message is parsed only if a subscription also wants it as data.
            end = payload.find(b'"', len(_BOOK_PREFIX))
            applied = self._live_books.get(payload[len(_NOTIFICATION_PREFIX):end].decode("ascii", "replace"))
            if applied is not None:
                self._apply_book(applied, payload)
                if self._registry.holders(applied.book.channel) == [applied.sub]:
                    return
        if payload.startswith(_REPLY_PREFIX):
            # A reply in production's layout ("id" right after "jsonrpc"): decoded to
            # dicts in one pass. On a lazy document, asking for a key it lacks ("method"
            # of a reply) costs ~6 us inside pysimdjson, more than the whole decode.
            try:
                msg = self._parse(payload, True)
            except ValueError:
                self._parse_error(payload, binary)
                return
            if isinstance(msg, dict) and "method" not in msg:
                self._on_reply(Reply.from_message(msg))
                return
        try:
            doc = self._parse(payload, False)
        except ValueError:
            self._parse_error(payload, binary)
            return
        try:
            if not isinstance(doc, simdjson.Object):
                self._stats.parse_errors += 1
                log.warning("drbfast: message is not a JSON object: %r", payload[:200])
                return
            if doc.get("method") == "subscription":
                params = doc.get("params")
                if not isinstance(params, simdjson.Object):
                    self._stats.parse_errors += 1
                    return
                channel = params.get("channel")
                if not isinstance(channel, str):
                    self._stats.parse_errors += 1
                    return
                live = self._live_books.get(channel)
                if live is not None and live is not applied:
                    # Another layout than production's: the book's own scanner reads it.
                    self._apply_book(live, payload)
                self._on_notification(channel, params.get("data"))
            elif "id" in doc or "error" in doc or "result" in doc:
                self._on_reply(Reply.from_message(doc.as_dict()))
            else:
                self._stats.unhandled += 1
                log.info("drbfast: message with no handler: %r", payload[:200])
        finally:
            del doc

    def _parse(self, payload: bytes, recursive: bool) -> Any:
        try:
            return self._parser.parse(payload, True) if recursive else self._parser.parse(payload)
        except RuntimeError:
            # A lazy-mode user kept a document alive: this parser is pinned to it.
            self._parser = simdjson.Parser()
            return self._parser.parse(payload, True) if recursive else self._parser.parse(payload)

    def _parse_error(self, payload: bytes, binary: bool) -> None:
        self._stats.parse_errors += 1
        log.warning("drbfast: unparseable %s message (%d bytes) ignored: %r", "binary" if binary else "text", len(payload), payload[:200])

    def _on_reply(self, reply: Reply) -> None:
        self._stats.responses += 1
        if reply.us_in is not None and reply.us_out is not None:
            self._stats.server_us_diff = reply.us_out - reply.us_in
            self._stats.clock_offset_us = reply.us_out - time.time_ns() // 1000
        entry = self._pending.pop(reply.id)
        if entry is None:
            self._stats.orphan_replies += 1
            if reply.error is not None:
                log.warning("drbfast: Deribit error not tied to a request (id %r): %r", reply.id, reply.error)
            else:
                log.warning("drbfast: response with unknown id %r ignored", reply.id)
            return
        if not entry.waiter.done():
            entry.waiter.set_result(reply)

    def _on_notification(self, channel: str, data: Any) -> None:
        self._stats.notifications += 1
        holders = self._registry.holders(channel)
        if not holders:
            return
        if channel.startswith("book."):
            # Continuity is checked on what the exchange sent, in every mode, before any
            # local queue policy.
            waiting = channel in self._books.gapped
            if not self._books.check(channel, data):
                # A change met while the channel already waits for its snapshot (queued
                # behind the resubscribe's reply, which goes first) is refused without a
                # new resync: the supervisor asks again if the snapshot never comes. A
                # channel with a local book: the book saw the gap first and asked.
                if not waiting and channel not in self._live_books:
                    self._stats.book_gaps += 1
                    self._emit("book_gap", channel=channel)
                    log.warning("drbfast: %s skipped a change_id; resubscribing for a fresh snapshot", channel)
                    self._request_resync(channel)
                return
        if not self.options.lazy:
            data = _materialize(data)
        rx_ns = self._rx_ns
        for sub in holders:
            sub._deliver(channel, data, rx_ns)

    def _on_listener_drop(self, kind: str, channel: str, count: int) -> None:
        """The listener dropped queued messages for a slow consumer (called from the
        receive callback: only bookkeeping and a wake-up here)."""
        if kind == "book_reset":
            # Its queued changes are gone: refuse what follows until a fresh snapshot.
            if channel in self._registry:
                self._books.invalidate(channel)
                live = self._live_books.get(channel)
                if live is not None:
                    live.book.reset()
                self._emit("book_dropped", channel=channel, count=count, where="listener")
                self._request_resync(channel)
        else:
            self._emit("dropped", channel=channel, count=count)

    def _apply_book(self, live: _LiveBook, payload: bytes) -> None:
        book = live.book
        status = book.apply(payload, self._rx_ns)
        if status in RESYNC_STATUSES:
            channel = book.channel
            if status == BookStatus.GAP:
                self._stats.book_gaps += 1
            else:
                self._stats.book_errors += 1
            self._emit("book_gap", channel=channel, status=BookStatus(status).name)
            log.warning("drbfast: %s: %s; the local book waits for a fresh snapshot", channel, BookStatus(status).name)
            if not book.grouped:  # a grouped channel sends a full window every time
                self._request_resync(channel)
            return
        if book.version != live.delivered_version and not live.dirty:
            live.dirty = True
            if not self._dirty_books:
                # Once per slice of messages, not once per change: a consumer that is
                # behind sees the latest book, never a backlog of deltas.
                asyncio.get_running_loop().call_soon(self._flush_books)
            self._dirty_books.append(live)

    def _flush_books(self) -> None:
        dirty, self._dirty_books = self._dirty_books, []
        for live in dirty:
            live.dirty = False
            book = live.book
            if book.version == live.delivered_version:
                continue
            live.delivered_version = book.version
            for callback in live.callbacks:
                try:
                    callback(book)
                except Exception:
                    self._stats.callback_errors += 1
                    log.exception("drbfast: on_update for %s raised; the book stays live", book.channel)
            waiters, live.waiters = live.waiters, []
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
        ``on_update(book)`` is called at most once per batch of messages with the latest
        state; :meth:`book_updates` is the iterator form. Asking twice for the same
        channel returns the same book."""
        if depth is not None and group is None:
            group = "none"
        channel = book_channel(instrument, interval, group, depth)
        live = self._live_books.get(channel)
        if live is None:
            held = channel in self._registry
            live = _LiveBook(OrderBook(channel))
            self._live_books[channel] = live  # before the call: the snapshot follows the ack
            try:
                live.sub = await self.subscribe(channel, callback=_ignore)
            except BaseException:
                del self._live_books[channel]
                raise
            if held and not live.book.grouped:
                # Subscribing again to a held channel brings no snapshot (PROTOCOL.md 4.3).
                self._request_resync(channel)
        if on_update is not None:
            live.callbacks.append(on_update)
        return live.book

    async def book_updates(self, book: OrderBook) -> AsyncIterator[OrderBook]:
        """``async for book in client.book_updates(book)``: the book each time it has
        changed since the last step (conflated: a slow loop skips intermediate states)."""
        live = self._live_books.get(book.channel)
        if live is None or live.book is not book:
            raise ConfigurationError("that book is not kept by this client: get it from client.order_book()")
        while not self._closing and book.channel in self._live_books:
            fut = asyncio.get_running_loop().create_future()
            live.waiters.append(fut)
            await fut
            if self._closing:
                return
            yield book

    async def close_order_book(self, book: OrderBook) -> None:
        """Stop keeping ``book`` (its channel is unsubscribed unless something else holds it)."""
        live = self._live_books.pop(book.channel, None)
        if live is None:
            return
        for fut in live.waiters:
            if not fut.done():
                fut.set_result(None)
        if live.sub is not None:
            await live.sub.unsubscribe()

    def _recheck_waiting_books(self, now: float) -> None:
        """A book channel that waits for a snapshot with no resync pending, longer than
        RESYNC_GRACE after the last one: that snapshot never came (or was dropped before
        the listener could say so). Ask again, even when the channel is quiet."""
        waiting = [c for c in self._books.gapped if c not in self._live_books]
        waiting += [c for c, live in self._live_books.items() if not live.book.is_synced and not live.book.grouped]
        for channel in waiting:
            if channel in self._registry and self._resync.overdue(channel, now):
                log.warning("drbfast: %s still has no snapshot %.1f s after its resync; resubscribing again",
                            channel, RESYNC_GRACE)
                self._request_resync(channel)

    def book_waiting(self, channel: str) -> bool:
        """True while ``channel`` (a ``book.*`` subscription) refuses changes until a
        fresh snapshot: after a skipped change_id or changes dropped for a slow
        consumer, until the resubscribe's snapshot arrives."""
        live = self._live_books.get(channel)
        if live is not None:
            return not live.book.is_synced
        return channel in self._books.gapped

    def _request_resync(self, channel: str) -> None:
        if self._resync.request(channel, time.monotonic()):
            self._poke()

    def _book_dropped(self, channel: str) -> None:
        """A subscription queue dropped a change of ``channel``: what follows would not
        apply, so refuse its changes until a fresh snapshot arrives."""
        self._books.invalidate(channel)
        self._stats.book_local_drops += 1
        self._emit("book_dropped", channel=channel)
        self._request_resync(channel)

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

    async def _setup_call(self, method: str, params: dict[str, Any]) -> Any:
        """A request sent before readiness (set-up, refresh, resync): charged to the
        credit budget like any other."""
        bucket = self._bucket(method)
        if bucket is not None:
            self._charge_engine()
            await bucket.acquire()
        return await self._request(method, params)

    async def _request(self, method: str, params: dict[str, Any]) -> Any:
        """Send now on the current socket and return the result."""
        listener = self._listener
        if listener is None or not listener.is_connected:
            raise ConnectionLost("not connected")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Reply] = loop.create_future()
        req_id = self._pending.add(method, fut)
        timeout = self.options.request_timeout
        try:
            listener.send(encode_request(req_id, method, params))
        except Exception as exc:
            self._pending.discard(req_id)
            raise ConnectionLost(f"sending {method} failed: {exc}") from exc
        timer = loop.call_later(timeout, self._expire, fut, method)
        try:
            reply = await fut
        finally:
            timer.cancel()
            self._pending.discard(req_id)
        if reply.error is not None:
            raise error_from_reply(reply.error, method)
        return reply.result

    def _expire(self, fut: _Waiter, method: str) -> None:
        if not fut.done():
            self._stats.timeouts += 1
            fut.set_exception(RequestTimeout(method, self.options.request_timeout))

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call a Deribit method and return its ``result``.

        Raises :class:`DeribitError` (a subclass by code) on an error reply,
        :class:`RequestTimeout` after ``request_timeout``, :class:`ConnectionLost` if
        the connection drops first. While reconnecting, waits up to ``request_timeout``
        for the session to come back; requests are spaced by the credit budget.
        """
        if self._fatal is not None:
            raise NotConnected(f"reconnecting gave up: {self._fatal}") from self._fatal
        if self._closing or self._state in (State.CLOSED, State.NEW):
            raise NotConnected("the client is closed" if self._state is not State.NEW else "the client is not started")
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self.options.request_timeout)
            except asyncio.TimeoutError:
                raise NotConnected(f"not connected after {self.options.request_timeout:g} s") from None
        return await self._setup_call(method, params)


    # ------------------------------------------------------------ orders

    async def buy(self, instrument_name: str, amount: float, *, price: float | None = None, type: str = "limit",
                  post_only: bool = False, reduce_only: bool = False, time_in_force: str | None = None,
                  label: str | None = None, **extra: Any) -> OrderResult:
        """``private/buy``; returns the :class:`OrderResult` (``order``, ``trades``).

        Every order carries a label (``label`` or one made by the client, see
        :attr:`OrderHandle.label`) so that one whose acknowledgement is lost can be found
        again: the call then raises :class:`ConnectionLost` (or :class:`RequestTimeout`)
        and, once the session is back, the client looks the label up and emits an
        ``order_reconciled`` event saying what became of it. Other Deribit parameters
        (``max_show``, ``trigger``, ``trigger_price``, ``advanced``, ``mmp``,
        ``valid_until``, ...) pass through ``extra``. Charged to the matching-engine pool."""
        handle = self.place("buy", instrument_name, amount, price=price, type=type, post_only=post_only,
                            reduce_only=reduce_only, time_in_force=time_in_force, label=label, **extra)
        return await handle._result  # not shielded: nobody else holds this handle

    async def sell(self, instrument_name: str, amount: float, *, price: float | None = None, type: str = "limit",
                   post_only: bool = False, reduce_only: bool = False, time_in_force: str | None = None,
                   label: str | None = None, **extra: Any) -> OrderResult:
        """``private/sell``: as :meth:`buy`."""
        handle = self.place("sell", instrument_name, amount, price=price, type=type, post_only=post_only,
                            reduce_only=reduce_only, time_in_force=time_in_force, label=label, **extra)
        return await handle._result  # not shielded: nobody else holds this handle

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
        if self._fatal is not None or self._closing or self._state in (State.CLOSED, State.NEW):
            handle._fail(NotConnected("the client is closed" if self._fatal is None else f"reconnecting gave up: {self._fatal}"))
            return
        bucket = self._bucket(handle.method)
        listener = self._listener
        if self._ready.is_set() and listener is not None and (bucket is None or bucket.try_acquire() == 0.0):
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
            if listener is None or not self._ready.is_set():
                raise NotConnected("the connection went while the order waited for credits")
            self._send_order(handle, listener)
        except asyncio.CancelledError:
            handle._fail(NotConnected("the client closed before the order was sent"))
            raise
        except DrbfastError as exc:
            handle._fail(exc)

    def _send_order(self, handle: OrderHandle, listener: FastListener) -> None:
        ack = _OrderAck(self, handle)
        req_id = ack.req_id = self._pending.add(handle.method, ack)
        try:
            listener.send(encode_order(req_id, handle.method, handle.params))
        except Exception as exc:
            self._pending.discard(req_id)
            handle._fail(ConnectionLost(f"sending {handle.method} failed: {exc}"))
            return
        handle.sent = True
        self._unacked[handle.label] = handle
        ack.timer = asyncio.get_running_loop().call_later(self.options.request_timeout, self._expire, ack, handle.method)

    def _order_acked(self, ack: _OrderAck, reply: Reply | None, exc: BaseException | None) -> None:
        """An order's reply (or its failure) settles its handle at once: called from the
        receive path (or the timeout, or the disconnect), so ``on_ack`` and the handle's
        waiter run without a loop iteration in between (under a slow consumer one
        iteration holds a whole drain slice of the consumer's work)."""
        handle = ack.handle
        if ack.timer is not None:
            ack.timer.cancel()
        self._pending.discard(ack.req_id)
        self._unacked.pop(handle.label, None)
        if exc is not None:
            if isinstance(exc, (ConnectionLost, RequestTimeout)):
                # It may or may not have reached the matching engine: find out.
                handle.uncertain = True
                self._to_reconcile.append(handle)
                self._poke()
            handle._fail(exc)
            return
        assert reply is not None
        if reply.error is not None:
            handle._fail(error_from_reply(reply.error, handle.method))
        elif not isinstance(reply.result, dict) or not isinstance(reply.result.get("order"), dict):
            handle._fail(MalformedReply(handle.method, reply.result))
        else:
            handle._resolve(OrderResult(reply.result))

    async def _reconcile(self, handle: OrderHandle) -> None:
        """Find out what became of an order whose acknowledgement was lost."""
        name = handle.params["instrument_name"]
        try:
            orders = await self._setup_call("private/get_order_state_by_label",
                                             {"currency": _currency_of(name), "label": handle.label})
        except DeribitError:
            # Older APIs or a gateway without the method: the open orders of the instrument.
            orders = await self._setup_call("private/get_open_orders_by_instrument", {"instrument_name": name})
        found = [Order(o) for o in orders or () if isinstance(o, dict) and o.get("label") == handle.label]
        if not found:
            outcome = "not_found"
        elif found[0].order_state == "rejected":
            outcome = "rejected"
        else:
            outcome = "placed"
        handle._settle(outcome, found[0] if found else None)
        self._emit("order_reconciled", label=handle.label, outcome=outcome,
                   order_id=found[0].order_id if found else None, state=found[0].order_state if found else None)

    async def _order_call(self, method: str, params: dict[str, Any]) -> Any:
        if self._creds is None:
            raise ConfigurationError("orders need credentials: connect with client_id and client_secret")
        return await self.call(method, **{k: v for k, v in params.items() if v is not None})

    async def edit(self, order_id: str, amount: float, *, price: float | None = None, post_only: bool | None = None,
                   reduce_only: bool | None = None, **extra: Any) -> OrderResult:
        """``private/edit``: new amount (and price, ...) of an open order."""
        return _order_result("private/edit", await self._order_call(
            "private/edit", {"order_id": order_id, "amount": amount, "price": price, "post_only": post_only,
                             "reduce_only": reduce_only, **extra}))

    async def edit_by_label(self, label: str, instrument_name: str, amount: float, *, price: float | None = None,
                            **extra: Any) -> OrderResult:
        """``private/edit_by_label``: edit the one open order with ``label``."""
        return _order_result("private/edit_by_label", await self._order_call(
            "private/edit_by_label", {"label": label, "instrument_name": instrument_name, "amount": amount,
                                      "price": price, **extra}))

    async def cancel(self, order_id: str) -> Order:
        """``private/cancel``: returns the cancelled order."""
        result = await self._order_call("private/cancel", {"order_id": order_id})
        if not isinstance(result, dict):
            raise MalformedReply("private/cancel", result)
        return Order(result)

    async def cancel_all(self, **params: Any) -> int:
        """``private/cancel_all``: how many orders were cancelled."""
        return _count("private/cancel_all", await self._order_call("private/cancel_all", params))

    async def cancel_all_by_instrument(self, instrument_name: str, **params: Any) -> int:
        """``private/cancel_all_by_instrument``: how many orders were cancelled."""
        return _count("private/cancel_all_by_instrument", await self._order_call(
            "private/cancel_all_by_instrument", {"instrument_name": instrument_name, **params}))

    async def cancel_all_by_currency(self, currency: str, **params: Any) -> int:
        """``private/cancel_all_by_currency``: how many orders were cancelled."""
        return _count("private/cancel_all_by_currency", await self._order_call(
            "private/cancel_all_by_currency", {"currency": currency, **params}))

    async def cancel_by_label(self, label: str, **params: Any) -> int:
        """``private/cancel_by_label``: how many orders were cancelled."""
        return _count("private/cancel_by_label", await self._order_call("private/cancel_by_label", {"label": label, **params}))

    async def close_position(self, instrument_name: str, type: str = "market", price: float | None = None) -> OrderResult:
        """``private/close_position``."""
        return _order_result("private/close_position", await self._order_call(
            "private/close_position", {"instrument_name": instrument_name, "type": type, "price": price}))

    async def get_open_orders(self, **params: Any) -> list[Order]:
        """``private/get_open_orders`` (``kind``, ``type``)."""
        return _orders("private/get_open_orders", await self._order_call("private/get_open_orders", params))

    async def get_open_orders_by_instrument(self, instrument_name: str, **params: Any) -> list[Order]:
        """``private/get_open_orders_by_instrument``."""
        return _orders("private/get_open_orders_by_instrument", await self._order_call(
            "private/get_open_orders_by_instrument", {"instrument_name": instrument_name, **params}))

    async def get_open_orders_by_currency(self, currency: str, **params: Any) -> list[Order]:
        """``private/get_open_orders_by_currency``."""
        return _orders("private/get_open_orders_by_currency", await self._order_call(
            "private/get_open_orders_by_currency", {"currency": currency, **params}))

    async def get_order_state(self, order_id: str) -> Order:
        """``private/get_order_state``."""
        result = await self._order_call("private/get_order_state", {"order_id": order_id})
        if not isinstance(result, dict):
            raise MalformedReply("private/get_order_state", result)
        return Order(result)

    async def get_order_state_by_label(self, currency: str, label: str) -> list[Order]:
        """``private/get_order_state_by_label``."""
        return _orders("private/get_order_state_by_label", await self._order_call(
            "private/get_order_state_by_label", {"currency": currency, "label": label}))

    async def mass_quote(self, quotes: list[dict[str, Any]], **params: Any) -> Any:
        """``private/mass_quote`` (market makers with the permission): the raw result."""
        return await self._order_call("private/mass_quote", {"quotes": quotes, **params})

    async def cancel_quotes(self, cancel_type: str = "all", **params: Any) -> int:
        """``private/cancel_quotes``: how many quotes were cancelled."""
        return _count("private/cancel_quotes", await self._order_call("private/cancel_quotes", {"cancel_type": cancel_type, **params}))

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
        sub = Subscription(self, wanted, callback, maxsize or self.options.max_queue, overflow)
        # Register before the call: the snapshot may arrive right behind the ack.
        self._subs.append(sub)
        new = self._registry.add(sub, wanted)
        method = "private/subscribe" if self._creds else "public/subscribe"
        refused: list[str] = []
        try:
            for chunk in split_channels(method, new):
                result = await self.call(method, channels=chunk)
                refused.extend(refused_channels(method, chunk, result))
        except BaseException:
            self._drop_sub(sub)
            raise
        if refused:
            for channel in refused:
                self._registry.remove(sub, [channel])
                self._books.forget(channel)
            sub.refused = refused
            sub.channels = [c for c in wanted if c not in refused]
            self._emit("subscription_refused", channels=refused)
            if strict:
                exc = SubscriptionRefused(refused)
                exc.subscription = sub  # type: ignore[attr-defined]
                raise exc
            log.warning("drbfast: Deribit refused %s", refused)
        return sub

    def _drop_sub(self, sub: Subscription) -> list[str]:
        if sub in self._subs:
            self._subs.remove(sub)
        gone = self._registry.remove(sub, list(sub.channels))
        for channel in gone:
            self._books.forget(channel)
            self._resync.cancel(channel)
        sub._close()
        return gone

    async def _unsubscribe(self, sub: Subscription) -> None:
        gone = self._drop_sub(sub)
        if gone and self.connected:
            method = "private/unsubscribe" if self._creds else "public/unsubscribe"
            for chunk in split_channels(method, gone):
                await self.call(method, channels=chunk)

    @property
    def channels(self) -> list[str]:
        """Every channel some subscription holds (resubscribed after a reconnect)."""
        return self._registry.channels


def _currency_of(instrument_name: str) -> str:
    """The currency get_order_state_by_label wants: BTC-PERPETUAL -> BTC,
    BTC_USDC-PERPETUAL -> USDC, ETH_USDC -> USDC."""
    head = instrument_name.split("-", 1)[0]
    return head.split("_", 1)[1] if "_" in head else head


def _order_result(method: str, result: Any) -> OrderResult:
    if not isinstance(result, dict) or not isinstance(result.get("order"), dict):
        raise MalformedReply(method, result)
    return OrderResult(result)


def _orders(method: str, result: Any) -> list[Order]:
    if not isinstance(result, list) or not all(isinstance(o, dict) for o in result):
        raise MalformedReply(method, result)
    return [Order(o) for o in result]


def _count(method: str, result: Any) -> int:
    if isinstance(result, bool) or not isinstance(result, int):
        raise MalformedReply(method, result)
    return result


class _Waiter(Protocol):
    """What the pending table holds per request: a future (``call``) or an
    :class:`_OrderAck` (an order)."""

    def done(self) -> bool: ...

    def set_result(self, reply: Reply, /) -> None: ...

    def set_exception(self, exc: BaseException, /) -> None: ...


class _OrderAck:
    """The pending-table entry of one order: its reply, timeout or disconnect settles
    the handle synchronously (:meth:`Client._order_acked`) instead of through a
    future's done-callback one loop iteration later."""

    __slots__ = ("client", "handle", "req_id", "timer", "_done")

    def __init__(self, client: Client, handle: OrderHandle) -> None:
        self.client = client
        self.handle = handle
        self.req_id = 0
        self.timer: asyncio.TimerHandle | None = None
        self._done = False

    def done(self) -> bool:
        return self._done

    def set_result(self, reply: Reply, /) -> None:
        if not self._done:
            self._done = True
            self.client._order_acked(self, reply, None)

    def set_exception(self, exc: BaseException, /) -> None:
        if not self._done:
            self._done = True
            self.client._order_acked(self, None, exc)


class OrderHandle:
    """An order sent with :meth:`Client.place` (fire and forget), or behind
    :meth:`Client.buy`/:meth:`Client.sell`.

    ``await handle`` gives the :class:`OrderResult` or raises what the order met (a
    :class:`DeribitError` rejection, :class:`ConnectionLost`, :class:`RequestTimeout`).
    When the acknowledgement was lost (``uncertain``), ``await handle.reconciled()``
    waits until the client has looked the order up after reconnecting and says what
    happened: ``"placed"`` (``handle.order`` is what the exchange has), ``"rejected"``,
    ``"not_found"`` (it never reached the book) or ``"unknown"`` (the client closed
    first)."""

    def __init__(self, method: str, params: dict[str, Any], on_ack: Callable[[OrderHandle], object] | None) -> None:
        loop = asyncio.get_running_loop()
        self.method = method
        self.params = params
        self.label: str = params["label"]
        self.sent = False
        self.uncertain = False
        self.outcome: str | None = None
        self.order: Order | None = None
        self._on_ack = on_ack
        self._result: asyncio.Future[OrderResult] = loop.create_future()
        self._reconciled: asyncio.Future[str] = loop.create_future()

    def __repr__(self) -> str:
        state = "done" if self._result.done() else "sent" if self.sent else "queued"
        return f"OrderHandle({self.method} {self.params['instrument_name']} label={self.label!r}, {state})"

    def __await__(self) -> Generator[Any, None, OrderResult]:
        return asyncio.shield(self._result).__await__()

    def done(self) -> bool:
        return self._result.done()

    def _resolve(self, result: OrderResult) -> None:
        if not self._result.done():
            self.order = result.order
            self._result.set_result(result)
            self._acked()

    def _fail(self, exc: BaseException) -> None:
        if not self._result.done():
            self._result.set_exception(exc)
            self._result.exception()  # retrieved: a fire-and-forget caller may never await it
            self._acked()

    def _acked(self) -> None:
        if self._on_ack is not None:
            try:
                self._on_ack(self)
            except Exception:
                log.exception("drbfast: on_ack callback raised")

    def _settle(self, outcome: str, order: Order | None) -> None:
        self.outcome = outcome
        if order is not None:
            self.order = order
        if not self._reconciled.done():
            self._reconciled.set_result(outcome)

    async def reconciled(self, timeout: float | None = None) -> str:
        """What became of an order whose acknowledgement was lost (see the class)."""
        return await asyncio.wait_for(asyncio.shield(self._reconciled), timeout)


def _materialize(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


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
