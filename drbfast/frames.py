"""Payloads the engine sends by itself, built once with the normal JSON encoder.

The hot path copies :data:`TEST_TEMPLATE` into a per-connection scratch buffer and
patches the :data:`SEQ_DIGITS` digits at :data:`SEQ_OFFSET` in place, so answering a
``test_request`` formats nothing and allocates nothing.
"""

from __future__ import annotations

import json

__all__ = [
    "ENGINE_ID_PREFIX",
    "NOTIFICATION_PREFIX",
    "SEQ_DIGITS",
    "SEQ_OFFSET",
    "TEST_TEMPLATE",
    "build_notification_prefix",
    "build_test_template",
    "engine_id",
    "is_engine_id",
]

#: Every ``public/test`` the engine sends carries a *string* id with this prefix; Deribit
#: echoes string ids verbatim, so a reply is recognised without any table. User request
#: ids must never start with it (the session layer refuses them).
ENGINE_ID_PREFIX = "~drbfast~"
#: Fixed width of the decimal sequence number that follows the prefix.
SEQ_DIGITS = 12


def engine_id(seq: int) -> str:
    """The id of the engine's ``public/test`` number ``seq`` (wraps at 10**12)."""
    return f"{ENGINE_ID_PREFIX}{seq % 10**SEQ_DIGITS:0{SEQ_DIGITS}d}"


def is_engine_id(value: object) -> bool:
    """True if ``value`` is an id the engine reserves for its own ``public/test``."""
    return isinstance(value, str) and value.startswith(ENGINE_ID_PREFIX)


def build_test_template() -> tuple[bytes, int]:
    """Return the ``public/test`` request with sequence 0, and the offset of its digits.

    The request is the one every Deribit client sends to answer a ``test_request``
    (PROTOCOL.md 1.3): ``{"jsonrpc":"2.0","id":<id>,"method":"public/test","params":{}}``.
    """
    placeholder = engine_id(0)
    payload = json.dumps(
        {"jsonrpc": "2.0", "id": placeholder, "method": "public/test", "params": {}},
        separators=(",", ":"),
    ).encode("ascii")
    offset = payload.index(placeholder.encode("ascii")) + len(ENGINE_ID_PREFIX)
    return payload, offset


TEST_TEMPLATE, SEQ_OFFSET = build_test_template()


def build_notification_prefix() -> bytes:
    """The bytes a notification in Deribit's production layout starts with, up to the
    first byte of its channel name.

    PROTOCOL.md 4.1: the envelope keys come as jsonrpc, method, params, and params starts
    with the channel, so a live notification begins
    ``{"jsonrpc":"2.0","method":"subscription","params":{"channel":"``. The classifier
    reads the channel right after it; the book reads params from its ``{``.
    """
    closed = json.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": ""}},
        separators=(",", ":"),
    ).encode("ascii")
    return closed[: -len(b'"}}')]  # drop the empty name's closing quote and the two braces


#: The one definition of the notification prefix (see :func:`build_notification_prefix`);
#: the compiled classifier and book take their bytes from here at import.
NOTIFICATION_PREFIX = build_notification_prefix()
