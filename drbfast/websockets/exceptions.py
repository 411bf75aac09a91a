"""The ``websockets`` exception names, catchable three ways.

Every class here has the name and place in the hierarchy it has in
``websockets.exceptions``, and subclasses both

* the class of the same name in ``picows.websockets.exceptions`` (picows' own
  drop-in layer), and
* the class of the same name in ``websockets.exceptions`` when the ``websockets``
  package is installed (it is optional),

so code that switched its import to ``drbfast.websockets`` but still says
``except websockets.ConnectionClosed`` somewhere (or ``except
picows.websockets.ConnectionClosed``) keeps catching what drbfast raises. The
constructors and ``__str__`` are ours: the two parents disagree on ``__init__``
(picows calls ``super().__init__()`` with no arguments), so ours call
``Exception.__init__`` directly and set the attributes both document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import picows.websockets.exceptions as _picows_exc

try:  # optional: make our classes catchable as the real websockets' ones
    import websockets.exceptions as _upstream_exc
except ImportError:  # pragma: no cover - websockets is a test extra
    _upstream_exc = None  # type: ignore[assignment]

__all__ = [
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
    "WebSocketException",
]


def _bases(name: str, *ours: type) -> tuple[type, ...]:
    """The bases of our class ``name``: our own parent classes, then picows' class
    ``name``, then websockets' class ``name`` (if installed), then builtin parents
    (``Exception``...) that none of those already derives from."""
    mine = [c for c in ours if c.__module__ == __name__]
    builtin = [c for c in ours if c.__module__ != __name__]
    extra: list[type] = [getattr(_picows_exc, name)]
    theirs = getattr(_upstream_exc, name, None) if _upstream_exc is not None else None
    if isinstance(theirs, type):
        extra.append(theirs)
    head = [*mine, *extra]
    return (*head, *[b for b in builtin if not any(issubclass(h, b) for h in head)])


@dataclass(frozen=True)
class Close:
    """A close frame's ``code`` and ``reason`` (as ``websockets.frames.Close``)."""

    code: int
    reason: str

    def __str__(self) -> str:
        return f"{self.code} ({self.reason})" if self.reason else str(self.code)


class WebSocketException(*_bases("WebSocketException", Exception)):  # type: ignore[misc]
    """Base class of the ``websockets``-named exceptions drbfast raises."""

    def __init__(self, *args: Any) -> None:
        Exception.__init__(self, *args)


class ConnectionClosed(*_bases("ConnectionClosed", WebSocketException)):  # type: ignore[misc]
    """Raised when using a closed connection.

    ``rcvd`` / ``sent``: the close frames received and sent (:class:`Close`, or
    ``None`` if there was none, e.g. the TCP connection just dropped);
    ``rcvd_then_sent``: which came first when there were both.
    """

    rcvd: Close | None
    sent: Close | None
    rcvd_then_sent: bool | None

    def __init__(self, rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None = None) -> None:
        Exception.__init__(self, rcvd, sent, rcvd_then_sent)
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent

    def __str__(self) -> str:
        if self.rcvd is None and self.sent is None:
            return "no close frame received or sent"
        if self.rcvd is None:
            return f"sent {self.sent}; no close frame received"
        if self.sent is None:
            return f"received {self.rcvd}; no close frame sent"
        order = "received then sent" if self.rcvd_then_sent else "sent then received"
        return f"{order} close frames: received {self.rcvd}, sent {self.sent}"

    @property
    def code(self) -> int:
        """The received close code; 1006 if none was received (legacy websockets API)."""
        return self.rcvd.code if self.rcvd is not None else 1006

    @property
    def reason(self) -> str:
        """The received close reason; ``""`` if none was received (legacy API)."""
        return self.rcvd.reason if self.rcvd is not None else ""


class ConnectionClosedOK(*_bases("ConnectionClosedOK", ConnectionClosed)):  # type: ignore[misc]
    """Close frames 1000 or 1001 were both received and sent."""


class ConnectionClosedError(*_bases("ConnectionClosedError", ConnectionClosed)):  # type: ignore[misc]
    """Any other end: an error close code, or no close frame (code 1006)."""


class InvalidURI(*_bases("InvalidURI", WebSocketException)):  # type: ignore[misc]
    """The URI is not a ``ws://`` or ``wss://`` URI."""

    def __init__(self, uri: str, msg: str) -> None:
        Exception.__init__(self, uri, msg)
        self.uri = uri
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.uri} isn't a valid WebSocket URI: {self.msg}"


class InvalidHandshake(*_bases("InvalidHandshake", WebSocketException)):  # type: ignore[misc]
    """The opening handshake failed."""


class InvalidMessage(*_bases("InvalidMessage", InvalidHandshake)):  # type: ignore[misc]
    """The server's handshake response was malformed (or the connection ended in it)."""


class InvalidStatus(*_bases("InvalidStatus", InvalidHandshake)):  # type: ignore[misc]
    """The server answered the upgrade request with another HTTP status.

    ``response`` has ``status_code``, ``reason_phrase``, ``headers`` and ``body``.
    """

    def __init__(self, response: Any) -> None:
        Exception.__init__(self, response)
        self.response = response

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {int(self.response.status_code):d}"


class InvalidState(*_bases("InvalidState", WebSocketException)):  # type: ignore[misc]
    """An operation is not allowed in the connection's current state."""


class ConcurrencyError(*_bases("ConcurrencyError", WebSocketException, RuntimeError)):  # type: ignore[misc]
    """Two coroutines called ``recv()`` (or ``ping()``-like calls) at once."""
