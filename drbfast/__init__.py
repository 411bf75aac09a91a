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
from .frames import ENGINE_ID_PREFIX  # noqa: E402
from .kinds import Kind  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ENGINE_ID_PREFIX",
    "FastListener",
    "HeartbeatStats",
    "Kind",
    "classify",
    "classify_exact",
    "monotonic_ns",
]
