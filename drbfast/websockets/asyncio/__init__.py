"""``websockets.asyncio``: the client half of the asyncio API."""

from __future__ import annotations

from .client import ClientConnection, connect, process_exception, unix_connect

__all__ = ["ClientConnection", "connect", "process_exception", "unix_connect"]
