"""``client.stats``: what a market maker watches to know the connection is healthy."""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ClientStats"]


@dataclass
class ClientStats:
    """Counters since the client was created. The heartbeat figures (``heartbeats``,
    ``test_requests``, ``replies_sent``, ``last_rtt_ns``, ...) come from the compiled
    listener and add up over reconnects."""

    messages: int = 0
    notifications: int = 0
    responses: int = 0
    reconnects: int = 0
    parse_errors: int = 0
    orphan_replies: int = 0
    callback_errors: int = 0
    overflows: int = 0
    book_gaps: int = 0
    #: book messages dropped by a full subscription queue (each restarts the book from a snapshot)
    book_local_drops: int = 0
    timeouts: int = 0
    token_refreshes: int = 0
    watchdog_drops: int = 0
    unhandled: int = 0
    heartbeats: int = 0
    test_requests: int = 0
    replies_sent: int = 0
    test_replies: int = 0
    test_reply_errors: int = 0
    backlog: int = 0
    #: the largest consumer backlog the listener has held (messages)
    backlog_peak: int = 0
    #: public messages the listener dropped oldest-first at its byte bound (max_bytes)
    backlog_dropped: int = 0
    dropped_bytes: int = 0
    #: latest-value messages (tickers, ...) replaced by a newer one before delivery
    conflated: int = 0
    #: book channels whose queued changes the listener dropped (each resubscribed)
    book_resets: int = 0
    #: the most bytes the listener held queued for the consumer
    queued_bytes_peak: int = 0
    #: receive -> hand-over delay of the current connection's messages, ns
    delivery_delay_p50_ns: int = 0
    delivery_delay_p99_ns: int = 0
    delivery_delay_max_ns: int = 0
    #: messages a replaced connection still handed over (ignored)
    stale_messages: int = 0
    #: round trip of the engine's last own public/test, ns (0: none yet)
    last_rtt_ns: int = 0
    #: Deribit's usOut - usIn of the last response: server processing time, us
    server_us_diff: int | None = None
    #: Deribit's usOut minus the local clock when the response was read, us
    #: (clock offset plus one-way latency)
    clock_offset_us: int | None = None

    _ADDITIVE = ("heartbeats", "test_requests", "replies_sent", "test_replies", "test_reply_errors",
                 "dropped_bytes", "conflated", "book_resets")

    def copy(self) -> ClientStats:
        return copy.copy(self)

    def absorb(self, hb: Any) -> None:
        """Add a live listener's counters (this object is a snapshot copy)."""
        for name in self._ADDITIVE:
            setattr(self, name, getattr(self, name) + getattr(hb, name))
        self.backlog = hb.backlog
        self.delivery_delay_p50_ns = hb.delay_p50_ns
        self.delivery_delay_p99_ns = hb.delay_p99_ns
        self.delivery_delay_max_ns = hb.delay_max_ns
        self._peaks(hb)

    def absorb_final(self, hb: Any) -> None:
        """Keep a closed listener's counters for good."""
        for name in self._ADDITIVE:
            setattr(self, name, getattr(self, name) + getattr(hb, name))
        self._peaks(hb)

    def _peaks(self, hb: Any) -> None:
        self.backlog_peak = max(self.backlog_peak, hb.backlog_peak)
        self.queued_bytes_peak = max(self.queued_bytes_peak, hb.queued_bytes_peak)
        self.backlog_dropped += hb.dropped
        if hb.last_rtt_ns:
            self.last_rtt_ns = hb.last_rtt_ns

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
