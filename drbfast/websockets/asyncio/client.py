"""``connect``, ``unix_connect`` and ``ClientConnection``: the ``websockets`` asyncio
client API (websockets 15-17, with the legacy <= 13 names) over
:class:`~drbfast.FastListener`. docs/websockets.md lists every difference."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import ssl as ssl_module
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from typing import Any, Literal, overload

import picows
from picows import WSMsgType
from picows.websockets.compat import Request, Response

from ..._listener import FastListener, HeartbeatStats
from ...backoff import Backoff
from ...errors import DeribitError, error_from_reply
from ...frames import ENGINE_ID_PREFIX
from ...transport import set_heartbeat_request
from ..exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidProxy,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    ProxyError,
    SecurityError,
)
from ..frames import OK_CLOSE_CODES, Close
from ..protocol import ClientProtocol, State
from ..uri import WebSocketURI, parse_uri

__all__ = [
    "DEFAULT_MAX_QUEUE", "DEFAULT_MAX_QUEUE_BYTES", "MAX_REDIRECTS", "SET_HEARTBEAT_ID",
    "ClientConnection", "backoff", "connect", "process_exception", "unix_connect",
]

Data = str | bytes
DataLike = str | bytes | bytearray | memoryview
Marks = int | None | tuple[int | None, int | None]
from ..typing import LoggerLike  # noqa: E402

#: The id of the ``public/set_heartbeat`` sent by ``connect(heartbeat=N)``. It does
#: *not* carry the engine prefix, so its reply is an ordinary message: this module
#: picks it out of the stream itself (only until it has arrived).
SET_HEARTBEAT_ID = "drbfast-set_heartbeat"
_SET_HEARTBEAT_ID_BYTES = SET_HEARTBEAT_ID.encode()
assert not SET_HEARTBEAT_ID.startswith(ENGINE_ID_PREFIX)

#: Redirects followed before :class:`SecurityError` (as websockets, from the same variable).
MAX_REDIRECTS = int(os.environ.get("WEBSOCKETS_MAX_REDIRECTS", "10"))
#: Default bound of the received-but-unread queue, in messages and in bytes.
DEFAULT_MAX_QUEUE = 100_000
DEFAULT_MAX_QUEUE_BYTES = 256 * 2**20
USER_AGENT = "drbfast"
_NO_LIMIT = 2**62
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Headers a cross-origin redirect must not carry to the new origin.
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})
_PROXY_SCHEMES = {"http": "http", "https": "https", "socks5": "socks5", "socks5h": "socks5",
                  "socks4": "socks4", "socks4a": "socks4"}
#: Keyword arguments of ``loop.create_connection`` that choose the socket; the
#: drop-in opens the socket itself (so that a handshake cut short can be closed).
_SOCKET_KWARGS = ("family", "proto", "flags", "local_addr", "happy_eyeballs_delay", "interleave")
#: picows sets TCP options on every socket it is given (TCP_NODELAY...); on an AF_UNIX
#: socket that fails and picows 2.3 then crashes the interpreter, so the drop-in refuses.
_NO_UNIX = "drbfast.websockets can't connect over a Unix socket: picows supports TCP only"
_DISCONNECTED_ERRORS = (ConnectionResetError, asyncio.CancelledError)

log = logging.getLogger("websockets.client")


def backoff(initial_delay: float = 0.25, min_delay: float = 0.25, max_delay: float = 30.0,
            factor: float = 2.0) -> Generator[float, None, None]:
    """Reconnect delays for ``async for ws in connect(...)``, with websockets'
    parameters: a random first delay in ``[0, initial_delay]``, then
    :class:`drbfast.backoff.Backoff` from ``min_delay`` by ``factor`` up to
    ``max_delay`` (drbfast's defaults are shorter than websockets' 5/3.1/90 s)."""
    yield random.random() * initial_delay
    steps = Backoff(initial=min_delay, factor=factor, cap=max_delay)
    while True:
        yield steps.next()


def process_exception(exc: Exception) -> Exception | None:
    """Retryable (``None``) or fatal (the exception), as websockets'
    ``process_exception``: network errors, timeouts, a handshake cut short by EOF,
    HTTP 500/502/503/504 are retried; so is a connection that closed while
    ``connect(heartbeat=...)`` was still setting up. The rest ends the loop."""
    if isinstance(exc, (EOFError, OSError, asyncio.TimeoutError, TimeoutError, ConnectionClosed)):
        return None
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError):
        return None
    if isinstance(exc, InvalidStatus) and int(exc.response.status_code) in (500, 502, 503, 504):
        return None
    return exc


def _marks(value: Marks, name: str) -> tuple[int | None, int | None]:
    """websockets' ``(high, low)`` convention: an int is the high-water mark and the
    low-water mark is a quarter of it; ``None`` disables the bound."""
    if value is None:
        return None, None
    high, low = value if isinstance(value, tuple) else (value, None)
    if high is None:
        return None, None
    if high < 1 or (low is not None and not 0 <= low <= high):
        raise ValueError(f"{name} must be at least 1 (and 0 <= low <= high), or None")
    return high, (high // 4 if low is None else low)


class _PicowsLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """picows' own log lines at DEBUG: websockets logs no INFO line per connection."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG if level == logging.INFO else level, msg, *args, **kwargs)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (a pong nobody awaited any more)."""
    if not future.cancelled():
        future.exception()


