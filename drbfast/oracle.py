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

The lane of a message the listener delivers (:func:`lane_reference`). Deribit's two
production layouts are decided by their first bytes, whatever follows (the listener
only queues a message; validating it would cost microseconds per message, and the
consumer's parser rejects invalid JSON anyway):

0. ``{"jsonrpc":"2.0","method":"subscription","params":{"channel":"`` then a channel of
   plain printable ASCII (no ``"`` or ``\\``) and its closing quote: the channel's lane;
   ``{"jsonrpc":"2.0","id":`` then a digit or ``-``: PRIORITY (a reply).

Any other layout goes by the parse (:func:`lane_parsed`), which agrees with rule 0 on
every valid message that does not carry both an ``id`` and a ``method`` (Deribit sends
none):

1. an object whose first ``method`` is ``"subscription"``, with an object ``params``
   whose first ``channel`` is a string: the channel's lane (:func:`channel_lane`);
2. any other object with a ``method``: ORDERED, no channel;
3. an object with an ``id`` (and no ``method``): PRIORITY, no channel (a reply);
4. anything else (not JSON, not an object, neither key): ORDERED, no channel.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .frames import ENGINE_ID_PREFIX, NOTIFICATION_PREFIX
from .kinds import Kind, Lane

__all__ = ["CONFLATED_PREFIXES", "channel_lane", "classify_reference", "lane_parsed", "lane_reference", "parse_first_wins"]

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


# Rule 0: the production layouts (PROTOCOL.md 4.1; every live response and notification).
_PROD_NOTIFICATION = re.compile(re.escape(NOTIFICATION_PREFIX) + rb'([\x20\x21\x23-\x5b\x5d-\x7f]*)"')
_PROD_REPLY = re.compile(rb'\{"jsonrpc":"2\.0","id":[-0-9]')


def lane_reference(payload: bytes) -> tuple[Lane, str]:
    """``(lane, channel)`` by the lane rules above; channel is "" when there is none.
    Never returns UNKNOWN."""
    m = _PROD_NOTIFICATION.match(payload)
    if m:
        channel = m.group(1).decode("ascii")
        return channel_lane(channel), channel
    if _PROD_REPLY.match(payload):
        return Lane.PRIORITY, ""
    return lane_parsed(payload)


def lane_parsed(payload: bytes) -> tuple[Lane, str]:
    """``(lane, channel)`` by rules 1-4 (a full parse, whatever the layout)."""
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
