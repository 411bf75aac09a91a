"""Opening a WebSocket with the compiled listener: the one connect path of the session
client, the split client's sessions and the ``drbfast.websockets`` drop-in (the only
caller of ``picows.ws_connect`` in drbfast; tests/test_transport.py checks it).

- TLS is verified for ``wss://`` by default (``ssl.create_default_context()``).
- ``open_listener`` runs picows' connect with one deadline over TCP, TLS and the HTTP
  upgrade, and turns every way it can fail into :class:`~drbfast.errors.ConnectError`
  (or :class:`~drbfast.errors.ConnectTimeout`) with the cause chained: a refused or
  reset socket, a TLS failure, an HTTP status other than 101, a malformed answer, and
  a server that hangs up before answering (picows then returns no listener).
- A protocol error that picows records when it drops a connection (a frame over the
  size limit, a bad close code) is retrieved and logged, never left as "Future
  exception was never retrieved".
- ``close_connection`` is the one closing handshake (RFC 6455 7.1.2): send the close
  frame, keep reading until the server's close frame comes (bounded), then close TCP
  gracefully, so a server that reads slowly still gets every frame sent before it and
  never a reset. ``close_now`` is for when the event loop is gone (stopped or closed):
  the socket is closed at once and nothing is scheduled on the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import socket
import ssl as ssl_module
import struct
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

import picows

from .errors import ConfigurationError, ConnectError, ConnectTimeout
from .protocol import encode_request

__all__ = ["DEFAULT_CLOSE_TIMEOUT", "DEFAULT_MAX_FRAME_SIZE", "WriteFlow", "abandon_task", "close_at_exit",
           "close_connection", "close_now", "default_ssl", "handshake_headers", "loop_usable", "open_listener",
           "owned_task", "set_heartbeat_request"]

log = logging.getLogger("drbfast.transport")

#: The largest frame picows accepts from the server. Deribit's biggest messages (full
#: option chains, instrument lists) are a few MB.
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024

#: How long a closing client waits for the server's close frame before it drops the
#: socket (``drbfast.connect``'s Client; the drop-in has websockets' ``close_timeout``).
DEFAULT_CLOSE_TIMEOUT = 5.0

L = TypeVar("L", bound=picows.WSListener)
T = TypeVar("T")

#: The task that waits for each open connection's end (see ``open_listener``), by
#: ``id(transport)``: ``close_now`` settles it when the loop is gone. Weak: a
#: connection nobody holds any more must be collected (and warned about).
_reapers: weakref.WeakValueDictionary[int, asyncio.Task[None]] = weakref.WeakValueDictionary()


def default_ssl(url: str, ssl: ssl_module.SSLContext | None) -> ssl_module.SSLContext | None:
    """The TLS context for ``url``: the caller's, else a verifying default for wss://."""
    if url.startswith("wss://"):
        return ssl if ssl is not None else ssl_module.create_default_context()
    if url.startswith("ws://"):
        if ssl is not None:
            raise ConfigurationError("ssl= is for wss:// URLs; this one is ws://")
        return None
    raise ConfigurationError(f"url must be ws:// or wss://, not {url!r}")


async def _reap(transport: picows.WSTransport, log_lost: bool = True) -> None:
    """Await the connection's end: picows keeps the protocol error that ended it (a
    frame over the size limit, a bad close code) for ``wait_disconnected()``; retrieve
    it, or asyncio logs "exception was never retrieved" at shutdown (``log_lost``:
    say what it was)."""
    try:
        await transport.wait_disconnected()
    except Exception as exc:
        if log_lost:
            log.info("drbfast: connection ended on a protocol error: %s", exc)


def _forget_reaper(key: int, task: asyncio.Task[None]) -> None:
    if _reapers.get(key) is task:
        del _reapers[key]


def owned_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
    """A task that belongs to one connection: its owner cancels and awaits it when the
    connection closes. If the event loop dies first (a Ctrl-C under
    ``run_until_complete``), nothing can await it; asyncio's "Task was destroyed but
    it is pending!" is not printed for it (the connection's own ResourceWarning says
    that it was never closed, under ``-X dev`` / ``-W default``)."""
    task = loop.create_task(coro, name=name)
    task._log_destroy_pending = False  # type: ignore[attr-defined]
    return task


