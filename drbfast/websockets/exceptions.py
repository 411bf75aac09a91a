"""Every ``websockets.exceptions`` name, legacy ones included, catchable four ways.

Each class has the name and place in the hierarchy it has in ``websockets`` and
subclasses

* :class:`drbfast.errors.DrbfastError` (every drbfast error does),
* the class of the same name in ``picows.websockets.exceptions`` (if it has one),
* the class of the same name in ``websockets.exceptions`` when the ``websockets``
  package is installed (it is optional),

so code that switched its import to ``drbfast.websockets`` but still says ``except
websockets.ConnectionClosed`` somewhere keeps catching what drbfast raises.

Legacy (websockets <= 13) code catches a refused handshake as ``InvalidStatusCode``
(``.status_code``, ``.headers``); new code as ``InvalidStatus`` (``.response``). The
drop-in raises one :class:`InvalidStatus` that is both. ``ConnectionClosed.code`` and
``.reason`` (legacy) are kept.
"""

from __future__ import annotations

import warnings
from typing import Any

import picows.websockets.exceptions as _picows_exc

from ..errors import DrbfastError
from .frames import Close

try:  # optional: make our classes catchable as the real websockets' ones
    import websockets.exceptions as _upstream_exc
except ImportError:  # pragma: no cover - websockets is a test extra
    _upstream_exc = None  # type: ignore[assignment]

__all__ = [
    "AbortHandshake", "Close", "ConcurrencyError", "ConnectionClosed", "ConnectionClosedError",
    "ConnectionClosedOK", "DuplicateParameter", "HeaderLineTooLong", "RequestLineTooLong",
    "StatusLineTooLong", "TooManyHeaders", "InvalidHandshake", "InvalidHeader",
    "InvalidHeaderFormat", "InvalidHeaderValue", "InvalidMessage", "InvalidMethod", "InvalidOrigin",
    "InvalidParameterName", "InvalidParameterValue", "InvalidProtocol", "InvalidProxy",
    "InvalidProxyMessage", "InvalidProxyStatus", "InvalidState", "InvalidStatus", "InvalidStatusCode",
    "InvalidURI", "InvalidUpgrade", "NegotiationError", "PayloadTooBig", "ProtocolError",
    "ProxyError", "RedirectHandshake", "SecurityError", "TooManyFragments", "WebSocketException",
    "WebSocketProtocolError",
]


def _theirs(name: str) -> type | None:
    if _upstream_exc is None:
        return None
    with warnings.catch_warnings():  # legacy names warn on access in websockets >= 14
        warnings.simplefilter("ignore", DeprecationWarning)
        found = getattr(_upstream_exc, name, None)
    return found if isinstance(found, type) else None


def _bases(name: str, *ours: type) -> tuple[type, ...]:
    """Our parents first, then picows' and websockets' class ``name`` (when they
    exist), then builtin parents none of those already has."""
    mine = [c for c in ours if c.__module__ == __name__ or c is DrbfastError]
    builtin = [c for c in ours if c not in mine]
    extra = [c for c in (getattr(_picows_exc, name, None), _theirs(name)) if isinstance(c, type)]
    head = [*mine, *extra]
    return (*head, *[b for b in builtin if not any(issubclass(h, b) for h in head)])


class WebSocketException(*_bases("WebSocketException", DrbfastError)):  # type: ignore[misc]
    """Base class of the ``websockets``-named exceptions."""

    def __init__(self, *args: Any) -> None:
        Exception.__init__(self, *args)


class ConnectionClosed(*_bases("ConnectionClosed", WebSocketException)):  # type: ignore[misc]
    """Raised when using a closed connection. ``rcvd`` / ``sent``: the close frames
    received and sent (:class:`Close`, or ``None``); ``rcvd_then_sent``: their order."""

    rcvd: Close | None
    sent: Close | None
    rcvd_then_sent: bool | None

    def __init__(self, rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None = None) -> None:
        Exception.__init__(self, rcvd, sent, rcvd_then_sent)
        self.rcvd, self.sent, self.rcvd_then_sent = rcvd, sent, rcvd_then_sent

    def __str__(self) -> str:
        if self.rcvd is None:
            return "no close frame received or sent" if self.sent is None else f"sent {self.sent}; no close frame received"
        if self.sent is None:
            return f"received {self.rcvd}; no close frame sent"
        if self.rcvd_then_sent:
            return f"received {self.rcvd}; then sent {self.sent}"
        return f"sent {self.sent}; then received {self.rcvd}"

    @property
    def code(self) -> int:
        """The received close code; 1006 if none (legacy websockets API)."""
        return self.rcvd.code if self.rcvd is not None else 1006

    @property
    def reason(self) -> str:
        """The received close reason; ``""`` if none (legacy websockets API)."""
        return self.rcvd.reason if self.rcvd is not None else ""


