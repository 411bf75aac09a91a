"""The reference classifier: a full, strict JSON parse, then the rules.

It defines what the compiled classifier must answer, and it is the slow path the hot
path falls back to when its fast matcher returns :attr:`Kind.UNKNOWN`. Rules (first
occurrence of a duplicated key wins, as in a streaming reader):

1. not strict JSON in UTF-8 (``NaN``/``Infinity`` rejected), or not an object: OTHER;
2. has an ``id``: TEST_REPLY if the id is a string with the engine prefix, there is no
   ``method`` and there is a ``result`` or an ``error``; otherwise OTHER;
3. ``method`` is ``"heartbeat"`` and ``params`` is an object whose ``type`` is
   ``"test_request"`` or ``"heartbeat"``: TEST_REQUEST or HEARTBEAT;
4. anything else: OTHER.

The lane of a message the listener delivers (:func:`lane_reference`, same parse):

1. an object whose first ``method`` is ``"subscription"``, with an object ``params``
   whose first ``channel`` is a string: the channel's lane (:func:`channel_lane`);
2. any other object with a ``method``: ORDERED, no channel;
3. an object with an ``id`` (and no ``method``): PRIORITY, no channel (a reply);
4. anything else (not JSON, not an object, neither key): ORDERED, no channel.
"""

from __future__ import annotations

import json
from typing import Any

from .frames import ENGINE_ID_PREFIX
from .kinds import Kind, Lane

__all__ = ["CONFLATED_PREFIXES", "channel_lane", "classify_reference", "lane_reference", "parse_first_wins"]

#: Latest-value channels (each message is the whole current value): conflated.
#: Not incremental_ticker (changed fields only), not platform_state (one index per
#: message, PROTOCOL.md 4.2).
CONFLATED_PREFIXES = (
    "ticker.", "quote.", "markprice.", "perpetual.", "deribit_price_index.",
    "deribit_price_ranking.", "deribit_price_statistics.", "deribit_volatility_index.",
    "estimated_expiration_price.",
)


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        obj.setdefault(key, value)
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_first_wins(payload: bytes) -> Any:
    """Parse strict JSON from UTF-8 bytes; a duplicated key keeps its first value."""
    return json.loads(
        payload.decode("utf-8"),
        object_pairs_hook=_first_wins,
        parse_constant=_reject_constant,
    )


def classify_reference(payload: bytes) -> Kind:
    """Classify ``payload`` by the rules above. Never returns UNKNOWN."""
    try:
        msg = parse_first_wins(payload)
    except (ValueError, RecursionError):
        # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
        return Kind.OTHER
    if not isinstance(msg, dict):
        return Kind.OTHER
    if "id" in msg:
        ident = msg["id"]
        if (
            isinstance(ident, str)
            and ident.startswith(ENGINE_ID_PREFIX)
            and "method" not in msg
            and ("result" in msg or "error" in msg)
        ):
            return Kind.TEST_REPLY
        return Kind.OTHER
    if msg.get("method") == "heartbeat":
        params = msg.get("params")
        if isinstance(params, dict):
            kind = params.get("type")
            if kind == "test_request":
                return Kind.TEST_REQUEST
            if kind == "heartbeat":
                return Kind.HEARTBEAT
    return Kind.OTHER


def channel_lane(channel: str) -> Lane:
    """The lane of a notification on ``channel``."""
    if channel.startswith("user."):
        return Lane.PRIORITY
    if channel.startswith("book."):
        return Lane.BOOK
    if channel.startswith(CONFLATED_PREFIXES):
        return Lane.CONFLATE
    return Lane.ORDERED


def lane_reference(payload: bytes) -> tuple[Lane, str]:
    """``(lane, channel)`` by the lane rules above; channel is "" when there is none.
    Never returns UNKNOWN."""
    try:
        msg = parse_first_wins(payload)
    except (ValueError, RecursionError):
        return Lane.ORDERED, ""
    if not isinstance(msg, dict):
        return Lane.ORDERED, ""
    if "method" in msg:
        params = msg.get("params")
        if msg["method"] == "subscription" and isinstance(params, dict):
            channel = params.get("channel")
            if isinstance(channel, str):
                return channel_lane(channel), channel
        return Lane.ORDERED, ""
    if "id" in msg:
        return Lane.PRIORITY, ""
    return Lane.ORDERED, ""
