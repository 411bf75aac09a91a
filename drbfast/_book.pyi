"""Typing stub for the compiled order book (drbfast/_book.pyx)."""

from typing import Any

from .book import BookSnapshot, BookStatus

class OrderBook:
    """A local book for one ``book.*`` channel, fed whole notifications as bytes."""

    channel: str
    instrument: str
    grouped: bool
    rx_ns: int
    version: int
    updates: int
    snapshots: int
    levels: int
    gaps: int
    unknown_levels: int
    crossed: int
    parse_errors: int
    ignored: int
    other: int
    resyncs: int
    no_memory: int
    def __init__(self, channel: str) -> None: ...
    def apply(self, payload: bytes | bytearray | memoryview, rx_ns: int = 0) -> BookStatus:
        """Apply one whole notification; ``rx_ns`` 0 stamps CLOCK_MONOTONIC now."""
    def reset(self) -> None:
        """Force a resync (changes are ignored until the next snapshot)."""
    @property
    def is_synced(self) -> bool: ...
    @property
    def change_id(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def best_bid(self) -> tuple[float, float] | None: ...
    @property
    def best_ask(self) -> tuple[float, float] | None: ...
    @property
    def best_bid_price(self) -> float: ...
    @property
    def best_ask_price(self) -> float: ...
    @property
    def spread(self) -> float | None: ...
    @property
    def mid(self) -> float | None: ...
    @property
    def bid_depth(self) -> int: ...
    @property
    def ask_depth(self) -> int: ...
    def bids(self, n: int | None = None) -> list[tuple[float, float]]: ...
    def asks(self, n: int | None = None) -> list[tuple[float, float]]: ...
    def to_numpy(self, n: int | None = None) -> tuple[Any, Any]:
        """``(bids, asks)`` float64 arrays of shape (levels, 2), best first; needs NumPy."""
    def snapshot(self, n: int | None = None) -> BookSnapshot: ...
    def copy(self) -> OrderBook: ...
    def counters(self) -> dict[str, int]: ...

def measure_apply(book: OrderBook, payloads: list[bytes], rx_ns: int = 1) -> list[int]:
    """Nanoseconds per message, each applied through the C entry point."""

def apply_all(book: OrderBook, payloads: list[bytes], rx_ns: int = 1) -> int:
    """Apply every message through the C entry point; count of non-APPLIED/SNAPSHOT."""
