"""``websockets.protocol`` names: :class:`State`, and :class:`ClientProtocol`, the
read-only view of a connection's protocol state that ``ClientConnection.protocol``
gives (websockets' sans-I/O object; here the frames are handled by picows and the
compiled listener, so there is nothing to drive)."""

from __future__ import annotations

import logging
import uuid
import typing
from typing import Any

from .uri import WebSocketURI

try:  # websockets' own State, so ``ws.state is State.OPEN`` works with either import
    from websockets.protocol import State
except ImportError:  # pragma: no cover - websockets is optional
    from picows.websockets.compat import State  # type: ignore[assignment]



class _ConnectionView(typing.Protocol):
    """What the protocol view reads of its connection (``asyncio.client.ClientConnection``,
    which imports this module: named by shape, so nothing here imports a layer above)."""

    @property
    def ws_transport(self) -> Any: ...
    @property
    def state(self) -> State: ...
    @property
    def close_code(self) -> int | None: ...
    @property
    def close_reason(self) -> str | None: ...

__all__ = ["ClientProtocol", "Protocol", "State"]


class ClientProtocol:
    """``uri`` (after redirects), ``state``, ``extensions`` (always ``[]``: no
    compression), ``subprotocol``, ``close_code``, ``close_reason``, ``logger``, ``id``."""

    def __init__(self, uri: WebSocketURI, *, logger: logging.Logger | logging.LoggerAdapter[Any],
                 subprotocols: list[str] | None = None, max_size: int | None = None) -> None:
        self.id = uuid.uuid4()
        self.uri = uri
        self.logger = logger
        self.available_subprotocols = subprotocols
        self.max_size = max_size
        self.extensions: list[Any] = []
        self.subprotocol: str | None = None
        self._connection: _ConnectionView | None = None

    @property
    def state(self) -> State:
        conn = self._connection
        return State.CONNECTING if conn is None or conn.ws_transport is None else conn.state

    @property
    def close_code(self) -> int | None:
        return None if self._connection is None else self._connection.close_code

    @property
    def close_reason(self) -> str | None:
        return None if self._connection is None else self._connection.close_reason


Protocol = ClientProtocol