def loop_usable(loop: asyncio.AbstractEventLoop | None) -> bool:
    """Whether ``loop`` is the running loop of this thread: only then can a close be
    awaited. False while it is stopped (after a KeyboardInterrupt out of
    ``run_until_complete``), closed, or another loop runs (a coroutine of an old loop
    finalized by the garbage collector)."""
    try:
        return loop is not None and asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def abandon_task(task: asyncio.Task[Any] | None, loop_open: bool, finalize: bool = False) -> None:
    """A task of a connection whose loop is gone: cancelled if the loop can still take
    the callback (it may run again), never reported as destroyed while pending. With
    ``finalize`` (at interpreter exit, when nothing will run the loop again) its
    coroutine is closed now, while every module is intact, rather than by the garbage
    collector during module teardown, where an exception cannot even be printed
    ("Error in sys.excepthook")."""
    if task is None or task.done():
        return
    task._log_destroy_pending = False  # type: ignore[attr-defined]
    if loop_open:
        task.cancel()
    if finalize:
        try:
            task.get_coro().close()
        except BaseException:  # noqa: S110 - what the coroutine's exit raised: nothing to do at exit
            pass


#: Connections not closed yet (``drbfast.connect``'s Client, the drop-in's
#: ClientConnection): each has a ``_close_at_exit()``.
_open: weakref.WeakSet[Any] = weakref.WeakSet()


def close_at_exit(conn: Any) -> None:
    """Have ``conn._close_at_exit()`` called at interpreter exit if it is still open
    then (a Ctrl-C under ``run_until_complete`` leaves the program's coroutine
    suspended, and the garbage collector would run its ``async with`` exit only during
    module teardown)."""
    _open.add(conn)


def _close_all_at_exit() -> None:
    for conn in list(_open):
        try:
            conn._close_at_exit()
        except Exception:  # noqa: S110 - at exit: nothing to report to
            pass


atexit.register(_close_all_at_exit)


async def close_connection(transport: picows.WSTransport, code: int = 1000, reason: str = "",
                           timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
    """The closing handshake, RFC 6455 7.1.2: send a close frame (unless one went out
    already), keep reading until the server's close frame arrives (what it sent before
    it is still delivered; the listener then closes the TCP connection gracefully,
    after the write buffer drained), at most ``timeout`` seconds (``None``: no bound);
    past it the socket is dropped. Returns once the socket is closed. Never raises but
    CancelledError (the socket is dropped first). The loop must be running: see
    :func:`close_now` otherwise."""
    if transport.is_disconnected:
        return
    if not transport.is_close_frame_sent:
        # RFC 6455 5.5: a control frame's payload is at most 125 bytes (2 for the code).
        transport.send_close(picows.WSCloseCode(code), reason.encode()[:123])
    try:
        await asyncio.wait_for(transport.wait_disconnected(), timeout)
    except asyncio.TimeoutError:
        log.info("drbfast: no close frame from the server within %g s; dropping the connection", timeout)
    except asyncio.CancelledError:
        transport.disconnect(graceful=False)
        raise
    except Exception:  # noqa: S110 - the protocol error that ended it: logged by _reap
        pass
    if transport.is_disconnected:
        return
    # No answer in time: the server does not read (or the network is gone); a graceful
    # close would wait for a write buffer that never drains.
    transport.disconnect(graceful=False)
    try:
        await asyncio.wait_for(transport.wait_disconnected(), 1.0)
    except asyncio.TimeoutError:
        log.warning("drbfast: the socket did not close within 1 s of being aborted")
    except Exception:  # noqa: S110 - as above
        pass


def _close_frame(code: int, reason: str) -> bytes:
    """A masked client CLOSE frame (RFC 6455 5.2, 5.3, 5.5.1)."""
    payload = struct.pack("!H", code) + reason.encode()[:123]
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x88, 0x80 | len(payload))) + mask + masked


