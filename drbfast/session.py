"""The Deribit session, sans I/O: what a session decides, apart from sockets, tasks and timers.

The split: :class:`Session` (here) decides; :class:`drbfast.client.Client` (the asyncio
driver) moves bytes, keeps time, waits for credits, resolves futures and calls callbacks.
There is no asyncio here: the tests drive a Session with plain bytes and a fake clock.

What the Session decides, and where:

- **The lifecycle** (:class:`State`, one enum, changed only here; every change is a
  :class:`StateChanged` event): :meth:`Session.connecting`,
  :meth:`~Session.connection_made`, :meth:`~Session.connection_lost`,
  :meth:`~Session.attempt_failed` (retry, or FAILED: bad credentials at once, a 13009
  after :data:`AUTH_RETRIES`), :meth:`~Session.fail`, :meth:`~Session.close`,
  :meth:`~Session.closed`.
- **The set-up** on every connection, one request at a time, each result checked
  (:class:`SetupPlan`): hello -> auth -> set_heartbeat -> cancel-on-disconnect ->
  resubscribe; a reply advances it from :meth:`~Session.receive`.
- **Requests in flight** by id: :meth:`~Session.request` / :meth:`~Session.order` give
  the frame; the reply comes out as :class:`Answered`, a timeout
  (:meth:`~Session.expire`) or a drop as :class:`Failed`.
- **Receiving** (:meth:`~Session.receive`, told the lane and channel the listener's
  classifier found): replies matched, notifications routed to their holders
  (:class:`Notification`), ``book.*`` continuity (a gap refuses changes and schedules a
  resync), kept books applied from the bytes (:class:`BookChanged`), parse errors counted.
- **Time** (:meth:`~Session.tick`, :meth:`~Session.next_deadline`): the watchdog, probes,
  token refresh (retried with a bounded backoff before expiry; past expiry the
  connection is dropped to re-authenticate), book resyncs (unsubscribe + subscribe with
  backoff), lookups of orders whose ack was lost (retried :data:`RECONCILE_ATTEMPTS`
  times, then settled "unknown": :class:`Settled`).
- **On connection loss** every request fails, lost orders are queued for reconciliation
  and every kept book is marked not synced at once (a ``book_stale`` :class:`Notice`).

Actions for the driver: :class:`Send`, :class:`Probe`, :class:`Drop`, :class:`Wake`.
Events: :class:`Answered`, :class:`Failed`, :class:`Settled`, :class:`Notification`,
:class:`BookChanged`, :class:`Notice` (the client's public ``Event``),
:class:`StateChanged`.

The containers it is built from, each testable alone:

- :class:`SessionOptions`: every option of :func:`drbfast.connect`, validated once.
- :class:`SetupPlan`: the set-up sequence above.
- :class:`PendingTable`: requests in flight by id (for drivers that keep their own).
- :class:`SubscriptionRegistry`: which channels are live and who receives them.
- :class:`ResyncSchedule`: book channels waiting for a fresh snapshot, with backoff.
- :class:`TokenSchedule`: when the access token is refreshed, and retried.
"""

from __future__ import annotations

import enum
import logging
import math
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import simdjson

from ._book import OrderBook
from .auth import Credentials, Grant, auth_params, refresh_params
from .backoff import Backoff
from .book import RESYNC_STATUSES, BookStatus
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionLost,
    DrbfastError,
    MalformedReply,
    RequestTimeout,
    SubscriptionRefused,
    Unauthorized,
    error_from_reply,
)
from .kinds import Lane
from .orders import Order, encode_order
from .protocol import BookTracker, Reply, encode_request, split_channels
from .ratelimit import CreditPools, MATCHING_ENGINE_METHODS
from .stats import ClientStats

log = logging.getLogger("drbfast.session")

