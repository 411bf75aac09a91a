"""``connect`` and ``ClientConnection``: the ``websockets`` asyncio client API over
:class:`~drbfast.FastListener`. See the package docstring for what differs."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl as ssl_module
import uuid
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from typing import Any, Literal, overload

import picows
from picows import WSAutoPingStrategy, WSCloseCode, WSMsgType
from picows.websockets.compat import Request, Response

from .._listener import FastListener, HeartbeatStats
from ..backoff import Backoff
from ..errors import DeribitError, error_from_reply
from ..frames import ENGINE_ID_PREFIX
from .exceptions import (
    Close,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)

try:  # websockets' own State, so ``ws.state is State.OPEN`` works with either import
    from websockets.protocol import State
except ImportError:  # pragma: no cover - websockets is optional
    from picows.websockets.compat import State  # type: ignore[assignment]

__all__ = ["SET_HEARTBEAT_ID", "ClientConnection", "State", "backoff", "connect", "process_exception"]

Data = str | bytes
DataLike = str | bytes | bytearray | memoryview

#: The id of the ``public/set_heartbeat`` sent by ``connect(heartbeat=N)``. It does
#: *not* carry the engine prefix, so its reply is an ordinary message: this module
#: picks it out of the stream itself (only until it has arrived) and raises the
#: Deribit error from ``connect()`` if the request was refused.
SET_HEARTBEAT_ID = "drbfast-set_heartbeat"
assert not SET_HEARTBEAT_ID.startswith(ENGINE_ID_PREFIX)

_OK_CODES = (1000, 1001)
#: Default bound of the received-but-unread queue (messages); see ``connect``.
DEFAULT_MAX_QUEUE = 100_000
_NO_LIMIT = 2**62

log = logging.getLogger("drbfast.websockets")


def backoff(initial: float = 0.25, factor: float = 2.0, cap: float = 30.0) -> Generator[float, None, None]:
    """Reconnect delays for ``async for ws in connect(...)``: exponential with jitter,
    capped (:class:`drbfast.Backoff`). Restarted after every successful connection."""
    b = Backoff(initial=initial, factor=factor, cap=cap)
    while True:
        yield b.next()


def process_exception(exc: Exception) -> Exception | None:
    """Tell a retryable connection failure (return ``None``) from a fatal one (return
    the exception), as ``websockets.asyncio.client.process_exception``: network errors
    (``OSError``, ``TimeoutError``), a handshake cut short, a connection closed while
    ``connect`` was still setting up, and HTTP 500/502/503/504 are retried; anything
    else (bad URI, 4xx, a refused ``set_heartbeat``) ends the loop."""
    if isinstance(exc, (OSError, asyncio.TimeoutError, TimeoutError, ConnectionClosed)):
        return None
    if isinstance(exc, InvalidMessage):
        return None
    if isinstance(exc, InvalidStatus) and int(exc.response.status_code) in (500, 502, 503, 504):
        return None
    return exc


def _marks(value: int | None | tuple[int | None, int | None], name: str) -> tuple[int | None, int | None]:
    """websockets' ``(high, low)`` convention: an int is the high-water mark and the
    low-water mark is a quarter of it; ``None`` disables the limit."""
    if value is None:
        return None, None
    if isinstance(value, tuple):
        high, low = value
        if high is None:
            return None, None
        return high, (high // 4 if low is None else low)
    if value < 1:
        raise ValueError(f"{name} must be at least 1, or None")
    return value, value // 4


class ClientConnection:
    """One open connection, as returned by :func:`connect`.

    Received messages wait in a bounded queue until ``recv()`` or ``async for`` takes
    them. Heartbeat traffic never enters it (the compiled listener answers
    ``test_request`` and drops the rest). Attributes beyond ``websockets``:
    :attr:`listener` (the :class:`~drbfast.FastListener`), :attr:`heartbeat_stats`,
    :attr:`queue_size`, :attr:`queue_peak`, :attr:`queue_pauses`.
    """

    def __init__(self, *, max_queue: int | None | tuple[int | None, int | None], close_timeout: float | None,
                 write_limit: int, logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        loop = asyncio.get_running_loop()
        self.id = uuid.uuid4()
        self.logger = logger
        self._loop = loop
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._high, self._low = _marks(max_queue, "max_queue")
        self._close_timeout = close_timeout
        self._write_limit = write_limit
        self._waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] = loop.create_future()
        self._paused = False
        self._hb_reply: asyncio.Future[bytes] | None = None
        self._ping_lock = asyncio.Lock()
        self.latency: float = 0.0
        #: how many times the queue reached ``max_queue`` and reading was paused
        self.queue_pauses = 0
        #: the longest the queue has been
        self.queue_peak = 0
        self.listener: FastListener | None = None
        self.ws_transport: picows.WSTransport | None = None

    # ------------------------------------------------------------ listener hooks

    def _on_message(self, payload: bytes, binary: bool) -> None:
        """Called by the listener once per non-heartbeat message, in order."""
        if self._hb_reply is not None and not binary and SET_HEARTBEAT_ID.encode() in payload:
            if self._take_hb_reply(payload):
                return
        queue = self._queue
        queue.append((payload, binary))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        depth = len(queue)
        if depth > self.queue_peak:
            self.queue_peak = depth
        if self._high is not None and depth >= self._high:
            self._pause()

    def _take_hb_reply(self, payload: bytes) -> bool:
        """If ``payload`` is the reply to our ``public/set_heartbeat``, resolve it."""
        try:
            msg = json.loads(payload)
        except ValueError:
            return False
        if not isinstance(msg, dict) or msg.get("id") != SET_HEARTBEAT_ID or "method" in msg:
            return False
        assert self._hb_reply is not None
        if not self._hb_reply.done():
            self._hb_reply.set_result(payload)
        self._hb_reply = None
        return True

    def _pause(self) -> None:
        """The queue is full: stop reading the socket. Called again for every message
        that still arrives (the rest of a socket read, the listener's own backlog),
        so a resume by the listener cannot leave reading on behind our back."""
        transport = self.ws_transport
        if transport is None or transport.is_disconnected:
            return
        if not self._paused:
            self._paused = True
            self.queue_pauses += 1
            if self.queue_pauses == 1 or self.queue_pauses % 1000 == 0:
                self.logger.warning("drbfast.websockets: %d messages received and not read; pausing "
                                    "reads until %d remain (test_requests are not read meanwhile); "
                                    "%d pauses so far", len(self._queue), self._low, self.queue_pauses)
        transport.underlying_transport.pause_reading()

    def _maybe_resume(self) -> None:
        if len(self._queue) > (self._low or 0):
            return
        transport, listener = self.ws_transport, self.listener
        if transport is None or listener is None or transport.is_disconnected:
            self._paused = False
            return
        if listener.stats.backlog >= listener.backlog_limit // 2:
            return  # the listener paused itself too: it resumes when it has caught up
        self._paused = False
        transport.underlying_transport.resume_reading()

    def _on_disconnected(self, listener: FastListener) -> None:
        if not self._closed.done():
            self._closed.set_result(None)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._hb_reply is not None and not self._hb_reply.done():
            self._hb_reply.set_exception(self._close_exc())
            self._hb_reply.exception()  # retrieved: connect() may already have given up

    # ------------------------------------------------------------ properties

    @property
    def state(self) -> State:
        """``State.OPEN``, ``CLOSING`` (close frame sent) or ``CLOSED``."""
        if self._closed.done():
            return State.CLOSED
        if self.ws_transport is not None and self.ws_transport.is_close_frame_sent:
            return State.CLOSING
        return State.OPEN

    @property
    def close_code(self) -> int | None:
        """The close code received; 1006 if the connection ended without one;
        ``None`` while it is not closed."""
        if not self._closed.done():
            return None
        rcvd = self._handshake()[0]
        return 1006 if rcvd is None else rcvd.code

    @property
    def close_reason(self) -> str | None:
        """The close reason received; ``""`` if none; ``None`` while not closed."""
        if not self._closed.done():
            return None
        rcvd = self._handshake()[0]
        return "" if rcvd is None else rcvd.reason

    @property
    def local_address(self) -> Any:
        """The local ``(host, port)`` of the socket."""
        return self._underlying().get_extra_info("sockname")

    @property
    def remote_address(self) -> Any:
        """The remote ``(host, port)`` of the socket."""
        return self._underlying().get_extra_info("peername")

    @property
    def transport(self) -> asyncio.Transport:
        """The asyncio transport under the WebSocket (as ``websockets``)."""
        return self._underlying()

    @property
    def request(self) -> Request | None:
        """The opening handshake request."""
        return Request.from_picows(self.ws_transport.request) if self.ws_transport is not None else None

    @property
    def response(self) -> Response | None:
        """The opening handshake response."""
        return Response.from_picows(self.ws_transport.response) if self.ws_transport is not None else None

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server selected, if any."""
        response = self.ws_transport.response if self.ws_transport is not None else None
        return None if response is None else response.headers.get("Sec-WebSocket-Protocol")

    @property
    def heartbeat_stats(self) -> HeartbeatStats:
        """The compiled listener's counters: test_requests answered, heartbeats seen,
        last reply time... (drbfast extra)."""
        assert self.listener is not None
        return self.listener.stats

    @property
    def queue_size(self) -> int:
        """Messages received and not read yet (drbfast extra)."""
        return len(self._queue)

    def _underlying(self) -> asyncio.Transport:
        assert self.ws_transport is not None, "not connected yet"
        return self.ws_transport.underlying_transport

    def _handshake(self) -> tuple[Close | None, Close | None, bool | None]:
        handshake = self.ws_transport.close_handshake if self.ws_transport is not None else None
        if handshake is None:
            return None, None, None
        rcvd = Close(int(handshake.recv.code.value), handshake.recv.reason) if handshake.recv is not None else None
        sent = Close(int(handshake.sent.code.value), handshake.sent.reason) if handshake.sent is not None else None
        order = handshake.recv_then_sent if rcvd is not None and sent is not None else None
        return rcvd, sent, order

    def _close_exc(self) -> ConnectionClosed:
        """websockets' rule: OK only if close frames 1000/1001 went both ways."""
        rcvd, sent, order = self._handshake()
        ok = rcvd is not None and sent is not None and rcvd.code in _OK_CODES and sent.code in _OK_CODES
        return (ConnectionClosedOK if ok else ConnectionClosedError)(rcvd, sent, order)

    # ------------------------------------------------------------ receiving

    @overload
    async def recv(self, decode: Literal[True]) -> str: ...
    @overload
    async def recv(self, decode: Literal[False]) -> bytes: ...
    @overload
    async def recv(self, decode: bool | None = None) -> Data: ...

    async def recv(self, decode: bool | None = None) -> Data:
        """The next message: ``str`` for TEXT (``bytes`` if ``decode=False``),
        ``bytes`` for BINARY (``str`` if ``decode=True``).

        Messages received before the connection closed are still returned; after
        them it raises :class:`ConnectionClosedOK` (close 1000/1001 both ways) or
        :class:`ConnectionClosedError`. Cancelling a waiting ``recv()`` loses
        nothing. Two concurrent ``recv()`` raise :class:`ConcurrencyError`.
        """
        queue = self._queue
        if not queue:
            if self._waiter is not None and not self._waiter.done():
                raise ConcurrencyError("cannot call recv while another coroutine is already running recv")
            while not queue:
                if self._closed.done() and (self.listener is None or self.listener.stats.backlog == 0):
                    raise self._close_exc()
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        payload, binary = queue.popleft()
        if self._paused:
            self._maybe_resume()
        if binary:
            return payload.decode() if decode else payload
        return payload if decode is False else payload.decode()

    async def __aiter__(self) -> AsyncIterator[Data]:
        """Every message until the connection closes: ends after a normal close
        (:class:`ConnectionClosedOK`), raises :class:`ConnectionClosedError` otherwise."""
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    # ------------------------------------------------------------ sending

    async def send(self, message: DataLike | Iterable[DataLike] | AsyncIterable[DataLike],
                   text: bool | None = None) -> None:
        """Send a message, untouched: ``str`` as TEXT, bytes-like as BINARY (``text=``
        overrides either way), an iterable or async iterable of those as one
        fragmented message. Raises :class:`ConnectionClosed` once closed. Waits
        only when the socket's write buffer is above ``write_limit``."""
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            transport = await self._writable()
            binary = not isinstance(message, str) if text is None else not text
            transport.send(WSMsgType.BINARY if binary else WSMsgType.TEXT,
                           message.encode() if isinstance(message, str) else message)
        elif isinstance(message, Mapping):
            raise TypeError("data is a dict-like object")
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(message.__aiter__(), text)
        elif isinstance(message, Iterable):
            await self._send_fragments(_aiter_sync(message), text)
        else:
            raise TypeError("data must be str, bytes-like, or an iterable of them")

    async def _send_fragments(self, parts: AsyncIterator[DataLike], text: bool | None) -> None:
        try:
            pending: DataLike = await parts.__anext__()
        except StopAsyncIteration:
            return
        is_text = isinstance(pending, str)
        opcode = WSMsgType.TEXT if (is_text if text is None else text) else WSMsgType.BINARY
        while True:
            try:
                nxt: DataLike | None = await parts.__anext__()
            except StopAsyncIteration:
                nxt = None
            if nxt is not None and isinstance(nxt, str) != is_text:
                raise TypeError("all fragments of a message must be of the same type")
            transport = await self._writable()
            transport.send(opcode, pending.encode() if isinstance(pending, str) else pending, nxt is None)
            if nxt is None:
                return
            pending, opcode = nxt, WSMsgType.CONTINUATION

    async def _writable(self) -> picows.WSTransport:
        """The transport, once it may be written to; else the close exception."""
        transport = self.ws_transport
        if transport is None or self._closed.done():
            raise self._close_exc()
        if transport.is_close_frame_sent:
            # CLOSING: as websockets, wait for the end, then say how it ended.
            await self.wait_closed()
            raise self._close_exc()
        underlying = transport.underlying_transport
        if underlying.get_write_buffer_size() > self._write_limit:
            # Flow control (rare): let the socket drain below write_limit.
            for _ in range(100_000):
                await asyncio.sleep(0.001)
                if self._closed.done():
                    raise self._close_exc()
                if underlying.get_write_buffer_size() <= self._write_limit // 4:
                    break
        return transport

    # ------------------------------------------------------------ closing, ping

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame, wait up to ``close_timeout`` for the server's, then
        drop the TCP connection. Idempotent."""
        transport = self.ws_transport
        if transport is None or self._closed.done():
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode(code), reason.encode())
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), self._close_timeout)
        except asyncio.TimeoutError:
            transport.disconnect(graceful=False)
            await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._closed)

    async def ping(self, data: DataLike | None = None) -> Awaitable[float]:
        """Send a WebSocket PING; return a future giving the round trip in seconds
        when the PONG arrives (``latency`` is updated). ``data`` is not supported
        (picows sends an empty ping); pings run one after another."""
        if data is not None:
            raise NotImplementedError("ping(data) is not supported by drbfast.websockets; call ping()")
        transport = await self._writable()
        pong: asyncio.Future[float] = self._loop.create_future()

        async def measure() -> None:
            async with self._ping_lock:
                try:
                    rtt = (await transport.measure_roundtrip_time(1))[0]
                except (ConnectionResetError, asyncio.CancelledError):
                    if not pong.done():
                        pong.set_exception(self._close_exc() if self._closed.done() else ConnectionClosedError(None, None))
                    return
                self.latency = rtt
                if not pong.done():
                    pong.set_result(rtt)

        task = self._loop.create_task(measure())
        self._closed.add_done_callback(lambda _f: task.cancel() if not task.done() else None)
        await asyncio.sleep(0)  # let the ping go out before returning, as websockets
        return pong

    async def __aenter__(self) -> ClientConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _aiter_sync(items: Iterable[DataLike]) -> AsyncIterator[DataLike]:
    for item in items:
        yield item


class connect:  # noqa: N801 - the name websockets uses
    """Open a connection like ``websockets.asyncio.client.connect``.

    Use it as ``async with connect(uri) as ws``, ``ws = await connect(uri)``, or
    ``async for ws in connect(uri)`` (reconnects with backoff after a retryable
    failure, as websockets; ``process_exception`` decides, ``reconnect_delays``
    gives the delays).

    drbfast options: ``heartbeat=N`` sends ``public/set_heartbeat`` with interval
    ``N`` right after the handshake and waits for its reply (within
    ``open_timeout``): a refused request raises its :class:`~drbfast.DeribitError`
    from ``connect``. ``max_queue`` (default 100,000 messages, or ``(high, low)``):
    when that many received messages are unread the socket is no longer read until
    ``low`` (default ``high // 4``) remain; ``None`` for no bound.

    websockets options: ``open_timeout``, ``close_timeout``, ``ping_interval`` /
    ``ping_timeout`` (WebSocket keepalive pings, picows' auto-ping, every 20 s by
    default as websockets; ``ping_interval=None`` turns them off), ``max_size`` (message and frame limit; ``None``: none),
    ``write_limit``, ``additional_headers``, ``user_agent_header``, ``origin``,
    ``subprotocols``, ``proxy`` (a URL, or ``None``), ``logger``. ``compression`` and
    ``extensions`` are accepted only as ``None``/``"deflate"``/``None`` and no
    compression is negotiated. ``ssl``: an ``SSLContext``; ``wss://`` verifies
    certificates by default (``ssl.create_default_context()``). Other keyword
    arguments go to ``loop.create_connection`` (``server_hostname``, ``sock``...).
    """

    def __init__(
        self,
        uri: str,
        *,
        heartbeat: float | None = None,
        ssl: ssl_module.SSLContext | None = None,
        origin: str | None = None,
        extensions: Any = None,
        subprotocols: Iterable[str] | None = None,
        compression: str | None = "deflate",
        additional_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        user_agent_header: str | None = "drbfast",
        proxy: str | Literal[True] | None = None,
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        reconnect_delays: Callable[[], Generator[float, None, None]] = backoff,
        max_size: int | None | tuple[int | None, int | None] = 2**20,
        max_queue: int | None | tuple[int | None, int | None] = DEFAULT_MAX_QUEUE,
        write_limit: int | tuple[int, int | None] = 2**15,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        create_connection: Any = None,
        **kwargs: Any,
    ) -> None:
        if not uri.startswith(("ws://", "wss://")):
            raise InvalidURI(uri, "scheme isn't ws or wss")
        if ssl is not None and uri.startswith("ws://"):
            raise ValueError("ssl argument is incompatible with a ws:// URI")
        if extensions is not None:
            raise NotImplementedError("custom extensions aren't supported by drbfast.websockets")
        if compression not in (None, "deflate"):
            raise ValueError(f"unsupported compression: {compression!r}")
        if create_connection is not None:
            raise NotImplementedError("create_connection isn't supported by drbfast.websockets")
        if heartbeat is not None and heartbeat <= 0:
            raise ValueError("heartbeat must be a positive number of seconds (Deribit's minimum is 10)")
        _marks(max_queue, "max_queue")  # validate now, not at connection time
        self.uri = uri
        self.heartbeat = heartbeat
        self.ssl = ssl_module.create_default_context() if ssl is None and uri.startswith("wss://") else ssl
        headers: list[tuple[str, str]] = []
        if additional_headers is not None:
            items = additional_headers.items() if isinstance(additional_headers, Mapping) else additional_headers
            headers.extend((str(k), str(v)) for k, v in items)
        names = {k.lower() for k, _ in headers}
        if user_agent_header is not None and "user-agent" not in names:
            headers.append(("User-Agent", user_agent_header))
        if origin is not None:
            headers.append(("Origin", origin))
        if subprotocols:
            headers.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
        self.headers = headers
        self.proxy = proxy if isinstance(proxy, str) else None
        self.process_exception = process_exception
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.reconnect_delays = reconnect_delays
        size = max_size[0] if isinstance(max_size, tuple) else max_size
        self.max_size = _NO_LIMIT if size is None else size
        self.max_queue = max_queue
        self.write_limit = write_limit[0] if isinstance(write_limit, tuple) else write_limit
        self.logger = logger if logger is not None else log
        self.kwargs = kwargs
        self.connection: ClientConnection | None = None

    # ---------------------------------------------------------------- awaiting

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        self.connection = await self._open()
        return self.connection

    async def __aexit__(self, *exc: object) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        delays: Generator[float, None, None] | None = None
        while True:
            try:
                async with self as connection:
                    yield connection
            except Exception as exc:
                try:
                    fatal = self.process_exception(exc)
                except Exception as raised:
                    fatal = raised
                if fatal is exc:
                    raise
                if fatal is not None:
                    raise fatal from exc
                if delays is None:
                    delays = self.reconnect_delays()
                delay = next(delays)
                self.logger.info("drbfast.websockets: connect failed; reconnecting in %.2f s: %r", delay, exc)
                await asyncio.sleep(delay)
            else:
                delays = None  # a connection worked: start the backoff over

    # ---------------------------------------------------------------- opening

    async def _open(self) -> ClientConnection:
        if self.open_timeout is None:
            return await self._open_now()
        return await asyncio.wait_for(self._open_now(), self.open_timeout)

    async def _open_now(self) -> ClientConnection:
        conn = ClientConnection(max_queue=self.max_queue, close_timeout=self.close_timeout,
                                write_limit=self.write_limit, logger=self.logger)
        max_size = self.max_size

        def factory() -> FastListener:
            return FastListener(conn._on_message, None, conn._on_disconnected,
                                logger=self.logger, max_message_size=max_size)

        options: dict[str, Any] = dict(self.kwargs)
        if self.ping_interval is not None:
            options.update(enable_auto_ping=True, auto_ping_idle_timeout=self.ping_interval,
                           auto_ping_reply_timeout=self.ping_timeout or self.ping_interval,
                           auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY)
        try:
            transport, listener = await picows.ws_connect(
                factory, self.uri, ssl_context=self.ssl, websocket_handshake_timeout=None,
                enable_auto_pong=True, max_frame_size=max_size, extra_headers=self.headers or None,
                proxy=self.proxy, logger_name=self.logger, **options)
        except picows.WSInvalidURL as exc:
            raise InvalidURI(self.uri, str(exc.args[-1]) if exc.args else str(exc)) from exc
        except picows.WSInvalidStatusError as exc:
            if exc.response is None:
                raise InvalidMessage(str(exc)) from exc
            raise InvalidStatus(Response.from_picows(exc.response)) from exc
        except picows.WSInvalidMessageError as exc:
            raise InvalidMessage(str(exc)) from exc
        except picows.WSHandshakeError as exc:
            raise InvalidHandshake(str(exc)) from exc
        assert isinstance(listener, FastListener)
        conn.listener = listener
        conn.ws_transport = transport
        if self.heartbeat is not None:
            try:
                await self._set_heartbeat(conn, self.heartbeat)
            except BaseException:
                transport.disconnect(graceful=False)
                raise
        return conn

    @staticmethod
    async def _set_heartbeat(conn: ClientConnection, interval: float) -> None:
        """Send ``public/set_heartbeat`` and wait for its reply (the caller's
        ``open_timeout`` bounds the wait); raise the Deribit error if refused."""
        conn._hb_reply = conn._loop.create_future()
        value: float | int = int(interval) if float(interval).is_integer() else interval
        request = {"jsonrpc": "2.0", "id": SET_HEARTBEAT_ID, "method": "public/set_heartbeat",
                   "params": {"interval": value}}
        assert conn.ws_transport is not None
        conn.ws_transport.send(WSMsgType.TEXT, json.dumps(request, separators=(",", ":")).encode())
        reply = json.loads(await conn._hb_reply)
        if "error" in reply:
            exc: DeribitError = error_from_reply(reply["error"], "public/set_heartbeat")
            raise exc
