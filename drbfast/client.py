"""``drbfast.connect``: a complete Deribit session over the compiled FastListener.

The listener answers heartbeats by itself; this module does everything else: the
session set-up on every (re)connect (hello, auth, set_heartbeat, cancel-on-disconnect,
resubscribe, in that order), calls matched by id, subscriptions, book continuity, a
credit budget, token refresh, a stale-connection watchdog and reconnects with backoff.
Messages are parsed once with simdjson.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import picows
import simdjson

from ._listener import FastListener, monotonic_ns
from .auth import Credentials, auth_params, refresh_params
from .backoff import Backoff
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionLost,
    DeribitError,
    NotConnected,
    RequestTimeout,
    SubscriptionRefused,
    error_from_reply,
)
from .protocol import BookTracker, Reply, RequestIds, encode_request, split_channels
from .ratelimit import SUBSCRIBE_CREDITS, CreditBucket, Credits
from .stats import ClientStats
from .urls import TESTNET

__all__ = ["Client", "Connect", "Event", "Subscription", "connect"]

log = logging.getLogger("drbfast.client")

Callback = Callable[[str, Any], object]
Overflow = Literal["drop_oldest", "drop_newest"]


@dataclass(frozen=True)
class Event:
    """Something users may want to observe: ``kind`` is one of "connected",
    "disconnected", "reconnecting", "reconnected", "fatal", "book_gap",
    "subscription_refused", "watchdog"; ``detail`` says more."""

    kind: str
    detail: dict[str, Any] = field(default_factory=dict)
    t: float = field(default_factory=time.time)


class Subscription:
    """Channels delivered to one callback, or to an async iterator.

    Iterate with ``async for channel, data in sub``. The queue holds at most
    ``maxsize`` notifications; when the consumer falls behind, ``overflow`` says what
    goes (``"drop_oldest"`` by default) and ``dropped`` counts it; a warning is logged.
    """

    def __init__(self, client: Client, channels: list[str], callback: Callback | None, maxsize: int, overflow: Overflow) -> None:
        self.client = client
        self.channels = channels
        self.refused: list[str] = []
        self.callback = callback
        self.maxsize = maxsize
        self.overflow = overflow
        self.delivered = 0
        self.dropped = 0
        self.closed = False
        self._queue: deque[tuple[str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        mode = "callback" if self.callback is not None else "iterator"
        return f"Subscription({self.channels!r}, {mode}, delivered={self.delivered}, dropped={self.dropped})"

    def _deliver(self, channel: str, data: Any) -> None:
        if self.callback is not None:
            self.delivered += 1
            try:
                self.callback(channel, data)
            except Exception:
                self.client._stats.callback_errors += 1
                log.exception("drbfast: subscription callback for %s raised; the connection stays up", channel)
            return
        if len(self._queue) >= self.maxsize:
            self.dropped += 1
            self.client._stats.overflows += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("drbfast: subscription queue for %s full (%d): %s, %d dropped so far", channel, self.maxsize, self.overflow, self.dropped)
            if self.overflow == "drop_newest":
                return
            self._queue.popleft()
        self._queue.append((channel, data))
        self.delivered += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _close(self) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> AsyncIterator[tuple[str, Any]]:
        return self

    async def __anext__(self) -> tuple[str, Any]:
        if self.callback is not None:
            raise ConfigurationError("this subscription delivers to a callback; subscribe without callback= to iterate")
        while not self._queue:
            if self.closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._queue.popleft()

    async def get(self, timeout: float | None = None) -> tuple[str, Any]:
        """The next ``(channel, data)``; raises ``TimeoutError`` after ``timeout``."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def unsubscribe(self) -> None:
        """Stop this subscription (channels no other subscription uses are unsubscribed)."""
        await self.client._unsubscribe(self)


