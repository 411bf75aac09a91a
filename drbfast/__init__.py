"""drbfast: a Deribit JSON-RPC v2 connection whose heartbeats are answered in C.

The compiled listener answers every ``test_request`` from inside picows' receive
callback, so a busy event loop or a slow consumer cannot make the exchange close the
connection (and, with cancel-on-disconnect, pull every quote).
"""

from __future__ import annotations

from ._compat import check_build

check_build()

from ._classify import classify, classify_exact  # noqa: E402
from ._listener import FastListener, HeartbeatStats, monotonic_ns  # noqa: E402
from .auth import Credentials  # noqa: E402
from .backoff import Backoff  # noqa: E402
from .client import Client, Connect, Event, OrderHandle, State, Subscription, connect  # noqa: E402
from .errors import (  # noqa: E402
    AuthenticationError,
    BadRequest,
    ConfigurationError,
    ConnectError,
    ConnectTimeout,
    ConnectionLost,
    DeribitError,
    DrbfastError,
    InvalidCredentials,
    InvalidParams,
    MalformedReply,
    MethodNotFound,
    NotConnected,
    RawSubscriptionsNeedAuth,
    RequestTimeout,
    SubscriptionRefused,
    TooManyRequests,
    Unauthorized,
)
from .frames import ENGINE_ID_PREFIX  # noqa: E402
from .kinds import Kind  # noqa: E402
from .ratelimit import CreditPools, Credits  # noqa: E402
from .session import SessionOptions  # noqa: E402
from .stats import ClientStats  # noqa: E402
from .urls import COINBASE, COINBASE_STREAMS, MAINNET, TESTNET  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "COINBASE",
    "COINBASE_STREAMS",
    "ENGINE_ID_PREFIX",
    "MAINNET",
    "TESTNET",
    "AuthenticationError",
    "Backoff",
    "BadRequest",
    "Client",
    "ClientStats",
    "ConfigurationError",
    "Connect",
    "ConnectError",
    "ConnectTimeout",
    "CreditPools",
    "ConnectionLost",
    "Credentials",
    "Credits",
    "DeribitError",
    "DrbfastError",
    "Event",
    "FastListener",
    "HeartbeatStats",
    "InvalidCredentials",
    "InvalidParams",
    "Kind",
    "OrderHandle",
    "MalformedReply",
    "MethodNotFound",
    "NotConnected",
    "RawSubscriptionsNeedAuth",
    "RequestTimeout",
    "SessionOptions",
    "State",
    "Subscription",
    "SubscriptionRefused",
    "TooManyRequests",
    "Unauthorized",
    "classify",
    "classify_exact",
    "connect",
    "monotonic_ns",
]
