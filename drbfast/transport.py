"""Opening a WebSocket with the compiled listener: what the session client and the
``drbfast.websockets`` drop-in share.

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
import ssl as ssl_module
from collections.abc import Callable
from typing import Any, TypeVar

import picows

from .errors import ConfigurationError, ConnectError, ConnectTimeout
from .protocol import encode_request

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "default_ssl", "open_listener", "set_heartbeat_request"]

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


async def open_listener(factory: Callable[[], L], url: str, *, ssl: ssl_module.SSLContext | None, timeout: float,
                        listener_type: type[L], max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                        **picows_options: Any) -> tuple[picows.WSTransport, L]:
    """Connect to ``url`` and return ``(transport, listener)`` once the handshake is done.

    Raises :class:`ConnectTimeout` if it takes longer than ``timeout`` seconds and
    :class:`ConnectError` for anything else that stops the WebSocket from opening."""
    try:
        transport, listener = await asyncio.wait_for(
            picows.ws_connect(factory, url, ssl_context=ssl, websocket_handshake_timeout=timeout,
                              max_frame_size=max_frame_size, enable_auto_pong=True, **picows_options),
            timeout,
        )
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
    if not isinstance(listener, listener_type):
        # picows returns no listener when the server hung up before its 101 answer.
        transport.disconnect(graceful=False)
        raise ConnectError(f"{url} closed the connection during the WebSocket handshake")
    # picows keeps the protocol error that ended a connection for wait_disconnected();
    # retrieve it, or asyncio logs "exception was never retrieved" at shutdown.
    asyncio.ensure_future(transport.wait_disconnected()).add_done_callback(_retrieve)
    return transport, listener


def set_heartbeat_request(req_id: int | str, interval: float) -> bytes:
    """The ``public/set_heartbeat`` request (Deribit accepts intervals of 10 s or more)."""
    if not interval > 0 or interval != interval or interval == float("inf"):
        raise ConfigurationError("heartbeat must be a positive number of seconds")
    return encode_request(req_id, "public/set_heartbeat", {"interval": interval})
