"""The buckets the hot path sorts every incoming message into."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Kind"]


class Kind(IntEnum):
    """What a message is, as far as heartbeat handling is concerned.

    The values are shared with the C enum in ``_classify.pxd``; do not renumber.
    """

    #: Anything that is not heartbeat traffic: responses, notifications, invalid JSON.
    OTHER = 0
    #: ``{"method": "heartbeat", "params": {"type": "heartbeat"}}``: needs no answer.
    HEARTBEAT = 1
    #: ``{"method": "heartbeat", "params": {"type": "test_request"}}``: must be answered
    #: with a ``public/test`` request, or Deribit closes the socket (code 4000).
    TEST_REQUEST = 2
    #: The response to a ``public/test`` the engine itself sent (engine id prefix).
    TEST_REPLY = 3
    #: The fast matcher could not place the message; the slow path decides.
    UNKNOWN = 4