class Client:
    """A Deribit session. Create it with :func:`connect`; see that function for options."""

    def __init__(self, url: str, *, client_id: str | None, client_secret: str | None, auth: Literal["signature", "credentials"],
                 heartbeat: float | None, cancel_on_disconnect: Literal["connection", "account"] | None, reconnect: bool,
                 request_timeout: float, ssl: ssl_module.SSLContext | None, scope: str | None, client_name: str,
                 client_version: str, credits: Credits | None, backoff: Backoff | None, on_event: Callable[[Event], object] | None,
                 lazy: bool, watchdog: float | None, probe_interval: float | None, max_queue: int,
                 listener_options: dict[str, Any] | None) -> None:
        if (client_id is None) != (client_secret is None):
            raise ConfigurationError("give both client_id and client_secret, or neither (no auth)")
        if auth not in ("signature", "credentials"):
            raise ConfigurationError("auth must be 'signature' (default, the secret stays local) or 'credentials'")
        if cancel_on_disconnect not in (None, "connection", "account"):
            raise ConfigurationError("cancel_on_disconnect must be None, 'connection' or 'account'")
        if cancel_on_disconnect and client_id is None:
            raise ConfigurationError("cancel_on_disconnect needs credentials: it is a private method")
        if heartbeat is not None and heartbeat <= 0:
            raise ConfigurationError("heartbeat is seconds (Deribit accepts 10 or more) or None")
        if request_timeout <= 0:
            raise ConfigurationError("request_timeout must be positive")
        if not url.startswith(("ws://", "wss://")):
            raise ConfigurationError(f"url must be ws:// or wss://, not {url!r}")
        self.url = url
        self._creds = Credentials(client_id, client_secret) if client_id is not None and client_secret is not None else None
        self._grant = auth
        self.heartbeat = heartbeat
        self.cancel_on_disconnect = cancel_on_disconnect
        self.reconnect = reconnect
        self.request_timeout = request_timeout
        self._ssl = ssl if ssl is not None else (ssl_module.create_default_context() if url.startswith("wss://") else None)
        self._scope = scope
        self._hello = {"client_name": client_name, "client_version": client_version}
        # One request's worth is kept back for the engine's public/test answers, which
        # Deribit charges too but which are never delayed.
        self._credits = CreditBucket(credits, reserve=credits.cost) if credits is not None else None
        self._sub_credits = CreditBucket(SUBSCRIBE_CREDITS) if credits is not None else None
        self._backoff = backoff or Backoff()
        self._on_event = on_event
        self._lazy = lazy
        self._watchdog_timeout = watchdog if watchdog is not None else (heartbeat * 2.0 if heartbeat else None)
        self._probe_interval = probe_interval
        self._max_queue = max_queue
        self._listener_options = listener_options or {}

        self._ids = RequestIds()
        self._pending: dict[int, tuple[asyncio.Future[Reply], str]] = {}
        self._subs: list[Subscription] = []
        self._by_channel: dict[str, list[Subscription]] = {}
        self._books = BookTracker()
        self._resyncing: set[str] = set()
        self._parser = simdjson.Parser()
        self._listener: FastListener | None = None
        self._transport: Any = None
        self._ready = asyncio.Event()
        self._closing = False
        self._fatal: BaseException | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresh_token: str | None = None
        self._token_expires_at: float | None = None
        self._stats = ClientStats()
        self._epoch = 0  # bumps on every connection, so stale tasks know to stop
        self.events: deque[Event] = deque(maxlen=256)

    def __repr__(self) -> str:
        who = f", client_id={self._creds.client_id!r}" if self._creds else ""
        state = "connected" if self.connected else "closed" if self._closing else "disconnected"
        return f"Client({self.url!r}{who}, {state})"

    # ------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        """True once the session set-up finished on the current socket."""
        return self._ready.is_set()

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
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("drbfast: on_event callback raised")

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _open(self) -> None:
        """Open a socket and run the session set-up on it."""
        self._epoch += 1
        epoch = self._epoch
        opts = dict(self._listener_options)

        def factory() -> FastListener:
            return FastListener(self._on_message, None, self._on_disconnected, logger=log, **opts)

        transport, listener = await asyncio.wait_for(
            picows.ws_connect(factory, self.url, ssl_context=self._ssl, websocket_handshake_timeout=self.request_timeout, enable_auto_pong=True),
            self.request_timeout + 1.0,
        )
        assert isinstance(listener, FastListener)
        self._transport = transport
        self._listener = listener
        self._books.reset()
        self._resyncing.clear()
        try:
            await self._setup()
        except BaseException:
            listener.close(1000, "session set-up failed")
            raise
        self._ready.set()
        self._backoff.reset()
        if self._watchdog_timeout:
            self._spawn(self._watchdog(epoch))
        if self._probe_interval:
            self._spawn(self._probe(epoch))

    async def _setup(self) -> None:
        """hello, auth, set_heartbeat, cancel-on-disconnect, resubscribe: on every connect."""
        await self._setup_call("public/hello", self._hello)
        if self._creds is not None:
            await self._authenticate()
        if self.heartbeat is not None:
            await self._setup_call("public/set_heartbeat", {"interval": self.heartbeat})
        if self.cancel_on_disconnect is not None:
            # Connection scope covers only this socket: re-armed on every connect.
            await self._setup_call("private/enable_cancel_on_disconnect", {"scope": self.cancel_on_disconnect})
        channels = list(self._by_channel)
        if channels:
            method = "private/subscribe" if self._creds else "public/subscribe"
            for chunk in split_channels(method, channels):
                accepted = await self._setup_call(method, {"channels": chunk})
                refused = sorted(set(chunk) - set(accepted or []))
                if refused:
                    log.warning("drbfast: on resubscribe Deribit refused %s", refused)
                    self._emit("subscription_refused", channels=refused)

    async def _authenticate(self) -> None:
        assert self._creds is not None
        result = await self._setup_call("public/auth", auth_params(self._creds, self._grant, self._scope))
        self._token_from(result)

    def _token_from(self, result: Any) -> None:
        if not isinstance(result, dict):
            return
        self._refresh_token = result.get("refresh_token")
        expires = result.get("expires_in")
        if isinstance(expires, (int, float)) and expires > 0:
            self._token_expires_at = time.monotonic() + expires
            # Refresh at 80 % of the lifetime (the Coinbase SDK's rule; Deribit gives none).
            self._spawn(self._refresh_later(self._epoch, expires * 0.8))

    async def _refresh_later(self, epoch: int, delay: float) -> None:
        await asyncio.sleep(delay)
        if epoch != self._epoch or self._closing or not self.connected:
            return
        try:
            if self._refresh_token:
                result = await self._setup_call("public/auth", refresh_params(self._refresh_token))
            else:
                raise AuthenticationError(13009, "unauthorized", "no refresh token")
        except DeribitError:
            log.warning("drbfast: token refresh failed; authenticating again")
            try:
                await self._authenticate()
                self._stats.token_refreshes += 1
            except (DeribitError, ConnectionLost, RequestTimeout) as exc:
                log.error("drbfast: re-authentication failed: %s", exc)
            return
        except (ConnectionLost, RequestTimeout):
            return
        self._stats.token_refreshes += 1
        self._token_from(result)

    async def _run_connect(self) -> None:
        self._closing = False
        await self._open()
        self._emit("connected", url=self.url)

    def _on_disconnected(self, listener: FastListener) -> None:
        if listener is not self._listener:
            return
        self._ready.clear()
        self._epoch += 1
        code, reason = listener.close_code, listener.close_reason
        lost = ConnectionLost(f"connection lost (close code {code}, {reason!r})" if code else "connection lost", close_code=code, close_reason=reason)
        pending, self._pending = self._pending, {}
        for fut, _ in pending.values():
            if not fut.done():
                fut.set_exception(lost)
        self._stats.absorb_final(listener.stats)
        self._listener = None
        self._emit("disconnected", close_code=code, close_reason=reason, failed_requests=len(pending))
        if self._closing:
            self._end_subscriptions()
        elif self.reconnect and self._fatal is None:
            self._spawn(self._reconnect_loop())
        else:
            self._end_subscriptions()

    def _end_subscriptions(self) -> None:
        for sub in self._subs:
            sub._close()

    async def _reconnect_loop(self) -> None:
        while not self._closing:
            delay = self._backoff.next()
            self._emit("reconnecting", delay=delay, attempt=self._backoff.attempts)
            await asyncio.sleep(delay)
            if self._closing:
                return
            try:
                await self._open()
            except AuthenticationError as exc:
                # Bad credentials do not get better by retrying.
                self._fatal = exc
                self._emit("fatal", error=str(exc))
                log.error("drbfast: reconnect gave up: %s", exc)
                self._end_subscriptions()
                return
            except (OSError, asyncio.TimeoutError, ConnectionLost, RequestTimeout, DeribitError, picows.WSError) as exc:
                log.warning("drbfast: reconnect attempt failed: %s", exc)
                continue
            self._stats.reconnects += 1
            self._emit("reconnected", url=self.url)
            return

    async def _watchdog(self, epoch: int) -> None:
        """Drop a connection that received nothing (heartbeats included) for longer than
        the heartbeat interval allows, before Deribit drops it."""
        timeout = self._watchdog_timeout
        assert timeout is not None
        while epoch == self._epoch and not self._closing:
            await asyncio.sleep(min(timeout / 4, 1.0))
            listener = self._listener
            if listener is None or epoch != self._epoch:
                return
            last = listener.stats.last_rx_ns
            if last and (monotonic_ns() - last) / 1e9 > timeout:
                self._stats.watchdog_drops += 1
                self._emit("watchdog", silent_for=(monotonic_ns() - last) / 1e9)
                log.warning("drbfast: nothing received for %.1f s; dropping the connection", (monotonic_ns() - last) / 1e9)
                listener.close(1001, "drbfast watchdog: connection stale")
                return

    async def _probe(self, epoch: int) -> None:
        assert self._probe_interval is not None
        while epoch == self._epoch and not self._closing:
            await asyncio.sleep(self._probe_interval)
            if epoch == self._epoch and self._listener is not None and self._listener.is_connected:
                self._listener.send_probe()

    async def close(self) -> None:
        """Close the session: no reconnect; pending requests fail with ConnectionLost."""
        self._closing = True
        self._ready.clear()
        listener = self._listener
        if listener is not None and listener.is_connected:
            listener.close(1000, "")
            if self._transport is not None:
                try:
                    await asyncio.wait_for(self._transport.wait_disconnected(), 5.0)
                except asyncio.TimeoutError:
                    self._transport.disconnect(graceful=False)
        for task in list(self._tasks):
            task.cancel()
        self._end_subscriptions()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the session is (re)connected; raises the fatal error if reconnects gave up."""
        if self._fatal is not None:
            raise self._fatal
        await asyncio.wait_for(self._ready.wait(), timeout)

    # ------------------------------------------------------------ receiving

    def _on_message(self, payload: bytes, binary: bool) -> None:
        self._stats.messages += 1
        try:
            doc = self._parser.parse(payload)
        except RuntimeError:
            # A lazy-mode user kept a document alive: this parser is pinned to it.
            self._parser = simdjson.Parser()
            doc = self._parser.parse(payload)
        except ValueError:
            self._stats.parse_errors += 1
            log.warning("drbfast: unparseable %s message (%d bytes) ignored: %r", "binary" if binary else "text", len(payload), payload[:200])
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
                data = params.get("data")
                if not self._lazy:
                    data = _materialize(data)
                self._on_notification(str(channel), data)
            elif "id" in doc or "error" in doc or "result" in doc:
                self._on_reply(Reply.from_message(doc.as_dict()))
            else:
                self._stats.unhandled += 1
                log.info("drbfast: message with no handler: %r", payload[:200])
        finally:
            del doc

    def _on_reply(self, reply: Reply) -> None:
        self._stats.responses += 1
        if reply.us_in is not None and reply.us_out is not None:
            self._stats.server_us_diff = reply.us_out - reply.us_in
            self._stats.clock_offset_us = reply.us_out - time.time_ns() // 1000
        entry = self._pending.pop(reply.id, None) if isinstance(reply.id, int) else None
        if entry is None:
            self._stats.orphan_replies += 1
            if reply.error is not None:
                log.warning("drbfast: Deribit error not tied to a request (id %r): %r", reply.id, reply.error)
            else:
                log.warning("drbfast: response with unknown id %r ignored", reply.id)
            return
        fut, _ = entry
        if not fut.done():
            fut.set_result(reply)

    def _on_notification(self, channel: str, data: Any) -> None:
        self._stats.notifications += 1
        subs = self._by_channel.get(channel)
        if not subs:
            return
        if channel.startswith("book.") and not self._lazy:
            if not self._books.check(channel, data):
                if channel not in self._resyncing:
                    self._resyncing.add(channel)
                    self._stats.book_gaps += 1
                    self._emit("book_gap", channel=channel)
                    log.warning("drbfast: %s skipped a change_id; resubscribing for a fresh snapshot", channel)
                    self._spawn(self._resync(channel))
                return
            if data.get("type") == "snapshot":
                self._resyncing.discard(channel)
        for sub in subs:
            sub._deliver(channel, data)

    async def _resync(self, channel: str) -> None:
        """A fresh snapshot needs unsubscribe then subscribe (PROTOCOL.md 4.3)."""
        prefix = "private" if self._creds else "public"
        try:
            await self._setup_call(f"{prefix}/unsubscribe", {"channels": [channel]})
            if channel in self._by_channel:
                await self._setup_call(f"{prefix}/subscribe", {"channels": [channel]})
        except (DeribitError, ConnectionLost, RequestTimeout) as exc:
            log.warning("drbfast: resync of %s failed: %s", channel, exc)

    # ------------------------------------------------------------ calling

    async def _setup_call(self, method: str, params: dict[str, Any]) -> Any:
        """A set-up request: charged to the credit budget, but sent before readiness."""
        bucket = self._sub_credits if method.endswith("/subscribe") else self._credits
        if bucket is not None:
            await bucket.acquire()
        return await self._raw_call(method, params)

    async def _raw_call(self, method: str, params: dict[str, Any]) -> Any:
        """Send now (no readiness wait, no credit wait) and return the result."""
        listener = self._listener
        if listener is None or not listener.is_connected:
            raise ConnectionLost("not connected")
        req_id = self._ids()
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = (fut, method)
        try:
            listener.send(encode_request(req_id, method, params))
            reply = await asyncio.wait_for(fut, self.request_timeout)
        except asyncio.TimeoutError:
            self._pending.pop(req_id, None)
            self._stats.timeouts += 1
            raise RequestTimeout(method, self.request_timeout) from None
        finally:
            self._pending.pop(req_id, None)
        if reply.error is not None:
            raise error_from_reply(reply.error, method)
        return reply.result

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call a Deribit method and return its ``result``.

        Raises :class:`DeribitError` (a subclass by code) on an error reply,
        :class:`RequestTimeout` after ``request_timeout``, :class:`ConnectionLost` if
        the connection drops first. While reconnecting, waits up to ``request_timeout``
        for the session to come back; requests are spaced by the credit budget.
        """
        if self._closing:
            raise NotConnected("the client is closed")
        if self._fatal is not None:
            raise NotConnected(f"reconnecting gave up: {self._fatal}")
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self.request_timeout)
            except asyncio.TimeoutError:
                raise NotConnected(f"not connected after {self.request_timeout:g} s") from None
        if self._credits is not None:
            bucket = self._sub_credits if method.endswith("/subscribe") else self._credits
            assert bucket is not None
            await bucket.acquire()
        return await self._raw_call(method, params)

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
        sub = Subscription(self, wanted, callback, maxsize or self._max_queue, overflow)
        new = [c for c in wanted if c not in self._by_channel]
        # Register before the call: the snapshot may arrive right behind the ack.
        self._subs.append(sub)
        for channel in wanted:
            self._by_channel.setdefault(channel, []).append(sub)
        method = "private/subscribe" if self._creds else "public/subscribe"
        accepted: set[str] = set(c for c in wanted if c not in new)
        try:
            for chunk in split_channels(method, new):
                result = await self.call(method, channels=chunk)
                accepted.update(result or [])
        except BaseException:
            self._drop_sub(sub)
            raise
        refused = [c for c in wanted if c not in accepted]
        if refused:
            for channel in refused:
                self._detach(sub, channel)
            sub.refused = refused
            sub.channels = [c for c in wanted if c in accepted]
            self._emit("subscription_refused", channels=refused)
            if strict:
                exc = SubscriptionRefused(refused)
                exc.subscription = sub  # type: ignore[attr-defined]
                raise exc
            log.warning("drbfast: Deribit refused %s", refused)
        return sub

    def _detach(self, sub: Subscription, channel: str) -> None:
        subs = self._by_channel.get(channel)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._by_channel[channel]
                self._books.forget(channel)

    def _drop_sub(self, sub: Subscription) -> list[str]:
        if sub in self._subs:
            self._subs.remove(sub)
        gone = []
        for channel in list(sub.channels):
            self._detach(sub, channel)
            if channel not in self._by_channel:
                gone.append(channel)
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
        return list(self._by_channel)


