"""A drop-in for the ``websockets`` asyncio client, with Deribit heartbeats handled below.

Change the import and keep the code::

    from drbfast import websockets          # was: import websockets

    async with websockets.connect(url, heartbeat=10) as ws:
        await ws.send(json.dumps(request))
        async for message in ws:
            ...

What differs from ``websockets``:

* Deribit's ``heartbeat`` and ``test_request`` messages, and the replies to the
  engine's own ``public/test``, are handled by the compiled listener
  (:class:`drbfast.FastListener`) and never come out of ``recv()`` or ``async for``.
  A ``test_request`` is answered as soon as its bytes are read, however far behind
  the application's reading is.
* ``heartbeat=N`` sends ``public/set_heartbeat`` right after the handshake and
  waits for the reply; a refused request raises its :class:`drbfast.DeribitError`
  from ``connect()``. The reply is not shown to ``recv()``.
* ``max_queue`` defaults to 100,000 messages (websockets: 16), so a reader that
  stalls for a while does not stop the socket from being read, and test_requests
  from being answered. When the queue does fill, reading pauses until a quarter is
  left, as in websockets (and heartbeats wait with everything else).
* No permessage-deflate, no custom extensions, ``ping(data)`` without data.

Everything else the user sends and receives passes through untouched. The
exception classes have the ``websockets`` names and also subclass the classes of
the same name in ``websockets.exceptions`` (when installed) and
``picows.websockets.exceptions``.
"""

from __future__ import annotations

from . import exceptions
from .client import SET_HEARTBEAT_ID, ClientConnection, State, backoff, connect, process_exception
from .exceptions import (
    Close,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidMessage,
    InvalidState,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)

__all__ = [
    "SET_HEARTBEAT_ID",
    "ClientConnection",
    "Close",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "State",
    "WebSocketException",
    "backoff",
    "connect",
    "exceptions",
    "process_exception",
]
