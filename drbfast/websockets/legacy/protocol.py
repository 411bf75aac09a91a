"""``websockets.legacy.protocol``: ``WebSocketCommonProtocol`` is the client connection."""

from __future__ import annotations

from ..asyncio.client import ClientConnection

WebSocketCommonProtocol = ClientConnection

__all__ = ["WebSocketCommonProtocol"]
