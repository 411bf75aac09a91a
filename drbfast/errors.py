"""drbfast's errors: one base class, Deribit's errors with their code, message and data.

Which call raises what is listed in ``docs/errors.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionLost",
    "DeribitError",
    "DrbfastError",
    "InvalidCredentials",
    "InvalidParams",
    "MalformedReply",
    "MethodNotFound",
    "NotConnected",
    "RawSubscriptionsNeedAuth",
    "RequestTimeout",
    "SubscriptionRefused",
    "TooManyRequests",
    "Unauthorized",
    "error_from_reply",
]


class DrbfastError(Exception):
    """Base class of every error drbfast raises."""


class ConfigurationError(DrbfastError, ValueError):
    """The call's arguments cannot work; the message says what to do instead."""


class NotConnected(DrbfastError):
    """The client is not connected (closed, or between reconnects with reconnect off)."""


class ConnectError(DrbfastError, ConnectionError):
    """The WebSocket could not be opened: refused, reset, TLS failure, an HTTP status
    other than 101 (``status``), or the server hung up in the opening handshake. The
    underlying error is chained as ``__cause__``."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectTimeout(ConnectError, TimeoutError):
    """The TCP connect, TLS or WebSocket handshake did not finish in time."""


class MalformedReply(DrbfastError):
    """The server's reply does not have the shape the method's documentation gives
    (e.g. a subscribe answered with a number); ``method`` and ``result`` say which."""

    def __init__(self, method: str, result: object) -> None:
        super().__init__(f"malformed reply to {method}: {str(result)[:200]}")
        self.method = method
        self.result = result


class ConnectionLost(DrbfastError, ConnectionError):
    """The connection dropped while this request was in flight. The request may or may
    not have reached Deribit: check before repeating a non-idempotent one."""

    def __init__(self, message: str = "connection lost", *, close_code: int | None = None, close_reason: str | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.close_reason = close_reason


class RequestTimeout(DrbfastError, TimeoutError):
    """No response within ``request_timeout``. The request may still execute."""

    def __init__(self, method: str, timeout: float) -> None:
        super().__init__(f"no response to {method} within {timeout:g} s")
        self.method = method
        self.timeout = timeout


class DeribitError(DrbfastError):
    """An error reply from Deribit: ``code``, ``message`` and ``data`` as sent.

    ``method`` is the request's method when the reply could be tied to one.
    """

    code: int
    message: str
    data: Any

    def __init__(self, code: int, message: str, data: Any = None, *, method: str | None = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        self.method = method
        where = f" ({method})" if method else ""
        detail = f": {data!r}" if data is not None else ""
        super().__init__(f"Deribit error {code} {message}{where}{detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (error_from_reply, ({"code": self.code, "message": self.message, "data": self.data}, self.method))


class AuthenticationError(DeribitError):
    """Authentication failed or is missing; retrying with the same credentials will not help."""


class Unauthorized(AuthenticationError):
    """13009 ``unauthorized`` (or 10000): missing, wrong or expired token, or bad signature."""


class InvalidCredentials(AuthenticationError):
    """13004 ``invalid_credentials``: wrong client id or secret."""


class TooManyRequests(DeribitError):
    """10028 ``too_many_requests``: out of credits. Deribit also closes the session."""


class InvalidParams(DeribitError):
    """-32602 ``Invalid params``; ``data`` usually says ``{"reason": ..., "param": ...}``."""


class MethodNotFound(DeribitError):
    """-32601 ``Method not found`` (Coinbase: ``method not in allowlist``)."""


class BadRequest(DeribitError):
    """11050 ``bad_request`` or -32600 (request too large): the request was not parsed."""


class RawSubscriptionsNeedAuth(DeribitError):
    """13778: ``raw`` channels need an authenticated connection."""


class SubscriptionRefused(DrbfastError):
    """Deribit left these channels out of the subscribe result (unknown instrument, bad
    interval, missing permission); ``channels`` lists them. The others are subscribed."""

    def __init__(self, channels: list[str]) -> None:
        super().__init__(f"Deribit did not subscribe {len(channels)} channel(s): {', '.join(channels[:10])}")
        self.channels = channels


_BY_CODE: dict[int, type[DeribitError]] = {
    10000: Unauthorized,
    13009: Unauthorized,
    13004: InvalidCredentials,
    10028: TooManyRequests,
    -32602: InvalidParams,
    -32601: MethodNotFound,
    11050: BadRequest,
    -32600: BadRequest,
    13778: RawSubscriptionsNeedAuth,
}


def error_from_reply(error: Any, method: str | None = None) -> DeribitError:
    """Build the right :class:`DeribitError` subclass from a reply's ``error`` object."""
    if not isinstance(error, dict):
        return DeribitError(0, f"malformed error object {error!r}", method=method)
    code = error.get("code")
    if not isinstance(code, int):
        code = 0
    message = error.get("message")
    cls = _BY_CODE.get(code, DeribitError)
    return cls(code, str(message) if message is not None else "", error.get("data"), method=method)
