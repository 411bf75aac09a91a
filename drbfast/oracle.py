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
"""

from __future__ import annotations

import json
from typing import Any

from .frames import ENGINE_ID_PREFIX
from .kinds import Kind

__all__ = ["classify_reference", "parse_first_wins"]


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
