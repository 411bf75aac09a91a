"""Two sessions as one client: market data on one connection, orders and private
channels on another.

Coinbase's Deribit gateway requires it: its trading host serves ``private/*`` methods
and ``user.*`` channels (``private/subscribe`` only), its streams host market data
(``public/subscribe`` only); the wrong host answers ``-32601 method not in allowlist``.
On deribit.com it is what latency-sensitive users want anyway: acknowledgements never
queue behind a burst of book updates on the same socket.

Each side is a full :class:`~drbfast.Client` with its own supervisor: a drop of one
connection restores that one alone (re-authenticated, set_heartbeat and
cancel-on-disconnect re-armed on the trading side, its channels resubscribed).
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from ._book import OrderBook
from .client import Callback, Client, Event, Overflow, Subscription, next_queued
from .errors import ConfigurationError, SubscriptionRefused
from .orders import Order, OrderResult
from .queue import BoundedQueue
from .ratelimit import CreditPools
from .session import SessionOptions
from .stats import ClientStats
from .urls import COINBASE, COINBASE_STREAMS

__all__ = ["SplitClient", "SplitSubscription", "connect_coinbase", "connect_split"]

log = logging.getLogger("drbfast.gateway")

#: Channel families served only on an authenticated, private connection.
PRIVATE_PREFIX = "user."


def is_private_channel(channel: str) -> bool:
    return channel.startswith(PRIVATE_PREFIX)


class SplitSubscription:
    """A subscription whose channels live on both connections: ``channels``,
    ``refused``, ``unsubscribe()``, and ``async for channel, data in sub`` over both.

    Iterated, both sides feed one :class:`~drbfast.queue.BoundedQueue` of at most
    ``maxsize`` notifications with the same ``overflow`` policy and the same rule for
    books as :class:`~drbfast.Subscription`: a dropped book change takes the channel's
    queued changes with it and the market session fetches a fresh snapshot."""

    def __init__(self, parts: list[Subscription], queue: BoundedQueue[tuple[str, Any]] | None,
                 client: SplitClient | None = None) -> None:
        self.parts = parts
        self._queue = queue
        self._client = client
        self._queued = 0
        self.last_rx_ns = 0

    @property
    def channels(self) -> list[str]:
        return [c for p in self.parts for c in p.channels]

    @property
    def refused(self) -> list[str]:
        return [c for p in self.parts for c in p.refused]

    @property
    def delivered(self) -> int:
        """Notifications handed to the callback, or queued for the iterator."""
        if self._queue is not None:
            return self._queued
        return sum(p.delivered for p in self.parts)

    @property
    def dropped(self) -> int:
        """Notifications the iterator's queue dropped at its bound (0 with a callback)."""
        return self._queue.dropped if self._queue is not None else 0

    @property
    def queued(self) -> int:
        """Notifications waiting for the iterator."""
        return len(self._queue) if self._queue is not None else 0

    def _push(self, channel: str, data: Any, rx_ns: int) -> None:
        queue = self._queue
        assert queue is not None
        if channel.startswith("book.") and queue.full():
            queue.refuse((channel, data))  # never a book change alone: see _dropped
            return
        if queue.put((channel, data), rx_ns):
            self._queued += 1

    def _dropped(self, item: tuple[str, Any], size: int) -> None:
        channel = item[0]
        queue = self._queue
        assert queue is not None and self._client is not None
        client = self._client.trading if is_private_channel(channel) else self._client.market
        client._stats.overflows += 1
        if queue.dropped == 1 or queue.dropped % 1000 == 0:
            log.warning("drbfast: split subscription queue full (%s) at %s: %s, %d dropped so far",
                        queue.maxsize, channel, queue.overflow, queue.dropped)
        if channel.startswith("book."):
            client._stats.overflows += queue.drop_where(lambda other: other[0] == channel)
            client._book_dropped(channel)

    def _close(self) -> None:
        if self._queue is not None:
            self._queue.close()

    def __aiter__(self) -> AsyncIterator[tuple[str, Any]]:
        return self

    async def __anext__(self) -> tuple[str, Any]:
        if self._queue is None:
            raise ConfigurationError("this subscription delivers to a callback; subscribe without callback= to iterate")
        return await next_queued(self, lambda: all(p.closed for p in self.parts))

    async def get(self, timeout: float | None = None) -> tuple[str, Any]:
        """The next ``(channel, data)``; raises ``TimeoutError`` after ``timeout``."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def unsubscribe(self) -> None:
        for p in self.parts:
            await p.unsubscribe()
        self._close()


class SplitClient:
    """``trading`` (authenticated: orders, ``private/*``, ``user.*`` channels) and
    ``market`` (market data) sessions behind one API. Create it with
    :func:`connect_coinbase` or :func:`connect_split`."""

    def __init__(self, trading: Client, market: Client) -> None:
        self.trading = trading
        self.market = market
        self._iterators: weakref.WeakSet[SplitSubscription] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"SplitClient(trading={self.trading!r}, market={self.market!r})"

    async def __aenter__(self) -> SplitClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self.trading.connected and self.market.connected

    @property
    def stats(self) -> dict[str, ClientStats]:
        return {"trading": self.trading.stats, "market": self.market.stats}

    def route(self, method: str) -> Client:
        """The session a method goes to: public (un)subscribe to the market side,
        everything else (private methods, orders, queries) to the trading side."""
        if method in ("public/subscribe", "public/unsubscribe", "public/unsubscribe_all"):
            return self.market
        return self.trading

    async def call(self, method: str, /, **params: Any) -> Any:
        """:meth:`Client.call` on the session that serves ``method``."""
        return await self.route(method).call(method, **params)

    async def subscribe(self, *channels: str, callback: Callback | None = None, maxsize: int | None = None,
                        overflow: Overflow = "drop_oldest", strict: bool = True) -> SplitSubscription:
        """Subscribe ``user.*`` channels on the trading session and the rest on the
        market session; one callback or one iterator for all of them. Channels a host
        refused or trimmed (Coinbase keeps 32 per call) are in ``refused``; with
        ``strict`` that raises :class:`SubscriptionRefused` (``exc.subscription``)."""
        if not channels:
            raise ConfigurationError("subscribe needs at least one channel")
        private = [c for c in channels if is_private_channel(c)]
        public = [c for c in channels if not is_private_channel(c)]
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ConfigurationError("overflow must be 'drop_oldest' or 'drop_newest'")
        split = SplitSubscription([], None, self)
        if callback is None:
            split._queue = BoundedQueue(maxsize or self.market.options.max_queue, overflow=overflow,
                                        on_drop=split._dropped)
            self._iterators.add(split)
        for client, group in ((self.trading, private), (self.market, public)):
            if group:
                deliver = callback if callback is not None else _pusher(split, client)
                sub = await client.subscribe(*group, callback=deliver, maxsize=maxsize, overflow=overflow, strict=False)
                split.parts.append(sub)
        if split.refused and strict:
            exc = SubscriptionRefused(split.refused)
            exc.subscription = split  # type: ignore[attr-defined]
            raise exc
        return split

    async def order_book(self, instrument: str, interval: str = "100ms", depth: int | None = None,
                         on_update: Callable[[OrderBook], object] | None = None, *, group: str | None = None) -> OrderBook:
        """:meth:`Client.order_book` on the market-data session."""
        return await self.market.order_book(instrument, interval, depth, on_update, group=group)

    # Orders go to the trading session.
    async def buy(self, instrument_name: str, amount: float, **kwargs: Any) -> OrderResult:
        return await self.trading.buy(instrument_name, amount, **kwargs)

    async def sell(self, instrument_name: str, amount: float, **kwargs: Any) -> OrderResult:
        return await self.trading.sell(instrument_name, amount, **kwargs)

    async def cancel(self, order_id: str) -> Order:
        return await self.trading.cancel(order_id)

    async def cancel_all(self, **params: Any) -> int:
        return await self.trading.cancel_all(**params)

    async def close(self) -> None:
        """Close both sessions, each with its closing handshake, at the same time (see
        :meth:`Client.close`); iterators end once they have handed out what is queued.
        Where the event loop is gone, both sockets are closed at once. Never raises."""
        try:
            if self.trading._closed_now and self.market._closed_now:
                return  # (first: at interpreter exit this may run with module globals gone)
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                # Finalized after the loop stopped: gather would look for (or make) a loop.
                await self.trading.close()
                await self.market.close()
                return
            await asyncio.gather(self.trading.close(), self.market.close())
        finally:
            for split in list(self._iterators):
                split._close()


def _pusher(split: SplitSubscription, client: Client) -> Callback:
    return lambda channel, data: split._push(channel, data, client.rx_ns)


def _options(base: dict[str, Any], **override: Any) -> SessionOptions:
    return SessionOptions(**{**base, **override})


async def connect_split(trading_url: str, market_url: str | None = None, *, client_id: str, client_secret: str,
                        auth: Literal["signature", "credentials", "coinbase_cdp"] = "signature",
                        market_auth: bool = True, heartbeat: float | None = 10,
                        cancel_on_disconnect: Literal["connection", "account"] | None = "connection",
                        ssl: ssl_module.SSLContext | None = None, on_event: Callable[[Event], object] | None = None,
                        credits: CreditPools | None = None, **options: Any) -> SplitClient:
    """Open a trading and a market-data session (both to ``trading_url`` unless
    ``market_url`` is given). ``market_auth``: authenticate the market side too (needed
    for ``raw`` channels on deribit.com; Coinbase's streams host takes none).
    If either fails to open, neither is left running."""
    base: dict[str, Any] = {"heartbeat": heartbeat, "ssl": ssl, "on_event": on_event, **options}
    trading = Client(trading_url, _options(base, client_id=client_id, client_secret=client_secret, auth=auth,
                                          cancel_on_disconnect=cancel_on_disconnect,
                                          credits=credits if credits is not None else CreditPools()))
    creds = {"client_id": client_id, "client_secret": client_secret, "auth": auth} if market_auth else {}
    market = Client(market_url or trading_url, _options(base, **creds))
    results = await asyncio.gather(trading._start(), market._start(), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await asyncio.gather(trading.close(), market.close())
        raise errors[0]
    return SplitClient(trading, market)


async def connect_coinbase(key_name: str, private_key: str, *, trading_url: str = COINBASE,
                           streams_url: str = COINBASE_STREAMS, **kwargs: Any) -> SplitClient:
    """Coinbase's Deribit gateway: the trading host authenticated with a CDP API key
    (``key_name``, ``private_key`` PEM or base64; ES256 or Ed25519, a fresh JWT at every
    authentication, re-authenticated at 80 % of the ~15-minute token), the streams host
    for market data. Takes :func:`connect_split`'s options."""
    return await connect_split(trading_url, streams_url, client_id=key_name, client_secret=private_key,
                               auth="coinbase_cdp", market_auth=False, **kwargs)
