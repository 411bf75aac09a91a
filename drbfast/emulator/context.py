"""What a request handler is given: an explicit :class:`Context` instead of reaching into
the connection or the emulator. The session and the publication hub are described by
protocols, so the same handlers serve WebSocket connections and HTTP requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .channels import Channel
from .config import EmulatorConfig
from .exchange import Exchange, Token

__all__ = ["Context", "Hub", "Session"]


class Session(Protocol):
    """The caller: a WebSocket connection, or one HTTP request."""

    id: int
    client_id: str | None
    token: Token | None
    cod: bool
    logged_out: bool
    client_name: str | None

    @property
    def subscriptions(self) -> set[str]: ...

    def on_authenticated(self, token: Token) -> None: ...

    def start_heartbeat(self, interval: float) -> None: ...

    def stop_heartbeat(self) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


class Hub(Protocol):
    """Subscriptions and what is sent on them."""

    def subscribe(self, session: Session, channel: Channel, label: str | None) -> Callable[[], None] | None:
        """Subscribe; return what to send right after the response (a snapshot), if any."""

    def unsubscribe(self, session: Session, name: str) -> bool: ...

    def publish_events(self) -> None:
        """Tell subscribers what the exchange did since the last call (the transports
        call this once a request's reply is on its way)."""


@dataclass
class Context:
    """One request's world: the exchange, the configuration, the caller and the hub."""

    exchange: Exchange
    config: EmulatorConfig
    session: Session
    hub: Hub
    #: True for the HTTP API (WebSocket-only methods answer 10030 there)
    http: bool = False
    now: float = field(default_factory=time.time)
    after: list[Callable[[], Any]] = field(default_factory=list)

    @property
    def now_ms(self) -> int:
        return int(self.now * 1000)

    @property
    def client_id(self) -> str:
        """The authenticated account (private methods only run once it is known)."""
        cid = self.session.client_id
        assert cid is not None, "private handler without an account"
        return cid

    def after_response(self, action: Callable[[], Any]) -> None:
        """Run ``action`` once the response has been sent."""
        self.after.append(action)
