"""``websockets.asyncio.connection``: ``Connection`` is the client connection here."""

from __future__ import annotations

from ..protocol import State
from .client import ClientConnection

Connection = ClientConnection

__all__ = ["Connection", "State"]
