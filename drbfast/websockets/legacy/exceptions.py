"""``websockets.legacy.exceptions``."""

from __future__ import annotations

from ..exceptions import AbortHandshake, InvalidStatusCode, RedirectHandshake, WebSocketProtocolError

__all__ = ["AbortHandshake", "InvalidStatusCode", "RedirectHandshake", "WebSocketProtocolError"]
