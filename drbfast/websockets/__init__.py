"""A drop-in for the ``websockets`` asyncio client, with Deribit heartbeats handled below.

Change the import and keep the code::

    from drbfast import websockets          # was: import websockets

    async with websockets.connect(url, heartbeat=10) as ws:
        await ws.send(json.dumps(request))
        async for message in ws:
            ...

The websockets 15-17 asyncio client API and the names code written for websockets
<= 13 uses (``ws.open``, ``ws.closed``, ``WebSocketClientProtocol``,
``InvalidStatusCode``, ``extra_headers=``...) are here, with the submodules
(``drbfast.websockets.asyncio.client``, ``.exceptions``, ``.protocol``, ``.frames``,
``.typing``, ``.uri``, ``.legacy``...). What differs, in short (docs/websockets.md has
the full list):

* Deribit's ``heartbeat`` and ``test_request`` messages, and the replies to the
  engine's own ``public/test``, are handled by the compiled listener
  (:class:`drbfast.FastListener`) and never come out of ``recv()``. A
  ``test_request`` is answered as soon as its bytes are read, however far behind the
  application's reading is. ``ws.last_heartbeat`` says when the last one arrived.
* ``heartbeat=N`` sends ``public/set_heartbeat`` right after the handshake.
* ``max_queue`` (messages, default 100,000) and ``max_queue_bytes`` (default
  256 MiB) bound the unread queue; ``overflow="pause"`` (default) or ``"drop"``.
* No compression or extensions (picows has none): ``compression="deflate"`` is
  accepted and not offered.
"""

from __future__ import annotations

from . import exceptions, frames, protocol, typing, uri
from .asyncio.client import (
    SET_HEARTBEAT_ID,
    ClientConnection,
    WebSocketClientProtocol,
    backoff,
    connect,
    process_exception,
    unix_connect,
)
from .exceptions import *  # noqa: F403 - every websockets exception name
from .exceptions import __all__ as _exception_names
from .frames import Close, CloseCode
from .protocol import ClientProtocol, State
from .typing import Data, LoggerLike, Origin, StatusLike, Subprotocol

__all__ = [
    "SET_HEARTBEAT_ID", "ClientConnection", "ClientProtocol", "Close", "CloseCode", "Data",
    "LoggerLike", "Origin", "State", "StatusLike", "Subprotocol", "WebSocketClientProtocol",
    "backoff", "connect", "exceptions", "frames", "process_exception", "protocol", "typing",
    "unix_connect", "uri", *_exception_names,
]
