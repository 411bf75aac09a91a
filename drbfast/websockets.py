"""A drop-in for the ``websockets`` asyncio client, with Deribit heartbeats handled below.

Change ``import websockets`` (or ``from websockets.asyncio.client import connect``) to
``from drbfast import websockets`` and keep the code::

    async with websockets.connect(url, heartbeat=10) as ws:
        await ws.send(json.dumps(request))
        async for message in ws:
            ...

Differences from ``websockets``:

* Deribit's ``heartbeat`` and ``test_request`` messages, and the replies to the
  engine's own ``public/test``, are handled by the compiled listener and never come
  out of ``recv()`` or ``async for``. ``test_request`` is answered at once, however
  far behind the application's reading is.
* ``heartbeat=N`` sends ``public/set_heartbeat`` right after the handshake (with an
  engine id, so its reply is not shown either); ``connect`` raises the Deribit error if
  it is refused.
* ``max_queue`` (default 100,000 messages) bounds what is received but not yet read;
  above it the socket is no longer read until the queue drains to a quarter (TCP
  pushes back on the server; heartbeats wait too, so keep reading). ``None``: unbounded.
* No permessage-deflate (Deribit only uses it when the client asks), no ``ping()``.

Everything else a user sends and receives passes through untouched. The exception
classes have the ``websockets`` names and, when ``websockets`` is installed, also
subclass its classes, so ``except websockets.ConnectionClosed`` keeps working.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl as ssl_module
import time
from collections import deque
from collections.abc import AsyncIterator, Generator, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import picows
from picows import WSMsgType

from ._listener import FastListener, HeartbeatStats
from .errors import DeribitError, error_from_reply

__all__ = [
    "ClientConnection",
    "Close",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
    "InvalidStatus",
    "InvalidURI",
    "State",
    "WebSocketException",
    "connect",
]

log = logging.getLogger("drbfast.websockets")

try:  # Make our exceptions catchable as websockets' own when it is installed.
    import websockets.exceptions as _wsx  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - websockets is optional
    _wsx = None


def _bases(name: str, *ours: type) -> tuple[type, ...]:
    theirs = getattr(_wsx, name, None) if _wsx is not None else None
    if not isinstance(theirs, type):
        return ours
    # Ours first (our methods win), theirs after; a base theirs already has is dropped.
    return (*[o for o in ours if not issubclass(theirs, o)], theirs)


@dataclass(frozen=True)
class Close:
    """A close frame's ``code`` and ``reason`` (as ``websockets.frames.Close``)."""

    code: int
    reason: str


class State(IntEnum):
    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class WebSocketException(*_bases("WebSocketException", Exception)):  # type: ignore[misc]
    """Base class of this module's exceptions."""


class ConnectionClosed(*_bases("ConnectionClosed", WebSocketException)):  # type: ignore[misc]
    """The connection is closed: ``rcvd`` / ``sent`` are the close frames, if any."""

    def __init__(self, rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None = None) -> None:
        Exception.__init__(self, rcvd, sent)
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent

    def __str__(self) -> str:
        if self.rcvd is None and self.sent is None:
            return "no close frame received or sent"
        if self.rcvd is None:
            return f"sent {self.sent.code} ({self.sent.reason}); no close frame received"  # type: ignore[union-attr]
        return f"received {self.rcvd.code} ({self.rcvd.reason})"

    @property
    def code(self) -> int:
        return self.rcvd.code if self.rcvd is not None else 1006

    @property
    def reason(self) -> str:
        return self.rcvd.reason if self.rcvd is not None else ""


class ConnectionClosedOK(*_bases("ConnectionClosedOK", ConnectionClosed)):  # type: ignore[misc]
    """Closed normally (1000 or 1001 both ways)."""


class ConnectionClosedError(*_bases("ConnectionClosedError", ConnectionClosed)):  # type: ignore[misc]
    """Closed with an error code, or without a close frame."""


class InvalidURI(*_bases("InvalidURI", WebSocketException)):  # type: ignore[misc]
    def __init__(self, uri: str, msg: str) -> None:
        Exception.__init__(self, uri, msg)
        self.uri = uri
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.uri} isn't a valid WebSocket URI: {self.msg}"


class InvalidHandshake(*_bases("InvalidHandshake", WebSocketException)):  # type: ignore[misc]
    """The opening handshake failed."""


class InvalidStatus(*_bases("InvalidStatus", InvalidHandshake)):  # type: ignore[misc]
    """The server answered the upgrade with another HTTP status; ``response.status_code``."""

    def __init__(self, response: Any) -> None:
        Exception.__init__(self, response)
        self.response = response

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {self.response.status_code}"


@dataclass
class _Response:
    status_code: int
    headers: Any
    body: bytes


_OK_CODES = (1000, 1001)


