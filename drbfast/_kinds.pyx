# cython: language_level=3
"""The Python face of the classifier's C enums: the one definition of their values.

The values are the ``K_*`` and ``L_*`` constants of ``_enums.pxd`` (which the
classifier and the listener cimport); here they get their Python names, so the two cannot disagree.
Import them from :mod:`drbfast.kinds`. It cimports only a declaration file (nothing
at run time), so it sits below every other module.
"""

from enum import IntEnum

from drbfast._enums cimport (K_HEARTBEAT, K_OTHER, K_TEST_REPLY, K_TEST_REQUEST, K_UNKNOWN, L_BOOK,
                             L_CONFLATE, L_ORDERED, L_PRIORITY, L_UNKNOWN)


class Kind(IntEnum):
    """What a message is, as far as heartbeat handling is concerned.

    ``OTHER``: anything that is not heartbeat traffic (responses, notifications, invalid
    JSON). ``HEARTBEAT``: ``{"method": "heartbeat", "params": {"type": "heartbeat"}}``,
    needs no answer. ``TEST_REQUEST``: ``{"method": "heartbeat", "params": {"type":
    "test_request"}}``, must be answered with a ``public/test`` request, or Deribit closes
    the socket (code 4000). ``TEST_REPLY``: the response to a ``public/test`` the engine
    itself sent (engine id prefix). ``UNKNOWN``: the fast matcher could not place the
    message; the slow path decides.
    """

    OTHER = K_OTHER
    HEARTBEAT = K_HEARTBEAT
    TEST_REQUEST = K_TEST_REQUEST
    TEST_REPLY = K_TEST_REPLY
    UNKNOWN = K_UNKNOWN


class Lane(IntEnum):
    """How the listener queues an OTHER message while the consumer is behind.

    ``UNKNOWN``: the fast matcher did not decide; the oracle (``lane_reference``) does.
    ``PRIORITY``: a reply to a request (an ``id``, no ``method``) or a ``user.*``
    notification, delivered before queued market data, in order, never dropped.
    ``ORDERED``: other notifications (trades, incremental_ticker, platform_state, ...) and
    anything unrecognised, in order, dropped oldest-first at the byte bound.
    ``CONFLATE``: a latest-value channel (ticker, quote, mark price, index, perpetual,
    ...), at most one undelivered message per channel, the newest. ``BOOK``: a ``book.*``
    channel; a book that falls behind is reset (its queued changes dropped, the consumer
    told to resubscribe) instead of delivered late.
    """

    UNKNOWN = L_UNKNOWN
    PRIORITY = L_PRIORITY
    ORDERED = L_ORDERED
    CONFLATE = L_CONFLATE
    BOOK = L_BOOK