class ConnectionClosedOK(*_bases("ConnectionClosedOK", ConnectionClosed)):  # type: ignore[misc]
    """Close frames with 1000, 1001 or 1005 (no code) were received and sent."""


class ConnectionClosedError(*_bases("ConnectionClosedError", ConnectionClosed)):  # type: ignore[misc]
    """Any other end: an error close code, or no close frame (code 1006)."""


class InvalidURI(*_bases("InvalidURI", WebSocketException)):  # type: ignore[misc]
    """The URI is not a ``ws://`` or ``wss://`` URI."""

    def __init__(self, uri: str, msg: str) -> None:
        Exception.__init__(self, uri, msg)
        self.uri, self.msg = uri, msg

    def __str__(self) -> str:
        return f"{self.uri} isn't a valid URI: {self.msg}"


class InvalidProxy(*_bases("InvalidProxy", WebSocketException)):  # type: ignore[misc]
    """The proxy URL is not valid or its scheme is not supported."""

    def __init__(self, proxy: str, msg: str) -> None:
        Exception.__init__(self, proxy, msg)
        self.proxy, self.msg = proxy, msg

    def __str__(self) -> str:
        return f"{self.proxy} isn't a valid proxy: {self.msg}"


class InvalidHandshake(*_bases("InvalidHandshake", WebSocketException)):  # type: ignore[misc]
    """The opening handshake failed."""


class SecurityError(*_bases("SecurityError", InvalidHandshake)):  # type: ignore[misc]
    """A handshake broke a security rule (too many redirects, https -> http)."""


class RequestLineTooLong(*_bases("RequestLineTooLong", SecurityError)):  # type: ignore[misc]
    """A request line was too long (server side; here for the name)."""


class StatusLineTooLong(*_bases("StatusLineTooLong", SecurityError)):  # type: ignore[misc]
    """The response's status line was too long."""


class HeaderLineTooLong(*_bases("HeaderLineTooLong", SecurityError)):  # type: ignore[misc]
    """A header line was too long."""


class TooManyHeaders(*_bases("TooManyHeaders", SecurityError)):  # type: ignore[misc]
    """The response had too many headers."""


class ProxyError(*_bases("ProxyError", InvalidHandshake)):  # type: ignore[misc]
    """Connecting through the proxy failed."""


class InvalidProxyMessage(*_bases("InvalidProxyMessage", ProxyError)):  # type: ignore[misc]
    """The proxy's answer to CONNECT was malformed."""


class InvalidProxyStatus(*_bases("InvalidProxyStatus", ProxyError)):  # type: ignore[misc]
    """The proxy refused CONNECT."""

    def __init__(self, response: Any) -> None:
        Exception.__init__(self, response)
        self.response = response

    def __str__(self) -> str:
        return f"proxy rejected connection: HTTP {int(self.response.status_code):d}"


class InvalidMessage(*_bases("InvalidMessage", InvalidHandshake)):  # type: ignore[misc]
    """The handshake response was malformed, or the connection ended in it."""


class InvalidMethod(*_bases("InvalidMethod", InvalidHandshake)):  # type: ignore[misc]
    """A handshake request did not use GET (server side; here for the name)."""

    def __init__(self, method: str) -> None:
        Exception.__init__(self, method)
        self.method = method

    def __str__(self) -> str:
        return f"unsupported HTTP method: {self.method}"


class InvalidProtocol(*_bases("InvalidProtocol", InvalidHandshake)):  # type: ignore[misc]
    """A handshake did not use HTTP/1.1."""

    def __init__(self, protocol: str) -> None:
        Exception.__init__(self, protocol)
        self.protocol = protocol

    def __str__(self) -> str:
        return f"unsupported HTTP version: {self.protocol}"


class InvalidStatusCode(*_bases("InvalidStatusCode", InvalidHandshake)):  # type: ignore[misc]
    """Legacy (websockets <= 13) name of a refused upgrade: ``status_code``, ``headers``."""

    def __init__(self, status_code: int, headers: Any) -> None:
        Exception.__init__(self, status_code, headers)
        self.status_code, self.headers = status_code, headers

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {self.status_code}"


class InvalidStatus(*_bases("InvalidStatus", InvalidStatusCode)):  # type: ignore[misc]
    """The server answered the upgrade with another HTTP status. ``response`` has
    ``status_code``, ``reason_phrase``, ``headers`` and ``body``; ``status_code`` and
    ``headers`` are also here, so ``except InvalidStatusCode`` (legacy) catches it."""

    def __init__(self, response: Any) -> None:
        Exception.__init__(self, response)
        self.response = response
        self.status_code = int(response.status_code)
        self.headers = response.headers

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {int(self.response.status_code):d}"


class InvalidHeader(*_bases("InvalidHeader", InvalidHandshake)):  # type: ignore[misc]
    """A handshake header is missing or has a wrong value."""

    def __init__(self, name: str, value: str | None = None) -> None:
        Exception.__init__(self, name, value)
        self.name, self.value = name, value

    def __str__(self) -> str:
        if self.value is None:
            return f"missing {self.name} header"
        if self.value == "":
            return f"empty {self.name} header"
        return f"invalid {self.name} header: {self.value}"


