"""Coinbase's Deribit gateway host allowlists, as request middleware
(``EmulatorConfig(gateway=True)``).

What differs from deribit.com (PROTOCOL.md 1.7, 5.1, 7, and the subscription notes):
two hosts, each with an allowlist; the ``coinbase_cdp`` grant (:mod:`.grants`); ~15-minute
tokens; a subscribe trimmed to 32 channels. The allowlist is a request hook, so it sits
in front of dispatch like the fault hooks; the grant and the trim live where Deribit's
own grants and subscribe do.
"""

from __future__ import annotations

from typing import Any

from .dispatch import Verdict, error_outcome
from .errors import RpcError

__all__ = ["ALLOWLIST_ERROR", "allowlist_hook"]

#: The wrong host's answer (nemanull's Coinbase note, PROTOCOL.md 7).
ALLOWLIST_ERROR = RpcError(-32601, "method not in allowlist")

#: Subscription methods each host refuses.
_TRADING_REFUSES = frozenset({"public/subscribe", "public/unsubscribe", "public/unsubscribe_all"})


def _refused_on_streams(method: str) -> bool:
    # The streams host serves unauthenticated market data: no private methods, no auth.
    return method.startswith("private/") or method == "public/auth"


def allowlist_hook(session: Any, method: str) -> Verdict | None:
    """Answer -32601 "method not in allowlist" for what the caller's host does not serve."""
    role = getattr(session, "role", "trading")
    refused = method in _TRADING_REFUSES if role == "trading" else _refused_on_streams(method)
    if not refused:
        return None
    return lambda msg: error_outcome(msg, ALLOWLIST_ERROR)