__all__ = [
    "Answered",
    "BookChanged",
    "Drop",
    "Failed",
    "KeptBook",
    "Notice",
    "Notification",
    "PendingTable",
    "Probe",
    "Send",
    "Session",
    "Settled",
    "State",
    "StateChanged",
    "Wake",
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
        #: when the current access token expires (None: no expiry known)
        self.expires_at: float | None = None
        self.scope: str | None = None
        #: failed refreshes since the last good one
        self.failures = 0

    def on_auth(self, result: dict[str, Any], now: float) -> None:
        token = result.get("refresh_token")
        self.refresh_token = token if isinstance(token, str) else None
        scope = result.get("scope")
        self.scope = scope if isinstance(scope, str) else None
        self.failures = 0
        expires = result.get("expires_in")
        if isinstance(expires, (int, float)) and _finite(expires) and expires > 0:
            self.refresh_at = now + expires * self.FRACTION
            self.expires_at = now + expires
        else:
            self.refresh_at = None
            self.expires_at = None

    def failed(self, now: float) -> float:
        """A refresh failed or went unanswered: the next try comes after a bounded
        backoff (0.5 s doubling, at most 5 s), always before the token expires if
        there is time left. Returns the delay."""
        self.failures += 1
        delay: float = min(0.5 * 2.0 ** (self.failures - 1), 5.0)
        if self.expires_at is not None:
            left = self.expires_at - now
            if left > 0:
                delay = min(delay, max(left / 2, 0.05))
        self.refresh_at = now + delay
        return delay

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def due(self, now: float) -> bool:
        return self.refresh_at is not None and now >= self.refresh_at

    def refresh_params(self) -> dict[str, Any] | None:
        return refresh_params(self.refresh_token) if self.refresh_token else None

    def clear(self) -> None:
        self.refresh_token = None
        self.refresh_at = None
        self.expires_at = None
        self.failures = 0


# ================================================================ the session

class State(str, enum.Enum):
    """Where a session is; the one lifecycle of :class:`Session` (and of the client
    that drives it). ``FAILED`` and ``CLOSED`` are final."""

    NEW = "new"
    CONNECTING = "connecting"
    SETTING_UP = "setting_up"
    READY = "ready"
    BACKING_OFF = "backing_off"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


_FINAL = (State.CLOSED, State.FAILED)
_STOPPING = (State.CLOSING, State.CLOSED, State.FAILED)


# ---------------------------------------------------------------- outputs: actions

@dataclass(frozen=True, slots=True)
class Send:
    """Action: write ``data`` (the request ``req_id`` of ``method``) on the socket,
    charged to the credit pool of ``method``; arm its timeout."""

    req_id: int
    method: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Probe:
    """Action: send the listener's own timed ``public/test``."""


@dataclass(frozen=True, slots=True)
class Drop:
    """Action: close the socket (the watchdog fired, the token expired); the
    connection loss that follows is reported through :meth:`Session.connection_lost`."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Wake:
    """Action: something is due now (a resync, a reconciliation, a set-up step to
    send): run :meth:`Session.tick` / send the queued requests soon."""


# ---------------------------------------------------------------- outputs: events

@dataclass(frozen=True, slots=True)
class Answered:
    """Event: the reply to the driver's request ``req_id`` (``ref`` is what the driver
    gave :meth:`Session.request` / :meth:`Session.order`)."""

    req_id: int
    ref: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class Failed:
    """Event: the driver's request ``req_id`` failed without a reply (timeout,
    connection lost). ``uncertain``: an order that may or may not have reached the
    matching engine; the session looks it up once ready (see :class:`Settled`)."""

    req_id: int
    ref: Any
    error: DrbfastError
    uncertain: bool = False


@dataclass(frozen=True, slots=True)
class Settled:
    """Event: what became of an order whose acknowledgement was lost: ``outcome`` is
    "placed", "rejected", "not_found" or "unknown" (the lookups kept failing, or the
    session closed first)."""

    ref: Any
    outcome: str
    order: Order | None


@dataclass(frozen=True, slots=True)
class Notification:
    """Event: ``data`` of ``channel`` for each of ``holders`` (in order)."""

    channel: str
    data: Any
    holders: list[Any]
    rx_ns: int


@dataclass(frozen=True, slots=True)
class BookChanged:
    """Event: the kept book of ``channel`` applied a message (its ``version`` moved)."""

    channel: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Event: something users may observe (the client's public ``Event``): ``kind``
    as listed there; ``detail`` says more."""

    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StateChanged:
    """Event: the lifecycle moved from ``old`` to ``new``."""

    old: State
    new: State


Output = Any  # one of the actions or events above


# ---------------------------------------------------------------- bookkeeping

class _Kind(enum.IntEnum):
    CALL = 0
    ORDER = 1
    SETUP = 2
    REFRESH = 3
    RESYNC_UNSUB = 4
    RESYNC_SUB = 5
    RECONCILE = 6


class _Request:
    __slots__ = ("method", "kind", "ref", "extra")

    def __init__(self, method: str, kind: _Kind, ref: Any, extra: Any = None) -> None:
        self.method = method
        self.kind = kind
        self.ref = ref
        self.extra = extra


@dataclass(eq=False)
class _Lost:
    """An order whose acknowledgement was lost, waiting to be looked up."""

    ref: Any
    label: str
    instrument: str
    attempts: int = 0
    fallback: bool = False
    due: float = 0.0


class KeptBook:
    """A book the session keeps: the compiled OrderBook and the subscription (holder)
    that holds its channel."""

    __slots__ = ("book", "holder", "changed")

    def __init__(self, book: OrderBook, holder: Any) -> None:
        self.book = book
        self.holder = holder
        self.changed = BookChanged(book.channel)  # immutable: one per book, reused


class Holder(Protocol):
    """What the session needs of a subscription: its channel lists."""

    channels: list[str]
    refused: list[str]


#: A book channel still without its snapshot this long after a resync asks again.
RESYNC_GRACE = 2.0
#: Lookups of a lost order before it is settled "unknown".
RECONCILE_ATTEMPTS = 3
#: Consecutive 13009 refusals of a reconnect's authentication before giving up.
AUTH_RETRIES = 3

_PRIORITY = int(Lane.PRIORITY)
_BOOK = int(Lane.BOOK)
_WAKE = Wake()


