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
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import picows

from .errors import ConfigurationError, ConnectError, ConnectTimeout
from .protocol import encode_request

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "WriteFlow", "default_ssl", "handshake_headers", "open_listener", "set_heartbeat_request"]

log = logging.getLogger("drbfast.transport")

#: The largest frame picows accepts from the server. Deribit's biggest messages (full
#: option chains, instrument lists) are a few MB.
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024

L = TypeVar("L", bound=picows.WSListener)


def default_ssl(url: str, ssl: ssl_module.SSLContext | None) -> ssl_module.SSLContext | None:
    """The TLS context for ``url``: the caller's, else a verifying default for wss://."""
    if url.startswith("wss://"):
        return ssl if ssl is not None else ssl_module.create_default_context()
    if url.startswith("ws://"):
        if ssl is not None:
            raise ConfigurationError("ssl= is for wss:// URLs; this one is ws://")
        return None
    raise ConfigurationError(f"url must be ws:// or wss://, not {url!r}")


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        log.info("drbfast: connection ended on a protocol error: %s", exc)


def _ignore(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


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
    # picows keeps the protocol error that ended a connection for wait_disconnected();
    # retrieve it, or asyncio logs "exception was never retrieved" at shutdown.
    asyncio.ensure_future(transport.wait_disconnected()).add_done_callback(_retrieve if log_lost else _ignore)
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