def close_now(transport: picows.WSTransport, loop: asyncio.AbstractEventLoop | None,
              code: int = 1001, reason: str = "going away", at_exit: bool = False) -> None:
    """Close a connection whose event loop is gone (stopped or closed), at once and
    without scheduling anything on a closed loop; never raises, prints nothing.

    On a plain socket whose write buffer is empty, a close frame (``code``, by default
    1001 going away) is written straight to the socket (non-blocking; nothing waits for
    the answer); then the socket is closed and the server sees the connection end. On
    TLS, or with unsent data queued, no close frame: TCP just closes.

    ``at_exit`` (the interpreter is exiting: the loop will not run again): the end of
    the connection that ``abort()`` left queued on a stopped loop is run now, while
    every module is intact. Otherwise asyncio's transport is only destroyed with the
    loop, late in module teardown, where its "unclosed transport" warning cannot be
    issued and Python prints "Error in sys.excepthook" instead."""
    reaper = _reapers.pop(id(transport), None)
    loop_open = loop is not None and not loop.is_closed()
    abandon_task(reaper, loop_open)
    if transport.is_disconnected:
        return
    try:
        underlying = transport.underlying_transport
        trsock = underlying.get_extra_info("socket")
        raw: socket.socket | None = getattr(trsock, "_sock", None)
        if (raw is not None and underlying.get_extra_info("ssl_object") is None
                and underlying.get_write_buffer_size() == 0 and not transport.is_close_frame_sent):
            try:
                raw.send(_close_frame(code, reason))
            except OSError:
                pass
        try:
            # Stops the transport for good (reads, writes, a second close): on a closed
            # loop it cannot schedule connection_lost and refuses with RuntimeError,
            # after marking the transport lost; on a stopped loop connection_lost runs
            # if the loop ever runs again.
            underlying.abort()
        except RuntimeError:
            pass
        if raw is not None:
            raw.close()
        elif trsock is not None:
            trsock.shutdown(socket.SHUT_RDWR)
        if at_exit and loop_open:
            # What abort() queued on the stopped loop: the protocol's connection_lost and
            # the release of the transport (aiofastnet's, which picows uses:
            # _finalize_close; asyncio's own: _call_connection_lost). On a closed loop
            # nothing may run.
            finish = getattr(underlying, "_finalize_close", None) or getattr(underlying, "_call_connection_lost", None)
            if finish is not None:
                finish(None)
    except Exception:  # noqa: S110 - closing at interpreter exit: nothing to tell
        log.debug("drbfast: closing a socket without its loop failed", exc_info=True)


def handshake_headers(extra_headers: Iterable[tuple[str, str]] | None, *, subprotocols: Sequence[str] | None = None,
                      user_agent: str | None = None) -> list[tuple[str, str]]:
    """The headers of the HTTP upgrade request: ``extra_headers`` as given, a
    ``User-Agent`` unless they carry one, ``Sec-WebSocket-Protocol`` offering
    ``subprotocols`` in order."""
    headers = [(str(k), str(v)) for k, v in (extra_headers or ())]
    if user_agent is not None and "user-agent" not in {k.lower() for k, _ in headers}:
        headers.append(("User-Agent", user_agent))
    if subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    return headers


async def open_listener(factory: Callable[[], L], url: str, *, ssl: ssl_module.SSLContext | None,
                        timeout: float | None, listener_type: type[L], max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                        extra_headers: Iterable[tuple[str, str]] | None = None,
                        subprotocols: Sequence[str] | None = None, user_agent: str | None = None,
                        max_redirects: int = 5, proxy: str | None = None,
                        proxy_ssl: ssl_module.SSLContext | None = None,
                        socket_factory: Callable[[Any], Awaitable[socket.socket | None]] | None = None,
                        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
                        log_lost: bool = True, **picows_options: Any) -> tuple[picows.WSTransport, L]:
    """Connect to ``url`` and return ``(transport, listener)`` once the handshake is done.

    This is the only caller of ``picows.ws_connect`` in drbfast (the session client,
    the gateway's two sessions and the ``drbfast.websockets`` drop-in all come here).

    - ``timeout``: one deadline over TCP, TLS and the upgrade; ``None`` for none (the
      drop-in bounds its whole opening, redirects included, itself).
    - The upgrade request carries ``extra_headers``, ``user_agent`` (unless the headers
      name one) and ``subprotocols`` (see :func:`handshake_headers`); picows follows up
      to ``max_redirects`` redirects itself (0: a redirect is a ``ConnectError`` whose
      cause carries the response and its ``Location``).
    - ``proxy`` (``http://``, ``https://``, ``socks4://``, ``socks5://`` URL) and
      ``proxy_ssl``; ``socket_factory(parsed_url)`` may return a connected socket to use
      (or ``None`` for picows' own); ``logger`` receives picows' log lines.
    - ``log_lost``: log (INFO) the protocol error that ended the connection, else only
      retrieve it. The rest of ``picows_options`` goes to ``picows.ws_connect``.

    Raises :class:`ConnectTimeout` if it takes longer than ``timeout`` seconds and
    :class:`ConnectError` for anything else that stops the WebSocket from opening, with
    the cause chained (the picows error, the ``OSError``, the ``ssl.SSLError``, the
    proxy library's error; an ``EOFError`` when the server hung up before answering)."""
    headers = handshake_headers(extra_headers, subprotocols=subprotocols, user_agent=user_agent)
    connecting = picows.ws_connect(factory, url, ssl_context=ssl, websocket_handshake_timeout=timeout,
                                   max_frame_size=max_frame_size, enable_auto_pong=True,
                                   extra_headers=headers or None, max_redirects=max_redirects, proxy=proxy,
                                   proxy_ssl_context=proxy_ssl, socket_factory=socket_factory,
                                   logger_name=logger, **picows_options)
    try:
        if timeout is None:
            transport, listener = await connecting
        else:
            transport, listener = await asyncio.wait_for(connecting, timeout)
    except asyncio.TimeoutError as exc:
        raise ConnectTimeout(f"opening {url} took longer than {timeout:g} s") from exc
    except picows.WSInvalidStatusError as exc:
        response = getattr(exc, "response", None)
        status = int(response.status) if response is not None and response.status is not None else None
        raise ConnectError(f"{url} refused the WebSocket upgrade: HTTP {status}", status=status) from exc
    except picows.WSError as exc:
        raise ConnectError(f"WebSocket handshake with {url} failed: {exc}") from exc
    except ssl_module.SSLError as exc:
        raise ConnectError(f"TLS with {url} failed: {exc}") from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect to {url}: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("python_socks"):
            raise ConnectError(f"the proxy for {url} failed: {exc}") from exc
        raise
    if not isinstance(listener, listener_type):
        # picows returns no listener when the server hung up before its 101 answer.
        transport.disconnect(graceful=False)
        raise ConnectError(f"{url} closed the connection during the WebSocket handshake") from EOFError(
            "connection closed while reading HTTP status line")
    key = id(transport)
    _reapers[key] = reaper = owned_task(asyncio.get_running_loop(), _reap(transport, log_lost), name="drbfast reaper")
    reaper.add_done_callback(lambda task: _forget_reaper(key, task))
    return transport, listener