class Session:
    """A Deribit JSON-RPC session with no I/O: bytes and time in, events and actions out.

    The driver (:class:`drbfast.client.Client`) calls :meth:`connecting`,
    :meth:`connection_made`, :meth:`receive` for every message, :meth:`tick` when
    :meth:`next_deadline` says, :meth:`expire` when a request's timer fires,
    :meth:`connection_lost` when the socket goes; it executes the actions returned
    (:class:`Send`, :class:`Probe`, :class:`Drop`, :class:`Wake`) and hands the events
    (:class:`Answered`, :class:`Failed`, :class:`Settled`, :class:`Notification`,
    :class:`BookChanged`, :class:`Notice`, :class:`StateChanged`) to its callers.

    Every decision lives here: what a reply, a gap, a drop, a lost ack, a refused
    refresh mean, and the lifecycle (:attr:`state`, one enum)."""

    def __init__(self, options: SessionOptions, *, parser: Any = None, stats: ClientStats | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self._creds = options.credentials
        self._parser = parser if parser is not None else simdjson.Parser()
        self.stats = stats if stats is not None else ClientStats()
        self._clock = clock
        self._state = State.NEW
        #: the error that ended the session (state FAILED)
        self.error: DrbfastError | None = None
        #: why the current connection's set-up failed (None while it runs or worked)
        self.setup_error: DrbfastError | None = None
        self._pending: dict[int, _Request] = {}
        self._next_id = 1
        self.registry: SubscriptionRegistry[Any] = SubscriptionRegistry()
        self.tracker = BookTracker()
        self.resync = ResyncSchedule(lambda: Backoff(initial=0.1, cap=5.0), grace=RESYNC_GRACE)
        self.tokens = TokenSchedule()
        self.books: dict[str, KeptBook] = {}
        self._plan: SetupPlan | None = None
        self._refreshing: int | None = None
        #: the next refresh uses a fresh grant (the refresh token was refused)
        self._fresh_next = False
        self._lost: deque[_Lost] = deque()
        self._reconciling: _Lost | None = None
        self._next_probe = 0.0
        self._auth_refusals = 0
        self._private = "private" if self._creds is not None else "public"

    def __repr__(self) -> str:
        return f"Session({self._state.value}, {len(self._pending)} pending, {len(self.registry.channels)} channels)"

    # ------------------------------------------------------------ lifecycle

    @property
    def state(self) -> State:
        return self._state

    @property
    def ready(self) -> bool:
        return self._state is State.READY

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered."""
        return len(self._pending)

    @property
    def to_reconcile(self) -> int:
        """Orders whose acknowledgement was lost, not yet settled."""
        return len(self._lost) + (self._reconciling is not None)

    def _move(self, new: State, out: list[Output]) -> None:
        old = self._state
        if old is not new:
            self._state = new
            out.append(StateChanged(old, new))

    def connecting(self) -> list[Output]:
        """A socket is being opened."""
        out: list[Output] = []
        if self._state not in _STOPPING:
            self._move(State.CONNECTING, out)
        return out

    def connection_made(self) -> list[Output]:
        """The socket is open: start the set-up (hello -> auth -> set_heartbeat ->
        cancel-on-disconnect -> resubscribe), one request at a time."""
        out: list[Output] = []
        if self._state in _STOPPING:
            return out
        self.setup_error = None
        self.tracker.reset()
        for kept in self.books.values():
            kept.book.reset()  # the resubscribe brings a fresh snapshot
        self.resync.clear()
        self.tokens.clear()
        self._refreshing = None
        self._move(State.SETTING_UP, out)
        self._plan = SetupPlan(self.options, self.registry.channels)
        self._setup_next(out)
        return out

    def _setup_next(self, out: list[Output]) -> None:
        plan = self._plan
        assert plan is not None
        try:
            step = plan.next()  # an auth step signs its params now: that can fail (a bad key)
        except DrbfastError as exc:
            self._setup_failed(exc, out)
            return
        if step is None:
            self._plan = None
            self._auth_refusals = 0
            self._next_probe = self._clock() + (self.options.probe_interval or 0.0)
            self._move(State.READY, out)
            out.append(_WAKE)
            return
        out.append(self._send(step.method, step.params, _Kind.SETUP, step))
        out.append(_WAKE)

    def _setup_failed(self, err: DrbfastError, out: list[Output]) -> None:
        if self.setup_error is None:
            self.setup_error = err
        self._plan = None
        out.append(_WAKE)

    def connection_lost(self, exc: ConnectionLost) -> list[Output]:
        """The socket went (or the driver dropped it): every request in flight fails,
        orders among them are queued for reconciliation, every kept book is marked not
        synced at once (event ``book_stale`` names them), and the state moves on
        (BACKING_OFF, or CLOSED without ``reconnect``)."""
        out: list[Output] = []
        pending = list(self._pending.items())
        self._pending.clear()
        for req_id, entry in pending:
            kind = entry.kind
            if kind is _Kind.CALL:
                out.append(Failed(req_id, entry.ref, exc))
            elif kind is _Kind.ORDER:
                out.append(Failed(req_id, entry.ref, exc, uncertain=True))
                self._lose(entry, out)
            elif kind is _Kind.SETUP:
                self._setup_failed(exc, out)
            elif kind is _Kind.RECONCILE and self._reconciling is not None:
                self._lost.appendleft(self._reconciling)
                self._reconciling = None
        self._refreshing = None
        if self._plan is not None:
            self._setup_failed(exc, out)
        stale = [c for c, kept in self.books.items() if kept.book.is_synced]
        for kept in self.books.values():
            kept.book.reset()
        if stale:
            out.append(Notice("book_stale", {"channels": stale}))
        if self._state not in _STOPPING:
            self._move(State.BACKING_OFF if self.options.reconnect else State.CLOSED, out)
        return out

    def attempt_failed(self, err: DrbfastError, attempt: int = 0) -> list[Output]:
        """A (re)connect attempt failed (not the first: that one is the caller's).
        Bad credentials end the session (FAILED, a ``fatal`` notice); a 13009 is
        retried :data:`AUTH_RETRIES` times first (clock skew, a token that expired on
        the way); anything else is retried with backoff."""
        out: list[Output] = []
        if self._state in _STOPPING:
            return out
        fatal = isinstance(err, ConfigurationError)
        if isinstance(err, AuthenticationError):
            if isinstance(err, Unauthorized):
                self._auth_refusals += 1
                fatal = self._auth_refusals >= AUTH_RETRIES
            else:
                fatal = True
        if fatal:
            return self.fail(err)
        out.append(Notice("reconnect_failed", {"error": str(err), "attempt": attempt}))
        self._move(State.BACKING_OFF, out)
        return out

    def fail(self, err: DrbfastError) -> list[Output]:
        """End the session for good with ``err`` (FAILED, a ``fatal`` notice)."""
        out: list[Output] = []
        if self._state in _FINAL:
            return out
        self.error = err
        self._move(State.FAILED, out)
        out.append(Notice("fatal", {"error": str(err)}))
        return out

    def backing_off(self) -> list[Output]:
        out: list[Output] = []
        if self._state not in _STOPPING:
            self._move(State.BACKING_OFF, out)
        return out

    def close(self) -> list[Output]:
        """The user closes: no reconnect from now on."""
        out: list[Output] = []
        if self._state not in _FINAL:
            self._move(State.CLOSING, out)
        return out

    def closed(self) -> list[Output]:
        """Closed: orders still waiting for their lookup are settled "unknown"."""
        out: list[Output] = []
        for lost in self._take_lost():
            out.append(Settled(lost.ref, "unknown", None))
        if self._state is not State.FAILED:
            self._move(State.CLOSED, out)
        return out

    def _take_lost(self) -> list[_Lost]:
        lost = list(self._lost)
        if self._reconciling is not None:
            lost.insert(0, self._reconciling)
        self._lost.clear()
        self._reconciling = None
        return lost

    # ------------------------------------------------------------ requests

    def _send(self, method: str, params: dict[str, Any], kind: _Kind, ref: Any, extra: Any = None) -> Send:
        req_id = self._next_id
        self._next_id += 1
        self._pending[req_id] = _Request(method, kind, ref, extra)
        return Send(req_id, method, encode_request(req_id, method, params))

    def request(self, method: str, params: dict[str, Any], ref: Any = None) -> tuple[int, bytes]:
        """A user's request: its id and frame. Its reply comes back as
        :class:`Answered` carrying ``ref``; a lost connection or :meth:`expire` as
        :class:`Failed`."""
        send = self._send(method, params, _Kind.CALL, ref)
        return send.req_id, send.data

    def order(self, method: str, params: dict[str, Any], ref: Any) -> tuple[int, bytes]:
        """An order (``params`` from :func:`drbfast.orders.order_params`, with its
        label): the frame from the order template. If its acknowledgement is lost
        (:class:`Failed` with ``uncertain``), the session looks it up by label once
        ready and reports :class:`Settled`."""
        req_id = self._next_id
        self._next_id += 1
        data = encode_order(req_id, method, params)
        self._pending[req_id] = _Request(method, _Kind.ORDER, ref, (params["label"], params["instrument_name"]))
        return req_id, data

    def forget(self, req_id: int) -> None:
        """The caller gave up on ``req_id`` (or sending it failed): a late reply is an
        orphan."""
        self._pending.pop(req_id, None)

    def expire(self, req_id: int) -> list[Output]:
        """``req_id``'s timer fired (nothing if it was answered meanwhile)."""
        out: list[Output] = []
        entry = self._pending.pop(req_id, None)
        if entry is None:
            return out
        self.stats.timeouts += 1
        err = RequestTimeout(entry.method, self.options.request_timeout)
        now = self._clock()
        kind = entry.kind
        if kind is _Kind.CALL:
            out.append(Failed(req_id, entry.ref, err))
        elif kind is _Kind.ORDER:
            out.append(Failed(req_id, entry.ref, err, uncertain=True))
            self._lose(entry, out)
        elif kind is _Kind.SETUP:
            self._setup_failed(err, out)
        elif kind is _Kind.REFRESH:
            self._refresh_failed(err, now)
        elif kind in (_Kind.RESYNC_SUB, _Kind.RESYNC_UNSUB):
            self._resync_failed(entry.extra, err, now, out)
        elif kind is _Kind.RECONCILE:
            self._reconcile_failed(err, now, out)
        return out

    # ------------------------------------------------------------ receiving

    def receive(self, payload: bytes, lane: int, channel: str, rx_ns: int, binary: bool = False) -> list[Output]:
        """One message from the socket, with what the listener's classifier knew:
        ``lane`` (a :class:`~drbfast.kinds.Lane`), ``channel`` (the notification's
        channel, "" for replies and unknown layouts) and ``rx_ns`` (its receive time).
        Returns the events (and actions) it causes."""
        self.stats.messages += 1
        out: list[Output] = []
        if channel:
            kept = self.books.get(channel) if lane == _BOOK else None
            if kept is not None:
                # A kept book is applied straight from the bytes (compiled); the
                # message is parsed only if a subscription also wants it as data.
                self._apply_book(kept, payload, rx_ns, out)
                if self.registry.holders(channel) == [kept.holder]:
                    return out
            self._parsed(payload, binary, rx_ns, out, kept)
            return out
        if lane == _PRIORITY:
            # A reply: decoded to dicts in one pass. On a lazy document, asking for a
            # key it lacks ("method" of a reply) costs ~6 us inside pysimdjson.
            try:
                msg = self._parse(payload, True)
            except ValueError:
                self._parse_error(payload, binary)
                return out
            if isinstance(msg, dict) and "method" not in msg:
                self._on_reply(Reply.from_message(msg), out)
                return out
        self._parsed(payload, binary, rx_ns, out, None)
        return out

    def _parsed(self, payload: bytes, binary: bool, rx_ns: int, out: list[Output], applied: KeptBook | None) -> None:
        try:
            doc = self._parse(payload, False)
        except ValueError:
            self._parse_error(payload, binary)
            return
        try:
            if not isinstance(doc, simdjson.Object):
                self.stats.parse_errors += 1
                log.warning("drbfast: message is not a JSON object: %r", payload[:200])
                return
            if doc.get("method") == "subscription":
                params = doc.get("params")
                if not isinstance(params, simdjson.Object):
                    self.stats.parse_errors += 1
                    return
                channel = params.get("channel")
                if not isinstance(channel, str):
                    self.stats.parse_errors += 1
                    return
                kept = self.books.get(channel)
                if kept is not None and kept is not applied:
                    # Another layout than production's: the book's own scanner reads it.
                    self._apply_book(kept, payload, rx_ns, out)
                self._on_notification(channel, params.get("data"), rx_ns, out)
            elif "id" in doc or "error" in doc or "result" in doc:
                self._on_reply(Reply.from_message(doc.as_dict()), out)
            else:
                self.stats.unhandled += 1
                log.info("drbfast: message with no handler: %r", payload[:200])
        finally:
            del doc

    def _parse(self, payload: bytes, recursive: bool) -> Any:
        try:
            return self._parser.parse(payload, True) if recursive else self._parser.parse(payload)
        except RuntimeError:
            # A lazy-mode user kept a document alive: this parser is pinned to it.
            self._parser = simdjson.Parser()
            return self._parser.parse(payload, True) if recursive else self._parser.parse(payload)

    def _parse_error(self, payload: bytes, binary: bool) -> None:
        self.stats.parse_errors += 1
        log.warning("drbfast: unparseable %s message (%d bytes) ignored: %r", "binary" if binary else "text",
                    len(payload), payload[:200])

    def _on_reply(self, reply: Reply, out: list[Output]) -> None:
        stats = self.stats
        stats.responses += 1
        if reply.us_in is not None and reply.us_out is not None:
            stats.server_us_diff = reply.us_out - reply.us_in
            stats.clock_offset_us = reply.us_out - time.time_ns() // 1000
        req_id = reply.id
        entry = self._pending.pop(req_id, None) if type(req_id) is int else None
        if entry is None:
            stats.orphan_replies += 1
            if reply.error is not None:
                log.warning("drbfast: Deribit error not tied to a request (id %r): %r", reply.id, reply.error)
            else:
                log.warning("drbfast: response with unknown id %r ignored", reply.id)
            return
        kind = entry.kind
        if kind is _Kind.CALL or kind is _Kind.ORDER:
            out.append(Answered(req_id, entry.ref, reply))
        elif kind is _Kind.SETUP:
            self._setup_reply(entry.ref, reply, out)
        elif kind is _Kind.REFRESH:
            self._refresh_reply(req_id, entry, reply)
        elif kind is _Kind.RESYNC_UNSUB or kind is _Kind.RESYNC_SUB:
            self._resync_reply(entry, reply, out)
        elif kind is _Kind.RECONCILE:
            self._reconcile_reply(entry, reply, out)

    def _on_notification(self, channel: str, data: Any, rx_ns: int, out: list[Output]) -> None:
        self.stats.notifications += 1
        holders = self.registry.holders(channel)
        if not holders:
            return
        if channel.startswith("book."):
            # Continuity is checked on what the exchange sent, in every mode, before any
            # local queue policy.
            waiting = channel in self.tracker.gapped
            if not self.tracker.check(channel, data):
                # A change met while the channel already waits for its snapshot is
                # refused without a new resync (tick asks again if the snapshot never
                # comes). A kept book saw the gap first and asked.
                if not waiting and channel not in self.books:
                    self.stats.book_gaps += 1
                    out.append(Notice("book_gap", {"channel": channel}))
                    log.warning("drbfast: %s skipped a change_id; resubscribing for a fresh snapshot", channel)
                    self._request_resync(channel, out)
                return
        if not self.options.lazy:
            data = _materialize(data)
        out.append(Notification(channel, data, holders, rx_ns))

    def _apply_book(self, kept: KeptBook, payload: bytes, rx_ns: int, out: list[Output]) -> None:
        book = kept.book
        version = book.version
        status = book.apply(payload, rx_ns)
        if status in RESYNC_STATUSES:
            channel = book.channel
            if status == BookStatus.GAP:
                self.stats.book_gaps += 1
            else:
                self.stats.book_errors += 1
            out.append(Notice("book_gap", {"channel": channel, "status": BookStatus(status).name}))
            log.warning("drbfast: %s: %s; the local book waits for a fresh snapshot", channel, BookStatus(status).name)
            if not book.grouped:  # a grouped channel sends a full window every time
                self._request_resync(channel, out)
            return
        if book.version != version:
            out.append(kept.changed)

    # ------------------------------------------------------------ set-up replies

    def _setup_reply(self, step: SetupStep, reply: Reply, out: list[Output]) -> None:
        plan = self._plan
        if plan is None or self._state is not State.SETTING_UP:
            return
        if reply.error is not None:
            self._setup_failed(error_from_reply(reply.error, step.method), out)
            return
        try:
            refused = plan.done(step, reply.result)
        except MalformedReply as exc:
            self._setup_failed(exc, out)
            return
        if step.kind == "auth" and plan.token is not None:
            self.tokens.on_auth(plan.token, self._clock())
        if refused:
            self._refused_on_resubscribe(refused, out)
        self._setup_next(out)

    def _refused_on_resubscribe(self, refused: list[str], out: list[Output]) -> None:
        log.warning("drbfast: on resubscribe Deribit refused %s", refused)
        out.append(Notice("subscription_refused", {"channels": refused}))
        for channel in refused:
            for holder in list(self.registry.holders(channel) or ()):
                self.registry.remove(holder, [channel])
                holder.channels = [c for c in holder.channels if c != channel]
                holder.refused.append(channel)
            self.tracker.forget(channel)

    # ------------------------------------------------------------ subscriptions

    def subscribe(self, holder: Holder, channels: Iterable[str]) -> list[str]:
        """Register ``holder`` (before the call: the snapshot may follow the ack right
        away); returns the channels to subscribe (those nobody held)."""
        return self.registry.add(holder, channels)

    def unsubscribe(self, holder: Holder, channels: Iterable[str] | None = None) -> list[str]:
        """Unregister ``holder``; returns the channels nobody holds any more (to
        unsubscribe at Deribit)."""
        gone = self.registry.remove(holder, list(holder.channels if channels is None else channels))
        for channel in gone:
            self.tracker.forget(channel)
            self.resync.cancel(channel)
        return gone

    def refused(self, holder: Holder, channels: list[str]) -> list[Output]:
        """Deribit left ``channels`` out of ``holder``'s subscribe."""
        for channel in channels:
            self.registry.remove(holder, [channel])
            self.tracker.forget(channel)
        holder.refused = list(channels)
        holder.channels = [c for c in holder.channels if c not in channels]
        return [Notice("subscription_refused", {"channels": list(channels)})]

    @property
    def private(self) -> str:
        """"private" with credentials, else "public": the prefix of (un)subscribe."""
        return self._private

    def keep_book(self, book: OrderBook) -> KeptBook:
        """Keep ``book`` (its channel's messages are applied to it); set the kept
        book's ``holder`` once subscribed."""
        kept = self.books[book.channel] = KeptBook(book, None)
        return kept

    def book_subscribed(self, kept: KeptBook, holder: Holder, held: bool) -> list[Output]:
        """``kept``'s channel is subscribed by ``holder``; ``held``: someone held it
        already, so no snapshot comes by itself (PROTOCOL.md 4.3): resync."""
        out: list[Output] = []
        kept.holder = holder
        if held and not kept.book.grouped:
            self._request_resync(kept.book.channel, out)
        return out

    def drop_book(self, channel: str) -> KeptBook | None:
        return self.books.pop(channel, None)

    def book_waiting(self, channel: str) -> bool:
        """True while ``channel`` refuses changes until a fresh snapshot."""
        kept = self.books.get(channel)
        if kept is not None:
            return not kept.book.is_synced
        return channel in self.tracker.gapped

    def book_dropped(self, channel: str) -> list[Output]:
        """A subscription queue dropped a change of ``channel``: what follows would not
        apply, so refuse its changes until a fresh snapshot arrives."""
        out: list[Output] = []
        self.tracker.invalidate(channel)
        self.stats.book_local_drops += 1
        out.append(Notice("book_dropped", {"channel": channel}))
        self._request_resync(channel, out)
        return out

    def listener_dropped(self, kind: str, channel: str, count: int) -> list[Output]:
        """The listener dropped queued messages for a slow consumer."""
        out: list[Output] = []
        if kind == "book_reset":
            # Its queued changes are gone: refuse what follows until a fresh snapshot.
            if channel in self.registry:
                self.tracker.invalidate(channel)
                kept = self.books.get(channel)
                if kept is not None:
                    kept.book.reset()
                out.append(Notice("book_dropped", {"channel": channel, "count": count, "where": "listener"}))
                self._request_resync(channel, out)
        else:
            out.append(Notice("dropped", {"channel": channel, "count": count}))
        return out

    # ------------------------------------------------------------ resyncs

    def _request_resync(self, channel: str, out: list[Output]) -> None:
        if self.resync.request(channel, self._clock()):
            out.append(_WAKE)

    def _resync_reply(self, entry: _Request, reply: Reply, out: list[Output]) -> None:
        channel: str = entry.extra
        now = self._clock()
        if reply.error is not None:
            self._resync_failed(channel, error_from_reply(reply.error, entry.method), now, out)
            return
        if entry.kind is _Kind.RESYNC_UNSUB:
            if channel in self.registry and self._state is State.READY:
                out.append(self._send(f"{self._private}/subscribe", {"channels": [channel]}, _Kind.RESYNC_SUB, None, channel))
                out.append(_WAKE)
                return
        else:
            try:
                if refused_channels(entry.method, [channel], reply.result):
                    raise SubscriptionRefused([channel])
            except (MalformedReply, SubscriptionRefused) as exc:
                self._resync_failed(channel, exc, now, out)
                return
        if self.resync.done(channel, now):
            # Its snapshot was dropped (or the book broke) while this attempt ran: again.
            out.append(_WAKE)

    def _resync_failed(self, channel: str, err: DrbfastError, now: float, out: list[Output]) -> None:
        delay = self.resync.failed(channel, now)
        out.append(Notice("resync_failed", {"channel": channel, "error": str(err), "retry_in": delay}))
        log.warning("drbfast: resync of %s failed (%s); retrying in %.2f s", channel, err, delay)

    def _recheck_waiting_books(self, now: float, out: list[Output]) -> None:
        """A book channel that waits for a snapshot with no resync pending, longer than
        RESYNC_GRACE after the last one: that snapshot never came. Ask again."""
        waiting = [c for c in self.tracker.gapped if c not in self.books]
        waiting += [c for c, kept in self.books.items() if not kept.book.is_synced and not kept.book.grouped]
        for channel in waiting:
            if channel in self.registry and self.resync.overdue(channel, now):
                log.warning("drbfast: %s still has no snapshot %.1f s after its resync; resubscribing again",
                            channel, RESYNC_GRACE)
                self._request_resync(channel, out)

    # ------------------------------------------------------------ tokens

    def _refresh(self, now: float, out: list[Output], fresh: bool = False) -> None:
        params = None if fresh or self.options.auth == "coinbase_cdp" else self.tokens.refresh_params()
        grant = "refresh_token"
        if params is None:
            if self._creds is None:
                self.tokens.refresh_at = None
                return
            try:
                params, grant = auth_params(self._creds, self.options.auth, self.options.scope), "fresh"
            except DrbfastError as exc:
                self._refresh_failed(exc, now)
                return
        self.tokens.refresh_at = None
        send = self._send("public/auth", params, _Kind.REFRESH, None, grant)
        self._refreshing = send.req_id
        out.append(send)

    def _refresh_reply(self, req_id: int, entry: _Request, reply: Reply) -> None:
        if self._refreshing == req_id:
            self._refreshing = None
        now = self._clock()
        result = reply.result
        if reply.error is None and isinstance(result, dict) and isinstance(result.get("access_token"), str):
            self.tokens.on_auth(result, now)
            self.stats.token_refreshes += 1
            return
        err: DrbfastError = error_from_reply(reply.error, "public/auth") if reply.error is not None \
            else MalformedReply("public/auth", _redact(result))
        if entry.extra == "refresh_token" and self._creds is not None and self._state is State.READY:
            log.warning("drbfast: token refresh failed (%s); authenticating again", err)
            self.tokens.refresh_at = now  # tick sends a fresh grant at once
            self._fresh_next = True
            return
        self._refresh_failed(err, now)

    def _refresh_failed(self, err: DrbfastError, now: float) -> None:
        self._refreshing = None
        self._fresh_next = False
        delay = self.tokens.failed(now)
        log.error("drbfast: re-authentication failed (%s); trying again in %.2f s", err, delay)

    # ------------------------------------------------------------ reconciliation

    def _lose(self, entry: _Request, out: list[Output]) -> None:
        label, instrument = entry.extra
        self._lost.append(_Lost(entry.ref, label, instrument))
        out.append(_WAKE)

    def _reconcile_send(self, lost: _Lost) -> Send:
        self._reconciling = lost
        if lost.fallback:
            # Older APIs or a gateway without the method: the open orders of the instrument.
            return self._send("private/get_open_orders_by_instrument", {"instrument_name": lost.instrument},
                              _Kind.RECONCILE, lost)
        return self._send("private/get_order_state_by_label",
                          {"currency": currency_of(lost.instrument), "label": lost.label}, _Kind.RECONCILE, lost)

    def _reconcile_reply(self, entry: _Request, reply: Reply, out: list[Output]) -> None:
        lost: _Lost = entry.ref
        if self._reconciling is not lost:
            return
        now = self._clock()
        if reply.error is not None:
            if not lost.fallback:
                lost.fallback = True
                self._lost.appendleft(lost)
                self._reconciling = None
                out.append(_WAKE)
                return
            self._reconcile_failed(error_from_reply(reply.error, entry.method), now, out)
            return
        orders = reply.result
        if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
            self._reconcile_failed(MalformedReply(entry.method, orders), now, out)
            return
        self._reconciling = None
        found = [Order(o) for o in orders if o.get("label") == lost.label]
        if not found:
            outcome = "not_found"
        elif found[0].order_state == "rejected":
            outcome = "rejected"
        else:
            outcome = "placed"
        order = found[0] if found else None
        self._settle(lost, outcome, order, out)
        if self._lost:
            out.append(_WAKE)

    def _settle(self, lost: _Lost, outcome: str, order: Order | None, out: list[Output], error: str | None = None) -> None:
        out.append(Settled(lost.ref, outcome, order))
        detail: dict[str, Any] = {"label": lost.label, "outcome": outcome,
                                  "order_id": order.order_id if order else None,
                                  "state": order.order_state if order else None}
        if error is not None:
            detail["error"] = error
        out.append(Notice("order_reconciled", detail))

    def _reconcile_failed(self, err: DrbfastError, now: float, out: list[Output]) -> None:
        """A lookup failed (an error from both methods, a malformed result, a timeout):
        tried again later, :data:`RECONCILE_ATTEMPTS` times in all, then "unknown"."""
        lost = self._reconciling
        self._reconciling = None
        if lost is None:
            return
        lost.attempts += 1
        if lost.attempts >= RECONCILE_ATTEMPTS:
            log.error("drbfast: could not find out what became of order %s (%s); settled unknown", lost.label, err)
            self._settle(lost, "unknown", None, out, str(err))
        else:
            lost.fallback = False
            lost.due = now + 0.2 * 2 ** lost.attempts
            log.warning("drbfast: looking up order %s failed (%s); again in %.1f s", lost.label, err, lost.due - now)
            self._lost.appendleft(lost)
        if self._lost:
            out.append(_WAKE)

    # ------------------------------------------------------------ time

    def tick(self, now: float, last_rx: float | None = None) -> list[Output]:
        """What is due at ``now`` (monotonic seconds) on a ready connection: the
        watchdog (``last_rx``: when something was last received, or reading resumed),
        a probe, the token refresh (or, past its expiry, dropping the connection to
        re-authenticate), book resyncs, lookups of lost orders."""
        out: list[Output] = []
        if self._state is not State.READY:
            return out
        wd = self.options.watchdog_timeout
        if wd and last_rx and now - last_rx > wd:
            silent = now - last_rx
            self.stats.watchdog_drops += 1
            out.append(Notice("watchdog", {"silent_for": silent}))
            log.warning("drbfast: nothing received for %.1f s; dropping the connection", silent)
            out.append(Drop(1001, "drbfast watchdog: connection stale"))
            return out
        probe = self.options.probe_interval
        if probe and now >= self._next_probe:
            self._next_probe = now + probe
            out.append(Probe())
        tokens = self.tokens
        if tokens.expired(now) and self._creds is not None:
            log.error("drbfast: the access token expired before it could be refreshed; reconnecting")
            out.append(Notice("token_expired", {}))
            out.append(Drop(1000, "drbfast: access token expired"))
            tokens.clear()
            return out
        if self._refreshing is None and tokens.due(now):
            self._refresh(now, out, fresh=self._fresh_next)
            self._fresh_next = False
        self._recheck_waiting_books(now, out)
        for channel in self.resync.due(now):
            if channel not in self.registry:
                self.resync.cancel(channel)
                continue
            self.resync.begin(channel)
            out.append(self._send(f"{self._private}/unsubscribe", {"channels": [channel]}, _Kind.RESYNC_UNSUB, None, channel))
        if self._reconciling is None and self._lost and self._lost[0].due <= now:
            out.append(self._reconcile_send(self._lost.popleft()))
        return out

    def next_deadline(self, now: float) -> float:
        """Seconds until :meth:`tick` has something to do (at most 1 s)."""
        delay = 1.0
        wd = self.options.watchdog_timeout
        if wd:
            delay = min(delay, wd / 4)
        if self._reconciling is None and self._lost:
            delay = min(delay, self._lost[0].due - now)
        for t in (self.tokens.refresh_at if self._refreshing is None else None, self.tokens.expires_at,
                  self.resync.next_due()):
            if t is not None:
                delay = min(delay, t - now)
        if self.options.probe_interval:
            delay = min(delay, self._next_probe - now)
        return max(delay, 0.0)


def currency_of(instrument_name: str) -> str:
    """The currency get_order_state_by_label wants: BTC-PERPETUAL -> BTC,
    BTC_USDC-PERPETUAL -> USDC, ETH_USDC -> USDC."""
    head = instrument_name.split("-", 1)[0]
    return head.split("_", 1)[1] if "_" in head else head


def _materialize(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value
