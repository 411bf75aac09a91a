"""Typing stub for the compiled listener (drbfast/_listener.pyx)."""

import logging
from collections.abc import Callable
from typing import Any

from picows import WSFrame, WSListener, WSTransport

def monotonic_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds: the clock of every ``*_ns`` timestamp."""

class HeartbeatStats:
    """Snapshot of a listener's counters; ``*_ns`` are CLOCK_MONOTONIC, 0 if never.

    Delivery: ``messages`` OTHER messages were received; ``delivered`` were handed to
    ``on_message`` (``inline`` of them straight from the receive callback);
    ``conflated`` were replaced by a newer message of their latest-value channel;
    ``dropped`` (``dropped_bytes`` of payload) were public messages dropped oldest-first
    at ``max_bytes``; ``book_dropped`` were book changes dropped by ``book_resets``
    resets; ``drop_events`` is the number of ``on_drop`` announcements. ``backlog`` /
    ``priority_backlog`` / ``queued_bytes`` are queued now (``queued_bytes`` counts each
    payload plus a fixed 128-byte overhead); ``backlog_peak`` and ``queued_bytes_peak``
    the most ever queued; ``bound_hits`` how often the byte bound was reached.
    ``delay_*_ns``: receive -> hook call, from a fixed log histogram (~19 % buckets,
    upper edges; ``delay_max_ns`` exact). ``lane_slow_path``: queued messages whose lane
    needed the oracle (not Deribit's production layout).
    """

    heartbeats: int
    test_requests: int
    replies_sent: int
    probes_sent: int
    test_replies: int
    test_reply_errors: int
    messages: int
    binary_messages: int
    fragmented: int
    slow_path: int
    lane_slow_path: int
    hook_errors: int
    frame_errors: int
    delivered: int
    inline: int
    backlog: int
    backlog_peak: int
    priority_backlog: int
    queued_bytes: int
    queued_bytes_peak: int
    bound_hits: int
    conflated: int
    dropped: int
    dropped_bytes: int
    book_resets: int
    book_dropped: int
    drop_events: int
    delay_p50_ns: int
    delay_p99_ns: int
    delay_max_ns: int
    last_rx_ns: int
    last_heartbeat_ns: int
    last_test_request_ns: int
    last_reply_sent_ns: int
    last_test_reply_ns: int
    last_rtt_ns: int
    @property
    def backlog_pauses(self) -> int:
        """Always 0: the listener never pauses reading (kept for old readers)."""
    def as_dict(self) -> dict[str, int]: ...

#: on_message(payload, binary, lane, channel, rx_ns)
OnMessage = Callable[[bytes, bool, int, str, int], object]
#: ``on_drop(kind, channel, count)``: kind ``"book_reset"`` (resubscribe the book for a
#: fresh snapshot; count: the changes dropped) or ``"dropped"`` (public data lost at the
#: byte bound; count: that channel's drops so far in the episode, usually 1). Called
#: inside the receive callback, at most once per channel and kind per episode.
OnDrop = Callable[[str, str, int], object]

class FastListener(WSListener):
    """picows listener for one Deribit connection.

    ``test_request`` is answered inside the receive callback; heartbeats and replies to
    the engine's own ``public/test`` are counted and dropped. The socket is always read:
    nothing here ever pauses it. Every other message goes to ``on_message(payload,
    binary, lane, channel, rx_ns)``: ``lane`` is the message's :class:`drbfast.kinds.Lane`
    as the classifier found it from the bytes (PRIORITY with ``channel == ""``: a reply
    to a request; PRIORITY with a channel: a ``user.*`` notification; UNKNOWN: not
    Deribit's production layout, parse it to learn more), ``channel`` the notification's
    channel sliced from the bytes ("" for none), ``rx_ns`` its CLOCK_MONOTONIC receive
    time (also ``listener.rx_ns`` while the hook runs), so nothing downstream scans the
    bytes again to learn them. While the
    consumer keeps up (nothing queued; at most ``slice_size`` messages or
    ``slice_time`` seconds per socket read) the hook is called inline. Otherwise
    messages are queued by lane and handed over in slices of the same bounds between
    socket reads:

    * priority (replies: an ``id`` and no ``method``; ``user.*`` notifications): ahead of
      all queued public data, never dropped; replies ahead of queued ``user.*``
      notifications (an ack never waits behind order updates); each in arrival order;
    * conflated (ticker, quote, markprice, perpetual, price index/ranking/statistics,
      volatility index, estimated expiration price): one pending message per channel,
      the newest (``stats.conflated``);
    * book (``book.*``): a channel whose queued changes would pass ``book_bytes`` has
      them dropped, and ``on_drop("book_reset", channel, count)`` is called once per
      episode: the consumer should resubscribe for a snapshot;
    * ordered (everything else: trades, incremental_ticker, platform_state, ...): in
      order; at ``max_bytes`` the oldest public messages are dropped first (counted,
      ``on_drop("dropped", channel, count)`` once per channel per episode).

    Everything queued is bounded by ``max_bytes`` (payload + 128 bytes each), exceeded
    by at most one message (or by priority messages, which are never dropped). An
    episode lasts while the consumer is behind: it ends when the queue is worked off,
    or when messages go inline again with nothing lost for a second. Exceptions from
    the hooks are logged and counted. ``backlog_limit=`` and ``overflow=`` are gone
    (:class:`~drbfast.errors.ConfigurationError` says what to use instead).
    """

    transport: WSTransport | None
    max_message_size: int
    max_bytes: int
    book_bytes: int
    slice_size: int
    lanes: bool
    #: heartbeats and test_requests, answered by the listener, also go to ``on_message``
    #: in the order they arrived among the other messages (the drop-in's option)
    deliver_heartbeats: bool
    #: CLOCK_MONOTONIC ns receive time of the message being delivered (valid inside
    #: on_message; the last delivered one's afterwards; 0 before any)
    rx_ns: int
    close_code: int | None
    close_reason: str | None
    #: the last error reply to an engine-id request (e.g. a refused set_heartbeat)
    last_error_reply: bytes | None
    def __init__(
        self,
        on_message: OnMessage | None = None,
        on_connected: Callable[[FastListener], object] | None = None,
        on_disconnected: Callable[[FastListener], object] | None = None,
        *,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        on_drop: OnDrop | None = None,
        max_bytes: int = 256 * 1024 * 1024,
        book_bytes: int | None = None,
        lanes: bool = True,
        slice_size: int = 256,
        slice_time: float = 0.0002,
        max_message_size: int = 64 * 1024 * 1024,
        deliver_heartbeats: bool = False,
        backlog_limit: None = None,
        overflow: None = None,
    ) -> None:
        """``book_bytes`` defaults to ``max_bytes // 16``. ``lanes=False``: one FIFO for
        every message (no priority, conflation or book reset; only the byte bound drops,
        oldest first), for callers that promise every message in order (the websockets
        drop-in, which bounds its own queue). ``backlog_limit`` and
        ``overflow`` only exist to raise ConfigurationError with what to do instead."""
    def on_ws_connected(self, transport: WSTransport) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
    def on_ws_disconnected(self, transport: WSTransport) -> None: ...
    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send a TEXT message. Raises RuntimeError before the handshake; after the
        connection closed it does nothing (picows drops it): check ``is_connected``."""
    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Send a BINARY message."""
    def send_probe(self) -> int:
        """Send an engine ``public/test`` now; return its sequence number."""
    def close(self, code: int = 1000, reason: str | bytes = "") -> None:
        """Send a CLOSE frame and drop the connection (no-op if already down)."""
    @property
    def is_connected(self) -> bool: ...
    @property
    def sequence(self) -> int:
        """Sequence number of the engine's last ``public/test`` (0 if none)."""
    @property
    def backlog_limit(self) -> int:
        """Deprecated: no message-count limit any more; always ``sys.maxsize``."""
    @property
    def stats(self) -> HeartbeatStats: ...
    def feed(self, payload: bytes | bytearray | memoryview, binary: bool = False) -> None:
        """Run one message through the receive path (tests, benchmarks)."""
    def feed_many(self, payload: bytes | bytearray | memoryview, count: int) -> float:
        """Run one message through the receive path ``count`` times; mean ns each."""
