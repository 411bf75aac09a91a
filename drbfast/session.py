"""The session's state, sans I/O: what a Deribit session is, apart from sockets and tasks.

- :class:`SessionOptions`: every option of :func:`drbfast.connect`, validated once.
- :class:`SetupPlan`: the set-up sequence run on every (re)connect: hello -> auth ->
  set_heartbeat -> cancel-on-disconnect -> resubscribe, one request at a time, each
  result checked (a malformed one raises :class:`~drbfast.errors.MalformedReply`).
- :class:`PendingTable`: requests in flight by id; all of them fail at once when the
  connection goes.
- :class:`SubscriptionRegistry`: which channels are live and who receives them.
- :class:`ResyncSchedule`: book channels waiting for a fresh snapshot, retried with
  backoff until it works or the channel is unsubscribed.
- :class:`TokenSchedule`: when the access token is refreshed.

The asyncio client (:mod:`drbfast.client`) drives these with bytes and time; the tests
drive them with plain values.
"""

from __future__ import annotations

import math
import ssl as ssl_module
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from .auth import Credentials, Grant, auth_params, refresh_params
from .backoff import Backoff
from .errors import ConfigurationError, MalformedReply
from .protocol import split_channels
from .ratelimit import CreditPools, MATCHING_ENGINE_METHODS

__all__ = [
    "PendingTable",
    "ResyncSchedule",
    "SessionOptions",
    "SetupPlan",
    "SetupStep",
    "SubscriptionRegistry",
    "TokenSchedule",
    "pool_of",
]

T = TypeVar("T")
S = TypeVar("S")


@dataclass(frozen=True)
class SessionOptions:
    """Every option of a session; see :func:`drbfast.connect` for what each does."""

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    auth: Grant = "signature"
    heartbeat: float | None = 10
    cancel_on_disconnect: Literal["connection", "account"] | None = None
    reconnect: bool = True
    request_timeout: float = 10.0
    #: deadline for TCP + TLS + the WebSocket handshake (default: request_timeout)
    open_timeout: float | None = None
    ssl: ssl_module.SSLContext | None = None
    scope: str | None = None
    client_name: str = "drbfast"
    client_version: str = "0.1.0"
    credits: CreditPools | None = field(default_factory=CreditPools)
    backoff: Backoff | None = None
    on_event: Callable[[Any], object] | None = None
    lazy: bool = False
    watchdog: float | None = None
    probe_interval: float | None = None
    max_queue: int = 10_000
    max_frame_size: int = 64 * 1024 * 1024
    listener_options: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.client_id is None) != (self.client_secret is None):
            raise ConfigurationError("give both client_id and client_secret, or neither (no auth)")
        if self.auth not in ("signature", "credentials", "coinbase_cdp"):
            raise ConfigurationError("auth must be 'signature' (default, the secret stays local), 'credentials' "
                                     "or 'coinbase_cdp' (Coinbase's gateway)")
        if self.cancel_on_disconnect not in (None, "connection", "account"):
            raise ConfigurationError("cancel_on_disconnect must be None, 'connection' or 'account'")
        if self.cancel_on_disconnect and self.client_id is None:
            raise ConfigurationError("cancel_on_disconnect needs credentials: it is a private method")
        for name in ("heartbeat", "watchdog", "probe_interval", "open_timeout"):
            value = getattr(self, name)
            if value is not None and not (_finite(value) and value > 0):
                raise ConfigurationError(f"{name} must be a positive number of seconds or None")
        if not (_finite(self.request_timeout) and self.request_timeout > 0):
            raise ConfigurationError("request_timeout must be a positive number of seconds")
        if self.max_queue < 1:
            raise ConfigurationError("max_queue must be at least 1")
        if self.credits is not None and not isinstance(self.credits, CreditPools):
            raise ConfigurationError("credits must be a drbfast.CreditPools (or None to switch the budget off)")

    @property
    def credentials(self) -> Credentials | None:
        if self.client_id is None or self.client_secret is None:
            return None
        return Credentials(self.client_id, self.client_secret)

    @property
    def watchdog_timeout(self) -> float | None:
        """Silence after which the client drops the connection (default 2x heartbeat)."""
        if self.watchdog is not None:
            return self.watchdog
        return self.heartbeat * 2.0 if self.heartbeat else None

    @property
    def connect_timeout(self) -> float:
        return self.open_timeout if self.open_timeout is not None else self.request_timeout


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pool_of(method: str) -> Literal["matching", "subscribe", "non_matching"]:
    """Which credit pool ``method`` draws on (PROTOCOL.md 9)."""
    if method in MATCHING_ENGINE_METHODS:
        return "matching"
    if method in ("public/subscribe", "private/subscribe"):
        return "subscribe"
    return "non_matching"


# ---------------------------------------------------------------- set-up