def _materialize(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


class Connect:
    """What :func:`connect` returns: ``await`` it for a connected :class:`Client`, or
    use ``async with`` (the client is closed on exit)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __await__(self) -> Generator[Any, None, Client]:
        return self._start().__await__()

    async def _start(self) -> Client:
        await self._client._run_connect()
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
    auth: Literal["signature", "credentials"] = "signature",
    heartbeat: float | None = 10,
    cancel_on_disconnect: Literal["connection", "account"] | None = None,
    reconnect: bool = True,
    request_timeout: float = 10.0,
    ssl: ssl_module.SSLContext | None = None,
    scope: str | None = None,
    client_name: str = "drbfast",
    client_version: str = "0.1.0",
    credits: Credits | None = Credits(),
    backoff: Backoff | None = None,
    on_event: Callable[[Event], object] | None = None,
    lazy: bool = False,
    watchdog: float | None = None,
    probe_interval: float | None = None,
    max_queue: int = 10_000,
    listener_options: dict[str, Any] | None = None,
) -> Connect:
    """Open a Deribit session.

    ``url``: ``drbfast.TESTNET`` (default), ``drbfast.MAINNET`` or any ws(s) URL (TLS
    is verified; pass ``ssl=`` to trust another CA). With ``client_id`` and
    ``client_secret`` the session authenticates (``auth="signature"``: the secret never
    leaves the process; ``"credentials"`` sends it). ``heartbeat``: seconds for
    ``public/set_heartbeat`` (None: off). ``cancel_on_disconnect``: "connection" or
    "account", re-armed on every connect. ``reconnect``: reconnect with backoff, redo
    the whole set-up and resubscribe. ``credits``: the client-side credit budget
    (None: off). ``lazy``: hand notification ``data`` as simdjson proxies valid only
    inside the callback (faster when reading a few fields of a large message).
    ``watchdog``: drop a connection silent this long (default 2x heartbeat).
    ``probe_interval``: also send the engine's own ``public/test`` this often and time it.
    ``on_event``: called with every :class:`Event`.
    """
    client = Client(url, client_id=client_id, client_secret=client_secret, auth=auth, heartbeat=heartbeat,
                    cancel_on_disconnect=cancel_on_disconnect, reconnect=reconnect, request_timeout=request_timeout,
                    ssl=ssl, scope=scope, client_name=client_name, client_version=client_version, credits=credits,
                    backoff=backoff, on_event=on_event, lazy=lazy, watchdog=watchdog, probe_interval=probe_interval,
                    max_queue=max_queue, listener_options=listener_options)
    return Connect(client)
