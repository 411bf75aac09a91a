"""``websockets.client``: ``backoff`` and ``ClientProtocol``; ``connect`` and
``ClientConnection`` too, where code written for websockets <= 13 imports them."""

from __future__ import annotations

from .asyncio.client import (
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_QUEUE_BYTES,
    SET_HEARTBEAT_ID,
    ClientConnection,
    WebSocketClientProtocol,
    backoff,
    connect,
    process_exception,
    unix_connect,
)
from .protocol import ClientProtocol, State

__all__ = [
    "DEFAULT_MAX_QUEUE", "DEFAULT_MAX_QUEUE_BYTES", "SET_HEARTBEAT_ID", "ClientConnection",
    "ClientProtocol", "State", "WebSocketClientProtocol", "backoff", "connect", "process_exception",
    "unix_connect",
]