class InvalidHeaderFormat(*_bases("InvalidHeaderFormat", InvalidHeader)):  # type: ignore[misc]
    """A handshake header could not be parsed."""

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        InvalidHeader.__init__(self, name, f"{error} at {pos} in {header}")


class InvalidHeaderValue(*_bases("InvalidHeaderValue", InvalidHeader)):  # type: ignore[misc]
    """A handshake header has a value that is not acceptable."""


class InvalidOrigin(*_bases("InvalidOrigin", InvalidHeader)):  # type: ignore[misc]
    """The Origin header was not allowed (server side; here for the name)."""

    def __init__(self, origin: str | None) -> None:
        InvalidHeader.__init__(self, "Origin", origin)


class InvalidUpgrade(*_bases("InvalidUpgrade", InvalidHeader)):  # type: ignore[misc]
    """The Upgrade or Connection header is not right."""


class NegotiationError(*_bases("NegotiationError", InvalidHandshake)):  # type: ignore[misc]
    """Negotiating an extension or a subprotocol failed."""


class DuplicateParameter(*_bases("DuplicateParameter", NegotiationError)):  # type: ignore[misc]
    """A parameter is repeated in an extension header."""

    def __init__(self, name: str) -> None:
        Exception.__init__(self, name)
        self.name = name

    def __str__(self) -> str:
        return f"duplicate parameter: {self.name}"


class InvalidParameterName(*_bases("InvalidParameterName", NegotiationError)):  # type: ignore[misc]
    """A parameter name in an extension header is not valid."""

    def __init__(self, name: str) -> None:
        Exception.__init__(self, name)
        self.name = name

    def __str__(self) -> str:
        return f"invalid parameter name: {self.name}"


class InvalidParameterValue(*_bases("InvalidParameterValue", NegotiationError)):  # type: ignore[misc]
    """A parameter value in an extension header is not valid."""

    def __init__(self, name: str, value: str | None) -> None:
        Exception.__init__(self, name, value)
        self.name, self.value = name, value

    def __str__(self) -> str:
        if self.value is None:
            return f"missing value for parameter {self.name}"
        if self.value == "":
            return f"empty value for parameter {self.name}"
        return f"invalid value for parameter {self.name}: {self.value}"


class AbortHandshake(*_bases("AbortHandshake", InvalidHandshake)):  # type: ignore[misc]
    """Legacy server-side name, kept so ``except`` clauses that list it import."""

    def __init__(self, status: int, headers: Any, body: bytes = b"") -> None:
        Exception.__init__(self, status, headers, body)
        self.status, self.headers, self.body = int(status), headers, body

    def __str__(self) -> str:
        return f"HTTP {self.status:d}, {len(self.headers)} headers, {len(self.body)} bytes"


class RedirectHandshake(*_bases("RedirectHandshake", InvalidHandshake)):  # type: ignore[misc]
    """Legacy name: a handshake was redirected."""

    def __init__(self, uri: str) -> None:
        Exception.__init__(self, uri)
        self.uri = uri

    def __str__(self) -> str:
        return f"redirect to {self.uri}"


class ProtocolError(*_bases("ProtocolError", WebSocketException)):  # type: ignore[misc]
    """A frame broke the protocol."""


#: Legacy alias of :class:`ProtocolError`.
WebSocketProtocolError = ProtocolError


class PayloadTooBig(*_bases("PayloadTooBig", WebSocketException)):  # type: ignore[misc]
    """A message exceeded ``max_size``."""

    def __init__(self, size_or_message: int | None | str, max_size: int | None = None,
                 current_size: int | None = None) -> None:
        Exception.__init__(self, size_or_message, max_size, current_size)
        self.message = size_or_message if isinstance(size_or_message, str) else None
        self.size = None if isinstance(size_or_message, str) else size_or_message
        self.max_size = max_size
        self.current_size = current_size

    def __str__(self) -> str:
        if self.message is not None:
            return self.message
        text = "frame "
        if self.size is not None:
            text += f"with {self.size} bytes "
        if self.current_size is not None:
            text += f"after reading {self.current_size} bytes "
        return text + f"exceeds limit of {self.max_size} bytes"


class TooManyFragments(*_bases("TooManyFragments", WebSocketException)):  # type: ignore[misc]
    """A message had too many fragments."""


class InvalidState(*_bases("InvalidState", WebSocketException, AssertionError)):  # type: ignore[misc]
    """An operation is not allowed in the connection's current state."""


class ConcurrencyError(*_bases("ConcurrencyError", WebSocketException, RuntimeError)):  # type: ignore[misc]
    """Two coroutines called ``recv()`` (or ``recv_streaming()``) at once."""