async def _reap(transport: picows.WSTransport) -> None:
    """Await the end of the connection: picows keeps a protocol error (1009, a bad
    close code) for ``wait_disconnected()``, and logs "Future exception was never
    retrieved" when nobody awaits it. The error itself is the close code's business."""
    try:
        await transport.wait_disconnected()
    except Exception:  # noqa: S110 - reported through close_code / ConnectionClosedError
        pass


class ClientConnection:
    """One open connection, as returned by :func:`connect`.

    Received messages wait in a queue bounded in messages (``max_queue``) and in bytes
    (``max_queue_bytes``) until ``recv()`` or ``async for`` takes them. Deribit's
    heartbeat traffic never enters it: the compiled listener answers ``test_request``
    and drops the rest. drbfast extras: :attr:`listener`, :attr:`heartbeat_stats`,
    :attr:`last_heartbeat`, :attr:`queue_size`, :attr:`queue_bytes`,
    :attr:`queue_peak`, :attr:`queue_pauses`, :attr:`dropped`, :attr:`dropped_bytes`.
    Legacy (websockets <= 13): :attr:`open`, :attr:`closed`, :attr:`path`,
    :attr:`request_headers`, :attr:`response_headers`.
    """

    def __init__(self, protocol: ClientProtocol, *, ping_interval: float | None = 20,
                 ping_timeout: float | None = 20, close_timeout: float | None = 10,
                 max_queue: Marks = DEFAULT_MAX_QUEUE, write_limit: int | tuple[int, int | None] = 2**15) -> None:
        loop = asyncio.get_running_loop()
        self.protocol = protocol
        protocol._connection = self
        self.id = protocol.id
        self.logger = protocol.logger
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self._loop = loop
        self._queue: deque[tuple[Data, int]] = deque()
        self._bytes = 0
        self._high, self._low = _marks(max_queue, "max_queue")
        self._high_bytes, self._low_bytes = _marks(DEFAULT_MAX_QUEUE_BYTES, "max_queue_bytes")
        self._drop = False
        self._max_size = protocol.max_size if protocol.max_size is not None else _NO_LIMIT
        self._write_limit = write_limit[0] if isinstance(write_limit, tuple) else write_limit
        self._waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] = loop.create_future()
        self._paused = False
        self._failed = False
        self._hb_reply: asyncio.Future[bytes] | None = None
        self._ping_lock = asyncio.Lock()
        self._pings: set[bytes] = set()
        self._keepalive_task: asyncio.Task[None] | None = None
        self._deliver_heartbeats = False
        self._reaper: asyncio.Task[None] | None = None
        #: round trip of the last PING answered, in seconds (keepalive or ``ping()``)
        self.latency: float = 0.0
        #: how many times the queue reached its bound and reading was paused
        self.queue_pauses = 0
        #: the longest the queue has been (messages)
        self.queue_peak = 0
        #: messages (and their bytes) dropped at the bound with ``overflow="drop"``
        self.dropped = 0
        self.dropped_bytes = 0
        self.listener: FastListener | None = None
        self.ws_transport: picows.WSTransport | None = None

    def _configure(self, *, max_queue_bytes: Marks, overflow: str, deliver_heartbeats: bool = False) -> None:
        self._high_bytes, self._low_bytes = _marks(max_queue_bytes, "max_queue_bytes")
        self._drop = overflow == "drop"
        self._deliver_heartbeats = deliver_heartbeats

    # ------------------------------------------------------------ listener hooks

    def _on_connected(self, listener: FastListener) -> None:
        self.listener = listener
        self.ws_transport = listener.transport

    def _on_message(self, payload: bytes, binary: bool, lane: int, channel: str, rx_ns: int) -> None:
        """Called by the listener once per non-heartbeat message, in order."""
        if self._failed:
            return  # closing after a protocol error: websockets delivers nothing more
        transport = self.ws_transport
        if transport is not None and transport.is_close_frame_sent and self._failing(transport, len(payload)):
            return
        if self._hb_reply is not None and not binary and _SET_HEARTBEAT_ID_BYTES in payload:
            if self._take_hb_reply(payload):
                return
        data: Data
        if binary:
            data = payload
        else:
            try:
                data = payload.decode()
            except UnicodeDecodeError as exc:
                # RFC 6455 8.1: a TEXT message that is not UTF-8 fails the connection (1007).
                self._fail(1007, f"{exc.reason} at position {exc.start}")
                return
        size = len(payload)
        queue = self._queue
        queue.append((data, size))
        self._bytes += size
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        depth = len(queue)
        if depth > self.queue_peak:
            self.queue_peak = depth
        high, high_bytes = self._high, self._high_bytes
        if (high is not None and depth >= high) or (high_bytes is not None and self._bytes >= high_bytes):
            self._overflow()

    def _overflow(self) -> None:
        """The queue reached ``max_queue`` or ``max_queue_bytes``."""
        if self._drop:
            # Keep reading (test_requests keep being answered): drop the oldest
            # messages until the queue is back within both bounds.
            queue, high, high_bytes = self._queue, self._high, self._high_bytes
            before = self.dropped
            while len(queue) > 1 and ((high is not None and len(queue) > high)
                                      or (high_bytes is not None and self._bytes > high_bytes)):
                _, size = queue.popleft()
                self._bytes -= size
                self.dropped += 1
                self.dropped_bytes += size
            if self.dropped != before and (before == 0 or self.dropped // 10_000 != before // 10_000):
                self.logger.warning("drbfast.websockets: the reader is behind: %d messages (%d bytes) "
                                    "queued; dropped the oldest, %d messages (%d bytes) so far",
                                    len(queue), self._bytes, self.dropped, self.dropped_bytes)
            return
        self._pause()

    def _failing(self, transport: picows.WSTransport, size: int) -> bool:
        """Whether to drop this message because the connection is failing: a close
        frame with an error code went out (a frame over ``max_size``, a bad close
        code...). websockets delivers nothing after the frame that failed it.

        picows checks a frame's size when it reads its header, which it does one frame
        ahead (to tell ``last_in_buffer``), and then still hands on the frames it has:
        the messages before the oversized one are legitimate and delivered; the
        oversized one and everything after it are not. For any other error close
        (the listener's own: a fragmented message too big...) nothing more is."""
        handshake = transport.close_handshake
        sent = handshake.sent if handshake is not None else None
        code = int(sent.code.value) if sent is not None else 1000
        if code in (1000, 1001, 1005):
            return False
        if code == 1009 and sent is not None and str(sent.reason).startswith("Received frame") and size <= self._max_size:
            return False
        self._failed = True
        return True

    def _take_hb_reply(self, payload: bytes) -> bool:
        """If ``payload`` is the reply to our ``public/set_heartbeat``, resolve it."""
        try:
            msg = json.loads(payload)
        except ValueError:
            return False
        if not isinstance(msg, dict) or msg.get("id") != SET_HEARTBEAT_ID or "method" in msg:
            return False
        waiter, self._hb_reply = self._hb_reply, None
        if waiter is not None and not waiter.done():
            waiter.set_result(payload)
        return True

    def _pause(self) -> None:
        """Stop reading the socket (``overflow="pause"``, as websockets). Called again
        for every message that still arrives, so nothing can leave reading on."""
        transport = self.ws_transport
        if transport is None or transport.is_disconnected:
            return
        if not self._paused:
            self._paused = True
            self.queue_pauses += 1
            if self.queue_pauses == 1 or self.queue_pauses % 1000 == 0:
                self.logger.warning("drbfast.websockets: %d messages (%d bytes) received and not read; "
                                    "pausing reads (test_requests are not answered meanwhile); %d pauses "
                                    "so far", len(self._queue), self._bytes, self.queue_pauses)
        transport.underlying_transport.pause_reading()

    def _maybe_resume(self) -> None:
        if len(self._queue) > (self._low or 0) or self._bytes > (self._low_bytes or 0):
            return
        self._paused = False
        transport = self.ws_transport
        if transport is not None and not transport.is_disconnected:
            transport.underlying_transport.resume_reading()

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection as websockets does: close frame with ``code``, drop TCP."""
        self._failed = True
        self.logger.error("drbfast.websockets: failing the connection: %d %s", code, reason)
        transport = self.ws_transport
        if transport is not None and not transport.is_disconnected:
            if not transport.is_close_frame_sent:
                transport.send_close(picows.WSCloseCode(code), reason.encode()[:123])
            transport.disconnect()

    def _on_disconnected(self, listener: FastListener) -> None:
        if not self._closed.done():
            self._closed.set_result(None)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._hb_reply is not None and not self._hb_reply.done():
            self._hb_reply.set_exception(self._close_exc())
            self._hb_reply.exception()  # retrieved: connect() may already have given up
        if self._keepalive_task is not None and not self._keepalive_task.done():
            self._keepalive_task.cancel()

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
    def open(self) -> bool:
        """Legacy (websockets <= 13): True while the connection is OPEN."""
        return self.state is State.OPEN

    @property
    def closed(self) -> bool:
        """Legacy (websockets <= 13): True once the connection is CLOSED."""
        return self.state is State.CLOSED

    @property
    def close_code(self) -> int | None:
        """The close code received (1005 for a close frame without one); 1006 if the
        connection ended without a close frame; ``None`` while it is not closed."""
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
        """The local address of the socket."""
        return self._underlying().get_extra_info("sockname")

    @property
    def remote_address(self) -> Any:
        """The remote address of the socket."""
        return self._underlying().get_extra_info("peername")

    @property
    def transport(self) -> asyncio.Transport:
        """The asyncio transport under the WebSocket."""
        return self._underlying()

    @property
    def request(self) -> Request | None:
        """The opening handshake request (``path``, ``headers``)."""
        return Request.from_picows(self.ws_transport.request) if self.ws_transport is not None else None

    @property
    def response(self) -> Response | None:
        """The opening handshake response (``status_code``, ``headers``...)."""
        return Response.from_picows(self.ws_transport.response) if self.ws_transport is not None else None

    @property
    def request_headers(self) -> Any:
        """Legacy: the handshake request's headers."""
        request = self.request
        return None if request is None else request.headers

    @property
    def response_headers(self) -> Any:
        """Legacy: the handshake response's headers."""
        response = self.response
        return None if response is None else response.headers

    @property
    def path(self) -> str:
        """Legacy: the request path (with the query)."""
        return self.protocol.uri.resource_name

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server selected, if any."""
        return self.protocol.subprotocol

    @property
    def heartbeat_stats(self) -> HeartbeatStats:
        """The compiled listener's counters (test_requests answered, heartbeats seen,
        ``last_heartbeat_ns``...). drbfast extra."""
        if self.listener is None:
            raise RuntimeError("not connected yet")
        return self.listener.stats

    @property
    def last_heartbeat(self) -> float | None:
        """When the last Deribit ``heartbeat`` or ``test_request`` arrived, on the
        clock of ``time.monotonic()``; ``None`` if none yet. Heartbeats never come out
        of ``recv()``: code that treats a silent ``recv()`` as a dead connection should
        look here instead (``time.monotonic() - ws.last_heartbeat``). drbfast extra."""
        if self.listener is None:
            return None
        stats = self.listener.stats
        last = max(stats.last_heartbeat_ns, stats.last_test_request_ns)
        return last / 1e9 if last else None

    @property
    def last_rx(self) -> float | None:
        """When the last frame of any kind arrived (``time.monotonic()`` clock)."""
        last = self.listener.stats.last_rx_ns if self.listener is not None else 0
        return last / 1e9 if last else None

    @property
    def queue_size(self) -> int:
        """Messages received and not read yet (drbfast extra)."""
        return len(self._queue)

    @property
    def queue_bytes(self) -> int:
        """Bytes of the messages received and not read yet (drbfast extra)."""
        return self._bytes

    def _underlying(self) -> asyncio.Transport:
        if self.ws_transport is None:
            raise RuntimeError("not connected yet")
        return self.ws_transport.underlying_transport

    def _handshake(self) -> tuple[Close | None, Close | None, bool | None]:
        handshake = self.ws_transport.close_handshake if self.ws_transport is not None else None
        if handshake is None:
            return None, None, None

        def close(info: Any) -> Close | None:
            if info is None:
                return None
            # An empty close frame carries no code: picows reports 0, websockets 1005.
            code = int(info.code) or 1005
            return Close(code, info.reason or "")

        rcvd, sent = close(handshake.recv), close(handshake.sent)
        order = handshake.recv_then_sent if rcvd is not None and sent is not None else None
        return rcvd, sent, order

    def _close_exc(self) -> ConnectionClosed:
        """websockets' rule: OK only if close frames with 1000/1001/1005 went both ways."""
        rcvd, sent, order = self._handshake()
        ok = rcvd is not None and sent is not None and rcvd.code in OK_CLOSE_CODES and sent.code in OK_CLOSE_CODES
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
        them it raises :class:`ConnectionClosedOK` or :class:`ConnectionClosedError`.
        Cancelling a waiting ``recv()`` loses nothing. Two concurrent ``recv()``
        raise :class:`ConcurrencyError`.
        """
        data = await self._next("recv")
        if decode is None:
            return data
        if isinstance(data, bytes):
            return data.decode() if decode else data
        return data if decode else data.encode()

    async def _next(self, caller: str) -> Data:
        queue = self._queue
        if not queue:
            if self._waiter is not None and not self._waiter.done():
                raise ConcurrencyError(f"cannot call {caller} while another coroutine is already running "
                                       "recv or recv_streaming")
            while not queue:
                if self._closed.done() and (self.listener is None or self.listener.stats.backlog == 0):
                    raise self._close_exc()
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        data, size = queue.popleft()
        self._bytes -= size
        if self._paused:
            self._maybe_resume()
        return data

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """The next message as an async iterator of its fragments. The listener
        reassembles fragmented messages, so this yields the whole message once."""
        data = await self._next("recv_streaming")
        if decode is None or isinstance(data, bytes) != bool(decode):
            yield data
        else:
            yield data.decode() if isinstance(data, bytes) else data.encode()

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
            raise TypeError("data must be str, bytes-like, or an iterable")

    async def _send_fragments(self, parts: AsyncIterator[DataLike], text: bool | None) -> None:
        try:
            pending: DataLike = await parts.__anext__()
        except StopAsyncIteration:
            return
        if not isinstance(pending, (str, bytes, bytearray, memoryview)):
            raise TypeError("data iterable must contain bytes or str")
        is_text = isinstance(pending, str)
        opcode = WSMsgType.TEXT if (is_text if text is None else text) else WSMsgType.BINARY
        while True:
            try:
                nxt: DataLike | None = await parts.__anext__()
            except StopAsyncIteration:
                nxt = None
            if nxt is not None and not isinstance(nxt, (str, bytes, bytearray, memoryview)):
                raise TypeError("data iterable must contain bytes or str")
            if nxt is not None and isinstance(nxt, str) != is_text:
                raise TypeError("all fragments must be of the same type")
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
            transport.send_close(picows.WSCloseCode(code), reason.encode())
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), self.close_timeout)
        except asyncio.TimeoutError:
            transport.disconnect(graceful=False)
            await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._closed)

    async def ping(self, data: DataLike | None = None) -> Awaitable[float]:
        """Send a PING; return a future that gives the round trip in seconds when the
        PONG arrives (``latency`` is updated). With ``data``, a PING carrying it goes
        out followed by an empty one that picows times (the wire shows two PINGs)."""
        payload = None if data is None else _control_payload(data, "ping")
        if payload is not None and payload in self._pings:
            raise ConcurrencyError("already waiting for a pong with the same data")
        transport = await self._writable()
        pong: asyncio.Future[float] = self._loop.create_future()
        pong.add_done_callback(_retrieve)
        if payload is not None:
            self._pings.add(payload)

        async def measure() -> None:
            try:
                async with self._ping_lock:
                    if payload is not None:
                        transport.send_ping(payload)
                    rtt = (await transport.measure_roundtrip_time(1))[0]
            except _DISCONNECTED_ERRORS:
                if not pong.done():
                    pong.set_exception(self._close_exc() if self._closed.done() else ConnectionClosedError(None, None))
                return
            finally:
                if payload is not None:
                    self._pings.discard(payload)
            self.latency = rtt
            if not pong.done():
                pong.set_result(rtt)

        task = self._loop.create_task(measure())
        self._closed.add_done_callback(lambda _f: task.cancel() if not task.done() else None)
        await asyncio.sleep(0)  # let the ping go out before returning, as websockets
        return pong

    async def pong(self, data: DataLike = b"") -> None:
        """Send an unsolicited PONG (a unidirectional heartbeat)."""
        payload = _control_payload(data, "pong")
        transport = await self._writable()
        transport.send_pong(payload)

    async def _keepalive(self) -> None:
        """websockets' keepalive: a PING every ``ping_interval``; no PONG within
        ``ping_timeout`` fails the connection with 1011."""
        assert self.ping_interval is not None
        try:
            while not self._closed.done():
                await asyncio.sleep(self.ping_interval)
                try:
                    pong = await self.ping()
                    if self.ping_timeout is None:
                        await pong
                    else:
                        await asyncio.wait_for(asyncio.shield(pong), self.ping_timeout)
                except ConnectionClosed:
                    return
                except asyncio.TimeoutError:
                    self.logger.warning("drbfast.websockets: no pong within %s s: keepalive ping timeout",
                                        self.ping_timeout)
                    self._fail(1011, "keepalive ping timeout")
                    return
        except asyncio.CancelledError:
            return

    def _start(self) -> None:
        if self._closed.done():
            return
        if self.ping_interval is not None:
            self._keepalive_task = self._loop.create_task(self._keepalive())

    async def __aenter__(self) -> ClientConnection:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # As websockets: an exception out of the block closes with 1011.
        await self.close(1000 if exc_type is None else 1011)


def _control_payload(data: DataLike, what: str) -> bytes:
    """A PING/PONG payload from str (UTF-8) or bytes-like; anything else is a TypeError."""
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} data must be str or bytes-like, not {type(data).__name__}")


async def _aiter_sync(items: Iterable[DataLike]) -> AsyncIterator[DataLike]:
    for item in items:
        yield item


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def _get_proxy(uri: WebSocketURI) -> str | None:
    """The proxy the environment names for ``uri`` (websockets' rule)."""
    if urllib.request.proxy_bypass(f"{uri.host}:{uri.port}"):
        return None
    proxies = urllib.request.getproxies()
    for scheme in (["wss", "socks", "https"] if uri.secure else ["ws", "socks", "https", "http"]):
        proxy = proxies.get(scheme)
        if proxy is not None:
            return "socks5h://" + proxy[7:] if scheme == "socks" and proxy.startswith("http://") else proxy
    return None


async def _open_socket(host: str, port: int, options: dict[str, Any]) -> socket.socket:
    """A connected non-blocking TCP socket to ``host:port`` (each address in turn)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, family=options.get("family", 0), type=socket.SOCK_STREAM,
                                   proto=options.get("proto", 0), flags=options.get("flags", 0))
    if not infos:
        raise OSError(f"getaddrinfo({host!r}) returned nothing")
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            if options.get("local_addr") is not None:
                sock.bind(options["local_addr"])
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    assert error is not None
    raise error


class connect:  # noqa: N801 - the name websockets uses
    """Open a connection like ``websockets.asyncio.client.connect``.

    Use it as ``async with connect(uri) as ws``, ``ws = await connect(uri)``, or
    ``async for ws in connect(uri)`` (reconnects with backoff after a retryable
    failure; ``process_exception`` decides, ``reconnect_delays`` gives the delays).

    websockets options: ``origin``, ``subprotocols``, ``compression`` (``"deflate"``
    is accepted and not offered: picows has no compression), ``additional_headers``
    (legacy ``extra_headers``), ``user_agent_header``, ``proxy`` (``True``: from the
    environment), ``proxy_ssl``, ``process_exception``, ``open_timeout``,
    ``ping_interval``/``ping_timeout`` (keepalive; any pair, ``None`` to turn off),
    ``close_timeout``, ``reconnect_delays``, ``max_size``, ``max_queue``,
    ``write_limit``, ``logger`` (default ``websockets.client``), ``create_connection``
    (a ``ClientConnection`` factory), and for the socket ``ssl``, ``host``, ``port``,
    ``sock``, ``server_hostname``, ``family``, ``local_addr``.

    drbfast options: ``heartbeat=N`` sends ``public/set_heartbeat`` right after the
    handshake and waits for its reply (within ``open_timeout``); a refused request
    raises its :class:`~drbfast.DeribitError`. ``max_queue_bytes`` (default 256 MiB,
    or ``(high, low)``) bounds the unread queue in bytes next to ``max_queue`` in
    messages (default 100,000). ``overflow`` says what happens at either bound:
    ``"pause"`` (default, as websockets) stops reading the socket until both are back
    under their low marks (test_requests are not answered meanwhile); ``"drop"``
    keeps reading and drops the oldest unread messages, counted in ``ws.dropped``.
    ``deliver_heartbeats=True`` also hands ``recv()`` each heartbeat and test_request
    (as Deribit sent it) after the listener answered it, in the order it arrived, for
    code that treats a silent ``recv()`` as dead; ``ws.last_heartbeat`` is the
    cheaper way to see liveness.
    """

    def __init__(
        self,
        uri: str,
        *,
        origin: str | None = None,
        extensions: Any = None,
        subprotocols: Iterable[str] | None = None,
        compression: str | None = "deflate",
        additional_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        user_agent_header: str | None = USER_AGENT,
        proxy: str | Literal[True] | None = True,
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        reconnect_delays: Callable[[], Iterator[float]] = backoff,
        max_size: int | None | tuple[int | None, int | None] = 2**20,
        max_queue: Marks = DEFAULT_MAX_QUEUE,
        write_limit: int | tuple[int, int | None] = 2**15,
        logger: LoggerLike | None = None,
        create_connection: Callable[..., ClientConnection] | None = None,
        heartbeat: float | None = None,
        max_queue_bytes: Marks = DEFAULT_MAX_QUEUE_BYTES,
        overflow: Literal["pause", "drop"] = "pause",
        deliver_heartbeats: bool = False,
        **kwargs: Any,
    ) -> None:
        # legacy (websockets <= 13) spellings
        if "extra_headers" in kwargs:
            legacy_headers = kwargs.pop("extra_headers")
            additional_headers = additional_headers if legacy_headers is None else legacy_headers
        if "timeout" in kwargs:
            close_timeout = kwargs.pop("timeout")
        for ignored in ("read_limit", "loop", "legacy_recv", "klass", "create_protocol"):
            kwargs.pop(ignored, None)
        self._unix = bool(kwargs.pop("_unix", False))
        self._unix_path: str | None = kwargs.pop("_path", None)
        self.uri = uri
        self.ws_uri = parse_uri(uri)
        if "ssl" in kwargs:
            if kwargs["ssl"] is not None and not self.ws_uri.secure:
                raise ValueError("ssl argument is incompatible with a ws:// URI")
            if kwargs["ssl"] is None and self.ws_uri.secure:
                raise ValueError("ssl=None is incompatible with a wss:// URI")
        if isinstance(subprotocols, str):
            raise TypeError("subprotocols must be a list, not a str")
        if compression not in (None, "deflate"):
            raise ValueError(f"unsupported compression: {compression}")
        if extensions is not None:
            raise NotImplementedError("drbfast.websockets negotiates no extensions (picows has none)")
        if heartbeat is not None and heartbeat <= 0:
            raise ValueError("heartbeat must be a positive number of seconds (Deribit's minimum is 10)")
        if overflow not in ("pause", "drop"):
            raise ValueError("overflow must be 'pause' (stop reading, as websockets) or 'drop' "
                             "(keep reading, drop the oldest unread messages)")
        _marks(max_queue, "max_queue")  # validate now, not at connection time
        _marks(max_queue_bytes, "max_queue_bytes")
        headers: list[tuple[str, str]] = []
        if additional_headers is not None:
            items = additional_headers.items() if isinstance(additional_headers, Mapping) else additional_headers
            headers.extend((str(k), str(v)) for k, v in items)
        names = {k.lower() for k, _ in headers}
        if user_agent_header is not None and "user-agent" not in names:
            headers.append(("User-Agent", user_agent_header))
        if origin is not None:
            headers.append(("Origin", origin))
        self.subprotocols = list(subprotocols) if subprotocols else None
        if self.subprotocols:
            headers.append(("Sec-WebSocket-Protocol", ", ".join(self.subprotocols)))
        self.headers = headers
        self.proxy = proxy
        self.process_exception = process_exception
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.reconnect_delays = reconnect_delays
        size = max_size[0] if isinstance(max_size, tuple) else max_size
        self.max_size = _NO_LIMIT if size is None else size
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.overflow = overflow
        self.deliver_heartbeats = deliver_heartbeats
        self.write_limit = write_limit
        self.heartbeat = heartbeat
        self.logger: LoggerLike = logger if logger is not None else log
        self.create_connection: Callable[..., ClientConnection] = (
            create_connection if create_connection is not None else ClientConnection)
        self.kwargs = kwargs
        self.connection: ClientConnection | None = None
        self._entered = False

    # ---------------------------------------------------------------- awaiting

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        if self._entered:
            raise RuntimeError("connect() isn't reentrant")
        self._entered = True
        try:
            self.connection = await self._open()
        except BaseException:
            self._entered = False
            raise
        return self.connection

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.connection is not None:
                await self.connection.close()
        finally:
            self.connection = None
            self._entered = False

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        delays: Iterator[float] | None = None
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
                self.logger.info("connect failed; reconnecting in %.1f seconds: %s",
                                 delay, f"{type(exc).__name__}: {exc}".rstrip(": "))
                await asyncio.sleep(delay)
            else:
                delays = None  # a connection worked: start the backoff over

    # ---------------------------------------------------------------- opening

    async def _open(self) -> ClientConnection:
        try:
            if self.open_timeout is None:
                return await self._open_now()
            return await asyncio.wait_for(self._open_now(), self.open_timeout)
        except asyncio.TimeoutError as exc:
            raise TimeoutError("timed out during opening handshake") from exc

    def _proxy(self, ws_uri: WebSocketURI) -> str | None:
        if self._unix or "sock" in self.kwargs:
            return None
        proxy = _get_proxy(ws_uri) if self.proxy is True else self.proxy
        if proxy is None:
            return None
        scheme = urllib.parse.urlparse(proxy).scheme
        if scheme not in _PROXY_SCHEMES:
            raise InvalidProxy(proxy, f"scheme {scheme} isn't supported")
        has_ssl = "proxy_ssl" in self.kwargs
        if scheme == "http" and has_ssl and self.kwargs["proxy_ssl"] is not None:
            raise ValueError("proxy_ssl argument is incompatible with an http:// proxy")
        if scheme == "https" and has_ssl and self.kwargs["proxy_ssl"] is None:
            raise ValueError("proxy_ssl=None is incompatible with an https:// proxy")
        return proxy.replace(f"{scheme}://", f"{_PROXY_SCHEMES[scheme]}://", 1)

    async def _open_now(self) -> ClientConnection:
        if self._unix:
            if self._unix_path is None and "sock" not in self.kwargs:
                raise ValueError("no path and sock were specified")
            if self._unix_path is not None and "sock" in self.kwargs:
                raise ValueError("path and sock can not be specified at the same time")
            raise ValueError(_NO_UNIX)
        given = self.kwargs.get("sock")
        if given is not None and given.family == getattr(socket, "AF_UNIX", None):
            raise ValueError(_NO_UNIX)
        uri, ws_uri, headers = self.uri, self.ws_uri, list(self.headers)
        explicit = self.kwargs.get("host") is not None or self.kwargs.get("port") is not None
        for _ in range(MAX_REDIRECTS + 1):
            try:
                return await self._connect_once(uri, ws_uri, headers)
            except _Redirect as redirect:
                new_uri = urllib.parse.urljoin(uri, redirect.location)
                new_ws_uri = parse_uri(new_uri)
                if ws_uri.secure and not new_ws_uri.secure:
                    raise SecurityError(f"cannot follow redirect to non-secure URI {new_uri}") from None
                if "sock" in self.kwargs:
                    raise ValueError(f"cannot follow redirect to {new_uri} with a preexisting socket") from None
                if new_ws_uri.origin != ws_uri.origin:
                    if self._unix:
                        raise ValueError(f"cannot follow cross-origin redirect to {new_uri} "
                                         "with a Unix socket") from None
                    if explicit:
                        raise ValueError(f"cannot follow cross-origin redirect to {new_uri} "
                                         "with an explicit host or port") from None
                    # Credentials are for the origin they were given for (RFC 9110 15.4).
                    headers = [(k, v) for k, v in headers if k.lower() not in _CREDENTIALS]
                self.logger.debug("redirected to %s", new_uri)
                uri, ws_uri = new_uri, new_ws_uri
        raise SecurityError(f"more than {MAX_REDIRECTS} redirects")

    async def _connect_once(self, uri: str, ws_uri: WebSocketURI,
                            headers: list[tuple[str, str]]) -> ClientConnection:
        protocol = ClientProtocol(ws_uri, logger=self.logger, subprotocols=self.subprotocols,
                                  max_size=None if self.max_size == _NO_LIMIT else self.max_size)
        conn = self.create_connection(protocol, ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
                                      close_timeout=self.close_timeout, max_queue=self.max_queue,
                                      write_limit=self.write_limit)
        conn._configure(max_queue_bytes=self.max_queue_bytes, overflow=self.overflow,
                        deliver_heartbeats=self.deliver_heartbeats)
        max_size, logger = self.max_size, self.logger

        def factory() -> FastListener:
            # lanes=False: websockets hands every message over in order; the drop-in
            # bounds its own queue (max_queue / max_queue_bytes).
            return FastListener(conn._on_message, conn._on_connected, conn._on_disconnected,
                                logger=logger, max_message_size=max_size, lanes=False,
                                deliver_heartbeats=conn._deliver_heartbeats)

        options = dict(self.kwargs)
        sock_options = {k: options.pop(k) for k in _SOCKET_KWARGS if k in options}
        host, port = options.pop("host", None), options.pop("port", None)
        given_sock: socket.socket | None = options.pop("sock", None)
        ssl_option = options.pop("ssl", None)
        proxy_ssl = options.pop("proxy_ssl", None)
        proxy = self._proxy(ws_uri)
        for name in list(options):
            if name.startswith("proxy_"):  # proxy_server_hostname...: not supported by picows
                options.pop(name)
        opened: list[socket.socket] = []

        async def make_socket(_url: Any) -> socket.socket | None:
            if given_sock is not None:
                return given_sock
            if proxy is not None:
                return None  # picows connects to the proxy
            sock = await _open_socket(host or ws_uri.host, port or ws_uri.port, sock_options)
            opened.append(sock)
            return sock

        ssl_context = ssl_option if isinstance(ssl_option, ssl_module.SSLContext) else None
        try:
            transport, listener = await picows.ws_connect(
                factory, uri, ssl_context=ssl_context, websocket_handshake_timeout=None,
                enable_auto_ping=False, enable_auto_pong=True, max_frame_size=max_size,
                extra_headers=headers or None, max_redirects=0, proxy=proxy,
                proxy_ssl_context=proxy_ssl if isinstance(proxy_ssl, ssl_module.SSLContext) else None,
                logger_name=_PicowsLog(logger.logger if isinstance(logger, logging.LoggerAdapter) else logger, {}),
                socket_factory=make_socket, **options)
        except BaseException as exc:
            for sock in opened:
                _shutdown(sock)
            if isinstance(exc, Exception):
                _raise_handshake_error(exc)
            raise
        if not isinstance(listener, FastListener):
            # picows returns (transport, None) when the connection ended before the
            # HTTP 101: websockets says InvalidMessage, retryable.
            eof = EOFError("connection closed while reading HTTP status line")
            error = InvalidMessage("did not receive a valid HTTP response")
            error.__cause__ = eof
            raise error
        conn._reaper = conn._loop.create_task(_reap(transport))
        conn.listener, conn.ws_transport = listener, transport
        try:
            self._negotiate(conn, transport)
            if self.heartbeat is not None:
                await _set_heartbeat(conn, self.heartbeat)
        except BaseException:
            transport.disconnect(graceful=False)
            raise
        conn._start()
        return conn

    def _negotiate(self, conn: ClientConnection, transport: picows.WSTransport) -> None:
        """What websockets' ClientProtocol checks in the 101 response."""
        response_headers = transport.response.headers
        if response_headers.getall("Sec-WebSocket-Extensions", []):
            # RFC 6455 9.1: the server may only select an extension the client offered;
            # the drop-in offers none (a server forcing permessage-deflate fails here).
            raise NegotiationError("no extensions supported")
        selected = response_headers.getall("Sec-WebSocket-Protocol", [])
        if selected:
            if not self.subprotocols:
                raise NegotiationError("no subprotocols supported")
            values = [v.strip() for header in selected for v in header.split(",") if v.strip()]
            if len(values) > 1:
                raise InvalidHeader("Sec-WebSocket-Protocol", f"multiple values: {', '.join(values)}")
            if values[0] not in self.subprotocols:
                raise NegotiationError(f"unsupported subprotocol: {values[0]}")
            conn.protocol.subprotocol = values[0]


def _shutdown(sock: socket.socket) -> None:
    """End a connection whose handshake failed or was cancelled: the transport (if
    picows made one) sees EOF and closes the socket itself."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        sock.close()


def _raise_handshake_error(exc: Exception) -> None:
    """picows' handshake errors as the websockets exceptions (cause chained)."""
    if isinstance(exc, picows.WSInvalidURL):
        raise InvalidURI(getattr(exc, "url", ""), str(exc)) from exc
    if isinstance(exc, picows.WSInvalidStatusError):
        response = exc.response
        if response is None:
            raise InvalidMessage("did not receive a valid HTTP response") from exc
        status = int(response.status)
        location = response.headers.get("Location")
        if status in _REDIRECTS and location is not None:
            raise _Redirect(location) from exc
        body = exc.raw_body if exc.raw_body else (response.body or b"")
        raise InvalidStatus(Response(status, response.status.phrase, response.headers, body)) from exc
    if isinstance(exc, picows.WSInvalidUpgradeError):
        raise InvalidUpgrade(exc.name, exc.value) from exc
    if isinstance(exc, picows.WSInvalidHeaderError):
        raise InvalidHeader(exc.name, exc.value) from exc
    if isinstance(exc, picows.WSInvalidMessageError):
        raise InvalidMessage("did not receive a valid HTTP response") from ValueError(str(exc))
    if isinstance(exc, picows.WSHandshakeError):
        raise InvalidHandshake(str(exc)) from exc
    if type(exc).__module__.startswith("python_socks"):
        if isinstance(exc, OSError):
            raise exc
        raise ProxyError("failed to connect to SOCKS proxy") from exc


async def _set_heartbeat(conn: ClientConnection, interval: float) -> None:
    """Send ``public/set_heartbeat`` and wait for its reply (the caller's
    ``open_timeout`` bounds the wait); raise the Deribit error if refused."""
    conn._hb_reply = conn._loop.create_future()
    value: float | int = int(interval) if float(interval).is_integer() else interval
    transport = conn.ws_transport
    if transport is None:
        raise ConnectionClosedError(None, None)
    transport.send(WSMsgType.TEXT, set_heartbeat_request(SET_HEARTBEAT_ID, value))
    reply = json.loads(await conn._hb_reply)
    if "error" in reply:
        exc: DeribitError = error_from_reply(reply["error"], "public/set_heartbeat")
        raise exc


def unix_connect(path: str | None = None, uri: str | None = None, **kwargs: Any) -> connect:
    """:func:`connect` over a Unix socket at ``path`` (or an already connected
    ``sock=``). ``uri`` (default ``ws://localhost/``, ``wss://`` with ``ssl``) gives
    the Host header and the TLS server name."""
    if uri is None:
        uri = "wss://localhost/" if kwargs.get("ssl") is not None else "ws://localhost/"
    return connect(uri, _unix=True, _path=path, **kwargs)


#: Legacy (websockets <= 13) name of the connection class.
WebSocketClientProtocol = ClientConnection