class ClientConnection:
    """An open connection, as returned by :func:`connect`."""

    def __init__(self, max_queue: int | None, close_timeout: float | None) -> None:
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._max_queue = max_queue
        self._close_timeout = close_timeout
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.listener: FastListener | None = None
        self.transport: Any = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sent_close: Close | None = None

    # hooks called by the listener
    def _on_message(self, payload: bytes, binary: bool) -> None:
        self._queue.append((payload, binary))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._max_queue is not None and len(self._queue) >= self._max_queue and not self._paused:
            self._paused = True
            self.transport.underlying_transport.pause_reading()

    def _on_disconnected(self, listener: FastListener) -> None:
        if not self._closed.done():
            self._closed.set_result(None)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _maybe_resume(self) -> None:
        if self._paused and self._max_queue is not None and len(self._queue) <= self._max_queue // 4:
            self._paused = False
            if self.transport is not None and not self.transport.is_disconnected:
                self.transport.underlying_transport.resume_reading()

    # ------------------------------------------------------------ websockets API

    @property
    def state(self) -> State:
        if self._closed.done():
            return State.CLOSED
        if self._sent_close is not None:
            return State.CLOSING
        return State.OPEN

    @property
    def close_code(self) -> int | None:
        """The code of the close frame received; 1006 if the connection just dropped."""
        if not self._closed.done():
            return None
        code = self.listener.close_code if self.listener is not None else None
        return 1006 if code is None else int(code)

    @property
    def close_reason(self) -> str | None:
        if not self._closed.done():
            return None
        reason = self.listener.close_reason if self.listener is not None else None
        return reason or ""

    @property
    def local_address(self) -> Any:
        return self.transport.underlying_transport.get_extra_info("sockname")

    @property
    def remote_address(self) -> Any:
        return self.transport.underlying_transport.get_extra_info("peername")

    @property
    def heartbeat_stats(self) -> HeartbeatStats:
        """Heartbeat counters of the compiled listener (drbfast extra)."""
        assert self.listener is not None
        return self.listener.stats

    def _closed_exc(self) -> ConnectionClosed:
        code = self.listener.close_code if self.listener is not None else None
        rcvd = Close(int(code), self.listener.close_reason or "") if code is not None and self.listener is not None else None
        ok = rcvd is not None and rcvd.code in _OK_CODES
        cls = ConnectionClosedOK if ok else ConnectionClosedError
        return cls(rcvd, self._sent_close, True if rcvd is not None and self._sent_close is None else None)

    async def recv(self, decode: bool | None = None) -> str | bytes:
        """The next message: ``str`` for text (``bytes`` with ``decode=False``),
        ``bytes`` for binary (``str`` with ``decode=True``). Raises
        :class:`ConnectionClosedOK` / :class:`ConnectionClosedError` once closed and
        every received message has been read."""
        while not self._queue:
            if self._closed.done():
                raise self._closed_exc()
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        payload, binary = self._queue.popleft()
        self._maybe_resume()
        if binary:
            return payload.decode() if decode else payload
        return payload if decode is False else payload.decode()

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedOK:
                return

    async def send(self, message: str | bytes | bytearray | memoryview | Iterable[str | bytes]) -> None:
        """Send a message: ``str`` as TEXT, bytes-like as BINARY, an iterable of
        fragments as one fragmented message. Raises :class:`ConnectionClosed` if closed."""
        if self._closed.done() or self.listener is None or not self.listener.is_connected:
            raise self._closed_exc()
        t = self.transport
        if isinstance(message, str):
            t.send(WSMsgType.TEXT, message.encode())
        elif isinstance(message, (bytes, bytearray, memoryview)):
            t.send(WSMsgType.BINARY, message)
        else:
            parts = list(message)
            if not parts:
                return
            text = isinstance(parts[0], str)
            for i, part in enumerate(parts):
                if isinstance(part, str) != text:
                    raise TypeError("all fragments of a message must be of the same type")
                data = part.encode() if isinstance(part, str) else part
                opcode = (WSMsgType.TEXT if text else WSMsgType.BINARY) if i == 0 else WSMsgType.CONTINUATION
                t.send(opcode, data, i == len(parts) - 1)
        await asyncio.sleep(0)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake and wait (``close_timeout``) for the connection to end."""
        if not self._closed.done() and self.listener is not None:
            if self._sent_close is None:
                self._sent_close = Close(code, reason)
                self.listener.close(code, reason)
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), self._close_timeout)
            except asyncio.TimeoutError:
                self.transport.disconnect(graceful=False)
                await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> ClientConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Connect:
    def __init__(self, uri: str, options: dict[str, Any]) -> None:
        self.uri = uri
        self.options = options
        self._conn: ClientConnection | None = None

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        self._conn = await self._open()
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None
        await self._conn.close()

    def __aiter__(self) -> AsyncIterator[ClientConnection]:
        return self._reconnecting()

    async def _reconnecting(self) -> AsyncIterator[ClientConnection]:
        """``async for ws in connect(...)``: reconnect with backoff after each drop,
        as websockets does; a refused handshake or bad URI ends the loop."""
        from .backoff import Backoff

        backoff = Backoff(initial=1.0, cap=60.0)
        while True:
            try:
                conn = await self._open()
            except (OSError, asyncio.TimeoutError) as exc:
                delay = backoff.next()
                log.info("drbfast.websockets: connect failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            try:
                yield conn
            finally:
                await conn.close()

    async def _open(self) -> ClientConnection:
        opts = self.options
        uri = self.uri
        if not uri.startswith(("ws://", "wss://")):
            raise InvalidURI(uri, "scheme isn't ws or wss")
        ssl_ctx = opts["ssl"]
        if ssl_ctx is None and uri.startswith("wss://"):
            ssl_ctx = ssl_module.create_default_context()
        conn = ClientConnection(opts["max_queue"], opts["close_timeout"])
        headers = dict(opts["additional_headers"] or {})
        if opts["user_agent_header"]:
            headers.setdefault("User-Agent", opts["user_agent_header"])
        max_size = opts["max_size"]

        def factory() -> FastListener:
            return FastListener(conn._on_message, None, conn._on_disconnected,
                                max_message_size=max_size if max_size is not None else 2**62,
                                backlog_limit=opts["backlog_limit"])

        try:
            transport, listener = await asyncio.wait_for(
                picows.ws_connect(factory, uri, ssl_context=ssl_ctx, websocket_handshake_timeout=opts["open_timeout"],
                                  extra_headers=headers or None, enable_auto_pong=True,
                                  max_frame_size=max_size if max_size is not None else 2**62),
                opts["open_timeout"],
            )
        except picows.WSInvalidURL as exc:
            raise InvalidURI(uri, str(exc)) from exc
        except picows.WSInvalidStatusError as exc:
            resp = exc.response
            raise InvalidStatus(_Response(int(resp.status), resp.headers, resp.body or b"")) from exc
        except picows.WSHandshakeError as exc:
            raise InvalidHandshake(str(exc)) from exc
        conn.listener = listener
        conn.transport = transport
        if opts["heartbeat"] is not None:
            await _set_heartbeat(conn, listener, float(opts["heartbeat"]), opts["open_timeout"])
        return conn


async def _set_heartbeat(conn: ClientConnection, listener: FastListener, interval: float, timeout: float | None) -> None:
    """Send public/set_heartbeat with an engine id (its reply never reaches recv())
    and wait for the reply; raise the Deribit error if it was refused."""
    before = listener.stats
    request = {"jsonrpc": "2.0", "id": "~drbfast~set_heartbeat", "method": "public/set_heartbeat", "params": {"interval": interval}}
    listener.send(json.dumps(request, separators=(",", ":")))
    deadline = time.monotonic() + (timeout or 10.0)
    while listener.stats.test_replies == before.test_replies:
        if conn._closed.done():
            raise conn._closed_exc()
        if time.monotonic() > deadline:
            await conn.close()
            raise asyncio.TimeoutError("no reply to public/set_heartbeat")
        await asyncio.sleep(0.001)
    if listener.stats.test_reply_errors > before.test_reply_errors:
        body = listener.last_error_reply or b"{}"
        try:
            error = json.loads(body).get("error")
        except ValueError:
            error = None
        await conn.close()
        exc: DeribitError = error_from_reply(error, "public/set_heartbeat")
        raise exc


def connect(
    uri: str,
    *,
    heartbeat: float | None = None,
    ssl: ssl_module.SSLContext | None = None,
    open_timeout: float | None = 10,
    close_timeout: float | None = 10,
    max_size: int | None = 2**20,
    max_queue: int | None = 100_000,
    additional_headers: Any = None,
    user_agent_header: str | None = "drbfast",
    logger: Any = None,
    **kwargs: Any,
) -> _Connect:
    """Connect like ``websockets.connect``; see the module docstring for differences.

    Usable as ``async with connect(...) as ws``, ``ws = await connect(...)`` and
    ``async for ws in connect(...)`` (reconnects). ``heartbeat``: seconds for
    ``public/set_heartbeat`` after the handshake. wss:// is verified unless ``ssl``
    says otherwise. Options of ``websockets.connect`` not listed here (compression,
    ping_interval, ...) are accepted and ignored, with a debug log.
    """
    if kwargs:
        log.debug("drbfast.websockets: ignoring options %s", sorted(kwargs))
    options = {
        "heartbeat": heartbeat,
        "ssl": ssl,
        "open_timeout": open_timeout,
        "close_timeout": close_timeout,
        "max_size": max_size,
        "max_queue": max_queue,
        "additional_headers": additional_headers,
        "user_agent_header": user_agent_header,
        "backlog_limit": 50_000,
    }
    return _Connect(uri, options)
