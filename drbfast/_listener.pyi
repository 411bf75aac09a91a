"""Typing stub for the compiled listener (drbfast/_listener.pyx)."""

import logging
from collections.abc import Callable
from typing import Any, Literal

from picows import WSFrame, WSListener, WSTransport

def monotonic_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds: the clock of every ``*_ns`` timestamp."""

class HeartbeatStats:
    """Snapshot of a listener's counters; ``*_ns`` are CLOCK_MONOTONIC, 0 if never."""

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
    hook_errors: int
    frame_errors: int
    backlog: int
    backlog_peak: int
    backlog_pauses: int
    dropped: int
    last_rx_ns: int
    last_heartbeat_ns: int
    last_test_request_ns: int
    last_reply_sent_ns: int
    last_test_reply_ns: int
    last_rtt_ns: int
    def as_dict(self) -> dict[str, int]: ...

OnMessage = Callable[[bytes, bool], object]

class FastListener(WSListener):
    """picows listener for one Deribit connection.

    ``test_request`` is answered inside the receive callback; heartbeats and replies to
    the engine's own ``public/test`` are counted and dropped. Every other message goes
    to ``on_message(payload, binary)`` once, in order: inline while the consumer keeps
    up (at most ``slice_size`` messages or ``slice_time`` seconds per socket read), else
    through a backlog worked off in slices of the same bounds that yield to the event
    loop, so the socket is read, and test_requests answered, between slices. When the backlog reaches
    ``backlog_limit`` the ``overflow`` policy applies: ``"pause"`` stops reading the
    socket until it halves (no loss, bounded memory), ``"drop"`` drops new messages and
    counts them in ``stats.dropped``. Exceptions from the hooks are logged and counted.
    """

    transport: WSTransport | None
    max_message_size: int
    backlog_limit: int
    slice_size: int
    overflow: str
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
        backlog_limit: int = 50_000,
        slice_size: int = 256,
        slice_time: float = 0.0002,
        overflow: Literal["pause", "drop"] = "pause",
        max_message_size: int = 64 * 1024 * 1024,
    ) -> None: ...
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
    def stats(self) -> HeartbeatStats: ...
    def feed(self, payload: bytes | bytearray | memoryview, binary: bool = False) -> None:
        """Run one message through the receive path (tests, benchmarks)."""
    def feed_many(self, payload: bytes | bytearray | memoryview, count: int) -> float:
        """Run one message through the receive path ``count`` times; mean ns each."""
