"""``websockets.legacy.client``: ``connect`` and ``WebSocketClientProtocol`` (the
connection class, with ``open``/``closed``) as code for websockets <= 13 imports them."""

from __future__ import annotations

from ..asyncio.client import ClientConnection, WebSocketClientProtocol, connect, unix_connect

Connect = connect

__all__ = ["ClientConnection", "Connect", "WebSocketClientProtocol", "connect", "unix_connect"]
