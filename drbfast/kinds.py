"""The buckets the hot path sorts every incoming message into."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Kind", "Lane"]


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


class Lane(IntEnum):
    """How the listener queues an OTHER message while the consumer is behind.

    The values are shared with the C enum in ``_classify.pxd``; do not renumber.
    """

    #: The fast matcher did not decide; the oracle (``lane_reference``) does.
    UNKNOWN = 0
    #: A reply to a request (an ``id``, no ``method``) or a ``user.*`` notification:
    #: delivered before queued market data, in order, never dropped.
    PRIORITY = 1
    #: Other notifications (trades, incremental_ticker, platform_state, ...) and
    #: anything unrecognised: in order, dropped oldest-first at the byte bound.
    ORDERED = 2
    #: A latest-value channel (ticker, quote, mark price, index, perpetual, ...):
    #: at most one undelivered message per channel, the newest.
    CONFLATE = 3
    #: A ``book.*`` channel: a book that falls behind is reset (its queued changes
    #: dropped, the consumer told to resubscribe) instead of delivered late.
    BOOK = 4