class _FlowProtocol(asyncio.BufferedProtocol):
    """Put between a connection's asyncio transport and picows' protocol: everything
    goes straight to picows' protocol (its bound methods are this object's attributes,
    so a socket read costs what it did), except the transport's write flow control,
    which the :class:`WriteFlow` keeps (picows would only log it)."""

    def __init__(self, inner: Any, flow: WriteFlow) -> None:
        self.inner = inner
        self._flow = flow
        for name in ("connection_made", "get_buffer", "buffer_updated", "data_received", "eof_received",
                     "is_buffered_protocol"):
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def pause_writing(self) -> None:
        self._flow._set(False)

    def resume_writing(self) -> None:
        self._flow._set(True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._flow._set(True, lost=True)
        self.inner.connection_lost(exc)


class WriteFlow:
    """Write flow control of an open picows connection, without polling.

    The asyncio transport under ``transport`` calls ``pause_writing()`` when its write
    buffer passes ``high`` bytes and ``resume_writing()`` when it is back at ``low``
    (default ``high // 4``); picows' listener hook for these is not used (the compiled
    listener does not forward them), so this installs a thin protocol in front of
    picows' own that keeps those two calls and hands everything else on unchanged.
    :meth:`drain` returns at once while writing is open and otherwise sleeps on an
    event that only those calls (or the end of the connection) wake."""

    def __init__(self, transport: picows.WSTransport, high: int, low: int | None = None) -> None:
        if high < 0 or (low is not None and not 0 <= low <= high):
            raise ConfigurationError("write limits must satisfy 0 <= low <= high")
        self._open = asyncio.Event()
        self._open.set()
        self.lost = False
        #: times the transport paused writing, and times :meth:`drain` woke from a wait
        self.pauses = 0
        self.wakeups = 0
        underlying = transport.underlying_transport
        self._protocol = _FlowProtocol(underlying.get_protocol(), self)
        underlying.set_protocol(self._protocol)
        underlying.set_write_buffer_limits(high=high, low=high // 4 if low is None else low)

    @property
    def paused(self) -> bool:
        """The write buffer passed ``high`` and has not drained to ``low`` yet."""
        return not self._open.is_set()

    def _set(self, writable: bool, *, lost: bool = False) -> None:
        if lost:
            self.lost = True
        if writable:
            self._open.set()
        elif not self.lost and self._open.is_set():
            self.pauses += 1
            self._open.clear()

    async def drain(self) -> None:
        """Wait until the write buffer is back under the low mark (or the connection
        is gone: the caller then finds it closed)."""
        if self._open.is_set():
            return
        await self._open.wait()
        self.wakeups += 1


def set_heartbeat_request(req_id: int | str, interval: float) -> bytes:
    """The ``public/set_heartbeat`` request (Deribit accepts intervals of 10 s or more)."""
    if not interval > 0 or interval != interval or interval == float("inf"):
        raise ConfigurationError("heartbeat must be a positive number of seconds")
    return encode_request(req_id, "public/set_heartbeat", {"interval": interval})