@dataclass(frozen=True)
class SetupStep:
    """One set-up request: ``kind`` is hello, auth, heartbeat, cancel_on_disconnect or
    subscribe; ``channels`` lists what a subscribe step asks for."""

    kind: str
    method: str
    params: dict[str, Any]
    channels: tuple[str, ...] = ()


class SetupPlan:
    """The set-up of one connection. ``next()`` gives the next request (None when the
    session is ready); feed its result to ``done()``, which checks it and returns what
    it tells: for a subscribe, the channels Deribit refused."""

    def __init__(self, options: SessionOptions, channels: Iterable[str], *, now_ms: Callable[[], int] | None = None) -> None:
        self._options = options
        self._creds = options.credentials
        self._channels = list(channels)
        self._steps = self._plan()
        self._current: SetupStep | None = None
        self.token: dict[str, Any] | None = None
        self.refused: list[str] = []
        self._now_ms = now_ms

    def _plan(self) -> Iterator[SetupStep]:
        o = self._options
        yield SetupStep("hello", "public/hello", {"client_name": o.client_name, "client_version": o.client_version})
        if self._creds is not None:
            # Built when it is due: a client_signature carries a fresh timestamp.
            now = self._now_ms() if self._now_ms is not None else None
            yield SetupStep("auth", "public/auth", auth_params(self._creds, o.auth, o.scope, now_ms=now))
        if o.heartbeat is not None:
            yield SetupStep("heartbeat", "public/set_heartbeat", {"interval": o.heartbeat})
        if o.cancel_on_disconnect is not None:
            # Connection scope covers only this socket: re-armed on every connect.
            yield SetupStep("cancel_on_disconnect", "private/enable_cancel_on_disconnect", {"scope": o.cancel_on_disconnect})
        if self._channels:
            method = "private/subscribe" if self._creds is not None else "public/subscribe"
            for chunk in split_channels(method, self._channels):
                yield SetupStep("subscribe", method, {"channels": chunk}, tuple(chunk))

    def next(self) -> SetupStep | None:
        self._current = next(self._steps, None)
        return self._current

    def done(self, step: SetupStep, result: Any) -> list[str]:
        if step.kind == "auth":
            if not isinstance(result, dict) or not isinstance(result.get("access_token"), str):
                raise MalformedReply(step.method, _redact(result))
            self.token = result
        elif step.kind in ("heartbeat", "cancel_on_disconnect"):
            if result != "ok":
                raise MalformedReply(step.method, result)
        elif step.kind == "subscribe":
            refused = refused_channels(step.method, step.channels, result)
            self.refused.extend(refused)
            return refused
        return []


def refused_channels(method: str, asked: Iterable[str], result: Any) -> list[str]:
    """The channels of ``asked`` that a subscribe ``result`` left out (Deribit answers
    with the list it subscribed). Raises :class:`MalformedReply` if it is no list of
    strings."""
    if not isinstance(result, list) or not all(isinstance(c, str) for c in result):
        raise MalformedReply(method, result)
    got = set(result)
    return [c for c in asked if c not in got]


def _redact(result: Any) -> Any:
    if isinstance(result, dict):
        return {k: ("<redacted>" if "token" in k else v) for k, v in result.items()}
    return result


# ---------------------------------------------------------------- requests in flight


@dataclass
class Pending(Generic[T]):
    """A request in flight: its ``method`` and whatever wakes its caller (``waiter``)."""

    method: str
    waiter: T


class PendingTable(Generic[T]):
    """Requests in flight by integer id. ``pop`` ties a reply to its request;
    ``fail_all`` hands back every one still waiting (the connection went)."""

    def __init__(self) -> None:
        self._by_id: dict[int, Pending[T]] = {}
        self._next = 1

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, method: str, waiter: T) -> int:
        req_id = self._next
        self._next += 1
        self._by_id[req_id] = Pending(method, waiter)
        return req_id

    def pop(self, req_id: Any) -> Pending[T] | None:
        if type(req_id) is not int:
            return None
        return self._by_id.pop(req_id, None)

    def discard(self, req_id: int) -> None:
        self._by_id.pop(req_id, None)

    def fail_all(self) -> list[Pending[T]]:
        pending = list(self._by_id.values())
        self._by_id.clear()
        return pending


# ---------------------------------------------------------------- subscriptions


class SubscriptionRegistry(Generic[S]):
    """Live channels and the subscriptions that receive each one, in order."""

    def __init__(self) -> None:
        self._by_channel: dict[str, list[S]] = {}

    def add(self, sub: S, channels: Iterable[str]) -> list[str]:
        """Register ``sub`` for ``channels``; return those nobody held before."""
        new = []
        for channel in channels:
            holders = self._by_channel.setdefault(channel, [])
            if not holders:
                new.append(channel)
            if sub not in holders:
                holders.append(sub)
        return new

    def remove(self, sub: S, channels: Iterable[str]) -> list[str]:
        """Unregister ``sub`` from ``channels``; return those nobody holds any more."""
        gone = []
        for channel in channels:
            holders = self._by_channel.get(channel)
            if holders and sub in holders:
                holders.remove(sub)
                if not holders:
                    del self._by_channel[channel]
                    gone.append(channel)
        return gone

    def holders(self, channel: str) -> list[S] | None:
        return self._by_channel.get(channel)

    def __contains__(self, channel: object) -> bool:
        return channel in self._by_channel

    @property
    def channels(self) -> list[str]:
        return list(self._by_channel)


