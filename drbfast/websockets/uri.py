"""``websockets.uri``: :func:`parse_uri` and :class:`WebSocketURI`."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from .exceptions import InvalidURI

__all__ = ["WebSocketURI", "parse_uri"]


@dataclass
class WebSocketURI:
    """A parsed ``ws://`` or ``wss://`` URI (as ``websockets.uri.WebSocketURI``)."""

    secure: bool
    host: str
    port: int
    path: str
    query: str
    username: str | None = None
    password: str | None = None

    @property
    def resource_name(self) -> str:
        return (self.path or "/") + (f"?{self.query}" if self.query else "")

    @property
    def user_info(self) -> tuple[str, str] | None:
        return None if self.username is None or self.password is None else (self.username, self.password)

    @property
    def origin(self) -> tuple[bool, str, int]:
        """What must match for a redirect to be same-origin."""
        return self.secure, self.host, self.port


def parse_uri(uri: str) -> WebSocketURI:
    """Parse and check a WebSocket URI; raise :class:`InvalidURI` if it is not one."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    if parsed.hostname is None:
        raise InvalidURI(uri, "hostname isn't provided")
    if parsed.fragment:
        raise InvalidURI(uri, "fragment identifier is meaningless")
    secure = parsed.scheme == "wss"
    try:
        port = parsed.port or (443 if secure else 80)
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from None
    return WebSocketURI(secure, parsed.hostname, port, parsed.path, parsed.query,
                        parsed.username, parsed.password)