# ---------------------------------------------------------------- book resyncs


class ResyncSchedule:
    """Book channels that need a fresh snapshot (unsubscribe + subscribe, PROTOCOL.md
    4.3), each retried with its own backoff until it works or is cancelled.

    An attempt runs between :meth:`begin` and :meth:`done` (or :meth:`failed`). A
    request made while an attempt is in flight is not lost: the snapshot that attempt
    brings may be the very message a slow consumer's queue just dropped, so
    :meth:`done` then schedules another attempt at once instead of forgetting the
    channel. :meth:`overdue` tells a channel whose last attempt worked more than
    ``grace`` seconds ago but which still has no snapshot: ask again."""

    def __init__(self, backoff: Callable[[], Backoff] = Backoff, grace: float = 2.0) -> None:
        self._make = backoff
        self.grace = grace
        self._due: dict[str, tuple[float, Backoff]] = {}
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._done_at: dict[str, float] = {}

    def __contains__(self, channel: object) -> bool:
        return channel in self._due

    def __len__(self) -> int:
        return len(self._due)

    def request(self, channel: str, now: float) -> bool:
        """Ask for a resync now; False if one is already scheduled (if that one is in
        flight, another follows it)."""
        if channel in self._due:
            if channel in self._running:
                self._again.add(channel)
            return False
        self._due[channel] = (now, self._make())
        return True

    def due(self, now: float) -> list[str]:
        return [c for c, (t, _) in self._due.items() if t <= now and c not in self._running]

    def next_due(self) -> float | None:
        return min((t for c, (t, _) in self._due.items() if c not in self._running), default=None)

    def begin(self, channel: str) -> None:
        """An attempt for ``channel`` starts (requests from now on ask for another)."""
        self._running.add(channel)
        self._again.discard(channel)

    def failed(self, channel: str, now: float) -> float:
        """The attempt failed: schedule the next one; returns the delay."""
        self._running.discard(channel)
        self._again.discard(channel)
        entry = self._due.get(channel)
        if entry is None:
            return 0.0
        delay = entry[1].next()
        self._due[channel] = (now + delay, entry[1])
        return delay

    def done(self, channel: str, now: float = 0.0) -> bool:
        """The attempt worked; True if a request came during it and another attempt is
        now due (at ``now``)."""
        self._running.discard(channel)
        self._done_at[channel] = now
        if channel in self._again and channel in self._due:
            self._again.discard(channel)
            self._due[channel] = (now, self._make())
            return True
        self._due.pop(channel, None)
        return False

    def overdue(self, channel: str, now: float) -> bool:
        """No attempt pending, and the last one worked more than ``grace`` seconds
        ago (for a channel that still waits for its snapshot: it never came)."""
        at = self._done_at.get(channel)
        return at is not None and channel not in self._due and now - at > self.grace

    def cancel(self, channel: str) -> None:
        """Forget ``channel`` (unsubscribed): no attempt follows."""
        self._running.discard(channel)
        self._again.discard(channel)
        self._due.pop(channel, None)
        self._done_at.pop(channel, None)

    def clear(self) -> None:
        self._due.clear()
        self._running.clear()
        self._again.clear()
        self._done_at.clear()


# ---------------------------------------------------------------- tokens


class TokenSchedule:
    """When to refresh the access token: at 80 % of ``expires_in`` (Coinbase's SDK
    rule; Deribit documents no grace period)."""

    FRACTION = 0.8

    def __init__(self) -> None:
        self.refresh_token: str | None = None
        self.refresh_at: float | None = None
        self.scope: str | None = None

    def on_auth(self, result: dict[str, Any], now: float) -> None:
        token = result.get("refresh_token")
        self.refresh_token = token if isinstance(token, str) else None
        scope = result.get("scope")
        self.scope = scope if isinstance(scope, str) else None
        expires = result.get("expires_in")
        if isinstance(expires, (int, float)) and _finite(expires) and expires > 0:
            self.refresh_at = now + expires * self.FRACTION
        else:
            self.refresh_at = None

    def due(self, now: float) -> bool:
        return self.refresh_at is not None and now >= self.refresh_at

    def refresh_params(self) -> dict[str, Any] | None:
        return refresh_params(self.refresh_token) if self.refresh_token else None

    def clear(self) -> None:
        self.refresh_token = None
        self.refresh_at = None
